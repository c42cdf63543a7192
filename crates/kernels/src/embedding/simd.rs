//! Embedding with a pulp vector add per row.

use pulp::{Simd, WithSimd};

use super::EmbeddingDims;
use crate::Isa;

/// out = a + b, lane by lane; all three the same length.
pub(crate) struct AddRows<'a> {
    pub a: &'a [f32],
    pub b: &'a [f32],
    pub out: &'a mut [f32],
}

impl WithSimd for AddRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (a, a_tail) = S::as_simd_f32s(self.a);
        let (b, b_tail) = S::as_simd_f32s(self.b);
        let (out, out_tail) = S::as_mut_simd_f32s(self.out);
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = s.add_f32s(x, y);
        }
        for ((o, &x), &y) in out_tail.iter_mut().zip(a_tail).zip(b_tail) {
            *o = x + y;
        }
    }
}

/// ids [T], wte [V, C], wpe [P, C] → out [T, C], run at `isa`.
pub fn embedding(dims: &EmbeddingDims, ids: &[u32], wte: &[f32], wpe: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(ids, wte, wpe, out);
    let c = dims.channels;
    if c == 0 {
        return;
    }
    for (t, (&id, row)) in ids.iter().zip(out.chunks_exact_mut(c)).enumerate() {
        isa.run(AddRows {
            a: &wte[id as usize * c..][..c],
            b: &wpe[(dims.pos0 + t) * c..][..c],
            out: row,
        });
    }
}
