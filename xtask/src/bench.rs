//! `cargo xtask bench`: verify first (no number without a verdict), probe the machine, run the
//! criterion benches, op by op, each in a child process of this binary (the hidden `bench-worker`
//! command, on this process's registry, so that an outside crate's variants are timed with the
//! rest), optionally timing PyTorch on each bench's shapes right after it, and write
//! `reports/<machine-id>/<date>-<commit>.json` with its Markdown and SVG renderings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tkbench_harness::check::gate::Selection;
use tkbench_harness::check::golden::{Case, workspace_golden_dir, workspace_root};
use tkbench_harness::check::verify::{Filter, plan};
use tkbench_harness::measure::probe::{Limits, machine, measure_limits};
use tkbench_harness::measure::report::{
    self, Kind, Level, Mode, Peer, PeerInfo, Report, Row, Verdict, VerifySummary, read_criterion, roofline,
};
use tkbench_harness::measure::svg;
use tkbench_harness::measure::tune::{self, Parameters};
use tkbench_harness::model::llama::{llama_peer, llama_work};
use tkbench_harness::model::{model_peer, model_work};
use tkbench_harness::ops::{OPS, op_named};
use tkbench_harness::registry::{KernelSet, Registry};
use tkbench_kernels::{Isa, IsaSupport};
use tkbench_reference::{Config, LlamaConfig};

use crate::Outcome;
use crate::golden::listed_cases;

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Fewer shapes and shorter measurements (under 3 minutes on 2 cores once built).
    #[arg(long)]
    quick: bool,
    /// Time SIMD variants at every level (`all`) or at one level [default: the widest].
    #[arg(long, value_name = "all|LEVEL", value_parser = isa_choice)]
    isa: Option<String>,
    /// A Python with torch (and transformers for the model rows) for the PyTorch peer column
    /// [default: $TKBENCH_TORCH_PYTHON; no peer column when neither is set].
    #[arg(long, value_name = "PYTHON")]
    torch: Option<PathBuf>,
    /// Where to write the report [default: reports/<machine-id>/].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Measure nothing: render the Markdown and the plots of a saved report again beside it, from
    /// its JSON (which is left as it is), with this build's rendering.
    #[arg(long, value_name = "REPORT.json", conflicts_with_all = ["quick", "isa", "torch", "out"])]
    render: Option<PathBuf>,
}

/// Arguments of the hidden `bench-worker` command: one criterion run in this process, with the
/// environment `tkbench_benches` reads (`TKBENCH_OP`, `TKBENCH_QUICK`, `TKBENCH_ISA`, ...) and the
/// output under `CRITERION_HOME`. `bench` runs it; it is not meant to be typed.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// What to time.
    #[arg(value_enum)]
    target: Target,
}

/// A criterion run of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Every variant of the ops (of `TKBENCH_OP` alone when set) on their bench shapes.
    Ops,
    /// The whole models on the fastest set.
    Model,
}

impl Target {
    /// The name on the command line and in progress lines.
    fn name(self) -> &'static str {
        match self {
            Target::Ops => "ops",
            Target::Model => "model",
        }
    }
}

/// Names the variants (`op=name,...`) the bench worker leaves out: outside variants whose child
/// process did not survive the gate, which would take the whole run down with them.
const SKIP_ENV: &str = "TKBENCH_BENCH_SKIP";

/// Runs the hidden `bench-worker` command: one criterion run on this process's registry.
pub fn run_worker(args: WorkerArgs) -> Result<Outcome> {
    let skip = std::env::var(SKIP_ENV).unwrap_or_default();
    let skip: Vec<&str> = skip.split(',').filter(|s| !s.is_empty()).collect();
    let registry = crate::registry()
        .clone()
        .without(|e| skip.contains(&format!("{}={}", e.op, e.name).as_str()));
    let mut criterion = tkbench_benches::config();
    match args.target {
        Target::Ops => tkbench_benches::bench_ops_of(&mut criterion, &registry),
        Target::Model => tkbench_benches::bench_models(&mut criterion),
    }
    criterion.final_summary();
    Ok(Outcome::Pass)
}

/// `--isa`: `all`, or a level this CPU has.
fn isa_choice(text: &str) -> Result<String, String> {
    if text != "all" {
        crate::args::isa(text)?;
    }
    Ok(text.to_owned())
}

/// (kernel spec, isa label) → whether every case passed.
type Verdicts = HashMap<(String, String), bool>;
/// (kind, op, shape, threads) → PyTorch's median time and its interval.
type PeerTimes = HashMap<(String, String, String, usize), Peer>;

/// The verdicts' key of one variant of `op` at a level: it passed when every set that held it there
/// passed.
fn variant_key(op: &str, variant: &str, isa: &str) -> (String, String) {
    (format!("{op}={variant}"), isa.to_owned())
}

/// Records one model-level row: the verdict of its kernel set at its level, and of each variant in
/// the set at the level it ran, under the key the op rows look up ([`variant_key`]).
fn record(verdicts: &mut Verdicts, registry: &Registry, kernels: &str, isa: &str, pass: bool) {
    *verdicts.entry((kernels.to_owned(), isa.to_owned())).or_insert(true) &= pass;
    // The reference rows name no kernel set.
    let Ok(set) = KernelSet::parse(registry, kernels) else {
        return;
    };
    for e in set.entries() {
        let label = if e.isa == IsaSupport::Dispatch {
            isa
        } else {
            e.isa.label(Isa::Scalar)
        };
        *verdicts.entry(variant_key(e.op, e.name, label)).or_insert(true) &= pass;
    }
}

/// Model-level verdicts of every kernel set, and of every variant within the sets, and the summary
/// for the report.
fn model_verdicts(registry: &Registry, threads: usize) -> Result<(Verdicts, VerifySummary)> {
    let mut verdicts = Verdicts::new();
    let mut summary = VerifySummary {
        rows: 0,
        failed: Vec::new(),
    };
    // The cases `cargo xtask verify` runs: those golden/oracle/cases.yaml lists.
    let golden = workspace_golden_dir();
    for name in listed_cases(&golden)? {
        let case = Case::load(&golden.join("cases").join(name))?;
        let subjects = plan(registry, &Filter::default(), case.manifest.family);
        // Outside variants' sets in child processes, as `verify` runs them.
        let rows = crate::isolate::verify_case(&case, subjects, threads, &[], |_| {})?;
        eprintln!(
            "  verify {}: {} rows, {} failing",
            case.name(),
            rows.len(),
            rows.iter().filter(|r| !r.pass).count()
        );
        for row in rows {
            summary.rows += 1;
            if !row.pass {
                summary.failed.push(format!("{} {} {}", row.case, row.kernels, row.isa));
            }
            record(&mut verdicts, registry, &row.kernels, &row.isa, row.pass);
        }
    }
    Ok((verdicts, summary))
}

/// Splits a criterion function id `variant[@isa][ threads=N]`.
fn parse_function(id: &str) -> (String, Option<String>, usize) {
    let (name, threads) = match id.split_once(" threads=") {
        Some((name, n)) => (name, n.parse().unwrap_or(1)),
        None => (id, 1),
    };
    match name.split_once('@') {
        Some((variant, isa)) => (variant.to_owned(), Some(isa.to_owned()), threads),
        None => (name.to_owned(), None, threads),
    }
}

/// Whether a model group's phase is the SmolLM2-sized Llama's (`llama-prefill`, `llama-decode`) rather
/// than the GPT-2-small-sized model's.
fn is_llama(phase: &str) -> bool {
    phase.starts_with("llama-")
}

/// Reads `tokens=..,cached=..` of a model group.
fn model_shape(shape: &str) -> (String, usize, usize) {
    let phase = shape.split(',').next().unwrap_or_default().to_owned();
    let value = |key: &str| {
        shape
            .split(',')
            .find_map(|kv| {
                kv.strip_prefix(key)
                    .and_then(|v| v.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    };
    (phase, value("tokens"), value("cached"))
}

/// The criterion runs of a report, in order: the `ops` target once per op (`TKBENCH_OP`), then the
/// `model` target, so that the model's large huge-page mappings come and go after every op bench.
fn criterion_runs() -> Vec<(Target, Option<&'static str>)> {
    let mut runs: Vec<_> = OPS.iter().map(|op| (Target::Ops, Some(op.name()))).collect();
    runs.push((Target::Model, None));
    runs
}

/// The file in a criterion run's directory where the benches write the re-check of each timed call.
const RECHECK_FILE: &str = "recheck.tsv";

/// The re-checks of the timed calls of one criterion run, by (group, function): `None` for a call
/// whose output after timing was within bound, else why not. A run without the file (the model
/// target, which the golden cases verify) gives an empty map.
fn read_rechecks(home: &Path) -> Result<Rechecks> {
    let path = home.join(RECHECK_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Rechecks::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            match (fields.next(), fields.next(), fields.next()) {
                (Some(group), Some(function), Some(result)) => Ok((
                    (group.to_owned(), function.to_owned()),
                    (result != "ok").then(|| result.to_owned()),
                )),
                _ => bail!("{}: `{line}` is not group, function and result", path.display()),
            }
        })
        .collect()
}

/// Re-check failures by (criterion group, function).
type Rechecks = HashMap<(String, String), Option<String>>;

/// Runs the criterion run `target` (for the op `op` alone, if given) in a child process of this
/// binary, with its output in `home`.
fn run_criterion(
    home: &Path,
    target: Target,
    op: Option<&str>,
    quick: bool,
    isa: Option<&str>,
    parameters: &Parameters,
    skip: &[String],
) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find this program's own executable")?;
    let mut cmd = Command::new(&exe);
    cmd.args(crate::isolate::plugin_args())
        .args(["bench-worker", target.name()])
        .env(SKIP_ENV, skip.join(","))
        .env("CRITERION_HOME", home)
        .env("TKBENCH_RECHECK", home.join(RECHECK_FILE))
        .env(tune::ENV, parameters.env_value());
    if let Some(op) = op {
        cmd.env("TKBENCH_OP", op);
    }
    if quick {
        cmd.env("TKBENCH_QUICK", "1");
    }
    if let Some(isa) = isa {
        cmd.env("TKBENCH_ISA", isa);
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {} bench-worker", exe.display()))?;
    if !status.success() {
        let what = op.unwrap_or(target.name());
        bail!("the criterion run of {what} failed ({status}); no report written");
    }
    Ok(())
}

/// The torch version of `python`, or an error saying how to get one.
fn torch_version(python: &Path) -> Result<String> {
    Command::new(python)
        .args(["-c", "import torch, transformers; print(torch.__version__)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: cannot import torch and transformers; install them (see golden/oracle/README.md) or drop --torch",
                python.display()
            )
        })
}

/// Times the report's shapes with PyTorch; returns (kind, op, shape, threads) → its median and interval.
fn run_peer(python: &Path, rows: &[Row], quick: bool) -> Result<(PeerTimes, String)> {
    let version = torch_version(python)?;
    let mut jobs = Vec::new();
    for r in rows {
        let code = if r.kind == Kind::Model {
            let (phase, tokens, cached) = model_shape(&format!("{},{}", r.op, r.shape));
            Ok(if is_llama(&phase) {
                llama_peer(&LlamaConfig::smollm2_135m(), tokens, cached)
            } else {
                model_peer(&Config::gpt2_small(), tokens, cached)
            })
        } else {
            op_named(&r.op).and_then(|op| op.peer(&r.shape))
        };
        let mut job = serde_json::json!({ "kind": r.kind, "op": r.op, "shape": r.shape, "threads": r.threads });
        match code {
            Ok(code) => {
                job["setup"] = code.setup.into();
                job["stmt"] = code.stmt.into();
            }
            Err(why) => job["skip"] = why.into(),
        }
        if !jobs.contains(&job) {
            jobs.push(job);
        }
    }
    let file = workspace_root().join("target/tkbench/peer-jobs.json");
    report::write(&file, &serde_json::to_string(&jobs)?)?;
    let mut cmd = Command::new(python);
    cmd.arg(workspace_root().join("benches/peer/torch_peer.py"))
        .arg(&file)
        .env("HF_HUB_OFFLINE", "1");
    if quick {
        cmd.env("TKBENCH_QUICK", "1");
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run the peer script")?;
    if !out.status.success() {
        bail!("the PyTorch peer script failed ({})", out.status);
    }
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).context("the peer script printed no JSON")?;
    let mut times = PeerTimes::new();
    for r in results {
        let key = (
            r["kind"].as_str().unwrap_or_default().to_owned(),
            r["op"].as_str().unwrap_or_default().to_owned(),
            r["shape"].as_str().unwrap_or_default().to_owned(),
            r["threads"].as_u64().unwrap_or(1) as usize,
        );
        let ns = |field: &str| r[field].as_f64().unwrap_or(f64::NAN);
        times.insert(
            key,
            Peer {
                median_ns: ns("median_ns"),
                interval_ns: Some((ns("lower_ns"), ns("upper_ns"))),
            },
        );
    }
    Ok((
        times,
        format!(
            "PyTorch {version} ({}), same shapes and thread counts, preallocated outputs where the op allows",
            python.display()
        ),
    ))
}

/// (op, variant, isa label) → whether the op-level sweep passed, and its worst error over the bound.
type OpChecks = HashMap<(String, String, String), (bool, f64)>;

/// The report's rows for criterion's `measured` estimates, with their verdicts and roofline (no
/// speedups and no peer yet).
fn build_rows(
    registry: &Registry,
    measured: &[report::Measured],
    verdicts: &Verdicts,
    op_checks: &OpChecks,
    rechecks: &Rechecks,
    limits: &Limits,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for m in measured {
        let (group_op, shape) = m.group.split_once('/').unwrap_or((&m.group, ""));
        let (variant, isa, threads) = parse_function(&m.function);
        let (kind, op, shape, w, tokens, verdict_key) = if group_op == "model" {
            let (phase, tokens, cached) = model_shape(shape);
            let w = if is_llama(&phase) {
                llama_work(&LlamaConfig::smollm2_135m(), tokens, cached)
            } else {
                model_work(&Config::gpt2_small(), tokens, cached)
            };
            let rest = shape.split_once(',').map_or("", |(_, r)| r).to_owned();
            let isa = isa.clone().unwrap_or_else(|| "none".into());
            (Kind::Model, phase, rest, w, Some(tokens), (variant.clone(), isa))
        } else {
            let Ok(op) = op_named(group_op) else { continue };
            let w = op
                .work(shape)
                .map_err(|e| anyhow::anyhow!("criterion group `{}`: {e}", m.group))?;
            let Some(v) = registry.find(op.name(), &variant) else {
                continue;
            };
            let isa_label = isa.clone().unwrap_or_else(|| v.isa.label(Isa::Scalar).to_owned());
            (
                Kind::Op,
                op.name().to_owned(),
                shape.to_owned(),
                w,
                None,
                variant_key(op.name(), v.name, &isa_label),
            )
        };
        let isa_label = verdict_key.1.clone();
        let model_pass = verdicts.get(&verdict_key).copied();
        let op_check = op_checks
            .get(&(op.clone(), variant.clone(), isa_label.clone()))
            .copied();
        let recheck = rechecks.get(&(m.group.clone(), m.function.clone()));
        if kind == Kind::Op && recheck.is_none() {
            bail!(
                "criterion call `{}/{}` has no re-check of its output",
                m.group,
                m.function
            );
        }
        let recheck_pass = recheck.is_none_or(Option::is_none);
        let pass = model_pass.unwrap_or(false) && op_check.is_none_or(|(p, _)| p) && recheck_pass;
        rows.push(Row {
            kind,
            op,
            shape,
            variant,
            isa: Level::from_name(&isa_label)
                .ok_or_else(|| anyhow::anyhow!("criterion function `{}`: no level `{isa_label}`", m.function))?,
            threads,
            time_ns: m.time,
            work: w,
            tokens,
            roofline: roofline(limits, w, threads),
            verdict: if model_pass.is_none() {
                Verdict::Unverified
            } else if pass {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            max_error_ratio: op_check.map(|(_, r)| r),
            peer: None,
        });
    }
    Ok(rows)
}

/// Runs `cargo xtask bench`.
pub fn run(args: Args) -> Result<Outcome> {
    if let Some(path) = &args.render {
        let report = Report::load(path)?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .with_context(|| format!("{}: not a report's file name", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        write_renderings(&report, dir, stem)?;
        eprintln!("bench: rendered {} again: its .md and .svg", path.display());
        return Ok(Outcome::Pass);
    }
    if cfg!(debug_assertions) {
        bail!(
            "this binary was built without optimizations, so its timings would mean nothing: build it \
             with --release (`cargo xtask` does; an outside crate: `cargo run --release -- bench`)"
        );
    }
    let start = Instant::now();
    let torch = args
        .torch
        .clone()
        .or_else(|| std::env::var_os("TKBENCH_TORCH_PYTHON").map(PathBuf::from));
    if let Some(python) = &torch {
        // Refuse a Python without torch now, not after the benches have run.
        torch_version(python)?;
    }
    let machine = machine();
    let threads = machine.logical_cpus;
    let parameters = crate::tune::establish(&machine)?;
    eprintln!("bench: kernel parameters: {}", parameters.summary());

    eprintln!("bench [1/4] verify: every kernel set against the golden cases, and the op-level sweep");
    let registry = crate::registry();
    let (verdicts, verify) = model_verdicts(registry, threads)?;
    let gate = crate::isolate::gate(registry, &Selection::default(), |_| {})?;
    for failure in &gate.failures {
        eprintln!("  {failure}");
    }
    // An outside variant whose child process died in the gate (its one row ran no case) is not
    // timed: it would take its op's criterion run down with it. Its failure is in the gate's output.
    let crashed: Vec<String> = gate
        .rows
        .iter()
        .filter(|r| crate::isolate::died(r))
        .map(|r| format!("{}={}", r.op, r.variant))
        .collect();
    for name in &crashed {
        eprintln!("  not timed: {name}, whose child process did not survive the gate");
    }
    let op_checks: OpChecks = gate
        .rows
        .iter()
        .map(|r| {
            let key = (r.op.to_owned(), r.variant.to_owned(), r.isa.clone());
            (key, (r.pass(), r.worst_ratio))
        })
        .collect();

    eprintln!("bench [2/4] probe: FMA peaks and bandwidths on 1 and {threads} threads");
    let limits = measure_limits(threads, args.quick);

    eprintln!(
        "bench [3/4] criterion: every op x variant x shape, and the model ({} run); {}",
        if args.quick { "quick" } else { "full" },
        match &torch {
            Some(python) => format!("after each bench, PyTorch on its shapes ({})", python.display()),
            None => "no PyTorch peer (no --torch and no TKBENCH_TORCH_PYTHON)".into(),
        }
    );
    let home = workspace_root().join(format!("target/tkbench/criterion-{}", machine.date.replace(':', "")));
    let mut rows = Vec::new();
    let mut peer_times = PeerTimes::new();
    let mut peer_note = String::new();
    for (target, op) in criterion_runs() {
        let name = op.unwrap_or(target.name());
        eprintln!("  criterion: {name}");
        // Each run in its own directory: its estimates are read once, right after it.
        let bench_home = home.join(name);
        run_criterion(
            &bench_home,
            target,
            op,
            args.quick,
            args.isa.as_deref(),
            &parameters,
            &crashed,
        )?;
        let rechecks = read_rechecks(&bench_home)?;
        for ((group, function), why) in &rechecks {
            if let Some(why) = why {
                eprintln!("  FAIL: {group}/{function}: the re-check of the timed calls' output: {why}");
            }
        }
        let bench_rows = build_rows(
            registry,
            &read_criterion(&bench_home)?,
            &verdicts,
            &op_checks,
            &rechecks,
            &limits,
        )?;
        if let Some(python) = &torch {
            // PyTorch right after our rows of the same shapes, so that both see the host alike.
            eprintln!("  PyTorch: {name}");
            let (times, note) = run_peer(python, &bench_rows, args.quick)?;
            peer_times.extend(times);
            peer_note = note;
        }
        rows.extend(bench_rows);
    }
    if rows.is_empty() {
        bail!("{}: criterion wrote no estimates", home.display());
    }

    let order = |r: &Row| {
        (
            r.kind == Kind::Model,
            OPS.iter().position(|op| op.name() == r.op).unwrap_or(OPS.len()),
            r.work.flops as u64,
            r.variant.clone(),
            r.isa,
            r.threads,
        )
    };
    rows.sort_by_key(order);

    let peer = match &torch {
        Some(_) => {
            for r in &mut rows {
                let kind = match r.kind {
                    Kind::Op => "op",
                    Kind::Model => "model",
                };
                r.peer = peer_times
                    .get(&(kind.to_owned(), r.op.clone(), r.shape.clone(), r.threads))
                    .copied();
            }
            PeerInfo {
                available: true,
                note: peer_note,
            }
        }
        None => PeerInfo {
            available: false,
            note: "not measured: no Python with torch was named (--torch or TKBENCH_TORCH_PYTHON)".into(),
        },
    };

    eprintln!("bench [4/4] report");
    let report = Report {
        schema: report::SCHEMA,
        units: report::units(),
        mode: if args.quick { Mode::Quick } else { Mode::Full },
        machine: machine.clone(),
        limits,
        verify,
        peer,
        parameters: Some(parameters),
        plugins: crate::plugins().to_vec(),
        rows,
    };
    let dir = args
        .out
        .unwrap_or_else(|| workspace_root().join("reports").join(&machine.machine_id));
    let stem = format!("{}-{}", &machine.date[..10], machine.commit);
    let path = dir.join(format!("{stem}.json"));
    report.save(&path)?;
    write_renderings(&report, &dir, &stem)?;
    let failed = report.rows.iter().filter(|r| r.verdict != Verdict::Pass).count();
    println!("{}", path.display());
    eprintln!(
        "bench: {} rows ({} not passing verification) in {:.0}s; wrote {} and its .md and .svg",
        report.rows.len(),
        failed,
        start.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(if report.verify.failed.is_empty() && failed == 0 {
        Outcome::Pass
    } else {
        Outcome::Fail
    })
}

/// Writes `report`'s Markdown and plots into `dir` as `<stem>.md`, `<stem>-throughput.svg` and
/// `<stem>-roofline.svg`.
fn write_renderings(report: &Report, dir: &Path, stem: &str) -> Result<()> {
    report::write(&dir.join(format!("{stem}.md")), &report::render_markdown(report))?;
    report::write(
        &dir.join(format!("{stem}-throughput.svg")),
        &svg::throughput_svg(report),
    )?;
    report::write(&dir.join(format!("{stem}-roofline.svg")), &svg::roofline_svg(report))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tkbench_harness::check::verify::Subject;

    use super::*;

    #[test]
    fn every_variant_at_every_level_gets_a_model_level_verdict() {
        // What the bench's op rows look up must be what verifying the plan records: a variant
        // left out of every planned set would be benched as unverified.
        let registry = Registry::builtin();
        let mut verdicts = Verdicts::new();
        let families = tkbench_reference::Family::ALL;
        for subject in families
            .into_iter()
            .flat_map(|f| plan(&registry, &Filter::default(), f))
        {
            if let Subject::Kernels(set, isa) = subject {
                let label = if set.dispatches() { isa.name() } else { "none" };
                record(&mut verdicts, &registry, &set.spec(), label, true);
            }
        }
        for e in registry.entries() {
            let labels: Vec<&str> = match e.isa {
                IsaSupport::Dispatch => Isa::available().into_iter().map(Isa::name).collect(),
                other => vec![other.label(Isa::Scalar)],
            };
            for label in labels {
                assert_eq!(
                    verdicts.get(&variant_key(e.op, e.name, label)),
                    Some(&true),
                    "{}={} at {label}",
                    e.op,
                    e.name
                );
            }
        }
        // One failing set fails every variant in it.
        record(&mut verdicts, &registry, "fastest", "avx2", false);
        let fastest = KernelSet::fastest(&registry);
        let softmax = fastest.get("softmax");
        assert_eq!(
            verdicts.get(&variant_key("softmax", softmax.name, "avx2")),
            Some(&false)
        );
    }

    #[test]
    fn function_ids_split_into_variant_isa_and_threads() {
        assert_eq!(parse_function("simd@avx512"), ("simd".into(), Some("avx512".into()), 1));
        assert_eq!(parse_function("matrixmultiply"), ("matrixmultiply".into(), None, 1));
        assert_eq!(
            parse_function("fastest@avx2 threads=2"),
            ("fastest".into(), Some("avx2".into()), 2)
        );
    }

    #[test]
    fn model_groups_give_tokens_and_cache() {
        assert_eq!(model_shape("decode,tokens=1,cached=512"), ("decode".into(), 1, 512));
    }
}
