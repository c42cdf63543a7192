//! `cargo xtask verify`: the gate. Its model level runs every implementation against the golden logits
//! of every case: the reference model (float64 and float32), the all-scalar kernel set, the fastest
//! set and the fastest set with each other variant in its op's place, each at every ISA level the CPU
//! has, fed through the KV cache in the case's steps. Its op level is
//! `opcheck`'s: every variant at every level against the float64 reference ops, with the integrity
//! and split checks. Exit 1 when any row of either fails.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use tkbench_harness::check::gate::Gate;
use tkbench_harness::check::golden::{Case, Manifest, workspace_golden_dir};
use tkbench_harness::check::verify::{Filter, Row, plan, render_table};
use tkbench_harness::ops::AnyOp;
use tkbench_harness::registry::KernelSet;
use tkbench_kernels::Isa;
use tkbench_reference::Family;

use crate::Outcome;
use crate::golden::{listed_cases, selected};

/// Arguments of `cargo xtask verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Only this case (repeatable); the default is every case.
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    /// Only the cases of this model family (gpt2, llama) at the model level.
    #[arg(long, value_parser = crate::args::family)]
    family: Option<Family>,
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
    /// Run only one level of the gate [default: both; `--case` and `--kernels` imply `model`].
    #[arg(long, value_enum)]
    part: Option<Part>,
    /// Print the rows as JSON (`{"model": [...], "ops": {...}}`) instead of tables.
    #[arg(long)]
    json: bool,
    /// The manifest of each op's input profiles for the op level [default: checks/profiles.yaml].
    #[arg(long, value_name = "PATH")]
    profiles: Option<PathBuf>,
}

/// A level of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Whole models against the golden cases.
    Model,
    /// Each variant against the float64 reference ops.
    Ops,
}

/// Runs `cargo xtask verify`.
pub fn run(args: Args) -> Result<Outcome> {
    let model_only = !args.cases.is_empty() || args.kernels.is_some();
    if model_only && args.part == Some(Part::Ops) {
        bail!("--part ops checks ops, not golden cases: --case and --kernels belong to --part model");
    }
    let run_model = args.part != Some(Part::Ops);
    let run_ops = args.part != Some(Part::Model) && !model_only;
    // The op level's manifest is read before the model level runs, so that a bad one is refused at
    // once.
    let profiles = if run_ops {
        Some(crate::opcheck::load_profiles(args.profiles.as_deref())?)
    } else {
        None
    };
    let start = Instant::now();
    let rows = if run_model { verify_model(&args)? } else { Vec::new() };
    let gate = if let Some(profiles) = profiles {
        let selection = crate::opcheck::selection(args.op, args.variant.clone(), args.isa, profiles, None)?;
        let ops_start = Instant::now();
        eprintln!("verify: op level");
        let gate = if args.json {
            crate::isolate::gate(crate::registry(), &selection, |_| {})?
        } else {
            println!();
            crate::opcheck::run_and_print(&selection)?
        };
        eprintln!(
            "verify: op level, {} variant-level rows in {:.1}s, {} failing",
            gate.rows.len(),
            ops_start.elapsed().as_secs_f64(),
            gate.rows.iter().filter(|r| !r.pass()).count()
        );
        Some(gate)
    } else {
        None
    };
    if args.json {
        let json = serde_json::json!({ "model": rows, "ops": gate });
        println!("{}", serde_json::to_string_pretty(&json).expect("rows serialise"));
    }
    eprintln!("verify: done in {:.1}s", start.elapsed().as_secs_f64());
    let pass = rows.iter().all(|r| r.pass) && gate.as_ref().is_none_or(Gate::pass);
    Ok(if pass { Outcome::Pass } else { Outcome::Fail })
}

/// The model level: every selected row on every selected case, the table printed unless `--json`.
fn verify_model(args: &Args) -> Result<Vec<Row>> {
    let golden = workspace_golden_dir();
    let names = selected(listed_cases(&golden)?, &args.cases)?;
    let filter = Filter {
        op: args.op.map(|op| op.name().to_owned()),
        variant: args.variant.clone(),
        isa: args.isa,
        kernels: args.kernels.clone(),
    };
    let registry = crate::registry();
    if Family::ALL.iter().all(|&f| plan(registry, &filter, f).is_empty()) {
        bail!("no row matches the filters (see `cargo xtask list` for ops and variants)");
    }
    let threads = args.threads.unwrap_or(0);
    let mut dirs: Vec<PathBuf> = names.iter().map(|n| golden.join("cases").join(n)).collect();
    if let Some(family) = args.family {
        // The manifest alone says the family: the outputs need not be read and checksummed twice.
        let mut kept = Vec::with_capacity(dirs.len());
        for dir in dirs {
            if Manifest::load(&dir.join("manifest.yaml"))?.family == family {
                kept.push(dir);
            }
        }
        if kept.is_empty() {
            bail!("no selected case is of family {family}");
        }
        dirs = kept;
    }
    let start = Instant::now();
    let mut rows = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let case_start = Instant::now();
        let case = Case::load(dir)?;
        let subjects = plan(registry, &filter, case.manifest.family);
        eprint!(
            "verify [{}/{}] {}: {} rows ",
            i + 1,
            dirs.len(),
            case.name(),
            subjects.len()
        );
        let mut narrow: Vec<String> = Vec::new();
        if let Some(set) = &args.kernels {
            narrow.extend(["--kernels".into(), set.spec()]);
        }
        if let Some(isa) = args.isa {
            narrow.extend(["--isa".into(), isa.name().into()]);
        }
        let case_rows = crate::isolate::verify_case(&case, subjects, threads, &narrow, |row| {
            eprint!("{}", if row.pass { "." } else { "F" });
        })?;
        let failed = case_rows.iter().filter(|r| !r.pass).count();
        eprintln!(" {:.1}s, {failed} failing", case_start.elapsed().as_secs_f64());
        rows.extend(case_rows);
    }
    if !args.json {
        print!("{}", render_table(&rows));
    }
    eprintln!(
        "verify: model level, {} rows in {:.1}s",
        rows.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(rows)
}
