//! SwiGLU, the gate of Llama's MLP: `out[r, i] = silu(x[r, i]) · x[r, I + i]` with
//! `silu(g) = g / (1 + e^(−g))`, each row of x holding the gate projection's I outputs and then the
//! up projection's I (one matmul against the two weights side by side gives that row).
//!
//! Shapes: x [R, 2I], out [R, I]. Special values, as the formula in IEEE arithmetic: a NaN gate or
//! up gives NaN; a gate of +inf gives up · inf (NaN where up is 0); a gate of −inf gives NaN
//! (−inf / inf); a large negative gate gives ±0. No blocked variant: an elementwise op has no reuse
//! to block for.
//!
//! Variants: [`scalar`] (the formula with libm exp), [`simd`] (pulp, with the vector exp).

pub mod scalar;
pub mod simd;

use crate::Isa;
use crate::registry::Variant;

/// swiglu(dims, x [R, 2I], out [R, I], isa).
pub type SwigluFn = fn(&SwigluDims, &[f32], &mut [f32], Isa);

/// Every variant of swiglu, one line per variant file.
pub static VARIANTS: &[Variant<SwigluFn>] = &[
    crate::variant!(swiglu, scalar, Scalar, Plain),
    crate::variant!(swiglu, simd, Simd, Dispatch),
];

/// The fastest variant on long inputs: the one the `fastest` kernel set takes.
pub const FASTEST: &str = "simd";

/// The sizes of one SwiGLU call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwigluDims {
    /// R: rows.
    pub rows: usize,
    /// I: outputs per row (x has 2I per row).
    pub width: usize,
}

impl SwigluDims {
    /// Asserts the contract: slice lengths match the dims.
    pub fn check(&self, x: &[f32], out: &[f32]) {
        let (r, i) = (self.rows, self.width);
        assert_eq!(x.len(), r * 2 * i, "swiglu: x is not [R = {r}, 2I = {}]", 2 * i);
        assert_eq!(out.len(), r * i, "swiglu: out is not [R = {r}, I = {i}]");
    }
}
