//! Matmul with pulp, loops i, p, j: each row of c accumulates a[i, p] · b[p, ..] with vector
//! multiply-adds, reading b row by row. No blocking: b is streamed once per row of a.

use pulp::{Simd, WithSimd};

use super::MatmulDims;
use crate::Isa;

struct Matmul<'a> {
    dims: MatmulDims,
    a: &'a [f32],
    b: &'a [f32],
    c: &'a mut [f32],
}

impl WithSimd for Matmul<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let MatmulDims { k, n, ldb, .. } = self.dims;
        for (a_row, c_row) in self.a.chunks_exact(k).zip(self.c.chunks_exact_mut(n)) {
            let (c_head, c_tail) = S::as_mut_simd_f32s(c_row);
            for (p, &a_ip) in a_row.iter().enumerate() {
                let (b_head, b_tail) = S::as_simd_f32s(&self.b[p * ldb..][..n]);
                let av = s.splat_f32s(a_ip);
                for (cv, &bv) in c_head.iter_mut().zip(b_head) {
                    *cv = s.mul_add_e_f32s(av, bv, *cv);
                }
                // The tail goes through one partial vector, fused like the rest, so an element's
                // rounding does not depend on where a block of columns starts.
                if !b_tail.is_empty() {
                    let t = s.mul_add_e_f32s(av, s.partial_load_f32s(b_tail), s.partial_load_f32s(c_tail));
                    s.partial_store_f32s(c_tail, t);
                }
            }
        }
    }
}

/// a [M, K], b [K, N], bias [N] → c [M, N], run at `isa`.
pub fn matmul(dims: &MatmulDims, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32], isa: Isa) {
    dims.check(a, b, bias, c);
    dims.init_output(bias, c);
    if dims.k == 0 || dims.n == 0 {
        return;
    }
    isa.run(Matmul { dims: *dims, a, b, c });
}
