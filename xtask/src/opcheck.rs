//! `cargo xtask opcheck`: the op level of the gate for one op, variant, level or case: every selected
//! kernel variant, at every selected ISA level, against the float64 reference op with the integrity
//! checks, on the sweep, the split shapes and the special-value cases, or on one shape or one case;
//! failures print a replay command.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use tkbench_harness::check::gate::{DEFAULT_SEED, Gate, Selection, render_header, render_row};
use tkbench_harness::check::profiles::{self, Profiles};
use tkbench_harness::ops::{AnyOp, Profile};
use tkbench_kernels::Isa;

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
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Inputs are uniform in (−magnitude, magnitude) under the uniform profile.
    #[arg(long, default_value_t = 1.0)]
    magnitude: f32,
    /// Only this input profile (uniform, offset, outliers, extreme, exact); with --shape the default
    /// is uniform, so that a replay command runs exactly its case.
    #[arg(long, value_parser = parse_profile)]
    profile: Option<Profile>,
    /// The manifest of each op's input profiles [default: checks/profiles.yaml].
    #[arg(long, value_name = "PATH")]
    profiles: Option<PathBuf>,
    /// Only this special-value case (needs --op; `cargo xtask list` names each op's cases) instead of
    /// the sweep, the split shapes and the other cases.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["shape", "profile"])]
    special: Option<String>,
}

fn parse_profile(text: &str) -> Result<Profile, String> {
    Profile::from_name(text)
}

/// The input profiles of the manifest at `path`, or of `checks/profiles.yaml`.
pub fn load_profiles(path: Option<&Path>) -> Result<Profiles> {
    let path = path.map_or_else(profiles::default_path, Path::to_owned);
    Profiles::load(&path).map_err(anyhow::Error::msg)
}

/// The gate's selection from the arguments of `opcheck` (or of `verify`'s op level).
pub fn selection(
    op: Option<&'static dyn AnyOp>,
    variant: Option<String>,
    isa: Option<Isa>,
    profiles: Profiles,
    args: Option<&Args>,
) -> Result<Selection> {
    let mut selection = Selection {
        op: op.map(|op| op.name()),
        variant,
        isa,
        profiles,
        ..Selection::default()
    };
    if let Some(args) = args {
        selection.profile = args.profile.or(args.shape.is_some().then_some(Profile::Uniform));
        if !(args.magnitude.is_finite() && args.magnitude > 0.0) {
            bail!("--magnitude must be a positive number");
        }
        selection.seed = args.seed;
        selection.magnitude = args.magnitude;
        if let Some(name) = &args.special {
            if op.is_none() {
                bail!("--special needs --op (each op has its own cases)")
            }
            selection.special = Some(name.clone());
        }
        if let Some(text) = &args.shape {
            let Some(op) = op else {
                bail!("--shape needs --op (shapes differ per op)")
            };
            selection.shape = Some(op.parse_shape(text).map_err(|e| anyhow::anyhow!("--shape: {e}"))?);
        }
    }
    Ok(selection)
}

/// Runs the op level of the gate on `selection`, printing its table, its mistrusted and failing cases.
pub fn run_and_print(selection: &Selection) -> Result<Gate> {
    let registry = crate::registry();
    println!("{}", render_header());
    let gate = crate::isolate::gate(registry, selection, |row| println!("{}", render_row(row)))?;
    if let Some(op) = selection
        .op
        .and_then(|name| registry.ops().iter().find(|op| op.name() == name))
    {
        println!("\nbound for {}: {}", op.name(), op.rationale());
    }
    if !gate.mistrusted.is_empty() {
        println!(
            "\n{} mistrusted case(s): within bound, but a trivial output would have been too, so they prove nothing:",
            gate.mistrusted.len()
        );
        for case in &gate.mistrusted {
            println!("{case}");
        }
    }
    if !gate.failures.is_empty() {
        println!("\n{} failing case(s):", gate.failures.len());
        for failure in &gate.failures {
            println!("{failure}");
        }
    }
    Ok(gate)
}

/// Runs `cargo xtask opcheck`.
pub fn run(args: Args) -> Result<Outcome> {
    let profiles = load_profiles(args.profiles.as_deref())?;
    let selection = selection(args.op, args.variant.clone(), args.isa, profiles, Some(&args))?;
    let gate = run_and_print(&selection)?;
    Ok(if gate.pass() { Outcome::Pass } else { Outcome::Fail })
}
