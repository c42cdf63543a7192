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
        // A NaN difference is the worst possible one and stays the maximum once found.
        if !worst.max_abs.is_nan() && (d.is_nan() || d > worst.max_abs) {
            worst.max_abs = d;
            worst.at = at;
        }
    }
    worst.value = worst.max_abs / scale;
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
    fn nan_never_passes() {
        let golden = array![[1.0, 2.0, 3.0]];
        let ours = array![[f64::NAN, 2.0, 30.0]];
        let m = max_rel(&ours.view(), &golden.view());
        assert!(m.value.is_nan() && m.at == (0, 0), "{m:?}");
    }
}
