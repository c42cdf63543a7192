//! `cargo xtask opcheck`: every selected kernel variant, at every selected ISA level, against the
//! float64 reference op, on the edge-case sweep or on one shape; failures print a replay command.

use anyhow::{Result, bail};
use tkbench_harness::check::metrics::sticky_max;
use tkbench_harness::ops::AnyOp;
use tkbench_harness::registry::Registry;
use tkbench_kernels::{Isa, IsaSupport};

use crate::Outcome;

/// Arguments of `cargo xtask opcheck`.
#[derive(clap::Args)]
pub struct Args {
    /// Only this op (`cargo xtask list` shows them).
    #[arg(long, value_parser = crate::args::op)]
    op: Option<&'static dyn AnyOp>,
    /// Only this variant (scalar, simd, blocked, matrixmultiply).
    #[arg(long)]
    variant: Option<String>,
    /// Force this ISA level (scalar, avx2, avx512, neon); the default is every level the CPU has.
    #[arg(long, value_parser = crate::args::isa)]
    isa: Option<Isa>,
    /// One shape instead of the sweep, e.g. rows=3,cols=17 (needs --op; fields per op are listed on error).
    #[arg(long)]
    shape: Option<String>,
    /// The input seed (the sweep gives each shape seed + its index).
    #[arg(long, default_value_t = 0x5EED)]
    seed: u64,
    /// Inputs are uniform in (−magnitude, magnitude).
    #[arg(long, default_value_t = 1.0)]
    magnitude: f32,
}

/// Runs `cargo xtask opcheck`.
pub fn run(args: Args) -> Result<Outcome> {
    let registry = Registry::builtin();
    let selected: Vec<_> = registry
        .entries()
        .filter(|v| args.op.is_none_or(|op| v.op == op.name()))
        .filter(|v| args.variant.as_ref().is_none_or(|name| v.name == name))
        .collect();
    if selected.is_empty() {
        bail!("no registered variant matches (see `cargo xtask list`)");
    }
    if !(args.magnitude.is_finite() && args.magnitude > 0.0) {
        bail!("--magnitude must be a positive number");
    }
    let one_shape = match &args.shape {
        Some(text) => {
            let Some(op) = args.op else {
                bail!("--shape needs --op (shapes differ per op)")
            };
            Some(op.parse_shape(text).map_err(|e| anyhow::anyhow!("--shape: {e}"))?)
        }
        None => None,
    };

    println!(
        "{:<10} {:<15} {:<8} {:>6}  {:>11}  {:>9}  verdict",
        "op", "variant", "isa", "cases", "max |err|", "err/bound"
    );
    let mut failures = Vec::new();
    for variant in selected {
        let op = registry
            .ops()
            .iter()
            .find(|op| op.name() == variant.op)
            .expect("every entry's op is an op");
        let levels = match (args.isa, variant.isa) {
            (Some(isa), IsaSupport::Dispatch) => vec![isa],
            (_, support) => support.levels(),
        };
        let shapes = match &one_shape {
            Some(shape) => vec![shape.clone()],
            None => op.sweep(),
        };
        for level in levels {
            let mut worst = 0.0f64;
            let mut worst_ratio = 0.0f64;
            let mut failed = 0;
            for (i, shape) in shapes.iter().enumerate() {
                let result = op
                    .check(variant, level, shape, args.seed + i as u64, args.magnitude)
                    .map_err(|e| anyhow::anyhow!("{} {shape}: {e}", op.name()))?;
                worst = sticky_max(worst, result.max_abs_err);
                worst_ratio = sticky_max(worst_ratio, result.error_ratio());
                if !result.pass {
                    failed += 1;
                    failures.push(result.to_string());
                }
            }
            let verdict = if failed == 0 {
                "pass".to_owned()
            } else {
                format!("FAIL ({failed})")
            };
            println!(
                "{:<10} {:<15} {:<8} {:>6}  {:>11.3e}  {:>9.3}  {verdict}",
                variant.op,
                variant.name,
                variant.isa.label(level),
                shapes.len(),
                worst,
                worst_ratio
            );
        }
    }
    if let Some(op) = args.op {
        println!("\nbound for {}: {}", op.name(), op.rationale());
    }
    if failures.is_empty() {
        return Ok(Outcome::Pass);
    }
    println!("\n{} failing case(s):", failures.len());
    for failure in &failures {
        println!("{failure}");
    }
    Ok(Outcome::Fail)
}
