//! Attention with pulp: each query's score row is built from vector dot products, normalised with the
//! vector exp, and applied to V with vector multiply-adds.

use pulp::{Simd, WithSimd};

use super::AttentionDims;
use crate::softmax::simd::row_max;
use crate::{Isa, vmath};

struct Attention<'a> {
    dims: AttentionDims,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    out: &'a mut [f32],
}

/// Σ a · b over two equal-length slices.
#[inline(always)]
fn dot<S: Simd>(s: S, a: &[f32], b: &[f32]) -> f32 {
    let (a, a_tail) = S::as_simd_f32s(a);
    let (b, b_tail) = S::as_simd_f32s(b);
    let mut acc = [s.splat_f32s(0.0); 2];
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        acc[i % 2] = s.mul_add_e_f32s(x, y, acc[i % 2]);
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    s.reduce_sum_f32s(s.add_f32s(acc[0], acc[1])) + tail
}

/// acc += p · x over two equal-length slices.
#[inline(always)]
fn axpy<S: Simd>(s: S, p: f32, x: &[f32], acc: &mut [f32]) {
    let pv = s.splat_f32s(p);
    let (x, x_tail) = S::as_simd_f32s(x);
    let (a, a_tail) = S::as_mut_simd_f32s(acc);
    for (a, &x) in a.iter_mut().zip(x) {
        *a = s.mul_add_e_f32s(pv, x, *a);
    }
    for (a, &x) in a_tail.iter_mut().zip(x_tail) {
        *a += p * x;
    }
}

impl WithSimd for Attention<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let d = self.dims;
        let (ld, kv_ld, hs) = (d.stride, d.kv_stride, d.head_size);
        let mut scores = vec![0.0f32; d.keys()]; // [S], one query's row
        let mut acc = vec![0.0f32; hs]; // [HS]
        let mut key = vec![0.0f32; hs]; // [HS], a key gathered from blocks
        for h in 0..d.heads {
            let (col, kv_col) = (h * hs, d.kv_column(h));
            for i in 0..d.queries {
                let qi = &self.q[i * ld + col..][..hs];
                let row = &mut scores[..d.pos0 + i + 1];
                for (j, score) in row.iter_mut().enumerate() {
                    *score = dot(s, qi, d.key_row(self.k, j, kv_col, &mut key)) * d.scale;
                }
                let max = row_max(s, row);
                let m = s.splat_f32s(max);
                let (head, tail) = S::as_mut_simd_f32s(row);
                let mut sum = s.splat_f32s(0.0);
                for x in head.iter_mut() {
                    *x = vmath::exp_nonpositive(s, s.sub_f32s(*x, m));
                    sum = s.add_f32s(sum, *x);
                }
                if !tail.is_empty() {
                    let e = vmath::exp_nonpositive(s, s.sub_f32s(s.partial_load_f32s(tail), m));
                    s.partial_store_f32s(tail, e);
                }
                let sum = s.reduce_sum_f32s(sum) + tail.iter().sum::<f32>();
                acc.fill(0.0);
                for (j, &p) in scores[..d.pos0 + i + 1].iter().enumerate() {
                    axpy(s, p, &self.v[j * kv_ld + kv_col..][..hs], &mut acc);
                }
                let inv = 1.0 / sum;
                for (o, &a) in self.out[i * ld + col..][..hs].iter_mut().zip(&acc) {
                    *o = a * inv;
                }
            }
        }
    }
}

/// q [Tq, C], k [S, CKV] (or in blocks), v [S, CKV] → out [Tq, C], rows `stride` and `kv_stride`
/// apart, run at `isa`.
pub fn attention(dims: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(q, k, v, out);
    if dims.queries == 0 || dims.channels() == 0 {
        return;
    }
    isa.run(Attention {
        dims: *dims,
        q,
        k,
        v,
        out,
    });
}
