//! The criterion benches: the criterion settings, which ops and levels to time (from the
//! environment), the routine that hands every timed call of an op to criterion, and the whole-model
//! benches. The calls themselves, their ids and their work come from `tkbench_harness::measure::bench`,
//! generic over the ops' definitions: the op list decides what is benched. `cargo bench` runs them
//! through the `ops` and `model` targets on the built-in registry; `cargo xtask bench` runs them in a
//! child process of its own binary (its `bench-worker` command) on the registry that binary was
//! given, so that an outside crate's variants are timed too.
//!
//! Environment: `TKBENCH_QUICK=1` times fewer shapes for less time; `TKBENCH_ISA=all` times every
//! level, `TKBENCH_ISA=<level>` one level, the default the widest; `TKBENCH_OP=<op>` times one op
//! (`cargo xtask bench` runs the `ops` target once per op), the default every op;
//! `TKBENCH_MATMUL_BLOCKING=tile=…,kc=…,mc_slivers=…,nc=…` fixes the blocked matmul's
//! register tile and blocking; `TKBENCH_RECHECK=<file>` appends one line per timed call to that file, `<group>\t<function>\t`
//! then `ok` or the re-check's failure (the output of the timed calls against the reference), which
//! `cargo xtask bench` turns into the rows' verdicts. Failures are printed to stderr as well.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use tkbench_harness::measure::bench::BenchPlan;
use tkbench_harness::measure::work::Unit;
use tkbench_harness::model::llama::{LlamaKernelModel, LlamaWeights};
use tkbench_harness::model::threads::Workers;
use tkbench_harness::model::{KernelLm, KernelModel, Weights};
use tkbench_harness::ops::AnyOp;
use tkbench_harness::registry::{KernelSet, Registry};
use tkbench_kernels::Isa;
use tkbench_reference::{Config, LlamaConfig, synthetic};

/// Whether `TKBENCH_QUICK` asks for the short run.
pub fn quick() -> bool {
    std::env::var("TKBENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Criterion settings: short in quick mode. Fixes the kernel parameters `TKBENCH_MATMUL_BLOCKING`
/// names first (the ones `cargo xtask bench` verified), panicking on a malformed value.
pub fn config() -> Criterion {
    if let Err(e) = tkbench_harness::measure::tune::apply_env() {
        panic!("{e}");
    }
    let c = Criterion::default().sample_size(10).without_plots();
    if quick() {
        c.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(600))
    } else {
        c.warm_up_time(Duration::from_millis(800))
            .measurement_time(Duration::from_secs(2))
    }
}

/// The levels `TKBENCH_ISA` asks for: `all` (every level this CPU has), one level, or by default
/// the widest. Panics on a level this CPU lacks, naming the ones it has.
pub fn wanted_levels() -> Vec<Isa> {
    match std::env::var("TKBENCH_ISA").ok().as_deref() {
        Some("all") => Isa::available(),
        Some(name) => match Isa::from_name(name) {
            Some(isa) if isa.is_available() => vec![isa],
            _ => panic!("TKBENCH_ISA={name}: not a level this CPU has ({:?})", Isa::available()),
        },
        None => vec![Isa::best()],
    }
}

/// The ops `TKBENCH_OP` asks for: one op, or by default every op. Panics on a name that is not an op.
pub fn wanted_ops(registry: &Registry) -> Vec<&'static dyn AnyOp> {
    match std::env::var("TKBENCH_OP").ok().filter(|v| !v.is_empty()) {
        Some(name) => vec![tkbench_harness::ops::op_named(&name).unwrap_or_else(|e| panic!("TKBENCH_OP: {e}"))],
        None => registry.ops().to_vec(),
    }
}

/// Times every variant of the built-in registry: [`bench_ops_of`] on [`Registry::builtin`].
pub fn bench_ops(c: &mut Criterion) {
    bench_ops_of(c, &Registry::builtin());
}

/// Times every variant of every wanted op in `registry` on each of its bench shapes on one thread,
/// and the fastest variant (and the library baseline) on all threads too.
pub fn bench_ops_of(c: &mut Criterion, registry: &Registry) {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plan = BenchPlan {
        levels: wanted_levels(),
        workers: Arc::new(Workers::new(all)),
    };
    for op in wanted_ops(registry) {
        for shape in op.bench_shapes(quick()) {
            let bench = op
                .bench(registry, &shape, &plan)
                .unwrap_or_else(|e| panic!("{} bench shape {shape}: {e}", op.name()));
            let mut group = c.benchmark_group(&bench.group);
            group.throughput(match bench.unit {
                Unit::Flops => Throughput::Elements(bench.work.flops as u64),
                Unit::Bytes => Throughput::Bytes(bench.work.bytes as u64),
            });
            for mut call in bench.calls {
                if call.threads > 1 {
                    // The timing loop runs on a pool thread, as the model's forward pass does.
                    group.bench_function(&call.function, |b| plan.workers.install(|| b.iter(|| (call.run)())));
                } else {
                    group.bench_function(&call.function, |b| b.iter(|| (call.run)()));
                }
                record_recheck(&bench.group, &call.function, call.recheck());
            }
            group.finish();
        }
    }
}

/// Records the re-check of one timed call in `TKBENCH_RECHECK`'s file (if set), and prints a failure.
fn record_recheck(group: &str, function: &str, result: Result<(), String>) {
    if let Err(why) = &result {
        eprintln!("RE-CHECK FAILED: {group}/{function}: {why}");
    }
    let Some(path) = std::env::var_os("TKBENCH_RECHECK") else {
        return;
    };
    let line = format!("{group}\t{function}\t{}\n", result.err().unwrap_or_else(|| "ok".into()));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .unwrap_or_else(|e| panic!("TKBENCH_RECHECK={}: {e}", path.to_string_lossy()));
}

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

/// The whole-model benches: a GPT-2-small-sized model and a SmolLM2-135M-sized Llama on the fastest
/// kernel set, prefills of 128 and 512 tokens (128 alone when quick) and a decode step after 512, on
/// one thread and on all.
pub fn bench_models(c: &mut Criterion) {
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
