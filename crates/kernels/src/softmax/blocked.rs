//! Online softmax: one read pass keeps, per lane, a running maximum m and a running sum l of
//! exp(x − m), rescaling l by exp(m_old − m_new) once per chunk of CHUNK_ELEMENTS entries when the
//! maximum grows; the lanes are then merged and one pass writes exp(x − M) / L. No separate max pass.

use pulp::{Simd, WithSimd};

use super::SoftmaxDims;
use crate::registry::Tile;
use crate::{Isa, vmath};

/// Entries per chunk (8 vectors at AVX-512): a chunk's maximum is taken first so that l is rescaled
/// once per chunk, and its exps are summed apart before joining l.
const CHUNK_ELEMENTS: usize = 128;

/// The sizes this variant branches on: its chunks of a row, and the vector width.
pub const TILES: &[Tile] = &[Tile::elements("cols", CHUNK_ELEMENTS), Tile::vectors("cols", 1)];

struct Row<'a> {
    x: &'a [f32],
    out: &'a mut [f32],
}

/// Folds one chunk into the running per-lane maximum `m` and sum `l` of exp(x − m).
///
/// A plain function rather than a closure: closures are not reliably inlined into the
/// target-feature context pulp sets up, and outside it every vector operation becomes a call.
#[inline(always)]
fn online_step<S: Simd>(s: S, chunk: &[S::f32s], m: &mut S::f32s, l: &mut S::f32s) {
    let neg_inf = s.splat_f32s(f32::NEG_INFINITY);
    let chunk_max = chunk.iter().fold(*m, |a, &v| s.max_f32s(a, v));
    // Lanes that have seen only −inf keep l = 0 instead of computing exp(−inf − (−inf)) = NaN.
    let seen = s.greater_than_f32s(chunk_max, neg_inf);
    let rescale = vmath::exp_nonpositive(s, s.sub_f32s(*m, chunk_max));
    // The chunk is summed on its own and then added: blocked summation keeps the error growth of the
    // long running sum about CHUNK_ELEMENTS / lanes times smaller.
    let zero = s.splat_f32s(0.0);
    let mut chunk_sum = zero;
    // NaN in a lane whose other entries are all −inf: the maximum skips the NaN, the lane counts as
    // unseen, and its sum would be dropped; `nan` carries it (NaN where any entry was NaN, else 0).
    let mut nan = zero;
    for &v in chunk {
        chunk_sum = s.add_f32s(chunk_sum, vmath::exp_nonpositive(s, s.sub_f32s(v, chunk_max)));
        nan = s.add_f32s(nan, s.select_f32s(s.equal_f32s(v, v), zero, v));
    }
    *l = s.select_f32s(seen, s.mul_add_e_f32s(*l, rescale, chunk_sum), s.add_f32s(*l, nan));
    // In seen lanes a NaN input makes exp NaN above, which l keeps.
    *m = chunk_max;
}

impl WithSimd for Row<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let neg_inf = s.splat_f32s(f32::NEG_INFINITY);
        let zero = s.splat_f32s(0.0);
        let (x, x_tail) = S::as_simd_f32s(self.x);
        let lanes = vmath::lanes::<S>();

        let (mut m, mut l) = (neg_inf, zero);
        for chunk in x.chunks(CHUNK_ELEMENTS / lanes) {
            online_step(s, chunk, &mut m, &mut l);
        }
        if !x_tail.is_empty() {
            // The tail is padded with −inf, which contributes exp(−inf) = 0.
            let mut padded = [f32::NEG_INFINITY; 16];
            padded[..x_tail.len()].copy_from_slice(x_tail);
            online_step(s, &[s.partial_load_f32s(&padded[..lanes])], &mut m, &mut l);
        }

        // Merge the lanes: M = max m, L = Σ l · exp(m − M).
        let max = s.reduce_max_f32s(m);
        let big_m = s.splat_f32s(max);
        let sum = s.reduce_sum_f32s(s.mul_f32s(l, vmath::exp_nonpositive(s, s.sub_f32s(m, big_m))));
        // A NaN anywhere must reach every output; the max pass of the three-pass form does this via
        // exp, here l carries it into `sum`.
        let scale = s.splat_f32s(1.0 / sum);
        let (out, out_tail) = S::as_mut_simd_f32s(self.out);
        for (o, &v) in out.iter_mut().zip(x) {
            *o = s.mul_f32s(vmath::exp_nonpositive(s, s.sub_f32s(v, big_m)), scale);
        }
        if !out_tail.is_empty() {
            let e = vmath::exp_nonpositive(s, s.sub_f32s(s.partial_load_f32s(x_tail), big_m));
            s.partial_store_f32s(out_tail, s.mul_f32s(e, scale));
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
