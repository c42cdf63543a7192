//! Attention benches: every variant on GPT-2 small's heads (12 × 64) for a prefill of T tokens and
//! for one decode step after 512 cached tokens. FLOPs: 2 · 2 · NH · HS · (visible query-key pairs),
//! for q · k and p · v (the exp and the softmax are not counted).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tkbench_benches::{Draw, targets};
use tkbench_kernels::attention::AttentionDims;
use tkbench_kernels::{Kernel, Op};

fn bench(c: &mut Criterion) {
    let (heads, head_size) = (12, 64);
    let channels = heads * head_size;
    for (queries, pos0) in [(1, 512), (128, 0), (512, 0), (1024, 0)] {
        let keys = pos0 + queries;
        let pairs: usize = (0..queries).map(|i| pos0 + i + 1).sum();
        let mut group = c.benchmark_group(format!("attention/T{queries}+{pos0}"));
        group.throughput(Throughput::Elements((4 * channels * pairs) as u64));
        if queries >= 512 {
            group.sample_size(10);
        }
        let draw = Draw::new(5, 1.0);
        let q = draw.uniform("q", queries * channels);
        let k = draw.uniform("k", keys * channels);
        let v = draw.uniform("v", keys * channels);
        let mut out = vec![0.0f32; queries * channels];
        let dims = AttentionDims {
            queries,
            pos0,
            heads,
            head_size,
            scale: 0.125,
        };
        for (variant, isa, label) in targets(Op::Attention) {
            let Kernel::Attention(f) = variant.kernel else {
                unreachable!()
            };
            group.bench_function(label, |b| b.iter(|| f(&dims, black_box(&q), &k, &v, &mut out, isa)));
        }
        group.finish();
    }
}

criterion_group!(name = benches; config = Criterion::default().sample_size(10); targets = bench);
criterion_main!(benches);
