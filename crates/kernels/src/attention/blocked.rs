//! Flash-style attention: for each head, tiles of Q_TILE queries against tiles of K_TILE keys with an
//! online softmax (a running max m, a running sum l and a running output acc per query, rescaled by
//! exp(m_old − m_new) when the max grows). No T × T score matrix exists: the scores of one query
//! against one key tile ([K_TILE]) are all there is.
//!
//! Each key tile is packed once per query tile: K transposed ([HS, K_TILE], so that the scores of a
//! query against the whole tile are vector multiply-adds over keys with q[d] broadcast, no horizontal
//! sums) and V padded ([K_TILE, HSP], HSP = HS rounded up to 16, so that acc += p · v is whole vectors).

use pulp::{Simd, WithSimd};

use super::AttentionDims;
use crate::{Isa, vmath};

/// Queries per tile.
const Q_TILE: usize = 32;
/// Keys per tile: a multiple of every lane count (16 at most), so score rows are whole vectors.
const K_TILE: usize = 64;
/// The widest lane count; packed V rows are padded to a multiple of it.
const MAX_LANES: usize = 16;

struct Attention<'a> {
    dims: AttentionDims,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    out: &'a mut [f32],
}

impl WithSimd for Attention<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let d = self.dims;
        let (c, hs, keys) = (d.channels(), d.head_size, d.keys());
        let hsp = hs.div_ceil(MAX_LANES) * MAX_LANES;
        let mut k_t = vec![0.0f32; hs * K_TILE]; // [HS, K_TILE]
        let mut v_tile = vec![0.0f32; K_TILE * hsp]; // [K_TILE, HSP]
        let mut scores = [0.0f32; K_TILE]; // [K_TILE]
        let mut acc = vec![0.0f32; Q_TILE * hsp]; // [Q_TILE, HSP]
        let mut m = [0.0f32; Q_TILE];
        let mut l = [0.0f32; Q_TILE];

        for h in 0..d.heads {
            let col = h * hs;
            // LOOP 2: tiles of queries.
            for i0 in (0..d.queries).step_by(Q_TILE) {
                let i1 = (i0 + Q_TILE).min(d.queries);
                m.fill(f32::NEG_INFINITY);
                l.fill(0.0);
                acc.fill(0.0);
                // The last query of the tile sees keys up to pos0 + i1 − 1.
                let tile_keys = d.pos0 + i1;
                // LOOP 1: tiles of keys, packed once for the whole query tile.
                for j0 in (0..tile_keys.min(keys)).step_by(K_TILE) {
                    let j1 = (j0 + K_TILE).min(tile_keys);
                    for j in j0..j1 {
                        let k_row = &self.k[j * c + col..][..hs];
                        for (dd, &x) in k_row.iter().enumerate() {
                            k_t[dd * K_TILE + (j - j0)] = x;
                        }
                        v_tile[(j - j0) * hsp..][..hs].copy_from_slice(&self.v[j * c + col..][..hs]);
                    }
                    for i in i0..i1 {
                        let visible_end = (d.pos0 + i + 1).min(j1);
                        if visible_end <= j0 {
                            continue;
                        }
                        let live = visible_end - j0; // keys of this tile the query sees
                        // Scores of query i against the tile: Σ_d q[d] · Kᵀ[d, ..].
                        let (sv, _) = S::as_mut_simd_f32s(&mut scores);
                        sv.iter_mut().for_each(|x| *x = s.splat_f32s(0.0));
                        let qi = &self.q[i * c + col..][..hs];
                        for (dd, &qd) in qi.iter().enumerate() {
                            let (kv, _) = S::as_simd_f32s(&k_t[dd * K_TILE..][..K_TILE]);
                            let qb = s.splat_f32s(qd * d.scale);
                            for (x, &kk) in sv.iter_mut().zip(kv) {
                                *x = s.mul_add_e_f32s(qb, kk, *x);
                            }
                        }
                        scores[live..].fill(f32::NEG_INFINITY); // the causal mask and the tile's end
                        // The online softmax update.
                        let (sv, _) = S::as_mut_simd_f32s(&mut scores);
                        let tile_max = sv
                            .iter()
                            .fold(s.splat_f32s(f32::NEG_INFINITY), |a, &x| s.max_f32s(a, x));
                        let qi_t = i - i0;
                        let m_new = m[qi_t].max(s.reduce_max_f32s(tile_max));
                        let rescale = (m[qi_t] - m_new).exp();
                        let mv = s.splat_f32s(m_new);
                        let mut sum = s.splat_f32s(0.0);
                        for x in sv.iter_mut() {
                            *x = vmath::exp(s, s.sub_f32s(*x, mv));
                            sum = s.add_f32s(sum, *x);
                        }
                        l[qi_t] = l[qi_t] * rescale + s.reduce_sum_f32s(sum);
                        m[qi_t] = m_new;
                        let (a, _) = S::as_mut_simd_f32s(&mut acc[qi_t * hsp..][..hsp]);
                        let r = s.splat_f32s(rescale);
                        a.iter_mut().for_each(|x| *x = s.mul_f32s(*x, r));
                        for (jj, &p) in scores[..live].iter().enumerate() {
                            let pb = s.splat_f32s(p);
                            let (vv, _) = S::as_simd_f32s(&v_tile[jj * hsp..][..hsp]);
                            for (x, &vx) in a.iter_mut().zip(vv) {
                                *x = s.mul_add_e_f32s(pb, vx, *x);
                            }
                        }
                    }
                }
                for i in i0..i1 {
                    let inv = 1.0 / l[i - i0];
                    let a = &acc[(i - i0) * hsp..][..hs];
                    for (o, &x) in self.out[i * c + col..][..hs].iter_mut().zip(a) {
                        *o = x * inv;
                    }
                }
            }
        }
    }
}

/// q [Tq, C], k [S, C], v [S, C] → out [Tq, C], run at `isa`.
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
