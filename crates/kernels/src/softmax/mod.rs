//! Softmax over rows, numerically stable: `out[r, j] = exp(x[r, j] − max_r) / Σ_k exp(x[r, k] − max_r)`.
//!
//! Shapes: x [R, N], out [R, N]. Contract on special values: −inf entries get probability 0 (this is
//! how a mask is applied); a row holding NaN or +inf, or only −inf, gives an all-NaN row, as PyTorch
//! does; other rows are unaffected. Rows of length N = 0 are empty and allowed.
//!
//! Variants: [`scalar`] (max, exp-sum, normalize), [`simd`] (the same three passes with pulp and a
//! vector exp, each row's max taken in the previous row's exp pass), [`blocked`] (online: one read pass keeps a running max and a rescaled running sum,
//! then one pass writes).

pub mod blocked;
pub mod scalar;
pub mod simd;

use crate::Isa;
use crate::registry::Variant;

/// softmax(dims, x [R, N], out [R, N], isa).
pub type SoftmaxFn = fn(&SoftmaxDims, &[f32], &mut [f32], Isa);

/// Every variant of softmax, one line per variant file.
pub static VARIANTS: &[Variant<SoftmaxFn>] = &[
    crate::variant!(softmax, scalar, Scalar, Plain),
    crate::variant!(softmax, simd, Simd, Dispatch, tiles),
    crate::variant!(softmax, blocked, Blocked, Dispatch, tiles),
];

/// The fastest variant on long inputs, as the benches measure it (PERFORMANCE.md): the one the
/// `fastest` kernel set takes.
pub const FASTEST: &str = "simd";

/// The sizes of one softmax call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxDims {
    /// R: rows.
    pub rows: usize,
    /// N: entries per row.
    pub cols: usize,
}

impl SoftmaxDims {
    /// Asserts the contract: slice lengths match the dims.
    pub fn check(&self, x: &[f32], out: &[f32]) {
        let (r, n) = (self.rows, self.cols);
        assert_eq!(x.len(), r * n, "softmax: x is not [R = {r}, N = {n}]");
        assert_eq!(out.len(), r * n, "softmax: out is not [R = {r}, N = {n}]");
    }
}
