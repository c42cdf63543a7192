//! GELU benches: every variant on an in-cache vector and on the MLP activations of GPT-2 small at
//! T = 1024 (1024 × 3072). Bytes moved: read x, write out, 8 bytes per element.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tkbench_benches::{Draw, targets};
use tkbench_kernels::{Kernel, Op};

fn bench(c: &mut Criterion) {
    for n in [16 * 1024, 1024 * 3072] {
        let mut group = c.benchmark_group(format!("gelu/{n}"));
        group.throughput(Throughput::Bytes((n * 8) as u64));
        let x = Draw::new(3, 4.0).uniform("x", n);
        let mut out = vec![0.0f32; n];
        for (variant, isa, label) in targets(Op::Gelu) {
            let Kernel::Gelu(f) = variant.kernel else {
                unreachable!()
            };
            group.bench_function(label, |b| b.iter(|| f(black_box(&x), &mut out, isa)));
        }
        group.finish();
    }
}

criterion_group!(name = benches; config = Criterion::default().sample_size(10); targets = bench);
criterion_main!(benches);
