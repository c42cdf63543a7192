//! Matmul benches: every variant on 768³ and on GPT-2 small's projections (T = 128 rows against the
//! [768, 2304] qkv weight and the [768, 3072] MLP weight). FLOPs: 2 · M · K · N. The scalar triple loop
//! is timed only at the smallest shape: at the others it takes seconds and teaches nothing new.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tkbench_benches::{Draw, targets};
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::{Kernel, Op};

fn bench(c: &mut Criterion) {
    for (m, k, n) in [(128, 768, 2304), (768, 768, 768), (128, 768, 3072)] {
        let mut group = c.benchmark_group(format!("matmul/{m}x{k}x{n}"));
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        let draw = Draw::new(6, 1.0);
        let a = draw.uniform("a", m * k);
        let b = draw.uniform("b", k * n);
        let bias = draw.uniform("bias", n);
        let mut out = vec![0.0f32; m * n];
        let dims = MatmulDims { m, k, n };
        for (variant, isa, label) in targets(Op::Matmul) {
            if variant.name == "scalar" && (m, k, n) != (128, 768, 2304) {
                continue;
            }
            let Kernel::Matmul(f) = variant.kernel else {
                unreachable!()
            };
            group.bench_function(label, |bch| {
                bch.iter(|| f(&dims, black_box(&a), &b, Some(&bias), &mut out, isa))
            });
        }
        group.finish();
    }
}

criterion_group!(name = benches; config = Criterion::default().sample_size(10); targets = bench);
criterion_main!(benches);
