//! RMSNorm over rows: `out[r] = x[r] / √(mean(x[r]²) + eps) · gamma`, with no mean subtracted and
//! no shift, as Llama (and PyTorch's `F.rms_norm`) computes it.
//!
//! Shapes: x [R, C], gamma [C], out [R, C]. Special values: NaN anywhere in a row makes that whole
//! output row NaN; ±inf in a row makes its mean square infinite and its scale 0, so that element's
//! output is NaN (inf · 0) and the row's finite elements give ±0. Other rows are unaffected. A row of
//! zeros gives zeros (eps keeps the scale finite).
//!
//! Variants: [`scalar`] (two passes), [`simd`] (pulp, a vector sum of squares and one fused scale),
//! [`blocked`] (several rows per pass, gamma loaded once for all of them).

pub mod blocked;
pub mod scalar;
pub mod simd;

use crate::Isa;
use crate::registry::Variant;

/// rmsnorm(dims, x [R, C], gamma [C], out [R, C], isa).
pub type RmsNormFn = fn(&RmsNormDims, &[f32], &[f32], &mut [f32], Isa);

/// Every variant of rmsnorm, one line per variant file.
pub static VARIANTS: &[Variant<RmsNormFn>] = &[
    crate::variant!(rmsnorm, scalar, Scalar, Plain),
    crate::variant!(rmsnorm, simd, Simd, Dispatch, tiles),
    crate::variant!(rmsnorm, blocked, Blocked, Dispatch, tiles),
];

/// The fastest variant on long inputs: the one the `fastest` kernel set takes.
pub const FASTEST: &str = "simd";

/// The sizes of one RMSNorm call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsNormDims {
    /// R: rows.
    pub rows: usize,
    /// C: channels per row.
    pub channels: usize,
    /// Added to the mean square.
    pub eps: f32,
}

impl RmsNormDims {
    /// Asserts the contract: slice lengths match the dims, eps is positive.
    pub fn check(&self, x: &[f32], gamma: &[f32], out: &[f32]) {
        let (r, c) = (self.rows, self.channels);
        assert_eq!(x.len(), r * c, "rmsnorm: x is not [R = {r}, C = {c}]");
        assert_eq!(out.len(), r * c, "rmsnorm: out is not [R = {r}, C = {c}]");
        assert_eq!(gamma.len(), c, "rmsnorm: gamma is not [C = {c}]");
        assert!(self.eps > 0.0, "rmsnorm: eps must be positive, got {}", self.eps);
    }
}
