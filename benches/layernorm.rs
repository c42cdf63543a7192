//! LayerNorm benches: every variant on GPT-2-small rows (C = 768) for an in-cache T and for T = 1024
//! and 4096. Bytes moved: read x, write out (gamma and beta stay in cache), 8 bytes per element.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tkbench_benches::{Draw, targets};
use tkbench_kernels::layernorm::LayerNormDims;
use tkbench_kernels::{Kernel, Op};

fn bench(c: &mut Criterion) {
    let channels = 768;
    for rows in [16, 1024, 4096] {
        let mut group = c.benchmark_group(format!("layernorm/{rows}x{channels}"));
        group.throughput(Throughput::Bytes((rows * channels * 8) as u64));
        let draw = Draw::new(2, 2.0);
        let x = draw.uniform("x", rows * channels);
        let gamma = draw.values("gamma", channels, 1.0, 0.5);
        let beta = draw.values("beta", channels, 0.0, 0.5);
        let mut out = vec![0.0f32; rows * channels];
        let dims = LayerNormDims {
            rows,
            channels,
            eps: 1e-5,
        };
        for (variant, isa, label) in targets(Op::LayerNorm) {
            let Kernel::LayerNorm(f) = variant.kernel else {
                unreachable!()
            };
            group.bench_function(label, |b| {
                b.iter(|| f(&dims, black_box(&x), &gamma, &beta, &mut out, isa))
            });
        }
        group.finish();
    }
}

criterion_group!(name = benches; config = Criterion::default().sample_size(10); targets = bench);
criterion_main!(benches);
