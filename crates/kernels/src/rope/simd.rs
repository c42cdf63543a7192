//! The rotary embedding with pulp: a vector of pairs at a time, each head's two halves read as two
//! runs against the same run of the tables.

use pulp::{Simd, WithSimd};

use super::RopeDims;
use crate::Isa;

struct Rows<'a> {
    x: &'a [f32],
    cos: &'a [f32],
    sin: &'a [f32],
    out: &'a mut [f32],
    dims: RopeDims,
}

impl WithSimd for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (w, hs) = (self.dims.width(), self.dims.head_size);
        let half = hs / 2;
        for (t, (row, out_row)) in self.x.chunks_exact(w).zip(self.out.chunks_exact_mut(w)).enumerate() {
            let p = self.dims.pos0 + t;
            let cos = &self.cos[p * half..][..half];
            let sin = &self.sin[p * half..][..half];
            for (head, out_head) in row.chunks_exact(hs).zip(out_row.chunks_exact_mut(hs)) {
                rotate(s, head, cos, sin, out_head);
            }
        }
    }
}

/// One head: the pairs (a, b) of its halves rotated by the tables' run.
#[inline(always)]
fn rotate<S: Simd>(s: S, head: &[f32], cos: &[f32], sin: &[f32], out: &mut [f32]) {
    let half = cos.len();
    let (a, b) = head.split_at(half);
    let (out_a, out_b) = out.split_at_mut(half);
    let (av, a_tail) = S::as_simd_f32s(a);
    let (bv, b_tail) = S::as_simd_f32s(b);
    let (cv, c_tail) = S::as_simd_f32s(cos);
    let (sv, s_tail) = S::as_simd_f32s(sin);
    let (oa, oa_tail) = S::as_mut_simd_f32s(out_a);
    let (ob, ob_tail) = S::as_mut_simd_f32s(out_b);
    for j in 0..av.len() {
        oa[j] = s.sub_f32s(s.mul_f32s(av[j], cv[j]), s.mul_f32s(bv[j], sv[j]));
        ob[j] = s.add_f32s(s.mul_f32s(bv[j], cv[j]), s.mul_f32s(av[j], sv[j]));
    }
    for i in 0..a_tail.len() {
        oa_tail[i] = a_tail[i] * c_tail[i] - b_tail[i] * s_tail[i];
        ob_tail[i] = b_tail[i] * c_tail[i] + a_tail[i] * s_tail[i];
    }
}

/// x [T, NH · HS], cos and sin [P, HS/2] → out [T, NH · HS], run at `isa`.
pub fn rope(dims: &RopeDims, x: &[f32], cos: &[f32], sin: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(x, cos, sin, out);
    if dims.rows == 0 || dims.width() == 0 {
        return;
    }
    isa.run(Rows {
        x,
        cos,
        sin,
        out,
        dims: *dims,
    });
}
