//! Error metrics between an implementation's output and the golden one.

use ndarray::ArrayView2;
use serde::Serialize;

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
        // `!(d <= max)` also catches NaN, which then sticks.
        if !(d <= worst.max_abs) && !worst.max_abs.is_nan() {
            worst.max_abs = d;
            worst.at = at;
        }
    }
    worst.value = worst.max_abs / scale;
    worst
}
