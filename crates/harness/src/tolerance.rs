//! The error bounds of the op checks: one named rule per op, each with its rationale. A variant passes
//! when every output element is within its bound of the float64 reference.

use tkbench_kernels::Op;

/// The f32 unit roundoff, 2⁻²⁴: the largest relative error of one correctly rounded operation.
pub const F32_UNIT_ROUNDOFF: f64 = 5.960_464_477_539_063e-8;

/// How the bound of one op is derived.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// |out − ref| ≤ u · |ref| per element: one correctly rounded f32 operation per output.
    CorrectlyRounded,
    /// |out − ref| ≤ γ(K + 1) · (Σ_p |a_ip| |b_pj| + |bias_j|) per element, γ(n) = n·u / (1 − n·u):
    /// the worst-case bound of any summation order of a dot product of length K plus a bias
    /// (Higham, Accuracy and Stability of Numerical Algorithms, §3.1).
    DotProduct,
    /// |out − ref| ≤ k · e_plain + ulps · u · max |ref|, where e_plain is the largest error of a plain
    /// float32 implementation (the reference ops run in f32) on the same input: a variant may be a
    /// few times less accurate than the obvious f32 code (a polynomial exp, another summation order),
    /// and the floor covers inputs on which the plain code happens to be nearly exact.
    PlainF32 {
        /// The factor on the plain float32 error.
        k: f64,
        /// The floor, in f32 units of roundoff of the output's scale.
        ulps: f64,
    },
}

/// The rule of each op, and why.
pub fn rule(op: Op) -> (Rule, &'static str) {
    match op {
        Op::Embedding => (
            Rule::CorrectlyRounded,
            "each output is one f32 addition of two table entries, correctly rounded in every variant",
        ),
        Op::Matmul => (
            Rule::DotProduct,
            "a K-term dot product plus a bias, in any order: the classical worst-case bound γ(K+1)·|A||B|",
        ),
        Op::LayerNorm => (
            Rule::PlainF32 { k: 4.0, ulps: 16.0 },
            "two C-term reductions and a normalisation: 4x the plain f32 error, floor 16 ulps of the output scale",
        ),
        Op::Softmax => (
            Rule::PlainF32 { k: 4.0, ulps: 16.0 },
            "a vector exp of a few ulps and an N-term sum in another order: 4x the plain f32 error, floor 16 ulps",
        ),
        Op::Attention => (
            Rule::PlainF32 { k: 4.0, ulps: 16.0 },
            "dot products, a softmax and a weighted sum, online or not (the FlashAttention rule): 4x the plain f32 error, floor 16 ulps",
        ),
        Op::Gelu => (
            Rule::PlainF32 { k: 4.0, ulps: 16.0 },
            "elementwise, through exp instead of tanh in the SIMD form: 4x the plain f32 error, floor 16 ulps",
        ),
    }
}
