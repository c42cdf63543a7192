//! SwiGLU with pulp: g · u / (1 + e^(−g)) with the vector exp.

use pulp::{Simd, WithSimd};

use super::SwigluDims;
use crate::{Isa, vmath};

struct Rows<'a> {
    x: &'a [f32],
    out: &'a mut [f32],
    width: usize,
}

/// silu(g) · u, lane by lane.
#[inline(always)]
fn swiglu_lanes<S: Simd>(s: S, g: S::f32s, u: S::f32s) -> S::f32s {
    let denominator = s.add_f32s(s.splat_f32s(1.0), vmath::exp(s, s.neg_f32s(g)));
    s.div_f32s(s.mul_f32s(g, u), denominator)
}

impl WithSimd for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let i = self.width;
        for (row, out_row) in self.x.chunks_exact(2 * i).zip(self.out.chunks_exact_mut(i)) {
            let (gate, up) = row.split_at(i);
            let (g, g_tail) = S::as_simd_f32s(gate);
            let (u, u_tail) = S::as_simd_f32s(up);
            let (out, out_tail) = S::as_mut_simd_f32s(out_row);
            for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
                *o = swiglu_lanes(s, g, u);
            }
            if !out_tail.is_empty() {
                let (g, u) = (s.partial_load_f32s(g_tail), s.partial_load_f32s(u_tail));
                s.partial_store_f32s(out_tail, swiglu_lanes(s, g, u));
            }
        }
    }
}

/// x [R, 2I] → out [R, I], run at `isa`.
pub fn swiglu(dims: &SwigluDims, x: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(x, out);
    if dims.width == 0 || dims.rows == 0 {
        return;
    }
    isa.run(Rows {
        x,
        out,
        width: dims.width,
    });
}
