//! The tkbench command line, run as `cargo xtask <command>`: one module per subcommand. It is a
//! library too, so that an outside crate runs the same commands with its own variants added to the
//! registry: `tkbench_cli::main_with(registry)` from its own `main` (see `examples/outside-kernels`).
//!
//! Exit codes: 0 success, 1 a check failed (a golden case not reproduced), 2 a usage or input error
//! (a missing file, a corrupt checkpoint, a malformed argument), with a message naming what is at fault.

mod args;
mod bench;
mod checkpoint;
mod compare;
mod generate;
mod golden;
mod isolate;
mod list;
mod logits;
mod opcheck;
mod probe;
mod prompt;
mod tune;
mod verify;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::{Parser, Subcommand};
use tkbench_harness::plugin::{self, PluginRecord};
use tkbench_harness::registry::Registry;

/// tkbench: are your transformer kernels right, and how fast are they, on this CPU?
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    /// A shared library of kernel variants (see include/tkbench.h) to check and bench beside the
    /// built-in ones, each in a child process; repeatable.
    #[arg(long = "plugin", value_name = "PATH.so", global = true)]
    plugins: Vec<PathBuf>,
    /// How long the gate gives one outside variant (a plugin's or an outside crate's), in its child
    /// process, before stopping it and failing it.
    #[arg(long, value_name = "SECS", global = true, default_value_t = isolate::DEFAULT_TIMEOUT_SECS, value_parser = isolate::timeout_secs)]
    variant_timeout: u64,
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
    /// One criterion run of `bench`, in a child process of it (not meant to be typed).
    #[command(hide = true)]
    BenchWorker(bench::WorkerArgs),
    /// The op level of the gate on one outside variant, in a child process (not meant to be typed).
    #[command(hide = true)]
    GateWorker(isolate::WorkerArgs),
}

/// What a subcommand reports when it ran to the end.
pub enum Outcome {
    /// Everything checked passed (or there was nothing to check).
    Pass,
    /// At least one check failed; the details have been printed.
    Fail,
}

/// The registry this process runs with: the one [`main_with`] was given, else the built-in one.
static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The plugins loaded into [`REGISTRY`].
static PLUGINS: OnceLock<Vec<PluginRecord>> = OnceLock::new();

/// The time limit of one outside variant's child process.
static VARIANT_TIMEOUT: OnceLock<std::time::Duration> = OnceLock::new();

/// The registry of this process's commands.
pub(crate) fn registry() -> &'static Registry {
    REGISTRY.get_or_init(Registry::builtin)
}

/// The plugins this process loaded (`--plugin`), in order.
pub(crate) fn plugins() -> &'static [PluginRecord] {
    PLUGINS.get().map_or(&[], Vec::as_slice)
}

/// The time limit of one outside variant's child process (`--variant-timeout`).
pub(crate) fn variant_timeout() -> std::time::Duration {
    *VARIANT_TIMEOUT.get_or_init(|| std::time::Duration::from_secs(isolate::DEFAULT_TIMEOUT_SECS))
}

/// Runs the command line of this process (`std::env::args`) on `registry`: tkbench's own variants
/// and any an outside crate added with [`Registry::add`]. Every command sees them as it sees the
/// built-in ones: `verify` checks them, `bench` times them, `list` lists them.
pub fn main_with(registry: Registry) -> ExitCode {
    run_with(std::env::args_os(), registry)
}

/// Runs the command line `args` (the program name first) on `registry`; see [`main_with`]. A process
/// runs one command line: a second call keeps the first call's registry.
pub fn run_with<I, T>(args: I, registry: Registry) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let mut registry = registry;
    let mut records = Vec::new();
    for path in &cli.plugins {
        match plugin::load(path, &mut registry) {
            Ok(record) => {
                // Progress goes to stderr, and not from the child processes, which load it again.
                if !isolate::in_child() && !matches!(cli.command, Command::BenchWorker(_)) {
                    eprintln!("plugin {}: {}", record.name, record.variants.join(", "));
                    for skipped in &record.skipped {
                        eprintln!("plugin {}: skipped {skipped}: this CPU lacks that ISA", record.name);
                    }
                }
                records.push(record);
            }
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        }
    }
    // A second call in one process keeps the first registry, as documented.
    let _ = REGISTRY.set(registry);
    let _ = PLUGINS.set(records);
    let _ = VARIANT_TIMEOUT.set(std::time::Duration::from_secs(cli.variant_timeout));
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
        Command::BenchWorker(args) => bench::run_worker(args),
        Command::GateWorker(args) => isolate::run_worker(args),
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
