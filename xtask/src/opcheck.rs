//! `cargo xtask opcheck`: every selected kernel variant, at every selected ISA level, against the
//! float64 reference op, on the edge-case sweep or on one shape; failures print a replay command.

use anyhow::{Result, bail};
use tkbench_harness::metrics::sticky_max;
use tkbench_harness::opcheck::{Shape, check, sweep};
use tkbench_harness::tolerance::rule;
use tkbench_kernels::{IsaSupport, Variant, variants};

use crate::Outcome;

/// Arguments of `cargo xtask opcheck`.
#[derive(clap::Args)]
pub struct Args {
    /// Only this op: embedding, layernorm, softmax, attention, matmul, gelu.
    #[arg(long)]
    op: Option<String>,
    /// Only this variant (scalar, simd, blocked, matrixmultiply).
    #[arg(long)]
    variant: Option<String>,
    /// Force this ISA level (scalar, avx2, avx512, neon); the default is every level the CPU has.
    #[arg(long)]
    isa: Option<String>,
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
    let op = args.op.as_deref().map(crate::verify::parse_op).transpose()?;
    let isa = args.isa.as_deref().map(crate::verify::parse_isa).transpose()?;
    let selected: Vec<&Variant> = variants()
        .iter()
        .filter(|v| op.is_none_or(|op| v.op() == op))
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
            let Some(op) = op else {
                bail!("--shape needs --op (shapes differ per op)")
            };
            Some(Shape::parse(op, text).map_err(|e| anyhow::anyhow!("--shape: {e}"))?)
        }
        None => None,
    };

    println!(
        "{:<10} {:<15} {:<8} {:>6}  {:>11}  {:>9}  verdict",
        "op", "variant", "isa", "cases", "max |err|", "err/bound"
    );
    let mut failures = Vec::new();
    for variant in selected {
        let levels = match (isa, variant.isa) {
            (Some(isa), IsaSupport::Dispatch) => vec![isa],
            (_, _) => variant.levels(),
        };
        let shapes = match one_shape {
            Some(shape) => vec![shape],
            None => sweep(variant.op()),
        };
        for level in levels {
            let mut worst = 0.0f64;
            let mut worst_ratio = 0.0f64;
            let mut failed = 0;
            for (i, shape) in shapes.iter().enumerate() {
                let result = check(variant, level, shape, args.seed + i as u64, args.magnitude);
                worst = sticky_max(worst, result.max_abs_err);
                worst_ratio = sticky_max(worst_ratio, result.error_ratio());
                if !result.pass {
                    failed += 1;
                    failures.push(result.to_string());
                }
            }
            let label = variant.label(level);
            let verdict = if failed == 0 {
                "pass".to_owned()
            } else {
                format!("FAIL ({failed})")
            };
            println!(
                "{:<10} {:<15} {:<8} {:>6}  {:>11.3e}  {:>9.3}  {verdict}",
                variant.op().name(),
                variant.name,
                label,
                shapes.len(),
                worst,
                worst_ratio
            );
        }
    }
    if let Some(op) = op {
        let (_, why) = rule(op);
        println!("\nbound for {}: {why}", op.name());
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
