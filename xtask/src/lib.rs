//! The tkbench command line, run as `cargo xtask <command>`: one module per subcommand.
//!
//! Exit codes: 0 success, 1 a check failed (a golden case not reproduced), 2 a usage or input error
//! (a missing file, a corrupt checkpoint, a malformed argument), with a message naming what is at fault.

mod args;
mod bench;
mod checkpoint;
mod compare;
mod generate;
mod golden;
mod list;
mod logits;
mod opcheck;
mod probe;
mod prompt;
mod tune;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// tkbench: are your transformer kernels right, and how fast are they, on this CPU?
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The gate: every implementation against the golden logits, every variant against the reference ops; exit 1 on any failure.
    Verify(verify::Args),
    /// The op level of the gate for one op, variant, level or case; exit 1 on any failure.
    Opcheck(opcheck::Args),
    /// List the registered kernel variants.
    List(list::Args),
    /// Verify, measure the machine, run the criterion benches and write a report under reports/.
    Bench(bench::Args),
    /// Compare two reports side by side (two CPUs, two commits or two ISA levels).
    Compare(compare::Args),
    /// Measure this machine: FMA peak per ISA level, L1/L2/L3/DRAM bandwidth, 1 thread and all.
    Probe(probe::Args),
    /// Time the blocked matmul's cache blockings on this machine and keep the fastest (done once per machine by every command that runs kernels).
    Tune(tune::Args),
    /// Check the golden cases against the reference model (--check), or regenerate them with the oracle.
    Golden(golden::Args),
    /// Write the logits [T, V] of every position of a prompt to a safetensors file.
    Logits(logits::Args),
    /// Print the greedy continuation of a prompt, as token ids and as text.
    Generate(generate::Args),
    /// Write the checkpoint of a golden case (committed or rebuilt from its seed) to a directory.
    Checkpoint(checkpoint::Args),
}

/// What a subcommand reports when it ran to the end.
pub enum Outcome {
    /// Everything checked passed (or there was nothing to check).
    Pass,
    /// At least one check failed; the details have been printed.
    Fail,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every command that runs kernels fixes this machine's kernel parameters before its first
    // kernel call (tuning them if none are stored), so that verify checks what bench times; bench
    // and probe do so themselves, since they also record or print them.
    let runs_kernels = matches!(
        cli.command,
        Command::Verify(_) | Command::Opcheck(_) | Command::Logits(_) | Command::Generate(_)
    );
    if runs_kernels && let Err(error) = tune::establish(&tkbench_harness::measure::probe::machine()) {
        eprintln!("error: {error:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Verify(args) => verify::run(args),
        Command::Opcheck(args) => opcheck::run(args),
        Command::List(args) => list::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Tune(args) => tune::run(args),
        Command::Golden(args) => golden::run(args),
        Command::Logits(args) => logits::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Checkpoint(args) => checkpoint::run(args),
    };
    match result {
        Ok(Outcome::Pass) => ExitCode::SUCCESS,
        Ok(Outcome::Fail) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
