//! Vector maths that `pulp` does not provide: exp, a cheaper exp for the non-positive arguments of a
//! softmax, and GELU built on exp, written once for every ISA level; and the lane count of a level's
//! vectors.
//!
//! `exp` uses the Cody–Waite reduction x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 Taylor polynomial for
//! 2·e^r (truncation error below 6e-9 relative, under the f32 unit roundoff 6e-8), and 2^(n − 1)
//! built from its exponent bits. Measured against f64 its error is below one f32 epsilon. Special
//! values: NaN → NaN, −inf → 0, +inf → +inf, x > 88.72 → +inf (overflow), x < −86.6 → 0 (results
//! below 2.4e−38, near the bottom of the normal range, are flushed to zero). `exp_nonpositive` skips
//! the overflow and special-value tests that a softmax's arguments x − max ≤ 0 never need.

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
/// 2/k! for k = 7 down to 0: the polynomial of 2·e^r, which times 2^(n − 1) is e^x. Twice 1/k! is
/// exact, and so is every step of the polynomial's evaluation against the one of e^r.
const TAYLOR_TWICE: [f32; 8] = [
    2.0 / 5040.0,
    2.0 / 720.0,
    2.0 / 120.0,
    2.0 / 24.0,
    2.0 / 6.0,
    1.0,
    2.0,
    2.0,
];
/// −126 ln 2 rounded up into f32: x·log2(e) rounds to n = −126 here, where the scale 2^(n − 1) is 0.
const FLUSH_LOW: f32 = -87.336_54;

/// f32 lanes of a vector of `S`.
#[inline(always)]
pub fn lanes<S: Simd>() -> usize {
    core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>()
}

/// e^x, lane by lane.
#[inline(always)]
pub fn exp<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let xc = s.min_f32s(s.max_f32s(x, s.splat_f32s(EXP_LOW)), s.splat_f32s(EXP_HIGH));
    let y = exp_in_range(s, xc);
    let y = s.select_f32s(s.less_than_f32s(x, s.splat_f32s(EXP_LOW)), s.splat_f32s(0.0), y);
    let y = s.select_f32s(
        s.greater_than_f32s(x, s.splat_f32s(EXP_HIGH)),
        s.splat_f32s(f32::INFINITY),
        y,
    );
    // NaN is the only value not equal to itself; it passes through.
    s.select_f32s(s.equal_f32s(x, x), y, x)
}

/// e^x for x ≤ 0, lane by lane: the exps of a softmax, whose arguments are x − max. It has the bits
/// of [`exp`] for x in [[`EXP_LOW`], 0]; NaN passes through; −inf and every x below about −86.99
/// (results below 2^−125.5 ≈ 1.7e−38) give exactly 0. Positive x up to [`EXP_HIGH`] give e^x too;
/// above it the result is unspecified (there is no overflow test, and x = 90 gives −0).
///
/// About three quarters of the instructions of [`exp`]: one compare and select where [`exp`] has a
/// clamp and three compares and selects. Where x·log2(e) rounds to n = −126 the scale 2^(n − 1) has
/// biased exponent 0, which is the float 0, so the underflow needs no select of its own.
#[inline(always)]
pub fn exp_nonpositive<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let low = s.splat_f32s(FLUSH_LOW);
    // NaN compares false and passes through to the polynomial, which keeps it.
    exp_in_range(s, s.select_f32s(s.less_than_f32s(x, low), low, x))
}

/// e^x for x in [−125.5 ln 2, [`EXP_HIGH`]], and 0 for x in [−126 ln 2, −125.5 ln 2), where n = −126
/// and the scale is 0 (NaN gives NaN): Cody–Waite reduction, the polynomial of 2·e^r, and the scale
/// 2^(n − 1) built from exponent bits.
#[inline(always)]
fn exp_in_range<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let t = s.mul_add_e_f32s(x, s.splat_f32s(LOG2E), s.splat_f32s(ROUNDING_MAGIC));
    let n = s.sub_f32s(t, s.splat_f32s(ROUNDING_MAGIC));
    let r = s.mul_add_e_f32s(n, s.splat_f32s(-LN2_HI), x);
    let r = s.mul_add_e_f32s(n, s.splat_f32s(-LN2_LO), r);
    let mut p = s.splat_f32s(TAYLOR_TWICE[0]);
    for &c in &TAYLOR_TWICE[1..] {
        p = s.mul_add_e_f32s(p, r, s.splat_f32s(c));
    }
    // The low bits of t hold n; 2^(n−1) has biased exponent n − 1 + 127, valid for n in [−125, 128]
    // and 0 (the float 0) at n = −126.
    let magic_bits = ROUNDING_MAGIC.to_bits();
    let biased = s.add_u32s(s.transmute_u32s_f32s(t), s.splat_u32s(126u32.wrapping_sub(magic_bits)));
    let half_scale = s.transmute_f32s_u32s(s.wrapping_dyn_shl_u32s(biased, s.splat_u32s(23)));
    s.mul_f32s(p, half_scale)
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

#[cfg(test)]
mod tests {
    use pulp::{Simd, WithSimd};

    use super::{EXP_HIGH, EXP_LOW, FLUSH_LOW, LN2_HI, LN2_LO, LOG2E, ROUNDING_MAGIC, exp, exp_nonpositive};
    use crate::Isa;

    /// 1/k! for k = 7 down to 0: the polynomial of e^r in the form of `exp` before it evaluated 2·e^r.
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

    /// e^x in the earlier form, for x in [EXP_LOW, EXP_HIGH]: e^r, times 2^(n − 1), times 2.
    #[inline(always)]
    fn exp_before<S: Simd>(s: S, x: S::f32s) -> S::f32s {
        let t = s.mul_add_e_f32s(x, s.splat_f32s(LOG2E), s.splat_f32s(ROUNDING_MAGIC));
        let n = s.sub_f32s(t, s.splat_f32s(ROUNDING_MAGIC));
        let r = s.mul_add_e_f32s(n, s.splat_f32s(-LN2_HI), x);
        let r = s.mul_add_e_f32s(n, s.splat_f32s(-LN2_LO), r);
        let mut p = s.splat_f32s(TAYLOR[0]);
        for &c in &TAYLOR[1..] {
            p = s.mul_add_e_f32s(p, r, s.splat_f32s(c));
        }
        let biased = s.add_u32s(
            s.transmute_u32s_f32s(t),
            s.splat_u32s(126u32.wrapping_sub(ROUNDING_MAGIC.to_bits())),
        );
        let half_scale = s.transmute_f32s_u32s(s.wrapping_dyn_shl_u32s(biased, s.splat_u32s(23)));
        s.mul_f32s(s.mul_f32s(p, half_scale), s.splat_f32s(2.0))
    }

    /// [`exp`], [`exp_nonpositive`] and [`exp_before`] of each value of `x`, one splat vector each.
    struct ExpTriple<'a> {
        x: &'a [f32],
        out: &'a mut Vec<[f32; 3]>,
    }

    /// Lane 0 of `v`.
    #[inline(always)]
    fn first<S: Simd>(s: S, v: S::f32s) -> f32 {
        let mut lanes = [0.0f32; 16];
        s.partial_store_f32s(&mut lanes[..], v);
        lanes[0]
    }

    impl WithSimd for ExpTriple<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            for &v in self.x {
                let x = s.splat_f32s(v);
                let before = exp_before(
                    s,
                    s.min_f32s(s.max_f32s(x, s.splat_f32s(EXP_LOW)), s.splat_f32s(EXP_HIGH)),
                );
                self.out
                    .push([first(s, exp(s, x)), first(s, exp_nonpositive(s, x)), first(s, before)]);
            }
        }
    }

    /// [exp, exp_nonpositive, exp_before] of each value of `x` at `isa`.
    fn exps(x: &[f32], isa: Isa) -> Vec<[f32; 3]> {
        let mut out = Vec::new();
        isa.run(ExpTriple { x, out: &mut out });
        out
    }

    /// Every 4099th float from 0 down to `low`, and every 4099th from 0 up to `EXP_HIGH`.
    fn sweep(low: f32) -> Vec<f32> {
        let down = (0.0f32.to_bits()..=low.abs().to_bits()).step_by(4099);
        let below = down.map(|bits| -f32::from_bits(bits));
        let above = (0.0f32.to_bits()..=EXP_HIGH.to_bits())
            .step_by(4099)
            .map(f32::from_bits);
        below.chain(above).collect()
    }

    /// The error of `got` against e^x in f64, in units of f32 epsilon relative to e^x.
    fn error(x: f32, got: f32) -> f64 {
        let want = f64::from(x).exp();
        (f64::from(got) - want).abs() / want / f64::from(f32::EPSILON)
    }

    #[test]
    fn both_exps_are_within_one_epsilon_of_f64() {
        // Measured: at most 0.9 ε relative; without the degree-7 term of the polynomial, 1.9 ε.
        let x = sweep(EXP_LOW);
        for isa in Isa::available() {
            for (&v, [exp, nonpositive, _]) in x.iter().zip(exps(&x, isa)) {
                for (name, got) in [("exp", exp), ("exp_nonpositive", nonpositive)] {
                    let error = error(v, got);
                    assert!(error <= 1.0, "{name}({v:e}) at {isa} = {got:e}: {error:.2} ε from e^x");
                }
            }
        }
    }

    #[test]
    fn exp_keeps_the_bits_of_its_earlier_form() {
        // Twice 1/k! is exact, and so is each step of the polynomial against the one of e^r, so the
        // change to 2·e^r · 2^(n − 1) kept every result (and exp_nonpositive's, where it equals exp).
        let x = sweep(EXP_LOW);
        for isa in Isa::available() {
            for (&v, [exp, nonpositive, before]) in x.iter().zip(exps(&x, isa)) {
                assert_eq!(
                    exp.to_bits(),
                    before.to_bits(),
                    "exp({v:e}) at {isa}: {exp:e}, before {before:e}"
                );
                if v <= 0.0 {
                    assert_eq!(
                        nonpositive.to_bits(),
                        before.to_bits(),
                        "exp_nonpositive({v:e}) at {isa}: {nonpositive:e}, before {before:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn exp_nonpositive_is_exact_down_to_its_flush_and_zero_below() {
        // Between EXP_LOW and −125.5 ln 2 ≈ −86.99 it gives e^x where exp flushes to 0.
        let kept = [-86.6, -86.8, -86.98];
        let flushed = [
            -86.995,
            -87.0,
            FLUSH_LOW,
            -87.4,
            -88.0,
            -100.0,
            -1e30,
            f32::MIN,
            f32::NEG_INFINITY,
        ];
        for isa in Isa::available() {
            for (&v, [_, nonpositive, _]) in kept.iter().zip(exps(&kept, isa)) {
                let error = error(v, nonpositive);
                assert!(
                    error <= 1.0,
                    "exp_nonpositive({v:e}) at {isa} = {nonpositive:e}: {error:.2} ε from e^x"
                );
            }
            for (&v, [exp, nonpositive, _]) in flushed.iter().zip(exps(&flushed, isa)) {
                assert_eq!(
                    nonpositive.to_bits(),
                    0,
                    "exp_nonpositive({v:e}) at {isa} = {nonpositive:e}"
                );
                assert_eq!(exp.to_bits(), 0, "exp({v:e}) at {isa} = {exp:e}");
            }
            let nan = exps(&[f32::NAN, -f32::NAN], isa);
            assert!(
                nan.iter().all(|[e, n, _]| e.is_nan() && n.is_nan()),
                "NaN at {isa}: {nan:?}"
            );
        }
    }
}
