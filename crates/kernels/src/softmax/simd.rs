//! Softmax with pulp: a vector max, a vector exp whose values are stored and summed, and a vector
//! scale by 1 / sum.

use pulp::{Simd, WithSimd};

use super::SoftmaxDims;
use crate::{Isa, vmath};

struct Row<'a> {
    x: &'a [f32],
    out: &'a mut [f32],
}

/// The maximum of a row with four vector accumulators (NaN is not guaranteed to win; exp carries it).
#[inline(always)]
pub(crate) fn row_max<S: Simd>(s: S, x: &[f32]) -> f32 {
    let (head, tail) = S::as_simd_f32s(x);
    let mut acc = [s.splat_f32s(f32::NEG_INFINITY); 4];
    let mut chunks = head.chunks_exact(4);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = s.max_f32s(*a, v);
        }
    }
    for &v in chunks.remainder() {
        acc[0] = s.max_f32s(acc[0], v);
    }
    let m = s.max_f32s(s.max_f32s(acc[0], acc[1]), s.max_f32s(acc[2], acc[3]));
    tail.iter().copied().fold(s.reduce_max_f32s(m), f32::max)
}

impl WithSimd for Row<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let max = row_max(s, self.x);
        let m = s.splat_f32s(max);
        let (x, x_tail) = S::as_simd_f32s(self.x);
        let (out, out_tail) = S::as_mut_simd_f32s(self.out);
        // Four accumulators: four shorter summation chains, both faster and more accurate.
        let mut acc = [s.splat_f32s(0.0); 4];
        for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
            *o = vmath::exp(s, s.sub_f32s(v, m));
            acc[i % 4] = s.add_f32s(acc[i % 4], *o);
        }
        let mut sum = s.reduce_sum_f32s(s.add_f32s(s.add_f32s(acc[0], acc[1]), s.add_f32s(acc[2], acc[3])));
        // The tail goes through the same vector exp, one partial vector.
        if !x_tail.is_empty() {
            let e = vmath::exp(s, s.sub_f32s(s.partial_load_f32s(x_tail), m));
            s.partial_store_f32s(out_tail, e);
            sum += out_tail.iter().sum::<f32>();
        }
        let scale = s.splat_f32s(1.0 / sum);
        for o in out.iter_mut() {
            *o = s.mul_f32s(*o, scale);
        }
        for o in out_tail.iter_mut() {
            *o *= 1.0 / sum;
        }
    }
}

/// x [R, N] → out [R, N], run at `isa`.
pub fn softmax(dims: &SoftmaxDims, x: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(x, out);
    let n = dims.cols;
    if n == 0 {
        return;
    }
    for (row, out_row) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        isa.run(Row { x: row, out: out_row });
    }
}
