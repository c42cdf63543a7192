//! Model-level verification: every kernel set in a whole GPT-2 against the golden logits of every
//! case, fed in the case's steps through the KV cache. Rows are the reference model in float64 and
//! float32, the all-scalar kernel set, the fastest set, and the fastest set with each other variant in
//! its op's place, each at every ISA level it can run at. The logits and hidden states are held to
//! the case's bound, and the softmax's probabilities to a bound of their own against the exact
//! softmax of the logits it was given. A failing row names the first hidden state out of budget and
//! the op whose return to scalar brings it back, with a command that replays the row.

use std::time::Instant;

use tkbench_reference::Family;

use crate::check::golden::{AnyCheckpoint, Case, GoldenError, rows_in_call};
use crate::check::metrics::{LogitMetrics, ProbsCheck, logit_metrics, max_rel, probs_check};
use crate::model::{AnyWeights, family_ops};
use crate::registry::{KernelSet, Registry};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use tkbench_kernels::Isa;

/// What one row runs.
#[derive(Debug, Clone)]
pub enum Subject {
    /// The reference model in float64.
    ReferenceF64,
    /// The reference model in float32.
    ReferenceF32,
    /// A kernel set at a level.
    Kernels(KernelSet, Isa),
}

/// Which rows to run.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only rows that substitute a variant of the op of this name (and the fastest set).
    pub op: Option<String>,
    /// Only rows whose substituted variant has this name (`scalar` keeps the all-scalar set,
    /// `fastest` the fastest set, `reference` the reference model).
    pub variant: Option<String>,
    /// Only this ISA level (rows that do not depend on the level are kept).
    pub isa: Option<Isa>,
    /// Exactly this kernel set instead of the plan.
    pub kernels: Option<KernelSet>,
}

/// The rows of the plan for the variants of `registry` on a case of `family`, filtered: a variant
/// of an op the family's model never calls would only run the fastest set again.
pub fn plan(registry: &Registry, filter: &Filter, family: Family) -> Vec<Subject> {
    let levels = |dispatches: bool| -> Vec<Isa> {
        match (dispatches, filter.isa) {
            (false, _) => vec![Isa::Scalar],
            (true, Some(isa)) => vec![isa],
            (true, None) => Isa::available(),
        }
    };
    if let Some(set) = &filter.kernels {
        return levels(set.dispatches())
            .into_iter()
            .map(|isa| Subject::Kernels(set.clone(), isa))
            .collect();
    }
    let wants_name = |name: &str| filter.variant.as_deref().is_none_or(|v| v == name);
    let mut rows = Vec::new();
    if filter.op.is_none() && wants_name("reference") {
        rows.push(Subject::ReferenceF64);
        rows.push(Subject::ReferenceF32);
    }
    if filter.op.is_none() && wants_name("scalar") {
        rows.push(Subject::Kernels(KernelSet::scalar(registry), Isa::Scalar));
    }
    // Each variant beside the fastest set's (and the all-scalar set's, which its own row covers)
    // runs in the fastest set: a long case then costs a fast variant's time, not a scalar one's. A
    // second scalar variant, such as an outside crate's, gets a row of its own this way.
    let fastest = KernelSet::fastest(registry);
    let scalar = KernelSet::scalar(registry);
    let used = family_ops(family);
    for v in registry
        .entries()
        .filter(|v| !scalar.get(v.op).same(v) && used.contains(&v.op))
    {
        if filter.op.as_deref().is_some_and(|op| op != v.op) || !wants_name(v.name) || fastest.get(v.op).same(v) {
            continue;
        }
        let set = fastest.clone().with(v);
        for isa in levels(set.dispatches()) {
            rows.push(Subject::Kernels(set.clone(), isa));
        }
    }
    if wants_name("fastest") {
        for isa in levels(true) {
            rows.push(Subject::Kernels(KernelSet::fastest(registry), isa));
        }
    }
    rows
}

/// One row of the verification table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// The golden case.
    pub case: String,
    /// `reference-f64`, `reference-f32`, or the kernel set's spec.
    pub kernels: String,
    /// The ISA level that ran (`none` when it does not apply, `library` when a library chose).
    pub isa: String,
    /// Logit and distribution metrics against golden.
    pub metrics: LogitMetrics,
    /// The softmax kernel's probabilities against the exact softmax of the logits it was given
    /// (none for the reference model, whose softmax is not a kernel).
    pub probs: Option<ProbsCheck>,
    /// max |ours − golden| / max |golden| of every hidden state.
    #[serde(deserialize_with = "crate::check::metrics::f64s_or_nan")]
    pub hidden_max_rel: Vec<f64>,
    /// The bound on max_rel of the logits and of every hidden state (from the case manifest).
    #[serde(deserialize_with = "crate::check::metrics::f64_or_nan")]
    pub bound: f64,
    /// Where the bound comes from.
    pub rationale: String,
    /// Whether the row is within its bound.
    pub pass: bool,
    /// For a failure: the first hidden state out of budget and the op that takes it there.
    pub diagnosis: Option<String>,
    /// The command that replays this row.
    pub replay: String,
    /// Wall time of the row, in seconds.
    pub seconds: f64,
}

/// Names hidden-state index `i` of an `n_layer` model.
pub fn hidden_name(i: usize, n_layer: usize) -> String {
    match i {
        0 => "hidden state 0 (the embeddings)".into(),
        i if i == n_layer => format!("hidden state {i} (the final norm of the last block)"),
        i => format!("hidden state {i} (output of block {})", i - 1),
    }
}

/// The first hidden state whose error is above `bound` or NaN.
pub fn first_out_of_budget(hidden: &[f64], bound: f64) -> Option<usize> {
    hidden.iter().position(|&e| e.is_nan() || e > bound)
}

/// Runs a kernel set through the case's steps and returns its logits metrics, hidden-state errors
/// and the check of its probabilities.
fn run_kernels(
    case: &Case,
    weights: &AnyWeights<'_>,
    set: &KernelSet,
    isa: Isa,
    threads: usize,
) -> Result<(LogitMetrics, Vec<f64>, ProbsCheck), GoldenError> {
    let m = &case.manifest;
    let (v, c) = (m.config.vocab_size(), m.config.width());
    let model = weights.model(set, isa, threads);
    let mut cache = model.new_cache();
    let (mut logits, mut probs) = (Vec::new(), Vec::new());
    let mut hidden = vec![Vec::new(); m.config.n_layer() + 1];
    for (p0, len) in m.calls() {
        let logit_rows = rows_in_call(&m.logit_positions, p0, len);
        let out = model.forward_cached_rows(&m.tokens[p0..p0 + len], &mut cache, &logit_rows)?;
        logits.extend(out.logits);
        probs.extend(out.probs);
        for (all, state) in hidden.iter_mut().zip(&out.hidden) {
            for r in rows_in_call(&m.hidden_positions, p0, len) {
                all.extend_from_slice(&state[r * c..][..c]);
            }
        }
    }
    let view = |data: &[f32], cols: usize| {
        ArrayView2::from_shape((data.len() / cols, cols), data)
            .expect("whole rows")
            .to_owned()
    };
    let (logits, probs) = (view(&logits, v), view(&probs, v));
    let metrics = logit_metrics(
        &logits.mapv(f64::from).view(),
        &probs.mapv(f64::from).view(),
        &case.logits.view(),
    );
    let hidden = hidden
        .iter()
        .zip(&case.hidden_states)
        .map(|(ours, golden)| max_rel(&view(ours, c).mapv(f64::from).view(), &golden.view()).value)
        .collect();
    Ok((metrics, hidden, probs_check(&logits.view(), &probs.view())))
}

/// Verifies every subject on one case, calling `progress` after each row.
pub fn verify_case(
    case: &Case,
    checkpoint: &AnyCheckpoint,
    subjects: &[Subject],
    threads: usize,
    mut progress: impl FnMut(&Row),
) -> Result<Vec<Row>, GoldenError> {
    let registry = Registry::builtin();
    let weights = AnyWeights::new(checkpoint);
    let tol = &case.manifest.tolerances;
    let n_layer = case.manifest.config.n_layer();
    let mut rows = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let start = Instant::now();
        let (kernels, isa, bound, rationale, (metrics, hidden, probs)) = match subject {
            Subject::ReferenceF64 | Subject::ReferenceF32 => {
                let f64_run = matches!(subject, Subject::ReferenceF64);
                let (logits, hidden) = if f64_run {
                    checkpoint.run_reference::<f64>(case)?
                } else {
                    checkpoint.run_reference::<f32>(case)?
                };
                let probs = tkbench_reference::ops::softmax_rows(&logits.view());
                let metrics = logit_metrics(&logits.view(), &probs.view(), &case.logits.view());
                let hidden = hidden
                    .iter()
                    .zip(&case.hidden_states)
                    .map(|(o, g)| max_rel(&o.view(), &g.view()).value)
                    .collect();
                let (name, t) = if f64_run {
                    ("reference-f64", &tol.f64_max_rel)
                } else {
                    ("reference-f32", &tol.f32_max_rel)
                };
                (
                    name.to_owned(),
                    "none".to_owned(),
                    t.value,
                    t.rationale.clone(),
                    (metrics, hidden, None),
                )
            }
            Subject::Kernels(set, isa) => {
                let label = if set.dispatches() {
                    isa.name().to_owned()
                } else if set.has_library() {
                    "library".to_owned()
                } else {
                    "none".to_owned()
                };
                let t = &tol.f32_max_rel;
                (set.spec(), label, t.value, t.rationale.clone(), {
                    let (metrics, hidden, probs) = run_kernels(case, &weights, set, *isa, threads)?;
                    (metrics, hidden, Some(probs))
                })
            }
        };
        let states_pass = metrics.max_rel <= bound && hidden.iter().all(|&e| e <= bound);
        let pass = states_pass && probs.is_none_or(|p| p.worst <= 1.0);
        let isa_arg = if isa == "none" || isa == "library" {
            String::new()
        } else {
            format!(" --isa {isa}")
        };
        let replay = match subject {
            Subject::Kernels(..) => format!("cargo xtask verify --case {} --kernels {kernels}{isa_arg}", case.name()),
            _ => format!("cargo xtask verify --case {} --variant reference", case.name()),
        };
        let diagnosis = if pass {
            None
        } else {
            let mut parts = Vec::new();
            if let (Some(p), Subject::Kernels(set, _)) = (probs, subject)
                && (p.worst > 1.0 || p.worst.is_nan())
            {
                parts.push(format!(
                    "probabilities out of budget: at position {} token {} they are {:.3e} from the exact softmax of the logits the softmax was given, bound {:.3e}: the softmax variant `{}` is at fault",
                    case.manifest.logit_positions[p.at.0],
                    p.at.1,
                    p.err,
                    p.bound,
                    set.get("softmax").name
                ));
            }
            if !states_pass {
                parts.push(diagnose(
                    case, &weights, &registry, subject, &hidden, bound, n_layer, threads,
                )?);
            }
            Some(parts.join("; "))
        };
        let row = Row {
            case: case.name().to_owned(),
            kernels,
            isa,
            metrics,
            probs,
            hidden_max_rel: hidden,
            bound,
            rationale,
            pass,
            diagnosis,
            replay,
            seconds: start.elapsed().as_secs_f64(),
        };
        progress(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// Names the first hidden state out of budget and, for a kernel set, the op whose return to its scalar
/// variant brings that hidden state back within budget.
#[allow(clippy::too_many_arguments)]
fn diagnose(
    case: &Case,
    weights: &AnyWeights<'_>,
    registry: &Registry,
    subject: &Subject,
    hidden: &[f64],
    bound: f64,
    n_layer: usize,
    threads: usize,
) -> Result<String, GoldenError> {
    let Some(first) = first_out_of_budget(hidden, bound) else {
        return Ok(
            "every hidden state is within budget; the LM head (matmul by wte) or the final softmax leaves it".into(),
        );
    };
    let mut text = format!(
        "first out of budget: {} at {:.3e}",
        hidden_name(first, n_layer),
        hidden[first]
    );
    if let Subject::Kernels(set, isa) = subject {
        let scalar = KernelSet::scalar(registry);
        let used = family_ops(case.manifest.family);
        let suspects = set
            .entries()
            .iter()
            .filter(|e| !scalar.get(e.op).same(e) && used.contains(&e.op));
        for suspect in suspects {
            let op = suspect.op;
            let reverted_set = set.clone().with(scalar.get(op));
            let (_, reverted, _) = run_kernels(case, weights, &reverted_set, *isa, threads)?;
            if reverted[first] <= bound {
                text += &format!(
                    "; with {op} back to scalar it is {:.3e}: the {op} variant `{}` is at fault",
                    reverted[first], suspect.name
                );
                return Ok(text);
            }
        }
        text += "; no single op back to scalar brings it within budget";
    }
    Ok(text)
}

/// Renders rows as the terminal table.
pub fn render_table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<18} {:<30} {:<8} {:>9} {:>9} {:>9} {:>5} {:>9} {:>9} {:>9} {:>6}  verdict\n",
        "case", "kernels", "isa", "max rel", "max abs", "nmse", "top1", "kl mean", "kl max", "bound", "p e/b"
    );
    for r in rows {
        let m = &r.metrics;
        let probs = r.probs.map_or("—".to_owned(), |p| format!("{:.2}", p.worst));
        out += &format!(
            "{:<18} {:<30} {:<8} {:>9.2e} {:>9.2e} {:>9.2e} {:>5.2} {:>9.2e} {:>9.2e} {:>9.2e} {:>6}  {}\n",
            r.case,
            r.kernels,
            r.isa,
            m.max_rel,
            m.max_abs,
            m.nmse,
            m.top1,
            m.kl_mean,
            m.kl_max,
            r.bound,
            probs,
            if r.pass { "pass" } else { "FAIL" }
        );
        if let Some(d) = &r.diagnosis {
            out += &format!("  {d}\n  replay: {}\n", r.replay);
        }
    }
    let failed = rows.iter().filter(|r| !r.pass).count();
    out += &format!("{} of {} rows pass\n", rows.len() - failed, rows.len());
    out
}

/// Renders rows as JSON.
pub fn render_json(rows: &[Row]) -> String {
    serde_json::to_string_pretty(rows).expect("rows serialise")
}
