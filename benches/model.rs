//! Whole-model benches: a GPT-2-small-sized model (12 layers of 768, 12 heads, vocabulary 50257) with
//! deterministic synthetic weights, on the fastest kernel set at the widest level, on one thread and
//! on all: a prefill of 128 and 512 tokens, and one decode step after 512 cached tokens. Throughput
//! in tokens (criterion's elements).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tkbench_benches::{quick, wanted_levels};
use tkbench_harness::model::{KernelModel, Weights};
use tkbench_harness::registry::{KernelSet, Registry};
use tkbench_reference::{Config, synthetic};

fn bench(c: &mut Criterion) {
    let config = Config::gpt2_small();
    let checkpoint = synthetic::checkpoint(&config, 124);
    let weights = Weights::new(&checkpoint);
    // TKBENCH_ISA picks the model's level too: the widest of those it asks for.
    let isa = *wanted_levels().last().expect("at least one level");
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = vec![1];
    if all > 1 {
        threads.push(all);
    }
    let prefills: &[usize] = if quick() { &[128] } else { &[128, 512] };
    let tokens = synthetic::tokens(1, 1024, config.vocab_size);
    let set = KernelSet::fastest(&Registry::builtin());
    for &t in prefills {
        let mut group = c.benchmark_group(format!("model/prefill,tokens={t},cached=0"));
        group.throughput(Throughput::Elements(t as u64));
        for &n in &threads {
            let model = KernelModel::new(&weights, &set, isa, n);
            group.bench_function(format!("{}@{} threads={n}", set.spec(), isa.name()), |b| {
                b.iter(|| model.forward(&tokens[..t]).expect("valid tokens"))
            });
        }
        group.finish();
    }
    let cached = 512;
    let mut group = c.benchmark_group(format!("model/decode,tokens=1,cached={cached}"));
    group.throughput(Throughput::Elements(1));
    for &n in &threads {
        let model = KernelModel::new(&weights, &set, isa, n);
        let mut cache = model.new_cache();
        model
            .forward_cached(&tokens[..cached], &mut cache)
            .expect("valid tokens");
        group.bench_function(format!("{}@{} threads={n}", set.spec(), isa.name()), |b| {
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

criterion_group!(name = benches; config = tkbench_benches::config(); targets = bench);
criterion_main!(benches);
