//! Variants from outside this repository (a C plugin's, an outside crate's) in child processes: the
//! op level of the gate runs each of them in a child process of this binary (the hidden
//! `gate-worker` command), and the model level the kernel sets that hold one (`verify --part model`
//! on one case, one child per outside variant), so that a kernel that crashes, hangs or corrupts memory is reported as
//! failed, with the signal or the time-out, and the run goes on with the others. This repository's
//! own variants run in this process.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tkbench_harness::check;
use tkbench_harness::check::gate::{Gate, GateRow, Selection, run_gate};
use tkbench_harness::check::golden::Case;
use tkbench_harness::check::metrics::LogitMetrics;
use tkbench_harness::check::profiles::Profiles;
use tkbench_harness::check::verify::{Row, Subject};
use tkbench_harness::ops::{AnyOp, Profile, op_named};
use tkbench_harness::registry::{Entry, KernelSet, Origin, Registry};
use tkbench_kernels::Isa;

use crate::Outcome;

/// How long one variant's child process may run before it is stopped [default for
/// `--variant-timeout`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// Set in the environment of a child process: it runs what it is given in its own process, with
/// no children of its own.
const CHILD_ENV: &str = "TKBENCH_ISOLATED_CHILD";

/// Whether this process is such a child.
pub(crate) fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// The gate's selection, narrowed to one variant, as a child process is given it.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerSelection {
    op: String,
    variant: String,
    isa: Option<String>,
    shape: Option<String>,
    seed: u64,
    magnitude: f32,
    /// The op's input profiles.
    profiles: Vec<String>,
    profile: Option<String>,
    special: Option<String>,
}

/// Arguments of the hidden `gate-worker` command.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The selection, as JSON.
    selection: String,
}

/// Runs the hidden `gate-worker` command: the op level of the gate on one variant in this process,
/// its rows, failures and mistrusted cases printed as JSON on stdout.
pub fn run_worker(args: WorkerArgs) -> Result<Outcome> {
    let given: WorkerSelection = serde_json::from_str(&args.selection).context("gate-worker: malformed selection")?;
    let op = op_named(&given.op).map_err(anyhow::Error::msg)?;
    let manifest = format!(
        "schema: 1\nprofiles:\n  {}: [{}]\n",
        op.name(),
        given.profiles.join(", ")
    );
    let selection = Selection {
        op: Some(op.name()),
        variant: Some(given.variant),
        isa: given
            .isa
            .as_deref()
            .map(str::parse::<Isa>)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        shape: given.shape,
        seed: given.seed,
        magnitude: given.magnitude,
        profiles: Profiles::parse(&manifest).map_err(anyhow::Error::msg)?,
        profile: given
            .profile
            .as_deref()
            .map(Profile::from_name)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        special: given.special,
        skip_isolated: false,
    };
    let gate = run_gate(crate::registry(), &selection, |_| {}).map_err(anyhow::Error::msg)?;
    println!("{}", serde_json::to_string(&gate)?);
    Ok(if gate.pass() { Outcome::Pass } else { Outcome::Fail })
}

/// The op level of the gate on `selection`: this repository's variants in this process, every
/// other in a child process of its own, each child's rows handed to `progress` as it ends.
pub fn gate(registry: &Registry, selection: &Selection, mut progress: impl FnMut(&GateRow)) -> Result<Gate> {
    let matches = |e: &&Entry| selection.selects(e);
    if in_child() {
        return run_gate(registry, selection, progress).map_err(anyhow::Error::msg);
    }
    let isolated: Vec<&Entry> = registry
        .entries()
        .filter(matches)
        .filter(|e| e.origin.isolated())
        .collect();
    let in_process = registry.entries().filter(matches).any(|e| !e.origin.isolated());
    let mut gate = if in_process || isolated.is_empty() {
        let mut here = selection.clone();
        here.skip_isolated = true;
        run_gate(registry, &here, &mut progress).map_err(anyhow::Error::msg)?
    } else {
        Gate::default()
    };
    for entry in isolated {
        let op = op_named(entry.op).map_err(anyhow::Error::msg)?;
        let part = gate_in_child(entry, op, selection)?;
        for row in &part.rows {
            progress(row);
        }
        gate.rows.extend(part.rows);
        gate.failures.extend(part.failures);
        gate.mistrusted.extend(part.mistrusted);
    }
    Ok(gate)
}

/// The command-line options that give a child the registry of this process: the plugins loaded.
pub(crate) fn plugin_args() -> Vec<String> {
    crate::plugins()
        .iter()
        .flat_map(|p| ["--plugin".to_owned(), p.path.display().to_string()])
        .collect()
}

/// The replay command's prefix for a variant of `origin`: `cargo xtask` with the plugin it needs.
fn replay_prefix(origin: &Origin) -> String {
    match origin {
        Origin::Plugin(name) => match crate::plugins().iter().find(|p| p.name == *name) {
            Some(plugin) => format!("cargo xtask --plugin {}", plugin.path.display()),
            None => "cargo xtask".to_owned(),
        },
        _ => "cargo xtask".to_owned(),
    }
}

/// Runs the gate on `entry` alone in a child process; a child that does not end with its rows gives
/// one failed row that says how it ended.
fn gate_in_child(entry: &Entry, op: &dyn AnyOp, selection: &Selection) -> Result<Gate> {
    let given = WorkerSelection {
        op: entry.op.to_owned(),
        variant: entry.name.to_owned(),
        isa: selection.isa.map(|isa| isa.name().to_owned()),
        shape: selection.shape.clone(),
        seed: selection.seed,
        magnitude: selection.magnitude,
        profiles: selection.profiles.of(op).iter().map(|p| p.name().to_owned()).collect(),
        profile: selection.profile.map(|p| p.name().to_owned()),
        special: selection.special.clone(),
    };
    let start = Instant::now();
    let ended = run_child(vec!["gate-worker".to_owned(), serde_json::to_string(&given)?])?;
    let seconds = start.elapsed().as_secs_f64();
    let label = entry.isa.label(selection.isa.unwrap_or(Isa::Scalar)).to_owned();
    let replay = format!(
        "{} opcheck --op {} --variant {}",
        replay_prefix(&entry.origin),
        entry.op,
        entry.name
    );
    let how = match ended.status {
        None => stopped(),
        Some(status) => match gate_of(entry, ended.stdout.trim()) {
            Some(mut part) if status.code().is_some_and(|c| c <= 1) => {
                for text in part.failures.iter_mut().chain(part.mistrusted.iter_mut()) {
                    *text = text.replace(
                        "cargo xtask opcheck",
                        &format!("{} opcheck", replay_prefix(&entry.origin)),
                    );
                }
                return Ok(part);
            }
            _ => describe_exit(status, &ended.stderr),
        },
    };
    let row = GateRow {
        op: entry.op,
        variant: entry.name,
        isa: label,
        cases: 0,
        max_abs_err: f64::NAN,
        worst_ratio: f64::NAN,
        failed: 1,
        mistrusted: 0,
        splits: 0,
        splits_failed: 0,
        specials: 0,
        specials_failed: 0,
        seconds,
    };
    Ok(Gate {
        rows: vec![row],
        failures: vec![format!(
            "FAIL: {}={} ({}): its child process {how}\n  replay: {replay}",
            entry.op,
            entry.name,
            origin_text(&entry.origin)
        )],
        mistrusted: Vec::new(),
    })
}

/// The gate a `gate-worker` child printed for `entry`, or `None` when it is not one; its rows are
/// `entry`'s, the only variant the child ran.
fn gate_of(entry: &Entry, json: &str) -> Option<Gate> {
    let mut gate: Gate = serde_json::from_str(json).ok()?;
    for row in &mut gate.rows {
        row.op = entry.op;
        row.variant = entry.name;
    }
    Some(gate)
}

/// Whether `row` is the one failed row of a variant whose child process did not end with its rows
/// (a real row cannot fail more value cases than it ran).
pub fn died(row: &GateRow) -> bool {
    row.cases == 0 && row.failed > 0
}

/// The model-level rows of `subjects` on `case`, as `check::verify::verify_case` gives them: the
/// sets that hold only this repository's variants in this process, each set that holds an outside
/// variant in a child process, one child per outside variant ([`model_rows`]), after the others.
/// `narrow` are the options that narrowed the plan (`--kernels`, `--isa`), which each child is given
/// too; without `--kernels` a child is narrowed to its variant by `--op` and `--variant`.
pub fn verify_case(
    case: &Case,
    subjects: Vec<Subject>,
    threads: usize,
    narrow: &[String],
    mut progress: impl FnMut(&Row),
) -> Result<Vec<Row>> {
    let (outside, here): (Vec<Subject>, Vec<Subject>) = subjects
        .into_iter()
        .partition(|s| matches!(s, Subject::Kernels(set, _) if isolated(set)));
    // The checkpoint (up to hundreds of MB rebuilt from its seed) only when this process runs a row
    // of it.
    let mut rows = if here.is_empty() {
        Vec::new()
    } else {
        let checkpoint = case.any_checkpoint()?;
        check::verify::verify_case(case, &checkpoint, &here, threads, &mut progress)
            .with_context(|| format!("case `{}`", case.name()))?
    };
    let mut done: Vec<(&str, &str)> = Vec::new();
    for subject in &outside {
        let Subject::Kernels(set, _) = subject else { continue };
        for entry in set.entries().iter().filter(|e| e.origin.isolated()) {
            if done.contains(&(entry.op, entry.name)) {
                continue;
            }
            done.push((entry.op, entry.name));
            let theirs: Vec<(KernelSet, Isa)> = outside
                .iter()
                .filter_map(|s| match s {
                    Subject::Kernels(set, isa) if set.entries().iter().any(|e| e.same(entry)) => {
                        Some((set.clone(), *isa))
                    }
                    _ => None,
                })
                .collect();
            let mut args = narrow.to_vec();
            if !narrow.iter().any(|a| a == "--kernels") {
                args.extend(["--op".into(), entry.op.into(), "--variant".into(), entry.name.into()]);
            }
            let child_rows = model_rows(case.name(), entry, &args, &theirs, threads)?;
            for row in &child_rows {
                progress(row);
            }
            rows.extend(child_rows);
        }
    }
    Ok(rows)
}

/// Whether `set` holds a variant that runs in a child process.
pub fn isolated(set: &KernelSet) -> bool {
    !in_child() && set.entries().iter().any(|e| e.origin.isolated())
}

/// The model-level rows on the golden case `case` of the kernel sets `subjects`, which all hold the
/// outside variant `entry`, from one child process (`verify --part model --json --case` with
/// `narrow`, the options that select those sets: `--op` and `--variant`, or the `--kernels` the
/// user gave, and `--isa`). A child that does not end with its rows gives one failed row per set,
/// saying how it ended.
pub fn model_rows(
    case: &str,
    entry: &Entry,
    narrow: &[String],
    subjects: &[(KernelSet, Isa)],
    threads: usize,
) -> Result<Vec<Row>> {
    let mut args: Vec<String> = ["verify", "--part", "model", "--json", "--case", case]
        .map(str::to_owned)
        .to_vec();
    args.extend(narrow.iter().cloned());
    if threads > 0 {
        args.extend(["--threads".to_owned(), threads.to_string()]);
    }
    let start = Instant::now();
    let ended = run_child(args)?;
    let prefix = replay_prefix(&entry.origin);
    let how = match ended.status {
        None => stopped(),
        Some(status) => {
            #[derive(Deserialize)]
            struct Output {
                model: Vec<Row>,
            }
            match serde_json::from_str::<Output>(ended.stdout.trim()) {
                Ok(output) if status.code().is_some_and(|c| c <= 1) && !output.model.is_empty() => {
                    let mut rows = output.model;
                    for row in &mut rows {
                        row.replay = row.replay.replace("cargo xtask", &prefix);
                    }
                    return Ok(rows);
                }
                _ => describe_exit(status, &ended.stderr),
            }
        }
    };
    let seconds = start.elapsed().as_secs_f64() / subjects.len().max(1) as f64;
    let nan = f64::NAN;
    Ok(subjects
        .iter()
        .map(|(set, isa)| Row {
            case: case.to_owned(),
            kernels: set.spec(),
            isa: isa.name().to_owned(),
            metrics: LogitMetrics {
                max_abs: nan,
                max_rel: nan,
                nmse: nan,
                top1: nan,
                kl_mean: nan,
                kl_max: nan,
            },
            probs: None,
            hidden_max_rel: Vec::new(),
            bound: nan,
            rationale: String::new(),
            pass: false,
            diagnosis: Some(format!(
                "the child process running {}={} ({}) {how}",
                entry.op,
                entry.name,
                origin_text(&entry.origin)
            )),
            replay: format!(
                "{prefix} verify --case {case} --kernels {} --isa {}",
                set.spec(),
                isa.name()
            ),
            seconds,
        })
        .collect())
}

/// The origin as failures name it.
fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Builtin => "built in".into(),
        Origin::Outside => "from outside".into(),
        Origin::Plugin(name) => format!("plugin {name}"),
    }
}

/// How a child process ended: its status, or `None` when it was stopped at the time limit.
struct Ended {
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
}

/// Runs this binary in a child process on `args` (after the plugins this process loaded), marked as
/// a child, its output piped, and waits for it for at most `--variant-timeout`.
fn run_child(args: Vec<String>) -> Result<Ended> {
    let exe = std::env::current_exe().context("cannot find this program's own executable")?;
    let child = Command::new(&exe)
        .args(plugin_args())
        .args(&args)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {} {}", exe.display(), args[0]))?;
    wait(child, crate::variant_timeout())
}

/// Waits for `child` for at most `timeout`, reading its output as it runs (so that a full pipe does
/// not stall it); kills it at the limit.
fn wait(mut child: Child, timeout: Duration) -> Result<Ended> {
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().context("cannot wait for a child process")? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let join = |handle: std::thread::JoinHandle<String>| handle.join().unwrap_or_default();
    Ok(Ended {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

/// A child stopped at the time limit, in words.
fn stopped() -> String {
    format!(
        "did not finish within {} s and was stopped",
        crate::variant_timeout().as_secs()
    )
}

/// A child's end that gave no rows, in words: the signal that killed it, or its exit status and the
/// last lines it wrote to stderr.
fn describe_exit(status: std::process::ExitStatus, stderr: &str) -> String {
    let tail: Vec<&str> = stderr
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let said = if tail.is_empty() {
        String::new()
    } else {
        format!("; it said: {}", tail.join(" / "))
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal} ({}){said}", signal_name(signal));
        }
    }
    format!("exited with {status} without its rows{said}")
}

/// The usual name of a signal that ends a process.
#[cfg(unix)]
fn signal_name(signal: i32) -> &'static str {
    match signal {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

/// Refuses a `--variant-timeout` of zero.
pub fn timeout_secs(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) | Err(_) => Err(format!("`{text}` is not a positive number of seconds")),
        Ok(n) => Ok(n),
    }
}
