//! softmax benches: every variant on the GPT-2-small shapes of `tkbench_benches::shapes`.

use criterion::{Criterion, criterion_group, criterion_main};
use tkbench_kernels::Op;

fn bench(c: &mut Criterion) {
    tkbench_benches::bench_op(c, Op::Softmax);
}

criterion_group!(name = benches; config = tkbench_benches::config(); targets = bench);
criterion_main!(benches);
