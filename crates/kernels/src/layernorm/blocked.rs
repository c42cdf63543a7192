//! LayerNorm on several rows per pass: the mean and the variance of ROWS rows are gathered in one
//! interleaved pass over the channels (ROWS independent accumulator chains instead of one), then each
//! row is normalised with gamma and beta still in L1.

use pulp::{Simd, WithSimd};

use super::LayerNormDims;
use crate::Isa;
use crate::registry::Tile;

/// Rows per pass.
const ROWS: usize = 4;

/// The sizes this variant branches on: rows taken together.
pub const TILES: &[Tile] = &[Tile::elements("rows", ROWS), Tile::vectors("channels", 1)];

struct Block<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    beta: &'a [f32],
    out: &'a mut [f32],
    dims: LayerNormDims,
}

impl WithSimd for Block<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let c = self.dims.channels;
        let inv_c = 1.0 / c as f32;
        for (rows, out_rows) in self.x.chunks(ROWS * c).zip(self.out.chunks_mut(ROWS * c)) {
            let n = rows.len() / c;
            let row = |r: usize| &rows[r * c..][..c];
            let xs: [(&[S::f32s], &[f32]); ROWS] = core::array::from_fn(|r| {
                if r < n {
                    S::as_simd_f32s(row(r))
                } else {
                    (&[][..], &[][..])
                }
            });
            let vectors = xs[0].0.len();

            // Pass 1: the sums of all rows of the block.
            let mut acc = [s.splat_f32s(0.0); ROWS];
            for j in 0..vectors {
                for r in 0..n {
                    acc[r] = s.add_f32s(acc[r], xs[r].0[j]);
                }
            }
            let mean: [f32; ROWS] = core::array::from_fn(|r| {
                if r < n {
                    (s.reduce_sum_f32s(acc[r]) + xs[r].1.iter().sum::<f32>()) * inv_c
                } else {
                    0.0
                }
            });

            // Pass 2: the sums of squared deviations.
            let m: [S::f32s; ROWS] = core::array::from_fn(|r| s.splat_f32s(mean[r]));
            let mut acc = [s.splat_f32s(0.0); ROWS];
            for j in 0..vectors {
                for r in 0..n {
                    let d = s.sub_f32s(xs[r].0[j], m[r]);
                    acc[r] = s.mul_add_e_f32s(d, d, acc[r]);
                }
            }
            let rstd: [f32; ROWS] = core::array::from_fn(|r| {
                if r >= n {
                    return 0.0;
                }
                let tail: f32 = xs[r].1.iter().map(|&v| (v - mean[r]) * (v - mean[r])).sum();
                1.0 / ((s.reduce_sum_f32s(acc[r]) + tail) * inv_c + self.dims.eps).sqrt()
            });

            // Pass 3: (x − mean) · (rstd · gamma) + beta, row by row.
            let (g, g_tail) = S::as_simd_f32s(self.gamma);
            let (b, b_tail) = S::as_simd_f32s(self.beta);
            for (r, out_row) in out_rows.chunks_exact_mut(c).enumerate() {
                let rs = s.splat_f32s(rstd[r]);
                let (out, out_tail) = S::as_mut_simd_f32s(out_row);
                for (((o, &x), &g), &b) in out.iter_mut().zip(xs[r].0).zip(g).zip(b) {
                    *o = s.mul_add_e_f32s(s.sub_f32s(x, m[r]), s.mul_f32s(rs, g), b);
                }
                for (i, o) in out_tail.iter_mut().enumerate() {
                    *o = (xs[r].1[i] - mean[r]) * (rstd[r] * g_tail[i]) + b_tail[i];
                }
            }
        }
    }
}

/// x [R, C], gamma [C], beta [C] → out [R, C], run at `isa`.
pub fn layernorm(dims: &LayerNormDims, x: &[f32], gamma: &[f32], beta: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(x, gamma, beta, out);
    if dims.channels == 0 || dims.rows == 0 {
        return;
    }
    isa.run(Block {
        x,
        gamma,
        beta,
        out,
        dims: *dims,
    });
}
