//! `cargo xtask tune`, and the kernel parameters every command that runs kernels fixes first: the
//! blocked matmul's blocking, tuned once per machine and kept under `target/tkbench/parameters/`.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use tkbench_harness::check::golden::workspace_root;
use tkbench_harness::measure::probe::{Machine, machine};
use tkbench_harness::measure::tune::{self, Parameters, Source, Stale};
use tkbench_kernels::matmul::blocked::Blocking;

use crate::Outcome;

/// Arguments of `cargo xtask tune`.
#[derive(clap::Args)]
pub struct Args {
    /// Time the candidates again even when this machine's parameters are stored.
    #[arg(long)]
    again: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Rounds over each stage's candidates: five keep the sweep near three seconds on two cores.
const ROUNDS: usize = 5;

/// Where this machine's parameters are kept.
fn path(machine_id: &str) -> PathBuf {
    workspace_root()
        .join("target/tkbench/parameters")
        .join(format!("{machine_id}.json"))
}

/// The parameters of this machine: from `TKBENCH_MATMUL_BLOCKING` when it is set, else the stored ones, else a fresh
/// sweep (stored for the next run; `again` forces it). Progress goes to stderr.
fn find(machine: &Machine, again: bool) -> Result<Parameters> {
    if let Some(blocking) = tune::apply_env().map_err(|e| anyhow!(e))? {
        let mut parameters = Parameters::defaults(&machine.machine_id, machine.cpu_family, machine.cpu_model);
        parameters.source = Source::Environment;
        parameters.matmul_blocked = blocking.into();
        return Ok(parameters);
    }
    let file = path(&machine.machine_id);
    if !again {
        match tune::load(&file, &machine.machine_id, machine.cpu_family, machine.cpu_model) {
            Ok(parameters) => return Ok(parameters),
            Err(Stale::Missing) => {}
            Err(Stale::Unreadable(why) | Stale::Other(why)) => eprintln!("tune: not using {why}"),
        }
    }
    eprintln!(
        "tune: timing the blocked matmul's register tiles and blockings on one thread, once for this machine ({})",
        machine.machine_id
    );
    let parameters = tune::tune(
        &machine.machine_id,
        machine.cpu_family,
        machine.cpu_model,
        ROUNDS,
        |trial| {
            let b = trial.blocking;
            eprintln!(
                "tune: tile {:>4}, KC {:>4}, MC {:>3} slivers, NC {:>5}: {:>8.3} ms",
                Blocking::from(b).tile.name(),
                b.kc,
                b.mc_slivers,
                b.nc,
                trial.best_ms
            );
        },
    );
    tune::save(&file, &parameters).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    eprintln!("tune: kept in {}", file.display());
    Ok(parameters)
}

/// Finds the parameters of `machine` (this one) and fixes them for the rest of the process; what
/// every command that runs kernels calls before its first kernel call.
pub fn establish(machine: &Machine) -> Result<Parameters> {
    let parameters = find(machine, false)?;
    parameters.apply().map_err(|e| anyhow!(e))?;
    Ok(parameters)
}

/// Runs `cargo xtask tune`.
pub fn run(args: Args) -> Result<Outcome> {
    let parameters = find(&machine(), args.again)?;
    parameters.apply().map_err(|e| anyhow!(e))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&parameters)?);
    } else {
        println!("{}", parameters.summary());
        if parameters.source == Source::Tuned {
            let fastest = parameters
                .trials
                .iter()
                .map(|t| t.best_ms)
                .fold(f64::INFINITY, f64::min);
            for trial in &parameters.trials {
                let b = trial.blocking;
                println!(
                    "  tile {:>4}, KC {:>4}, MC {:>3} slivers, NC {:>5}: {:>8.3} ms ({:.2}× the fastest)",
                    Blocking::from(b).tile.name(),
                    b.kc,
                    b.mc_slivers,
                    b.nc,
                    trial.best_ms,
                    trial.best_ms / fastest
                );
            }
        }
    }
    Ok(Outcome::Pass)
}
