//! `cargo xtask verify`: every implementation against the golden logits of every case. The
//! implementations are the reference model in float64 and float32; each row passes or fails against
//! the tolerances of the case's manifest.

use std::path::PathBuf;

use anyhow::Result;
use tkbench_harness::golden::workspace_golden_dir;

use crate::Outcome;
use crate::golden::{check_dirs, listed_cases, selected};

/// Arguments of `cargo xtask verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Only this case (repeatable); the default is every case.
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
}

/// Runs `cargo xtask verify`.
pub fn run(args: Args) -> Result<Outcome> {
    let golden = workspace_golden_dir();
    let names = selected(listed_cases(&golden)?, &args.cases)?;
    let dirs: Vec<PathBuf> = names.iter().map(|n| golden.join("cases").join(n)).collect();
    eprintln!(
        "verifying the reference model (float64 and float32) against {} golden case(s)",
        dirs.len()
    );
    check_dirs(&dirs)
}
