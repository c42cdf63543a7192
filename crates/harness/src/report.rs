//! Performance reports: the versioned JSON schema (the source of truth), reading criterion's
//! estimates back, the roofline of each row, and the Markdown and SVG renderings. Units are written
//! into the schema: times in nanoseconds, GB = 1e9 bytes, GFLOP = 1e9 FLOPs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::probe::{Limits, Machine};

/// The report schema this crate writes and reads.
pub const SCHEMA: u32 = 1;

/// Errors reading reports or criterion output, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
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

/// The roofline bound of a row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Roofline {
    /// The shortest possible time: max(FLOPs / peak, bytes / bandwidth), in nanoseconds.
    pub bound_ns: f64,
    /// What binds: `compute`, `l2` or `dram`.
    pub limit: String,
    /// bound / measured time, in percent (above 100 when the data stayed in a faster cache level
    /// between iterations than its size suggests).
    pub percent: f64,
}

/// The same work timed with PyTorch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Peer {
    /// PyTorch's median time, nanoseconds.
    pub torch_ns: f64,
    /// PyTorch's time over ours: above 1 means tkbench is faster.
    pub speedup: f64,
}

/// One measured row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// `op` or `model`.
    pub kind: String,
    /// The op name, or `prefill` / `decode` for the model.
    pub op: String,
    /// The shape, as `cargo xtask opcheck --shape` takes it (or tokens and cache for the model).
    pub shape: String,
    /// The variant (or kernel set).
    pub variant: String,
    /// The ISA level that ran: a level, `none` (plain Rust) or `library`.
    pub isa: String,
    /// Threads.
    pub threads: usize,
    /// The median time and its confidence interval.
    pub time_ns: Time,
    /// FLOPs of one call.
    pub flops: f64,
    /// Bytes of one call.
    pub bytes: f64,
    /// FLOPs / time, 1e9 per second.
    pub gflops: f64,
    /// Bytes / time, 1e9 per second.
    pub gb_per_s: f64,
    /// Tokens per second (model rows).
    pub tokens_per_s: Option<f64>,
    /// The scalar variant's time over this one, same shape (absent when scalar was not timed).
    pub speedup_vs_scalar: Option<f64>,
    /// The roofline bound.
    pub roofline: Roofline,
    /// `pass` or `fail`: the variant's op-level sweep at this level and its model-level verify row.
    pub verdict: String,
    /// The largest error over its bound in the op-level sweep (below 1 passes).
    pub max_error_ratio: Option<f64>,
    /// PyTorch on the same shape and thread count, when it was timed.
    pub peer: Option<Peer>,
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
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// The units of every number.
    pub units: BTreeMap<String, String>,
    /// `quick` or `full`.
    pub mode: String,
    /// The machine and the build.
    pub machine: Machine,
    /// The measured limits.
    pub limits: Limits,
    /// Model-level verification: rows run and rows failed.
    pub verify: VerifySummary,
    /// The PyTorch peer column.
    pub peer: PeerInfo,
    /// The rows.
    pub rows: Vec<Row>,
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
        ("flops", "floating-point operations of one call; an FMA is 2"),
        ("bytes", "compulsory bytes read and written by one call"),
        ("gflops", "1e9 FLOP per second"),
        ("gb_per_s", "1e9 bytes per second (GB = 1e9 bytes)"),
        ("tokens_per_s", "tokens per second"),
        ("percent", "roofline bound over measured time, in percent"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl Report {
    /// Reads and checks a report file: valid JSON, a known schema, every field present.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.to_owned(),
            source,
        })?;
        let bad = |message: String| ReportError::Format {
            path: path.to_owned(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON ({e}); is it a tkbench report?")))?;
        match value.get("schema").and_then(serde_json::Value::as_u64) {
            Some(s) if s == u64::from(SCHEMA) => {}
            Some(s) => {
                return Err(bad(format!(
                    "report schema {s} is not known; this tkbench reads schema {SCHEMA}"
                )));
            }
            None => return Err(bad("no `schema` field: not a tkbench report".into())),
        }
        serde_json::from_value(value).map_err(|e| bad(format!("malformed report: {e}")))
    }

    /// Writes the report as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a report serialises");
        write(path, &text)
    }
}

/// Writes `text` to `path`, creating the directory.
pub fn write(path: &Path, text: &str) -> Result<()> {
    let io = |source| ReportError::Io {
        path: path.to_owned(),
        source,
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
        let entries = std::fs::read_dir(&dir).map_err(|source| ReportError::Io {
            path: dir.clone(),
            source,
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
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
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

/// The roofline bound of `flops` and `bytes` on `threads` threads with the limits measured: the
/// bandwidth is that of the smallest cache level whose measured working set (per thread) holds the
/// bytes, else DRAM's.
pub fn roofline(limits: &Limits, flops: f64, bytes: f64, threads: usize, time_ns: f64) -> Roofline {
    let peak = limits.peak_gflops(threads);
    // The probe's working sets fill 60 % of each cache; a row fits a level when its bytes fit the cache.
    let fits = |b: &&crate::probe::Bandwidth| {
        b.threads == threads && bytes <= (b.working_set_bytes * threads as u64) as f64 / 0.6
    };
    let level = ["l1", "l2", "l3"]
        .into_iter()
        .find(|level| limits.bandwidth.iter().filter(|b| b.level == *level).any(|b| fits(&b)))
        .unwrap_or("dram");
    let bw = limits.gb_per_s(level, threads).unwrap_or(f64::NAN);
    let compute_ns = flops / peak;
    let memory_ns = bytes / bw;
    let (bound_ns, limit) = if compute_ns >= memory_ns {
        (compute_ns, "compute")
    } else {
        (memory_ns, level)
    };
    Roofline {
        bound_ns,
        limit: limit.into(),
        percent: 100.0 * bound_ns / time_ns,
    }
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
    let caches: Vec<String> = m
        .caches
        .iter()
        .map(|c| format!("L{} {} {} KiB", c.level, c.kind, c.bytes / 1024))
        .collect();
    out += &format!("- caches: {}\n", caches.join(", "));
    if !m.transparent_huge_pages.is_empty() {
        out += &format!("- transparent huge pages: {}\n", m.transparent_huge_pages);
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
        report.mode,
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
    }
    let mut ops: Vec<&str> = report.rows.iter().map(|r| r.op.as_str()).collect();
    ops.dedup();
    for op in ops {
        out += &format!(
            "\n## {op}\n\n| shape | variant | isa | threads | time (95 % CI) | GFLOP/s | GB/s | × scalar | % roofline (limit) | × PyTorch | verdict |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
        );
        for r in report.rows.iter().filter(|r| r.op == op) {
            let speedup = r.speedup_vs_scalar.map_or("—".into(), |s| format!("{s:.1}"));
            let peer = r.peer.as_ref().map_or("—".into(), |p| format!("{:.2}", p.speedup));
            let verdict = match r.max_error_ratio {
                Some(e) => format!("{} (err/bound {e:.2})", r.verdict),
                None => r.verdict.clone(),
            };
            out += &format!(
                "| {} | {} | {} | {} | {} ({}–{}) | {:.1} | {:.1} | {speedup} | {:.0} % ({}) | {peer} | {verdict} |\n",
                r.shape,
                r.variant,
                r.isa,
                r.threads,
                format_time(r.time_ns.median),
                format_time(r.time_ns.lower),
                format_time(r.time_ns.upper),
                r.gflops,
                r.gb_per_s,
                r.roofline.percent,
                r.roofline.limit,
            );
        }
    }
    out
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
