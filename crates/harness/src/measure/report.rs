//! Performance reports: the versioned JSON schema (the source of truth), reading criterion's
//! estimates back, the roofline of each row, and the Markdown and SVG renderings. Units are written
//! into the schema: times in nanoseconds, GB = 1e9 bytes, GFLOP = 1e9 FLOPs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::measure::probe::{Limits, Machine, WORKING_SET_FRACTION};
use crate::measure::tune::Parameters;
use crate::measure::work::Work;

/// The report schema this crate writes. It also reads schema 1, converting it on load.
pub const SCHEMA: u32 = 2;

/// Errors reading reports or criterion output, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written. The I/O error is part of the message, not a source
    /// of its own, so that a chain of causes does not repeat it.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// Not valid JSON, or not a report.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

type Result<T, E = ReportError> = std::result::Result<T, E>;

/// A median time and its 95 % confidence interval, in nanoseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Time {
    /// Median.
    pub median: f64,
    /// Lower bound of the 95 % confidence interval of the median.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

impl Time {
    /// Whether two intervals overlap (a difference within noise).
    pub fn overlaps(&self, other: &Time) -> bool {
        self.lower <= other.upper && other.lower <= self.upper
    }
}

/// What bounds a row's time from below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    /// The FMA peak.
    Compute,
    /// The L1 bandwidth.
    L1,
    /// The L2 bandwidth.
    L2,
    /// The L3 bandwidth.
    L3,
    /// The DRAM bandwidth.
    Dram,
}

impl Limit {
    /// The name used in tables.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Compute => "compute",
            Limit::L1 => "l1",
            Limit::L2 => "l2",
            Limit::L3 => "l3",
            Limit::Dram => "dram",
        }
    }

    fn from_name(name: &str) -> Option<Limit> {
        [Limit::Compute, Limit::L1, Limit::L2, Limit::L3, Limit::Dram]
            .into_iter()
            .find(|l| l.name() == name)
    }
}

/// The roofline bound of a row.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Roofline {
    /// The shortest possible time: max(FLOPs / peak, bytes / bandwidth), in nanoseconds.
    pub bound_ns: f64,
    /// What binds.
    pub limit: Limit,
}

/// Whether a row times one op call or a model forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One op call.
    Op,
    /// A forward pass of the kernel-driven model.
    Model,
}

/// The ISA level a row ran at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Plain Rust, no SIMD of its own.
    None,
    /// A library's own choice.
    Library,
    /// pulp's scalar level.
    Scalar,
    /// x86-v3.
    Avx2,
    /// x86-v4.
    Avx512,
    /// aarch64 NEON.
    Neon,
}

impl Level {
    /// The name used in tables, as the variants' level labels read.
    pub fn name(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Library => "library",
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
            Level::Neon => "neon",
        }
    }

    /// The level of a label (`none`, `library`, or an ISA level's name).
    pub fn from_name(name: &str) -> Option<Level> {
        [
            Level::None,
            Level::Library,
            Level::Scalar,
            Level::Avx2,
            Level::Avx512,
            Level::Neon,
        ]
        .into_iter()
        .find(|l| l.name() == name)
    }
}

/// A row's verdict: its variant's op-level sweep at this level and its model-level verify rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Both passed.
    Pass,
    /// Either failed.
    Fail,
    /// No verify row covers it.
    Unverified,
}

impl Verdict {
    /// The name used in tables.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Unverified => "unverified",
        }
    }
}

/// Whether a report's benches ran in full or quick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every shape, full measurement times.
    Full,
    /// Fewer shapes, shorter measurements.
    Quick,
}

/// The same work timed with PyTorch.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Peer {
    /// PyTorch's median time, nanoseconds.
    pub median_ns: f64,
    /// The 95 % confidence interval of that median, nanoseconds (absent in schema 1 reports).
    pub interval_ns: Option<(f64, f64)>,
}

/// One measured row. Only what was measured or counted is stored; rates, percentages and speedups
/// are computed from it ([`Row::gflops`], [`Row::percent`], [`Report::speedup_vs_scalar`], ...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// An op call or the model.
    pub kind: Kind,
    /// The op name, or `prefill` / `decode` for the model.
    pub op: String,
    /// The shape, as `cargo xtask opcheck --shape` takes it (or the cache for the model).
    pub shape: String,
    /// The variant (or kernel set).
    pub variant: String,
    /// The ISA level that ran.
    pub isa: Level,
    /// Threads.
    pub threads: usize,
    /// The median time and its confidence interval.
    pub time_ns: Time,
    /// FLOPs and bytes of one call.
    pub work: Work,
    /// Tokens of one call (model rows).
    pub tokens: Option<usize>,
    /// The roofline bound.
    pub roofline: Roofline,
    /// The verdict of the same variant at the same level from the same run.
    pub verdict: Verdict,
    /// The largest error over its bound in the op-level sweep (below 1 passes).
    pub max_error_ratio: Option<f64>,
    /// PyTorch on the same shape and thread count, when it was timed.
    pub peer: Option<Peer>,
}

impl Row {
    /// FLOPs / time, 1e9 per second.
    pub fn gflops(&self) -> f64 {
        self.work.flops / self.time_ns.median
    }

    /// Bytes / time, 1e9 per second.
    pub fn gb_per_s(&self) -> f64 {
        self.work.bytes / self.time_ns.median
    }

    /// Tokens per second, for model rows.
    pub fn tokens_per_s(&self) -> Option<f64> {
        self.tokens.map(|t| t as f64 / self.time_ns.median * 1e9)
    }

    /// The roofline bound over the measured time, in percent; above 100 only with a cause
    /// ([`Report::above_roofline`]).
    pub fn percent(&self) -> f64 {
        100.0 * self.roofline.bound_ns / self.time_ns.median
    }

    /// PyTorch's time over ours: above 1 means tkbench is faster.
    pub fn peer_speedup(&self) -> Option<f64> {
        self.peer.map(|p| p.median_ns / self.time_ns.median)
    }
}

/// Whether and how PyTorch was timed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerInfo {
    /// Whether a PyTorch was available.
    pub available: bool,
    /// The Python used, its torch version, or why there is no peer column.
    pub note: String,
}

/// A report: one machine, one commit, one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// [`SCHEMA`] (schema 1 reports are converted when loaded).
    pub schema: u32,
    /// The units of every number.
    pub units: BTreeMap<String, String>,
    /// Full or quick.
    pub mode: Mode,
    /// The machine and the build.
    pub machine: Machine,
    /// The measured limits.
    pub limits: Limits,
    /// Model-level verification: rows run and rows failed.
    pub verify: VerifySummary,
    /// The PyTorch peer column.
    pub peer: PeerInfo,
    /// The kernel parameters the kernels ran with (none in reports written before they were tuned).
    #[serde(default)]
    pub parameters: Option<Parameters>,
    /// The C plugins whose variants were checked and timed, with each library's SHA-256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<crate::plugin::PluginRecord>,
    /// The rows.
    pub rows: Vec<Row>,
}

impl Report {
    /// Why `row` ran faster than its roofline bound, as far as this report can tell; `None` for a
    /// row at or below its bound. Every row above 100 % gets a cause, and one the report cannot
    /// explain says so rather than passing silently.
    pub fn above_roofline(&self, row: &Row) -> Option<String> {
        if row.percent() <= 100.0 {
            return None;
        }
        if row.roofline.bound_ns <= row.time_ns.upper {
            return Some(format!(
                "noise: the bound ({}) lies within the time's 95 % interval",
                format_time(row.roofline.bound_ns)
            ));
        }
        let level = match row.roofline.limit {
            Limit::Compute => {
                return Some(format!(
                    "unexplained: faster than the FMA peak the probe measured ({:.1} GFLOP/s on {} thread(s))",
                    self.limits.peak_gflops(row.threads),
                    row.threads
                ));
            }
            limit => limit.name(),
        };
        let cause = self
            .partly_cached_cause(row)
            .or_else(|| self.scaled_less_cause(row, level))
            .unwrap_or_else(|| {
                format!(
                    "unexplained: faster than the probe's {level} bandwidth for {} on {} thread(s)",
                    format_bytes(row.work.bytes),
                    row.threads
                )
            });
        Some(cause)
    }

    /// A level the memory-bound `row` outgrew by the probe's measure yet fits by what the CPU
    /// reports: a cache that falls gradually (a victim cache, or one shared with other tenants)
    /// keeps part of a working set the probe already counts as the next level's.
    fn partly_cached_cause(&self, row: &Row) -> Option<String> {
        self.limits.caches.iter().find_map(|cache| {
            let copies = if cache.level >= 3 { 1 } else { row.threads as u64 };
            let found = (cache.bytes * copies) as f64;
            let reported = (cache.reported_bytes? * copies) as f64;
            (row.work.bytes > found && row.work.bytes <= reported).then(|| {
                format!(
                    "partly cached: its {} lie between the L{} the probe found ({}) and the L{} the CPU reports ({})",
                    format_bytes(row.work.bytes),
                    cache.level,
                    format_bytes(found),
                    cache.level,
                    format_bytes(reported),
                )
            })
        })
    }

    /// `level`'s reading on the memory-bound `row`'s several threads scaled less than the row did:
    /// the probe ran the threads while something else on the host held a CPU, or the level's share
    /// was smaller then. Against the one-thread reading times the threads, the row is within its
    /// bound.
    fn scaled_less_cause(&self, row: &Row, level: &str) -> Option<String> {
        if row.threads < 2 {
            return None;
        }
        let many = self.limits.gb_per_s(level, row.threads)?;
        let one = self.limits.gb_per_s(level, 1)?;
        let threads = row.threads as f64;
        let scaled = row.roofline.bound_ns * many / (one * threads);
        (many < one * threads && scaled <= row.time_ns.median).then(|| {
            format!(
                "probe scaled less: its {level} triad on {} threads ({many:.1} GB/s) is {:.2} × the one-thread {one:.1} GB/s; against {} × that, the row is at {:.0} %",
                row.threads,
                many / one,
                row.threads,
                100.0 * scaled / row.time_ns.median
            )
        })
    }

    /// `full` or `quick`.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Full => "full",
            Mode::Quick => "quick",
        }
    }

    /// The scalar variant's time over this row's, same op and shape (none when scalar was not timed).
    pub fn speedup_vs_scalar(&self, row: &Row) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.kind == row.kind && r.variant == "scalar" && r.op == row.op && r.shape == row.shape)
            .map(|s| s.time_ns.median / row.time_ns.median)
    }
}

/// What `verify` said before the benches ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VerifySummary {
    /// Rows run.
    pub rows: usize,
    /// Rows failed, as `case kernels isa`.
    pub failed: Vec<String>,
}

/// The units block written into every report.
pub fn units() -> BTreeMap<String, String> {
    [
        (
            "time_ns",
            "nanoseconds; median of criterion's samples with its 95 % confidence interval",
        ),
        ("work.flops", "floating-point operations of one call; an FMA is 2"),
        (
            "work.bytes",
            "compulsory bytes read and written by one call (GB = 1e9 bytes)",
        ),
        (
            "roofline.bound_ns",
            "nanoseconds; the shortest time the measured limits allow",
        ),
        (
            "peer.median_ns",
            "nanoseconds; PyTorch's median, with the 95 % confidence interval of it",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl Report {
    /// Reads and checks a report file: valid JSON, a known schema, every field present.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| ReportError::Io {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path)
    }

    /// Checks the text of a report read from `path` (named in errors), as [`Report::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |message: String| ReportError::Format {
            path: path.to_owned(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON ({e}); is it a tkbench report?")))?;
        match value.get("schema").and_then(serde_json::Value::as_u64) {
            Some(s) if s == u64::from(SCHEMA) => {
                serde_json::from_value(value).map_err(|e| bad(format!("malformed report: {e}")))
            }
            Some(1) => {
                let old: v1::Report =
                    serde_json::from_value(value).map_err(|e| bad(format!("malformed schema 1 report: {e}")))?;
                old.upgrade().map_err(|e| bad(format!("schema 1 report: {e}")))
            }
            Some(s) => Err(bad(format!(
                "report schema {s} is not known; this tkbench reads schemas 1 and {SCHEMA}"
            ))),
            None => Err(bad("no `schema` field: not a tkbench report".into())),
        }
    }

    /// Writes the report as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a report serialises");
        write(path, &text)
    }
}

/// Writes `text` to `path`, creating the directory.
pub fn write(path: &Path, text: &str) -> Result<()> {
    let io = |error| ReportError::Io {
        path: path.to_owned(),
        error,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

/// One benchmark read back from criterion's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// criterion's group id.
    pub group: String,
    /// criterion's function id.
    pub function: String,
    /// The median and its interval.
    pub time: Time,
}

/// Reads every `*/new/benchmark.json` and `estimates.json` pair under criterion's output directory.
pub fn read_criterion(root: &Path) -> Result<Vec<Measured>> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|error| ReportError::Io {
            path: dir.clone(),
            error,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") && path.join("benchmark.json").is_file() {
                    found.push(read_one(&path)?);
                } else {
                    stack.push(path);
                }
            }
        }
    }
    found.sort_by(|a, b| (&a.group, &a.function).cmp(&(&b.group, &b.function)));
    Ok(found)
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|error| ReportError::Io {
        path: path.to_owned(),
        error,
    })?;
    serde_json::from_str(&text).map_err(|e| ReportError::Format {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn read_one(dir: &Path) -> Result<Measured> {
    let bench = read_json(&dir.join("benchmark.json"))?;
    let estimates = read_json(&dir.join("estimates.json"))?;
    let missing = |path: PathBuf, what: &str| ReportError::Format {
        path,
        message: format!("no `{what}`"),
    };
    let text = |key: &str| {
        bench[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| missing(dir.join("benchmark.json"), key))
    };
    let median = &estimates["median"];
    let number =
        |v: &serde_json::Value, what: &str| v.as_f64().ok_or_else(|| missing(dir.join("estimates.json"), what));
    Ok(Measured {
        group: text("group_id")?,
        function: text("function_id")?,
        time: Time {
            median: number(&median["point_estimate"], "median.point_estimate")?,
            lower: number(
                &median["confidence_interval"]["lower_bound"],
                "median.confidence_interval",
            )?,
            upper: number(
                &median["confidence_interval"]["upper_bound"],
                "median.confidence_interval",
            )?,
        },
    })
}

/// The roofline bound of `work` on `threads` threads with the limits measured.
///
/// The level is the smallest cache whose measured capacity holds the bytes, else DRAM. The triad
/// bandwidth there is, on one thread, the probe's curve at the row's own bytes (for DRAM, the better
/// of that and DRAM's triad, since a working set just past the last cache found is still partly
/// cached); on more threads, the level's triad (for the shared L3 raised as the one-thread curve
/// rises from the triad's working set to the row's, [`shared_level`]), and past the last cache the
/// DRAM triad raised by the share of the one-thread curve's fall still ahead at these bytes
/// ([`partly_cached`]). Reads and writes are then weighed apart ([`memory_ns`]).
pub fn roofline(limits: &Limits, work: Work, threads: usize) -> Roofline {
    let peak = limits.peak_gflops(threads);
    // The probe's working sets fill a fraction of each cache; a row fits a level when its bytes fit
    // the cache.
    let fits = |b: &&crate::measure::probe::Bandwidth| {
        b.threads == threads && work.bytes <= (b.working_set_bytes * threads as u64) as f64 / WORKING_SET_FRACTION
    };
    let level = [Limit::L1, Limit::L2, Limit::L3]
        .into_iter()
        .find(|level| {
            limits
                .bandwidth
                .iter()
                .filter(|b| b.level == level.name())
                .any(|b| fits(&b))
        })
        .unwrap_or(Limit::Dram);
    // One thread's bound reads the probe's curve at the row's own working set: a level's triad runs
    // on a share of the level, and a smaller working set within it runs faster. DRAM's triad is the
    // better of small and huge pages, which the curve (on small pages) is not.
    let triad = limits.gb_per_s(level.name(), threads);
    let curve = (threads == 1 && (level != Limit::Dram || within_curve(limits, work.bytes)))
        .then(|| limits.curve_gb_per_s(work.bytes))
        .flatten();
    let bw = match (level, curve, triad) {
        (Limit::Dram, Some(curve), Some(triad)) => curve.max(triad),
        (_, Some(curve), _) => curve,
        (Limit::Dram, None, Some(_)) if threads > 1 => partly_cached(limits, work.bytes, threads),
        (Limit::L3, None, Some(triad)) if threads > 1 => triad * shared_level(limits, work.bytes, threads),
        (_, None, Some(triad)) => triad,
        (_, None, None) => f64::NAN,
    };
    let compute_ns = work.flops / peak;
    let memory_ns = memory_ns(work, bw, limits.read_over_triad(level.name(), threads));
    if compute_ns >= memory_ns {
        Roofline {
            bound_ns: compute_ns,
            limit: Limit::Compute,
        }
    } else {
        Roofline {
            bound_ns: memory_ns,
            limit: level,
        }
    }
}

/// Whether the probe's curve reached working sets of `bytes`: past its end it says nothing of them.
fn within_curve(limits: &Limits, bytes: f64) -> bool {
    limits
        .curve
        .last()
        .is_some_and(|end| bytes <= end.working_set_bytes as f64)
}

/// The time to move `work`'s bytes where a triad runs at `triad` GB/s and reads alone run
/// `read_over_triad` times as fast (at least 1), in nanoseconds.
///
/// A linear model, time = read / R + written / W, with R = `read_over_triad` × `triad` and W chosen
/// so that the triad's own mix (8 bytes read to 4 written) takes exactly its measured time: writes
/// then cost 3 / triad − 2 / R per byte, at least what the triad's bytes cost on average. A row of
/// reads alone is bound by the read bandwidth, and a copy (as much written as read) by more than
/// the triad; where reads ran no faster than the triad, every byte costs the triad's.
pub fn memory_ns(work: Work, triad: f64, read_over_triad: f64) -> f64 {
    let read = triad * read_over_triad.max(1.0);
    let per_written_byte = 3.0 / triad - 2.0 / read;
    work.read() / read + work.written * per_written_byte
}

/// How much faster than its triad the shared L3 runs on `threads` threads for a working set of
/// `bytes`: the one-thread curve at `bytes` over the curve at the triad's own working set (all its
/// threads' together), at least 1. The triad fills most of the level, and a level may read faster
/// near its small end than near its capacity; a shared level's speed follows the working set of all
/// its threads together, which the one-thread curve measures. 1 without a curve or an L3 triad on
/// these threads.
pub fn shared_level(limits: &Limits, bytes: f64, threads: usize) -> f64 {
    let Some(triad_bytes) = limits
        .bandwidth
        .iter()
        .find(|b| b.level == Limit::L3.name() && b.threads == threads)
        .map(|b| (b.working_set_bytes * threads as u64) as f64)
    else {
        return 1.0;
    };
    match (limits.curve_gb_per_s(bytes), limits.curve_gb_per_s(triad_bytes)) {
        (Some(at_row), Some(at_triad)) if at_triad > 0.0 => (at_row / at_triad).max(1.0),
        _ => 1.0,
    }
}

/// The triad bandwidth on `threads` threads at a working set of `bytes` past the last cache the
/// probe found: DRAM's triad, raised toward the last cache level's by the share of the fall from
/// that level to DRAM that the one-thread curve has still to make at these bytes. A last level
/// shared by the cores falls on the same working sets whatever the thread count, so the one-thread
/// curve says how much of a set this size stays cached. Without a curve, DRAM's triad.
pub fn partly_cached(limits: &Limits, bytes: f64, threads: usize) -> f64 {
    let dram = |t| limits.gb_per_s(Limit::Dram.name(), t);
    let top = |t| {
        [Limit::L3, Limit::L2, Limit::L1]
            .into_iter()
            .find_map(|level| limits.gb_per_s(level.name(), t))
    };
    let Some(dram_t) = dram(threads) else {
        return f64::NAN;
    };
    let curve = within_curve(limits, bytes)
        .then(|| limits.curve_gb_per_s(bytes))
        .flatten();
    let (Some(top_t), Some(top_1), Some(dram_1), Some(curve)) = (top(threads), top(1), dram(1), curve) else {
        return dram_t;
    };
    if top_1 <= dram_1 || top_t <= dram_t {
        return dram_t;
    }
    let share = ((curve - dram_1) / (top_1 - dram_1)).clamp(0.0, 1.0);
    dram_t + share * (top_t - dram_t)
}

fn format_time(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.3} s", n / 1e9),
        n if n >= 1e6 => format!("{:.3} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

/// Renders a report as Markdown.
pub fn render_markdown(report: &Report) -> String {
    let m = &report.machine;
    let mut out = format!("# tkbench report: {}\n\n", m.machine_id);
    out += &format!(
        "- CPU: {} ({} logical CPUs; ISA levels {})\n",
        m.cpu,
        m.logical_cpus,
        m.isa_levels.join(", ")
    );
    if !m.vendor.is_empty() || !m.hypervisor.is_empty() {
        out += &format!(
            "- vendor: {}, family {:x}h model {:x}h; hypervisor: {}\n",
            if m.vendor.is_empty() { "unknown" } else { &m.vendor },
            m.cpu_family,
            m.cpu_model,
            if m.hypervisor.is_empty() {
                "none reported"
            } else {
                &m.hypervisor
            }
        );
    }
    let caches: Vec<String> = m
        .caches
        .iter()
        .map(|c| format!("L{} {} {} KiB", c.level, c.kind, c.bytes / 1024))
        .collect();
    out += &format!("- caches: {}\n", caches.join(", "));
    if !report.limits.caches.is_empty() {
        let found: Vec<String> = report
            .limits
            .caches
            .iter()
            .map(|c| format!("L{} {} KiB ({:.0} GB/s)", c.level, c.bytes / 1024, c.gb_per_s))
            .collect();
        out += &format!(
            "- caches found by the probe's bandwidth curve (one thread): {}\n",
            found.join(", ")
        );
    }
    if !m.transparent_huge_pages.is_empty() {
        out += &format!("- transparent huge pages: {}\n", m.transparent_huge_pages);
    }
    for plugin in &report.plugins {
        out += &format!(
            "- plugin: {} (SHA-256 {}), from {}: {}\n",
            plugin.name,
            plugin.sha256,
            plugin.path.display(),
            plugin.variants.join(", ")
        );
    }
    if let Some(parameters) = &report.parameters {
        out += &format!("- kernel parameters: {}\n", parameters.summary());
    }
    out += &format!(
        "- build: {}, target features {}, commit {}, {}\n",
        m.rustc,
        m.target_features.join(","),
        m.commit,
        m.date
    );
    out += &format!(
        "- mode: {}; verify: {} rows, {} failed\n",
        report.mode_name(),
        report.verify.rows,
        report.verify.failed.len()
    );
    out += &format!("- PyTorch peer: {}\n\n", report.peer.note);
    out += "## Measured limits\n\n| what | threads | value |\n|---|---|---|\n";
    for p in &report.limits.fma {
        out += &format!("| FMA peak, {} | {} | {:.1} GFLOP/s |\n", p.isa, p.threads, p.gflops);
    }
    for b in &report.limits.bandwidth {
        out += &format!(
            "| triad bandwidth, {} ({} KiB per thread{}) | {} | {:.1} GB/s |\n",
            b.level,
            b.working_set_bytes / 1024,
            if b.huge_pages { ", huge pages" } else { "" },
            b.threads,
            b.gb_per_s
        );
        if let Some(read) = b.read_gb_per_s {
            out += &format!(
                "| read bandwidth, {} ({} KiB per thread) | {} | {read:.1} GB/s |\n",
                b.level,
                b.working_set_bytes * 2 / 3 / 1024,
                b.threads,
            );
        }
    }
    // Each op once, in the order of its first row: a model's phases interleave with another
    // model's by shape, so neighbours alone do not gather them.
    let mut ops: Vec<&str> = Vec::new();
    for r in &report.rows {
        if !ops.contains(&r.op.as_str()) {
            ops.push(&r.op);
        }
    }
    // Each row's cause, found once: for its mark in its op's table and for the list at the end.
    let causes: Vec<Option<String>> = report.rows.iter().map(|r| report.above_roofline(r)).collect();
    let peer_text = |r: &Row| match (r.peer, r.peer_speedup()) {
        (
            Some(Peer {
                interval_ns: Some((lo, hi)),
                ..
            }),
            Some(s),
        ) => {
            // The speedup's range from the two intervals, slowest against fastest.
            format!("{s:.2} ({:.2}–{:.2})", lo / r.time_ns.upper, hi / r.time_ns.lower)
        }
        (_, Some(s)) => format!("{s:.2}"),
        _ => "—".into(),
    };
    for op in ops {
        out += &format!(
            "\n## {op}\n\n| shape | variant | isa | threads | time (95 % CI) | GFLOP/s | GB/s | × scalar | % roofline (limit) | × PyTorch | verdict |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
        );
        for (r, cause) in report.rows.iter().zip(&causes).filter(|(r, _)| r.op == op) {
            let speedup = report.speedup_vs_scalar(r).map_or("—".into(), |s| format!("{s:.1}"));
            let peer = peer_text(r);
            let verdict = match r.max_error_ratio {
                Some(e) => format!("{} (err/bound {e:.2})", r.verdict.name()),
                None => r.verdict.name().to_owned(),
            };
            let mark = if cause.is_some() { " †" } else { "" };
            out += &format!(
                "| {} | {} | {} | {} | {} ({}–{}) | {:.1} | {:.1} | {speedup} | {:.0} % ({}){mark} | {peer} | {verdict} |\n",
                r.shape,
                r.variant,
                r.isa.name(),
                r.threads,
                format_time(r.time_ns.median),
                format_time(r.time_ns.lower),
                format_time(r.time_ns.upper),
                r.gflops(),
                r.gb_per_s(),
                r.percent(),
                r.roofline.limit.name(),
            );
        }
    }
    out += "\n## Rows above their roofline\n\n";
    let above: Vec<(&Row, &String)> = report
        .rows
        .iter()
        .zip(&causes)
        .filter_map(|(r, cause)| cause.as_ref().map(|cause| (r, cause)))
        .collect();
    if above.is_empty() {
        out += "No row ran faster than its roofline bound.\n";
    } else {
        out += "Each row marked † above, with why it could run faster than its bound.\n\n\
                | op | shape | variant | isa | threads | % roofline (limit) | cause |\n|---|---|---|---|---|---|---|\n";
        for (r, cause) in above {
            out += &format!(
                "| {} | {} | {} | {} | {} | {:.0} % ({}) | {cause} |\n",
                r.op,
                r.shape,
                r.variant,
                r.isa.name(),
                r.threads,
                r.percent(),
                r.roofline.limit.name()
            );
        }
    }
    out
}

/// Bytes in MB (1e6 bytes), or KB below a megabyte.
fn format_bytes(bytes: f64) -> String {
    if bytes >= 1e6 {
        format!("{:.1} MB", bytes / 1e6)
    } else {
        format!("{:.1} KB", bytes / 1e3)
    }
}

/// Schema 1, read for comparison with reports written before schema 2: rows stored their derived
/// values too, and their kinds, levels, verdicts and limits as strings.
mod v1 {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::{Kind, Level, Limit, Mode, Peer, PeerInfo, Roofline, Time, Verdict, VerifySummary};
    use crate::measure::probe::{Limits, Machine};
    use crate::measure::work::Work;

    #[derive(Deserialize)]
    pub struct Report {
        units: BTreeMap<String, String>,
        mode: String,
        machine: Machine,
        limits: Limits,
        verify: VerifySummary,
        peer: PeerInfo,
        rows: Vec<Row>,
    }

    #[derive(Deserialize)]
    struct Row {
        kind: String,
        op: String,
        shape: String,
        variant: String,
        isa: String,
        threads: usize,
        time_ns: Time,
        flops: f64,
        bytes: f64,
        tokens_per_s: Option<f64>,
        roofline: OldRoofline,
        verdict: String,
        max_error_ratio: Option<f64>,
        peer: Option<OldPeer>,
    }

    #[derive(Deserialize)]
    struct OldRoofline {
        bound_ns: f64,
        limit: String,
    }

    #[derive(Deserialize)]
    struct OldPeer {
        torch_ns: f64,
    }

    impl Report {
        /// The same report in schema 2; the rates it stored are dropped, as schema 2 derives them.
        pub fn upgrade(self) -> Result<super::Report, String> {
            let rows = self
                .rows
                .into_iter()
                .enumerate()
                .map(|(i, r)| r.upgrade().map_err(|e| format!("row {i}: {e}")))
                .collect::<Result<_, _>>()?;
            Ok(super::Report {
                schema: super::SCHEMA,
                units: self.units,
                mode: match self.mode.as_str() {
                    "quick" => Mode::Quick,
                    _ => Mode::Full,
                },
                machine: self.machine,
                limits: self.limits,
                verify: self.verify,
                peer: self.peer,
                parameters: None,
                plugins: Vec::new(),
                rows,
            })
        }
    }

    impl Row {
        fn upgrade(self) -> Result<super::Row, String> {
            let kind = match self.kind.as_str() {
                "op" => Kind::Op,
                "model" => Kind::Model,
                other => return Err(format!("kind `{other}` is neither op nor model")),
            };
            let isa = Level::from_name(&self.isa).ok_or_else(|| format!("isa `{}` is not a level", self.isa))?;
            let limit = Limit::from_name(&self.roofline.limit)
                .ok_or_else(|| format!("limit `{}` is not a limit", self.roofline.limit))?;
            let verdict = match self.verdict.as_str() {
                "pass" => Verdict::Pass,
                "fail" => Verdict::Fail,
                _ => Verdict::Unverified,
            };
            // Schema 1 stored tokens per second; the tokens of a call are that rate times its time.
            let tokens = self
                .tokens_per_s
                .map(|rate| (rate * self.time_ns.median / 1e9).round() as usize);
            Ok(super::Row {
                kind,
                op: self.op,
                shape: self.shape,
                variant: self.variant,
                isa,
                threads: self.threads,
                time_ns: self.time_ns,
                work: Work {
                    flops: self.flops,
                    bytes: self.bytes,
                    written: 0.0,
                },
                tokens,
                roofline: Roofline {
                    bound_ns: self.roofline.bound_ns,
                    limit,
                },
                verdict,
                max_error_ratio: self.max_error_ratio,
                peer: self.peer.map(|p| Peer {
                    median_ns: p.torch_ns,
                    interval_ns: None,
                }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Time;

    #[test]
    fn intervals_overlap_only_when_they_share_a_point() {
        let t = |lower, upper| Time {
            median: (lower + upper) / 2.0,
            lower,
            upper,
        };
        assert!(t(1.0, 2.0).overlaps(&t(1.5, 3.0)) && t(1.5, 3.0).overlaps(&t(1.0, 2.0)));
        assert!(t(1.0, 2.0).overlaps(&t(2.0, 3.0)), "touching ends overlap");
        assert!(t(1.0, 4.0).overlaps(&t(2.0, 3.0)), "one inside the other");
        assert!(!t(1.0, 2.0).overlaps(&t(2.5, 3.0)) && !t(2.5, 3.0).overlaps(&t(1.0, 2.0)));
    }
}
