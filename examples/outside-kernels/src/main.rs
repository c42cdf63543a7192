//! An outside crate's kernels under tkbench: two softmax variants of its own, one right and one
//! deliberately wrong, added to tkbench's registry, and tkbench's command line run on them from this
//! crate's `main`. `cargo run --release -- verify --op softmax` checks them with the same gate as
//! tkbench's own variants (the right one passes, the wrong one fails); `cargo run --release -- bench
//! --quick --out reports` times them beside tkbench's.

use std::process::ExitCode;

use tkbench_harness::ops::{Softmax, SoftmaxKernel};
use tkbench_harness::registry::Registry;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Isa, IsaSupport, Kind, Variant};

/// A softmax that sums in float64, block by block: a value with state (its block length), set once
/// when it is registered, as a kernel's packed weights or plan would be.
struct BlockedSum {
    /// Entries summed in float32 before each block's sum joins the float64 total.
    block: usize,
}

impl BlockedSum {
    /// One call: every row alone, so that a row's bits do not depend on the rows beside it (the gate
    /// checks blocks of rows against the whole call, bit for bit).
    fn run(&self, dims: &SoftmaxDims, x: &[f32], out: &mut [f32]) {
        dims.check(x, out);
        if dims.cols == 0 {
            return;
        }
        for (row, out) in x.chunks_exact(dims.cols).zip(out.chunks_exact_mut(dims.cols)) {
            // The contract: NaN or +inf anywhere, or nothing above −inf, makes the row NaN.
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if row.iter().any(|v| v.is_nan() || *v == f32::INFINITY) || max == f32::NEG_INFINITY {
                out.fill(f32::NAN);
                continue;
            }
            let mut total = 0.0f64;
            for (x, out) in row.chunks(self.block).zip(out.chunks_mut(self.block)) {
                let mut sum = 0.0f32;
                for (&v, o) in x.iter().zip(out.iter_mut()) {
                    *o = (v - max).exp();
                    sum += *o;
                }
                total += f64::from(sum);
            }
            let scale = (1.0 / total) as f32;
            out.iter_mut().for_each(|o| *o *= scale);
        }
    }
}

/// Deliberately wrong: the row's maximum is never subtracted, so exp overflows once logits pass
/// about 88 and the row turns to NaN. Inputs of ordinary size do not show it; the gate's input
/// profile of large logits does.
fn softmax_unshifted(dims: &SoftmaxDims, x: &[f32], out: &mut [f32], _isa: Isa) {
    dims.check(x, out);
    if dims.cols == 0 {
        return;
    }
    for (row, out) in x.chunks_exact(dims.cols).zip(out.chunks_exact_mut(dims.cols)) {
        if row.iter().any(|v| v.is_nan() || *v == f32::INFINITY) || row.iter().all(|v| *v == f32::NEG_INFINITY) {
            out.fill(f32::NAN);
            continue;
        }
        let sum: f32 = row.iter().map(|v| v.exp()).sum();
        for (&v, o) in row.iter().zip(out.iter_mut()) {
            *o = v.exp() / sum;
        }
    }
}

fn main() -> ExitCode {
    let mut registry = Registry::builtin();
    let blocked = BlockedSum { block: 64 };
    let variants = [
        Variant::outside(
            "blocked-sum",
            Kind::Scalar,
            IsaSupport::Plain,
            SoftmaxKernel::from(move |d: &SoftmaxDims, x: &[f32], out: &mut [f32], _: Isa| blocked.run(d, x, out)),
        ),
        Variant::outside(
            "unshifted",
            Kind::Scalar,
            IsaSupport::Plain,
            SoftmaxKernel::from(softmax_unshifted),
        ),
    ];
    for variant in variants {
        if let Err(e) = registry.add::<Softmax>(variant) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    tkbench_cli::main_with(registry)
}
