//! Error metrics between an implementation's output and the golden one.

use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Deserializer, Serialize};

/// A float read back from JSON, where serde_json writes NaN (and the infinities) as `null`: `null`
/// is NaN again. Rows cross from a child process to its parent as JSON.
pub fn f64_or_nan<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// A list of floats read back from JSON, `null` as NaN ([`f64_or_nan`]).
pub fn f64s_or_nan<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
    let values = Vec::<Option<f64>>::deserialize(deserializer)?;
    Ok(values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// max |ours − golden| / max |golden|, and where the largest difference is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MaxRel {
    /// The relative error; NaN anywhere in `ours` makes it NaN (it never passes a bound).
    pub value: f64,
    /// The largest absolute difference.
    pub max_abs: f64,
    /// (row, column) of the largest absolute difference.
    pub at: (usize, usize),
}

/// The larger of two values, NaN once either is NaN (`f64::max` would drop it).
pub fn sticky_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

/// The relative error of `ours` against `golden` (same shape), scaled by the golden maximum.
pub fn max_rel(ours: &ArrayView2<f64>, golden: &ArrayView2<f64>) -> MaxRel {
    assert_eq!(ours.dim(), golden.dim(), "max_rel: shapes differ");
    let scale = golden.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let mut worst = MaxRel {
        value: 0.0,
        max_abs: 0.0,
        at: (0, 0),
    };
    for ((at, &o), &g) in ours.indexed_iter().zip(golden.iter()) {
        let d = (o - g).abs();
        // A NaN difference is the worst possible one and stays the maximum once found.
        if !worst.max_abs.is_nan() && (d.is_nan() || d > worst.max_abs) {
            worst.max_abs = d;
            worst.at = at;
        }
    }
    worst.value = worst.max_abs / scale;
    worst
}

/// How far a model's logits and next-token distributions are from the golden ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogitMetrics {
    /// max |ours − golden|.
    #[serde(deserialize_with = "f64_or_nan")]
    pub max_abs: f64,
    /// max |ours − golden| / max |golden|.
    #[serde(deserialize_with = "f64_or_nan")]
    pub max_rel: f64,
    /// Σ (ours − golden)² / Σ golden².
    #[serde(deserialize_with = "f64_or_nan")]
    pub nmse: f64,
    /// The fraction of positions whose argmax token agrees.
    #[serde(deserialize_with = "f64_or_nan")]
    pub top1: f64,
    /// The mean over positions of KL(golden ‖ ours) of the next-token distributions, in nats.
    #[serde(deserialize_with = "f64_or_nan")]
    pub kl_mean: f64,
    /// The largest of those KL divergences.
    #[serde(deserialize_with = "f64_or_nan")]
    pub kl_max: f64,
}

fn argmax_row(row: ndarray::ArrayView1<f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, &v) in row.iter().enumerate() {
        if v > best.1 || v.is_nan() {
            best = (i, v);
        }
    }
    best.0
}

/// The metrics of `logits` [T, V] and `probs` [T, V] (the model's own softmax of them) against the
/// golden float64 logits [T, V]; the golden distributions are the float64 softmax of the golden logits.
pub fn logit_metrics(logits: &ArrayView2<f64>, probs: &ArrayView2<f64>, golden: &ArrayView2<f64>) -> LogitMetrics {
    let rel = max_rel(logits, golden);
    let (mut err2, mut ref2) = (0.0, 0.0);
    for (&o, &g) in logits.iter().zip(golden) {
        err2 += (o - g) * (o - g);
        ref2 += g * g;
    }
    let rows = golden.nrows().max(1) as f64;
    let agree = logits
        .axis_iter(Axis(0))
        .zip(golden.axis_iter(Axis(0)))
        .filter(|(o, g)| argmax_row(*o) == argmax_row(*g))
        .count() as f64;
    let mut kl = Vec::with_capacity(golden.nrows());
    for (q, g) in probs.axis_iter(Axis(0)).zip(golden.axis_iter(Axis(0))) {
        let max = g.fold(f64::NEG_INFINITY, |m, &x| m.max(x));
        let sum: f64 = g.iter().map(|&x| (x - max).exp()).sum();
        let mut d = 0.0;
        for (&qi, &gi) in q.iter().zip(g) {
            let p = (gi - max).exp() / sum;
            if p > 0.0 {
                d += p * (p.ln() - qi.ln());
            }
        }
        kl.push(d);
    }
    let kl_max = kl.iter().copied().fold(0.0f64, sticky_max);
    LogitMetrics {
        max_abs: rel.max_abs,
        max_rel: rel.value,
        nmse: err2 / ref2,
        top1: agree / rows,
        kl_mean: kl.iter().sum::<f64>() / rows,
        kl_max,
    }
}

/// How far a softmax's probabilities are from the exact softmax of the logits it was given, each
/// element against its own bound (see [`probs_bound`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbsCheck {
    /// The largest error over bound; NaN when any probability is NaN.
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst: f64,
    /// |q − s| of that element.
    #[serde(deserialize_with = "f64_or_nan")]
    pub err: f64,
    /// Its bound.
    #[serde(deserialize_with = "f64_or_nan")]
    pub bound: f64,
    /// (row, column) of that element.
    pub at: (usize, usize),
}

/// The factor on the rounding budget of [`probs_bound`].
pub const PROBS_K: f64 = 4.0;
/// The units of roundoff an exp, the division and the final rounding may spend, in [`probs_bound`].
pub const PROBS_ULPS: f64 = 8.0;

/// The bound on |q_i − s_i| for a probability q_i that a float32 softmax computed from the logits
/// row `x` (s_i the exact softmax in float64): PROBS_K · u · (PROBS_ULPS + |x_i − max x| +
/// SUM_NOISE · √n) · s_i + the smallest normal float32. The argument x_i − max x is rounded to
/// u · |x_i − max x|, which exp turns into that relative error; the exp, the division and the store
/// round a few times more; the sum of n terms in any order drifts by a random walk of about √n
/// units. The absolute floor lets probabilities below the normal range flush to zero.
pub fn probs_bound(x_i: f64, max_x: f64, n: usize, s_i: f64) -> f64 {
    use crate::check::tolerance::{F32_UNIT_ROUNDOFF, SUM_NOISE};
    let units = PROBS_ULPS + (x_i - max_x).abs() + SUM_NOISE * (n as f64).sqrt();
    PROBS_K * F32_UNIT_ROUNDOFF * units * s_i + f64::from(f32::MIN_POSITIVE)
}

/// Checks `probs` [R, V], a softmax's output, against the float64 softmax of `logits` [R, V], the
/// float32 logits it was given.
pub fn probs_check(logits: &ArrayView2<f32>, probs: &ArrayView2<f32>) -> ProbsCheck {
    assert_eq!(logits.dim(), probs.dim(), "probs_check: shapes differ");
    let mut worst = ProbsCheck {
        worst: 0.0,
        err: 0.0,
        bound: 0.0,
        at: (0, 0),
    };
    for (r, (x, q)) in logits.axis_iter(Axis(0)).zip(probs.axis_iter(Axis(0))).enumerate() {
        let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let sum: f64 = x.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        for (i, (&xi, &qi)) in x.iter().zip(q).enumerate() {
            let xi = f64::from(xi);
            let s = (xi - max).exp() / sum;
            let err = (f64::from(qi) - s).abs();
            let bound = probs_bound(xi, max, x.len(), s);
            let ratio = err / bound;
            if !worst.worst.is_nan() && (ratio.is_nan() || ratio > worst.worst) {
                worst = ProbsCheck {
                    worst: ratio,
                    err,
                    bound,
                    at: (r, i),
                };
            }
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::max_rel;

    #[test]
    fn scales_by_the_golden_maximum_and_locates_the_worst_element() {
        let golden = array![[1.0, -4.0], [2.0, 0.5]];
        let ours = array![[1.0, -4.0], [2.2, 0.5]];
        let m = max_rel(&ours.view(), &golden.view());
        assert!((m.value - 0.2 / 4.0).abs() < 1e-15, "{m:?}");
        assert_eq!(m.at, (1, 0));
    }

    #[test]
    fn logit_metrics_of_an_exact_copy_are_zero_and_of_a_shift_are_not() {
        let softmax = |logits: &ndarray::Array2<f64>| {
            let mut probs = logits.mapv(f64::exp);
            for mut row in probs.rows_mut() {
                let sum = row.sum();
                row /= sum;
            }
            probs
        };
        let golden: ndarray::Array2<f64> = array![[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]];
        let m = super::logit_metrics(&golden.view(), &softmax(&golden).view(), &golden.view());
        assert!(m.max_abs == 0.0 && m.nmse == 0.0 && m.top1 == 1.0, "{m:?}");
        assert!(m.kl_max.abs() < 1e-15, "{m:?}");
        // Swapping the winner of row 0 changes top-1 agreement and the KL divergence of row 0 only.
        let swapped = array![[2.0, 1.0, 0.5], [0.0, -1.0, 3.0]];
        let m = super::logit_metrics(&swapped.view(), &softmax(&swapped).view(), &golden.view());
        assert_eq!(m.top1, 0.5);
        assert!((m.max_rel - 1.0 / 3.0).abs() < 1e-15, "{m:?}");
        assert!(m.kl_max > 0.1 && (m.kl_mean - m.kl_max / 2.0).abs() < 1e-15, "{m:?}");
    }

    #[test]
    fn nan_never_passes() {
        let golden = array![[1.0, 2.0, 3.0]];
        let ours = array![[f64::NAN, 2.0, 30.0]];
        let m = max_rel(&ours.view(), &golden.view());
        assert!(m.value.is_nan() && m.at == (0, 0), "{m:?}");
    }
}
