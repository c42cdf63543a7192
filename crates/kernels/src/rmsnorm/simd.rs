//! RMSNorm with pulp: a vector sum of squares, then one pass `x · (rstd · gamma)`.

use pulp::{Simd, WithSimd};

use super::RmsNormDims;
use crate::Isa;
use crate::layernorm::simd::sum_map;
use crate::registry::Tile;

/// The sizes this variant branches on: the sum's runs of four accumulator vectors, and vectors.
pub const TILES: &[Tile] = &[Tile::vectors("channels", 4), Tile::vectors("channels", 1)];

/// All rows of a call, in one dispatch.
struct Rows<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    out: &'a mut [f32],
    dims: RmsNormDims,
}

impl WithSimd for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let c = self.dims.channels;
        for (x, out) in self.x.chunks_exact(c).zip(self.out.chunks_exact_mut(c)) {
            row(s, x, self.gamma, out, self.dims.eps);
        }
    }
}

/// Σ x² of row x, and the normalised row written to `out`.
#[inline(always)]
fn row<S: Simd>(s: S, x: &[f32], gamma: &[f32], out: &mut [f32], eps: f32) {
    let mean_square = sum_map(s, x, |v| s.mul_f32s(v, v), |v| v * v) / x.len() as f32;
    let rstd = 1.0 / (mean_square + eps).sqrt();
    let r = s.splat_f32s(rstd);
    let (x, x_tail) = S::as_simd_f32s(x);
    let (g, g_tail) = S::as_simd_f32s(gamma);
    let (out, out_tail) = S::as_mut_simd_f32s(out);
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        *o = s.mul_f32s(x, s.mul_f32s(r, g));
    }
    for ((o, &x), &g) in out_tail.iter_mut().zip(x_tail).zip(g_tail) {
        *o = x * (rstd * g);
    }
}

/// x [R, C], gamma [C] → out [R, C], run at `isa`.
pub fn rmsnorm(dims: &RmsNormDims, x: &[f32], gamma: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(x, gamma, out);
    if dims.channels == 0 || dims.rows == 0 {
        return;
    }
    isa.run(Rows {
        x,
        gamma,
        out,
        dims: *dims,
    });
}
