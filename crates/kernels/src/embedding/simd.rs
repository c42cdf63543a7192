//! Embedding with a pulp vector add per row, all rows in one dispatch.

use pulp::{Simd, WithSimd};

use super::EmbeddingDims;
use crate::Isa;

/// out = a + b, lane by lane; all three the same length.
#[inline(always)]
pub(crate) fn add_rows<S: Simd>(s: S, a: &[f32], b: &[f32], out: &mut [f32]) {
    let (a, a_tail) = S::as_simd_f32s(a);
    let (b, b_tail) = S::as_simd_f32s(b);
    let (out, out_tail) = S::as_mut_simd_f32s(out);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = s.add_f32s(x, y);
    }
    for ((o, &x), &y) in out_tail.iter_mut().zip(a_tail).zip(b_tail) {
        *o = x + y;
    }
}

/// All rows of a call in one dispatch: a dispatch per row adds its fixed cost to every row, which
/// shows once the rows are aligned (PERFORMANCE.md, "Buffers on cache lines, and one dispatch per
/// call").
struct Rows<'a> {
    dims: EmbeddingDims,
    ids: &'a [u32],
    wte: &'a [f32],
    wpe: &'a [f32],
    out: &'a mut [f32],
}

impl WithSimd for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let c = self.dims.channels;
        for (t, (&id, row)) in self.ids.iter().zip(self.out.chunks_exact_mut(c)).enumerate() {
            let token = &self.wte[id as usize * c..][..c];
            let position = &self.wpe[(self.dims.pos0 + t) * c..][..c];
            add_rows(s, token, position, row);
        }
    }
}

/// ids [T], wte [V, C], wpe [P, C] → out [T, C], run at `isa`.
pub fn embedding(dims: &EmbeddingDims, ids: &[u32], wte: &[f32], wpe: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(ids, wte, wpe, out);
    if dims.channels == 0 || dims.tokens == 0 {
        return;
    }
    isa.run(Rows {
        dims: *dims,
        ids,
        wte,
        wpe,
        out,
    });
}
