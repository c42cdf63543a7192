//! Embedding benches: every variant looking up T ids in GPT-2 small's tables (50257 × 768 and
//! 1024 × 768). Bytes moved: two rows read and one written per token, 12 · C bytes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tkbench_benches::{Draw, targets};
use tkbench_kernels::embedding::EmbeddingDims;
use tkbench_kernels::{Kernel, Op};

fn bench(c: &mut Criterion) {
    let (vocab, positions, channels) = (50257, 1024, 768);
    let draw = Draw::new(4, 1.0);
    let wte = draw.uniform("wte", vocab * channels);
    let wpe = draw.uniform("wpe", positions * channels);
    for tokens in [1, 1024] {
        let mut group = c.benchmark_group(format!("embedding/{tokens}x{channels}"));
        group.throughput(Throughput::Bytes((tokens * channels * 12) as u64));
        let ids = draw.ids("ids", tokens, vocab);
        let mut out = vec![0.0f32; tokens * channels];
        let pos0 = positions - tokens;
        let dims = EmbeddingDims {
            tokens,
            channels,
            vocab,
            positions,
            pos0,
        };
        for (variant, isa, label) in targets(Op::Embedding) {
            let Kernel::Embedding(f) = variant.kernel else {
                unreachable!()
            };
            group.bench_function(label, |b| {
                b.iter(|| f(&dims, black_box(&ids), &wte, &wpe, &mut out, isa))
            });
        }
        group.finish();
    }
}

criterion_group!(name = benches; config = Criterion::default().sample_size(10); targets = bench);
criterion_main!(benches);
