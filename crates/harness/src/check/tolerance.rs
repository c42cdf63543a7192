//! The error bounds of the op checks: the rules an op's definition picks from (each op states its
//! rule and rationale in its module under `ops`). A variant passes when every output element is
//! within its bound of the float64 reference.

/// The f32 unit roundoff, 2⁻²⁴: the largest relative error of one correctly rounded operation.
pub const F32_UNIT_ROUNDOFF: f64 = 5.960_464_477_539_063e-8;

/// How the bound of one op is derived.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// |out − ref| ≤ u · |ref| per element: one correctly rounded f32 operation per output.
    CorrectlyRounded,
    /// |out − ref| ≤ γ(n) · (Σ_p |a_ip| |b_pj| + |bias_j|) per element, γ(n) = n·u / (1 − n·u) with
    /// n the terms of the dot product (K + 1 with a bias): the worst-case bound of any summation
    /// order (Higham, Accuracy and Stability of Numerical Algorithms, §3.1).
    DotProduct,
    /// |out − ref| ≤ k · max(e_plain, SUM_NOISE · √n · u · max |ref|) + ulps · u · max |ref|, where
    /// e_plain is the largest error of a plain float32 implementation (the reference ops run in f32)
    /// on the same input and n the length of the op's reduction ([`crate::ops::Reference::terms`]):
    /// a variant may be a few times less accurate than the obvious f32 code (a polynomial exp,
    /// another summation order). The rounding error of an n-term sum in one order is a random walk
    /// of about √n / 3 units of roundoff of the sum, so one plain sample can be many times below
    /// what a sum in another order makes; e_plain is floored at half √n · u of the output's scale, or
    /// of the op's conditioning when that is larger ([`crate::ops::Reference::conditioning`]: a
    /// large common offset or outlier channels make the sums' roundings larger than the output), so
    /// that the bound does not rest on that sample's luck. The ulps floor covers the remaining
    /// inputs on which the plain code happens to be nearly exact.
    PlainF32 {
        /// The factor on the plain float32 error.
        k: f64,
        /// The floor, in f32 units of roundoff of the output's scale.
        ulps: f64,
    },
}

/// The floor on the plain float32 error of [`Rule::PlainF32`], in units of √n · u · max |ref|.
pub const SUM_NOISE: f64 = 0.5;
