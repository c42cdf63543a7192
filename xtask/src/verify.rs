//! `cargo xtask verify`: every implementation against the golden logits of every case: the reference
//! model (float64 and float32), the all-scalar kernel set, each kernel variant substituted alone and the
//! fastest set, each at every ISA level the CPU has. Exit 1 when any row fails.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tkbench_harness::check::golden::{Case, workspace_golden_dir};
use tkbench_harness::check::verify::{Filter, plan, render_json, render_table, verify_case};
use tkbench_harness::ops::AnyOp;
use tkbench_harness::registry::{KernelSet, Registry};
use tkbench_kernels::Isa;

use crate::Outcome;
use crate::golden::{listed_cases, selected};

/// Arguments of `cargo xtask verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Only this case (repeatable); the default is every case.
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    /// Only rows that substitute a variant of this op (and the fastest set).
    #[arg(long, value_parser = crate::args::op)]
    op: Option<&'static dyn AnyOp>,
    /// Only rows of this variant name (`scalar`, `fastest` and `reference` select those rows).
    #[arg(long)]
    variant: Option<String>,
    /// Only this ISA level (scalar, avx2, avx512, neon); rows that do not depend on it are kept.
    #[arg(long, value_parser = crate::args::isa)]
    isa: Option<Isa>,
    /// Exactly this kernel set: `fastest`, `scalar`, or op=variant,... (other ops scalar).
    #[arg(long, value_name = "SPEC", value_parser = crate::args::kernels)]
    kernels: Option<KernelSet>,
    /// Threads for the kernel-driven model [default: all cores].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Print the rows as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `cargo xtask verify`.
pub fn run(args: Args) -> Result<Outcome> {
    let golden = workspace_golden_dir();
    let names = selected(listed_cases(&golden)?, &args.cases)?;
    let filter = Filter {
        op: args.op.map(|op| op.name().to_owned()),
        variant: args.variant.clone(),
        isa: args.isa,
        kernels: args.kernels.clone(),
    };
    let subjects = plan(&Registry::builtin(), &filter);
    if subjects.is_empty() {
        bail!("no row matches the filters (see `cargo xtask list` for ops and variants)");
    }
    let threads = args.threads.unwrap_or(0);
    let dirs: Vec<PathBuf> = names.iter().map(|n| golden.join("cases").join(n)).collect();
    let start = Instant::now();
    let mut rows = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let case_start = Instant::now();
        let case = Case::load(dir)?;
        let checkpoint = case.checkpoint()?;
        eprint!(
            "verify [{}/{}] {}: {} rows ",
            i + 1,
            dirs.len(),
            case.name(),
            subjects.len()
        );
        let case_rows = verify_case(&case, &checkpoint, &subjects, threads, |row| {
            eprint!("{}", if row.pass { "." } else { "F" });
        })
        .with_context(|| format!("case `{}`", case.name()))?;
        let failed = case_rows.iter().filter(|r| !r.pass).count();
        eprintln!(" {:.1}s, {failed} failing", case_start.elapsed().as_secs_f64());
        rows.extend(case_rows);
    }
    if args.json {
        println!("{}", render_json(&rows));
    } else {
        print!("{}", render_table(&rows));
    }
    eprintln!("verify: {} rows in {:.1}s", rows.len(), start.elapsed().as_secs_f64());
    Ok(if rows.iter().all(|r| r.pass) {
        Outcome::Pass
    } else {
        Outcome::Fail
    })
}
