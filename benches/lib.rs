//! Shared pieces of the criterion benches: the shapes (GPT-2 small by default), the criterion
//! settings, which variants and levels to time, and one routine that times every variant of an op.
//!
//! Benchmark ids are what `cargo xtask bench` reads back from criterion's JSON: the group is
//! `<op>/<shape>` with the shape as `cargo xtask opcheck --shape` takes it, the function is
//! `<variant>@<isa>` (or `<variant>` for plain and library variants), and the throughput is the
//! op's work from `tkbench_harness::work` (FLOPs for matmul and attention, bytes for the rest).
//!
//! The fastest variant of each op and the library baseline are also timed on all threads (function
//! id suffix ` threads=N`), split across threads as the kernel-driven model splits them.
//!
//! Environment: `TKBENCH_QUICK=1` times fewer shapes for less time; `TKBENCH_ISA=all` times every
//! level, `TKBENCH_ISA=<level>` one level; the default is the widest level.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use tkbench_harness::aligned::AlignedVec;
use tkbench_harness::model::{By, Split, Workers, split};
use tkbench_harness::opcheck::{Draw, Inputs, Shape, call_columns, call_heads, call_rows, inputs, output_rows};
use tkbench_harness::work::{measured_in_flops, work};
use tkbench_kernels::{Isa, IsaSupport, Kernel, Kind, Op, Variant, fastest, variants_of};
use tkbench_reference::Config;

/// GPT-2 small, whose sizes the shapes take.
const GPT2_SMALL: Config = Config::gpt2_small();
/// Width of GPT-2 small.
pub const C: usize = GPT2_SMALL.n_embd;
/// Heads of GPT-2 small.
pub const NH: usize = GPT2_SMALL.n_head;
/// MLP width of GPT-2 small.
pub const I: usize = GPT2_SMALL.n_inner;
/// Vocabulary of GPT-2 small.
pub const V: usize = GPT2_SMALL.vocab_size;
/// Context of GPT-2 small.
pub const P: usize = GPT2_SMALL.n_positions;

/// Whether `TKBENCH_QUICK` asks for the short run.
pub fn quick() -> bool {
    std::env::var("TKBENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Criterion settings: short in quick mode.
pub fn config() -> Criterion {
    let c = Criterion::default().sample_size(10).without_plots();
    if quick() {
        c.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(600))
    } else {
        c.warm_up_time(Duration::from_millis(800))
            .measurement_time(Duration::from_secs(2))
    }
}

/// Scalar variants are skipped above this many FLOPs per call (a second or more each): their
/// speedup column is then empty rather than the run an hour long.
pub const SCALAR_FLOP_CAP: f64 = 2e9;

/// The token counts benched: a decode step (T = 1) and prefills of 128, 512 and 1024.
pub fn token_counts() -> Vec<usize> {
    if quick() { vec![1, 128] } else { vec![1, 128, 512, 1024] }
}

/// The shapes of `op` at GPT-2-small dimensions.
pub fn shapes(op: Op) -> Vec<Shape> {
    let ts = token_counts();
    match op {
        Op::Embedding => ts
            .iter()
            .map(|&t| Shape::Embedding {
                tokens: t,
                channels: C,
                vocab: V,
                positions: P,
                pos0: if t == 1 { 512 } else { 0 },
            })
            .collect(),
        Op::LayerNorm => {
            let mut s: Vec<Shape> = ts.iter().map(|&t| Shape::LayerNorm { rows: t, channels: C }).collect();
            if !quick() {
                // Four sequences of 1024 tokens: a batch-sized shape (25 MB in and out, near the size of L3).
                s.push(Shape::LayerNorm {
                    rows: 4096,
                    channels: C,
                });
            }
            s
        }
        Op::Softmax => {
            // Attention score rows (NH · T rows of T) and vocabulary rows.
            let mut s: Vec<Shape> = ts
                .iter()
                .filter(|&&t| t > 1)
                .map(|&t| Shape::Softmax { rows: NH * t, cols: t })
                .collect();
            s.push(Shape::Softmax { rows: 1, cols: V });
            s.push(Shape::Softmax { rows: 64, cols: V });
            s
        }
        Op::Attention => ts
            .iter()
            .map(|&t| Shape::Attention {
                queries: t,
                pos0: if t == 1 { 512 } else { 0 },
                heads: NH,
                head_size: C / NH,
            })
            .collect(),
        Op::Matmul => {
            let mut s: Vec<Shape> = ts
                .iter()
                .map(|&t| Shape::Matmul {
                    m: t,
                    k: C,
                    n: 3 * C,
                    bias: true,
                })
                .collect();
            s.push(Shape::Matmul {
                m: 768,
                k: 768,
                n: 768,
                bias: false,
            });
            s.push(Shape::Matmul {
                m: 1,
                k: C,
                n: V,
                bias: false,
            });
            if !quick() {
                s.push(Shape::Matmul {
                    m: 1024,
                    k: C,
                    n: I,
                    bias: true,
                });
            }
            s
        }
        Op::Gelu => ts.iter().map(|&t| Shape::Gelu { n: t * I }).collect(),
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

/// The (variant, level, function id) triples to time for `op`.
pub fn targets(op: Op) -> Vec<(&'static Variant, Isa, String)> {
    let wanted = wanted_levels();
    let levels = |v: &Variant| -> Vec<Isa> {
        match v.isa {
            IsaSupport::Dispatch => wanted.clone(),
            _ => vec![Isa::Scalar],
        }
    };
    variants_of(op)
        .flat_map(|v| {
            levels(v).into_iter().map(move |isa| {
                let id = match v.isa {
                    IsaSupport::Dispatch => format!("{}@{}", v.name, v.label(isa)),
                    _ => v.name.to_owned(),
                };
                (v, isa, id)
            })
        })
        .collect()
}

/// How [`call_parallel`] splits `shape` on `threads`: the kernel-driven model's policy ([`split`]),
/// worked out once per shape, outside the timed calls.
fn split_of(shape: &Shape, threads: usize) -> Split {
    let (rows, width) = output_rows(shape);
    let (pos0, heads) = shape.attention_dims().map_or((0, 1), |d| (d.pos0, d.heads));
    split(shape.op(), rows, width, pos0, heads, threads)
}

/// One call of `kernel` on `shape` split across `workers` as `split` says: one kernel call per block
/// of rows (attention at equal work), of a one-row matmul's columns or of a one-query attention's
/// heads.
fn call_parallel(
    kernel: Kernel,
    isa: Isa,
    shape: &Shape,
    x: &Inputs,
    split: &Split,
    out: &mut [f32],
    workers: &Workers,
) {
    match split.by {
        By::Columns => workers.run(&split.blocks, 1, out, |cols, out| {
            call_columns(kernel, isa, shape, x, cols, out)
        }),
        By::Heads => {
            let head_size = shape.attention_dims().map_or(0, |d| d.head_size);
            workers.run(&split.blocks, head_size, out, |heads, out| {
                call_heads(kernel, isa, shape, x, heads, out)
            })
        }
        By::Rows => workers.run(&split.blocks, output_rows(shape).1, out, |r, out| {
            call_rows(kernel, isa, shape, x, r, out)
        }),
    }
}

/// Times every variant of `op` on every shape of [`shapes`] on one thread, and the fastest variant
/// (and the library baseline) on all threads too.
pub fn bench_op(c: &mut Criterion, op: Op) {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = Workers::new(all);
    for shape in shapes(op) {
        let w = work(&shape);
        let mut group = c.benchmark_group(format!("{}/{shape}", op.name()));
        group.throughput(if measured_in_flops(op) {
            Throughput::Elements(w.flops as u64)
        } else {
            Throughput::Bytes(w.bytes as u64)
        });
        let x = inputs(&shape, &Draw::new(7, 1.0));
        let (rows, width) = output_rows(&shape);
        let mut out = AlignedVec::filled(rows * width, 0.0);
        let split = split_of(&shape, all);
        for (variant, isa, id) in targets(op) {
            if variant.kind == Kind::Scalar && w.flops > SCALAR_FLOP_CAP {
                continue;
            }
            group.bench_function(&id, |b| {
                b.iter(|| call_rows(variant.kernel, isa, &shape, black_box(&x), 0..rows, &mut out))
            });
            let parallel = variant.name == fastest(op).name || variant.kind == Kind::Library;
            if all > 1 && parallel {
                // The timing loop runs on a pool thread, as the model's forward pass does.
                group.bench_function(format!("{id} threads={all}"), |b| {
                    workers.install(|| {
                        b.iter(|| call_parallel(variant.kernel, isa, &shape, black_box(&x), &split, &mut out, &workers))
                    })
                });
            }
        }
        group.finish();
    }
}
