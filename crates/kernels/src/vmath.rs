//! Vector maths that `pulp` does not provide: exp, and GELU built on it, written once for every ISA
//! level; and the lane count of a level's vectors.
//!
//! `exp` uses the Cody–Waite reduction x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 Taylor polynomial for
//! e^r (truncation error below 6e-9 relative, under the f32 unit roundoff 6e-8), and 2^n built from
//! its exponent bits. Measured against f64 its error is a few f32 ulps. Special values: NaN → NaN,
//! −inf → 0, +inf → +inf, x > 88.72 → +inf (overflow), x < −86.6 → 0 (results below 2.4e−38,
//! the subnormal range, are flushed to zero).

use pulp::Simd;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so that n · LN2_HI is exact for |n| < 2^9.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1.5 · 2^23: adding it rounds a float below 2^22 in magnitude to an integer, held in the low bits.
const ROUNDING_MAGIC: f32 = 12_582_912.0;
/// Below this, e^x is subnormal and flushed to zero; above [`EXP_HIGH`], it overflows.
pub const EXP_LOW: f32 = -86.6;
/// The largest x with a finite e^x in f32.
pub const EXP_HIGH: f32 = 88.722_83;
/// 1/k! for k = 7 down to 0.
const TAYLOR: [f32; 8] = [
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// f32 lanes of a vector of `S`.
#[inline(always)]
pub fn lanes<S: Simd>() -> usize {
    core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>()
}

/// e^x, lane by lane.
#[inline(always)]
pub fn exp<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let xc = s.min_f32s(s.max_f32s(x, s.splat_f32s(EXP_LOW)), s.splat_f32s(EXP_HIGH));
    let t = s.mul_add_e_f32s(xc, s.splat_f32s(LOG2E), s.splat_f32s(ROUNDING_MAGIC));
    let n = s.sub_f32s(t, s.splat_f32s(ROUNDING_MAGIC));
    let r = s.mul_add_e_f32s(n, s.splat_f32s(-LN2_HI), xc);
    let r = s.mul_add_e_f32s(n, s.splat_f32s(-LN2_LO), r);
    let mut p = s.splat_f32s(TAYLOR[0]);
    for &c in &TAYLOR[1..] {
        p = s.mul_add_e_f32s(p, r, s.splat_f32s(c));
    }
    // The low bits of t hold n; 2^(n−1) has biased exponent n − 1 + 127, valid for n in [−125, 128].
    let magic_bits = ROUNDING_MAGIC.to_bits();
    let biased = s.add_u32s(s.transmute_u32s_f32s(t), s.splat_u32s(126u32.wrapping_sub(magic_bits)));
    let half_scale = s.transmute_f32s_u32s(s.wrapping_dyn_shl_u32s(biased, s.splat_u32s(23)));
    let y = s.mul_f32s(s.mul_f32s(p, half_scale), s.splat_f32s(2.0));
    let y = s.select_f32s(s.less_than_f32s(x, s.splat_f32s(EXP_LOW)), s.splat_f32s(0.0), y);
    let y = s.select_f32s(
        s.greater_than_f32s(x, s.splat_f32s(EXP_HIGH)),
        s.splat_f32s(f32::INFINITY),
        y,
    );
    // NaN is the only value not equal to itself; it passes through.
    s.select_f32s(s.equal_f32s(x, x), y, x)
}

/// √(2/π), the GELU tanh-approximation constant.
pub const GELU_K: f32 = 0.797_884_6;
/// The cubic coefficient of the GELU tanh approximation.
pub const GELU_CUBIC: f32 = 0.044_715;

/// GELU (tanh approximation), using 0.5 · (1 + tanh(u)) = 1 / (1 + e^(−2u)):
/// gelu(x) = x / (1 + e^(−2u)) with u = √(2/π) · (x + 0.044715 · x³).
#[inline(always)]
pub fn gelu<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let x2 = s.mul_f32s(x, x);
    let inner = s.mul_add_e_f32s(x2, s.splat_f32s(GELU_CUBIC), s.splat_f32s(1.0));
    let minus_two_u = s.mul_f32s(s.mul_f32s(x, inner), s.splat_f32s(-2.0 * GELU_K));
    s.div_f32s(x, s.add_f32s(s.splat_f32s(1.0), exp(s, minus_two_u)))
}
