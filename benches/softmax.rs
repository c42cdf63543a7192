//! Softmax benches: every variant on rows of GPT-2 shapes (attention rows of 1024, vocabulary rows
//! of 50257) and an in-cache shape. Bytes moved: read x and write out, 8 bytes per element.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tkbench_benches::{Draw, targets};
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Kernel, Op};

fn bench(c: &mut Criterion) {
    for (rows, cols) in [(16, 1024), (64, 50257), (12 * 1024, 1024)] {
        let mut group = c.benchmark_group(format!("softmax/{rows}x{cols}"));
        group.throughput(Throughput::Bytes((rows * cols * 8) as u64));
        let x = Draw::new(1, 4.0).uniform("x", rows * cols);
        let mut out = vec![0.0f32; rows * cols];
        let dims = SoftmaxDims { rows, cols };
        for (variant, isa, label) in targets(Op::Softmax) {
            let Kernel::Softmax(f) = variant.kernel else {
                unreachable!()
            };
            group.bench_function(label, |b| b.iter(|| f(&dims, black_box(&x), &mut out, isa)));
        }
        group.finish();
    }
}

criterion_group!(name = benches; config = Criterion::default().sample_size(10); targets = bench);
criterion_main!(benches);
