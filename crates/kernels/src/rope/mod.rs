//! Rotary position embedding in Hugging Face's rotate-half convention: within each head of a row,
//! channel i pairs with channel i + HS/2, and the pair (a, b) of the row at position p becomes
//! `(a · cos[p, i] − b · sin[p, i], b · cos[p, i] + a · sin[p, i])`. The tables hold the cosines
//! and sines of the angles p · θ^(−2i/HS); the caller computes them (in float64, rounded once).
//!
//! Shapes: x [T, NH · HS], cos and sin [P, HS/2] with P ≥ pos0 + T, out [T, NH · HS]; row t is at
//! position pos0 + t. Applied to the queries (NH heads) and to the keys (NKV heads) of a call. Special
//! values, as the formula in IEEE arithmetic: NaN in a or b makes both outputs of the pair NaN; an
//! infinite a or b gives an infinite output, or NaN where it meets a sine of 0 or an opposite
//! infinity. No blocked variant: each element is read once and the tables' rows are reused by every
//! head already.
//!
//! Variants: [`scalar`] (the formula pair by pair), [`simd`] (pulp, a run of pairs per vector).

pub mod scalar;
pub mod simd;

use crate::Isa;
use crate::registry::Variant;

/// rope(dims, x [T, NH · HS], cos [P, HS/2], sin [P, HS/2], out [T, NH · HS], isa).
pub type RopeFn = fn(&RopeDims, &[f32], &[f32], &[f32], &mut [f32], Isa);

/// Every variant of rope, one line per variant file.
pub static VARIANTS: &[Variant<RopeFn>] = &[
    crate::variant!(rope, scalar, Scalar, Plain),
    crate::variant!(rope, simd, Simd, Dispatch),
];

/// The fastest variant on long inputs: the one the `fastest` kernel set takes.
pub const FASTEST: &str = "simd";

/// The sizes of one rotary-embedding call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RopeDims {
    /// T: rows.
    pub rows: usize,
    /// The position of the first row.
    pub pos0: usize,
    /// NH: heads per row.
    pub heads: usize,
    /// HS: channels per head, even.
    pub head_size: usize,
}

impl RopeDims {
    /// NH · HS: floats per row.
    pub fn width(&self) -> usize {
        self.heads * self.head_size
    }

    /// The call for rows `rows` of this one (a thread's block): they keep their positions.
    pub fn rows(&self, rows: core::ops::Range<usize>) -> RopeDims {
        RopeDims {
            rows: rows.len(),
            pos0: self.pos0 + rows.start,
            ..*self
        }
    }

    /// Asserts the contract: HS even, slice lengths match the dims, the tables reach the last row.
    pub fn check(&self, x: &[f32], cos: &[f32], sin: &[f32], out: &[f32]) {
        let (t, w, hs) = (self.rows, self.width(), self.head_size);
        assert!(hs.is_multiple_of(2), "rope: head_size = {hs} is odd");
        assert_eq!(x.len(), t * w, "rope: x is not [T = {t}, NH · HS = {w}]");
        assert_eq!(out.len(), t * w, "rope: out is not [T = {t}, NH · HS = {w}]");
        assert_eq!(cos.len(), sin.len(), "rope: cos and sin tables differ in length");
        let half = hs / 2;
        if half > 0 {
            assert!(
                cos.len().is_multiple_of(half) && cos.len() / half >= self.pos0 + t,
                "rope: the tables ({} floats) are not [P ≥ {}, HS/2 = {half}]",
                cos.len(),
                self.pos0 + t
            );
        }
    }
}
