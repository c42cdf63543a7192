//! The timed calls of the criterion benches: for one op and shape, every variant of the registry at
//! the levels asked for, on one thread, and the fastest variant and the library baseline also split
//! across all threads as the kernel-driven model splits them. The calls go through the op's one call
//! path; criterion (in `benches/`) times them and does the statistics. Once a call's timing ends,
//! [`BenchCall::recheck`] compares the output its timed calls left (poisoned before the first) with
//! the float64 reference under the op's bound, so that a kernel that is right in the checker but not
//! in the timing loop fails its row.
//!
//! Benchmark ids are what `cargo xtask bench` reads back from criterion's JSON: the group is
//! `<op>/<shape>` with the shape as `cargo xtask opcheck --shape` takes it, the function is
//! `<variant>@<isa>` (or `<variant>` for plain and library variants), with ` threads=N` for a split
//! call.

use std::hint::black_box;
use std::sync::{Arc, Mutex, OnceLock};

use tkbench_kernels::{Isa, IsaSupport, Kind};

use crate::aligned::AlignedVec;
use crate::check::opcheck::{compare, element_bounds};
use crate::measure::work::{Unit, Work};
use crate::model::threads::{Workers, call_whole, run_blocks};
use crate::ops::{Draw, Op, output_len, shape_text};
use crate::registry::Registry;

/// Scalar variants are skipped above this many FLOPs per call (a second or more each): their
/// speedup column is then empty rather than the run an hour long.
pub const SCALAR_FLOP_CAP: f64 = 2e9;

/// What to time.
pub struct BenchPlan {
    /// The levels dispatching variants are timed at.
    pub levels: Vec<Isa>,
    /// The pool split calls run on; its thread count is that of the split rows.
    pub workers: Arc<Workers>,
}

/// One timed call.
pub struct BenchCall {
    /// criterion's function id.
    pub function: String,
    /// Threads the call is split across (run it inside [`Workers::install`] when above 1).
    pub threads: usize,
    /// One call; its output buffer is its own, made poisoned on the first call.
    pub run: Box<dyn FnMut() + Send>,
    /// The output the timed calls left against the reference: `Err` names the worst element, or
    /// says that the call never ran.
    recheck: Box<dyn Fn() -> Result<(), String> + Send>,
}

impl BenchCall {
    /// Compares the output of the timed calls with the float64 reference under the op's bound.
    pub fn recheck(&self) -> Result<(), String> {
        (self.recheck)()
    }
}

/// The output buffer of a timed call, shared with its re-check. The timing loop takes the lock once
/// per call, always uncontended: far cheaper than the smallest timed call.
type Output = Arc<Mutex<Option<AlignedVec>>>;

/// The float64 reference of a bench shape and its bounds, computed once, on the first re-check.
type Expected = Arc<OnceLock<(Vec<f64>, Vec<f64>)>>;

/// The re-check of the output in `out` against `expected`, computed from `inputs` on first use.
fn recheck_of<O: Op>(
    shape: O::Shape,
    inputs: &Arc<O::Inputs>,
    expected: &Expected,
    out: &Output,
) -> Box<dyn Fn() -> Result<(), String> + Send> {
    let (inputs, expected, out) = (Arc::clone(inputs), Arc::clone(expected), Arc::clone(out));
    Box::new(move || {
        let out = out.lock().expect("no timed call panicked");
        let Some(out) = out.as_ref() else {
            return Err("the call was never timed".into());
        };
        let (reference, bounds) = expected.get_or_init(|| {
            let reference = O::reference(&shape, &inputs);
            let (bounds, _) = element_bounds::<O>(&reference);
            (reference.f64, bounds)
        });
        match compare(out, reference, bounds) {
            (_, _, true) => Ok(()),
            (_, Some(w), false) => Err(format!(
                "after timing, element {} is {} vs f64 {} (bound {:.3e})",
                w.index, w.out, w.reference, w.bound
            )),
            (_, None, false) => Err("after timing, the output is out of bound".into()),
        }
    })
}

/// The calls of one op and shape.
pub struct ShapeBench {
    /// criterion's group id, `<op>/<shape>`.
    pub group: String,
    /// The unit of the throughput.
    pub unit: Unit,
    /// The work of one call.
    pub work: Work,
    /// The calls.
    pub calls: Vec<BenchCall>,
}

/// The calls of every variant of `O` in `registry` on `shape`, on inputs drawn once.
pub fn bench_shape<O: Op>(registry: &Registry, shape: &O::Shape, plan: &BenchPlan) -> ShapeBench {
    let work = O::work(shape);
    let inputs = Arc::new(O::draw(shape, &Draw::new(7, 1.0)));
    let len = output_len::<O>(shape);
    let threads = plan.workers.threads();
    let split = Arc::new(O::split(shape, threads));
    let shape = *shape;
    let expected = Expected::default();
    let mut calls = Vec::new();
    for variant in registry.variants::<O>() {
        if variant.kind == Kind::Scalar && work.flops > SCALAR_FLOP_CAP {
            continue;
        }
        let levels = match variant.isa {
            IsaSupport::Dispatch => plan.levels.clone(),
            _ => vec![Isa::Scalar],
        };
        for isa in levels {
            let id = match variant.isa {
                IsaSupport::Dispatch => format!("{}@{}", variant.name, variant.label(isa)),
                _ => variant.name.to_owned(),
            };
            let (x, out) = (Arc::clone(&inputs), Output::default());
            let recheck = recheck_of::<O>(shape, &inputs, &expected, &out);
            let kernel = variant.kernel.clone();
            calls.push(BenchCall {
                function: id.clone(),
                threads: 1,
                run: Box::new(move || {
                    let mut out = out.lock().expect("no timed call panicked");
                    let out = out.get_or_insert_with(|| AlignedVec::filled(len, f32::NAN));
                    call_whole::<O>(&kernel, isa, &shape, O::args(&shape, black_box(&*x)), out)
                }),
                recheck,
            });
            let parallel = variant.name == O::fastest() || variant.kind == Kind::Library;
            if threads > 1 && parallel {
                let (x, out) = (Arc::clone(&inputs), Output::default());
                let recheck = recheck_of::<O>(shape, &inputs, &expected, &out);
                let (workers, split) = (Arc::clone(&plan.workers), Arc::clone(&split));
                let kernel = variant.kernel.clone();
                calls.push(BenchCall {
                    function: format!("{id} threads={threads}"),
                    threads,
                    recheck,
                    run: Box::new(move || {
                        let mut out = out.lock().expect("no timed call panicked");
                        let out = out.get_or_insert_with(|| AlignedVec::filled(len, f32::NAN));
                        run_blocks::<O>(
                            &workers,
                            &split,
                            &kernel,
                            isa,
                            &shape,
                            O::args(&shape, black_box(&*x)),
                            out,
                        )
                    }),
                });
            }
        }
    }
    ShapeBench {
        group: format!("{}/{}", O::NAME, shape_text::<O>(&shape)),
        unit: O::UNIT,
        work,
        calls,
    }
}
