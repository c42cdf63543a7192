//! LayerNorm over rows: `out[r] = (x[r] − mean) / √(var + eps) · gamma + beta`, with the biased
//! variance, as GPT-2 (and PyTorch) computes it.
//!
//! Shapes: x [R, C], gamma [C], beta [C], out [R, C]. NaN or infinity anywhere in a row makes that
//! whole output row NaN (its mean is then NaN or infinity); other rows are unaffected. A constant row
//! has variance 0 and gives `beta` exactly up to rounding of (x − mean), which is 0.
//!
//! Variants: [`scalar`] (two passes), [`simd`] (pulp, fused scale and shift), [`blocked`] (several
//! rows per pass, gamma and beta loaded once for all of them).

pub mod blocked;
pub mod scalar;
pub mod simd;

use crate::Isa;
use crate::registry::Variant;

/// layernorm(dims, x [R, C], gamma [C], beta [C], out [R, C], isa).
pub type LayerNormFn = fn(&LayerNormDims, &[f32], &[f32], &[f32], &mut [f32], Isa);

/// Every variant of layernorm, one line per variant file.
pub static VARIANTS: &[Variant<LayerNormFn>] = &[
    crate::variant!(layernorm, scalar, Scalar, Plain),
    crate::variant!(layernorm, simd, Simd, Dispatch, tiles),
    crate::variant!(layernorm, blocked, Blocked, Dispatch, tiles),
];

/// The fastest variant on long inputs, as the benches measure it (PERFORMANCE.md): the one the
/// `fastest` kernel set takes.
pub const FASTEST: &str = "simd";

/// The sizes of one LayerNorm call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormDims {
    /// R: rows.
    pub rows: usize,
    /// C: channels per row.
    pub channels: usize,
    /// Added to the variance.
    pub eps: f32,
}

impl LayerNormDims {
    /// Asserts the contract: slice lengths match the dims, eps is positive.
    pub fn check(&self, x: &[f32], gamma: &[f32], beta: &[f32], out: &[f32]) {
        let (r, c) = (self.rows, self.channels);
        assert_eq!(x.len(), r * c, "layernorm: x is not [R = {r}, C = {c}]");
        assert_eq!(out.len(), r * c, "layernorm: out is not [R = {r}, C = {c}]");
        assert_eq!(gamma.len(), c, "layernorm: gamma is not [C = {c}]");
        assert_eq!(beta.len(), c, "layernorm: beta is not [C = {c}]");
        assert!(self.eps > 0.0, "layernorm: eps must be positive, got {}", self.eps);
    }
}
