//! LayerNorm with pulp: vector sums for the mean and the variance, then one fused pass
//! `(x − mean) · (rstd · gamma) + beta`.

use pulp::{Simd, WithSimd};

use super::LayerNormDims;
use crate::Isa;
use crate::registry::Tile;

/// Independent accumulators per reduction, to hide the latency of vector adds.
const ACCUMULATORS: usize = 4;
const _: () = assert!(ACCUMULATORS == 4, "sum_map adds exactly four accumulators at the end");

/// The sizes this variant branches on: its runs of accumulator vectors.
pub const TILES: &[Tile] = &[Tile::vectors("channels", ACCUMULATORS), Tile::vectors("channels", 1)];

/// All rows of a call, in one dispatch: a dispatch per row adds its fixed cost to every row, which
/// shows once the rows are aligned (PERFORMANCE.md, "Buffers on cache lines, and one dispatch per
/// call").
struct Rows<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    beta: &'a [f32],
    out: &'a mut [f32],
    dims: LayerNormDims,
}

/// Σ f(x) over a slice with several vector accumulators.
#[inline(always)]
pub(crate) fn sum_map<S: Simd>(s: S, x: &[f32], f: impl Fn(S::f32s) -> S::f32s, f1: impl Fn(f32) -> f32) -> f32 {
    let (head, tail) = S::as_simd_f32s(x);
    let mut acc = [s.splat_f32s(0.0); ACCUMULATORS];
    let mut chunks = head.chunks_exact(ACCUMULATORS);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = s.add_f32s(*a, f(v));
        }
    }
    for &v in chunks.remainder() {
        acc[0] = s.add_f32s(acc[0], f(v));
    }
    let total = s.add_f32s(s.add_f32s(acc[0], acc[1]), s.add_f32s(acc[2], acc[3]));
    s.reduce_sum_f32s(total) + tail.iter().map(|&v| f1(v)).sum::<f32>()
}

impl WithSimd for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let c = self.dims.channels;
        for (x, out) in self.x.chunks_exact(c).zip(self.out.chunks_exact_mut(c)) {
            row(s, x, self.gamma, self.beta, out, self.dims.eps);
        }
    }
}

/// Σ x and Σ (x − mean)² of row x, and the normalised row written to `out`.
#[inline(always)]
fn row<S: Simd>(s: S, x: &[f32], gamma: &[f32], beta: &[f32], out: &mut [f32], eps: f32) {
    let c = x.len() as f32;
    let mean = sum_map(s, x, |v| v, |v| v) / c;
    let m = s.splat_f32s(mean);
    let var = sum_map(
        s,
        x,
        |v| {
            let d = s.sub_f32s(v, m);
            s.mul_f32s(d, d)
        },
        |v| (v - mean) * (v - mean),
    ) / c;
    let rstd = 1.0 / (var + eps).sqrt();
    let r = s.splat_f32s(rstd);
    let (x, x_tail) = S::as_simd_f32s(x);
    let (g, g_tail) = S::as_simd_f32s(gamma);
    let (b, b_tail) = S::as_simd_f32s(beta);
    let (out, out_tail) = S::as_mut_simd_f32s(out);
    for (((o, &x), &g), &b) in out.iter_mut().zip(x).zip(g).zip(b) {
        *o = s.mul_add_e_f32s(s.sub_f32s(x, m), s.mul_f32s(r, g), b);
    }
    for (((o, &x), &g), &b) in out_tail.iter_mut().zip(x_tail).zip(g_tail).zip(b_tail) {
        *o = (x - mean) * (rstd * g) + b;
    }
}

/// x [R, C], gamma [C], beta [C] → out [R, C], run at `isa`.
pub fn layernorm(dims: &LayerNormDims, x: &[f32], gamma: &[f32], beta: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(x, gamma, beta, out);
    if dims.channels == 0 || dims.rows == 0 {
        return;
    }
    isa.run(Rows {
        x,
        gamma,
        beta,
        out,
        dims: *dims,
    });
}
