//! GELU, the tanh approximation GPT-2 uses (`gelu_new`):
//! `gelu(x) = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`, elementwise.
//!
//! Shapes: x [N], out [N]. Special values, as PyTorch: NaN → NaN, +inf → +inf, −inf → NaN
//! (−inf · 0). No blocked variant: an elementwise op has no reuse to block for.
//!
//! Variants: [`scalar`] (the formula with libm tanh), [`simd`] (pulp, as x / (1 + e^(−2u)) with the
//! vector exp).

pub mod scalar;
pub mod simd;

use crate::Isa;
use crate::registry::Variant;

/// gelu(x [N], out [N], isa).
pub type GeluFn = fn(&[f32], &mut [f32], Isa);

/// Every variant of gelu, one line per variant file.
pub static VARIANTS: &[Variant<GeluFn>] = &[
    crate::variant!(gelu, scalar, Scalar, Plain),
    crate::variant!(gelu, simd, Simd, Dispatch),
];

/// The fastest variant on long inputs, as the benches measure it (PERFORMANCE.md): the one the
/// `fastest` kernel set takes.
pub const FASTEST: &str = "simd";

/// Asserts the contract: input and output lengths match.
pub fn check(x: &[f32], out: &[f32]) {
    assert_eq!(
        x.len(),
        out.len(),
        "gelu: x has {} elements but out has {}",
        x.len(),
        out.len()
    );
}
