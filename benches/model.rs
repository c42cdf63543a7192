//! Whole-model benches, on the fastest kernel set at the widest level, on one thread and on all: a
//! GPT-2-small-sized model (12 layers of 768, 12 heads, vocabulary 50257) and a SmolLM2-135M-sized
//! Llama (30 layers of 576, 9 heads over 3 key/value heads, MLP 1536, vocabulary 49152), both with
//! deterministic synthetic weights; a prefill of 128 and 512 tokens, and one decode step after 512
//! cached tokens. Throughput in tokens (criterion's elements). Groups are `model/<phase>,...`,
//! the Llama's phases prefixed `llama-`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tkbench_benches::{quick, wanted_levels};
use tkbench_harness::model::llama::{LlamaKernelModel, LlamaWeights};
use tkbench_harness::model::{KernelLm, KernelModel, Weights};
use tkbench_harness::registry::{KernelSet, Registry};
use tkbench_kernels::Isa;
use tkbench_reference::{Config, LlamaConfig, synthetic};

/// The prefills and the decode step of one model: `model(threads)` builds it on that many threads.
fn bench_model<'m>(
    c: &mut Criterion,
    prefix: &str,
    vocab_size: usize,
    set: &KernelSet,
    isa: Isa,
    model: impl Fn(usize) -> Box<dyn KernelLm + 'm>,
) {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = vec![1];
    if all > 1 {
        threads.push(all);
    }
    let prefills: &[usize] = if quick() { &[128] } else { &[128, 512] };
    let tokens = synthetic::tokens(1, 1024, vocab_size);
    let id = |n: usize| format!("{}@{} threads={n}", set.spec(), isa.name());
    for &t in prefills {
        let mut group = c.benchmark_group(format!("model/{prefix}prefill,tokens={t},cached=0"));
        group.throughput(Throughput::Elements(t as u64));
        for &n in &threads {
            let model = model(n);
            group.bench_function(id(n), |b| {
                b.iter(|| {
                    model
                        .forward_cached(&tokens[..t], &mut model.new_cache())
                        .expect("valid tokens")
                })
            });
        }
        group.finish();
    }
    let cached = 512;
    let mut group = c.benchmark_group(format!("model/{prefix}decode,tokens=1,cached={cached}"));
    group.throughput(Throughput::Elements(1));
    for &n in &threads {
        let model = model(n);
        let mut cache = model.new_cache();
        model
            .forward_cached(&tokens[..cached], &mut cache)
            .expect("valid tokens");
        group.bench_function(id(n), |b| {
            b.iter(|| {
                cache.truncate(cached);
                model
                    .forward_cached(&tokens[cached..cached + 1], &mut cache)
                    .expect("valid tokens")
            })
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    // TKBENCH_ISA picks the model's level too: the widest of those it asks for.
    let isa = *wanted_levels().last().expect("at least one level");
    let set = KernelSet::fastest(&Registry::builtin());
    {
        let config = Config::gpt2_small();
        let checkpoint = synthetic::checkpoint(&config, 124);
        let weights = Weights::new(&checkpoint);
        bench_model(c, "", config.vocab_size, &set, isa, |n| {
            Box::new(KernelModel::new(&weights, &set, isa, n))
        });
    }
    let config = LlamaConfig::smollm2_135m();
    let checkpoint = synthetic::checkpoint(&config, 135);
    let weights = LlamaWeights::new(&checkpoint);
    bench_model(c, "llama-", config.vocab_size, &set, isa, |n| {
        Box::new(LlamaKernelModel::new(&weights, &set, isa, n))
    });
}

criterion_group!(name = benches; config = tkbench_benches::config(); targets = bench);
criterion_main!(benches);
