//! RMSNorm on several rows per pass: the sums of squares of ROWS rows are gathered in one
//! interleaved pass over the channels (ROWS independent accumulator chains instead of one), then each
//! row is scaled with gamma still in L1.

use pulp::{Simd, WithSimd};

use super::RmsNormDims;
use crate::Isa;
use crate::registry::Tile;

/// Rows per pass.
const ROWS: usize = 4;

/// The sizes this variant branches on: rows taken together, and vectors.
pub const TILES: &[Tile] = &[Tile::elements("rows", ROWS), Tile::vectors("channels", 1)];

struct Block<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    out: &'a mut [f32],
    dims: RmsNormDims,
}

impl WithSimd for Block<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let c = self.dims.channels;
        let inv_c = 1.0 / c as f32;
        for (rows, out_rows) in self.x.chunks(ROWS * c).zip(self.out.chunks_mut(ROWS * c)) {
            let n = rows.len() / c;
            let xs: [(&[S::f32s], &[f32]); ROWS] = core::array::from_fn(|r| {
                if r < n {
                    S::as_simd_f32s(&rows[r * c..][..c])
                } else {
                    (&[][..], &[][..])
                }
            });

            // Pass 1: the sums of squares of all rows of the block.
            let mut acc = [s.splat_f32s(0.0); ROWS];
            for j in 0..xs[0].0.len() {
                for r in 0..n {
                    acc[r] = s.mul_add_e_f32s(xs[r].0[j], xs[r].0[j], acc[r]);
                }
            }
            let rstd: [f32; ROWS] = core::array::from_fn(|r| {
                if r >= n {
                    return 0.0;
                }
                let tail: f32 = xs[r].1.iter().map(|&v| v * v).sum();
                1.0 / ((s.reduce_sum_f32s(acc[r]) + tail) * inv_c + self.dims.eps).sqrt()
            });

            // Pass 2: x · (rstd · gamma), row by row.
            let (g, g_tail) = S::as_simd_f32s(self.gamma);
            for (r, out_row) in out_rows.chunks_exact_mut(c).enumerate() {
                let rs = s.splat_f32s(rstd[r]);
                let (out, out_tail) = S::as_mut_simd_f32s(out_row);
                for ((o, &x), &g) in out.iter_mut().zip(xs[r].0).zip(g) {
                    *o = s.mul_f32s(x, s.mul_f32s(rs, g));
                }
                for (i, o) in out_tail.iter_mut().enumerate() {
                    *o = xs[r].1[i] * (rstd[r] * g_tail[i]);
                }
            }
        }
    }
}

/// x [R, C], gamma [C] → out [R, C], run at `isa`.
pub fn rmsnorm(dims: &RmsNormDims, x: &[f32], gamma: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(x, gamma, out);
    if dims.channels == 0 || dims.rows == 0 {
        return;
    }
    isa.run(Block {
        x,
        gamma,
        out,
        dims: *dims,
    });
}
