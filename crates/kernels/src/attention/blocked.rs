//! Flash-style attention: for each head, tiles of Q_TILE queries against tiles of K_TILE keys with an
//! online softmax (a running max m, a running sum l and a running output acc per query, rescaled by
//! exp(m_old − m_new) when the max grows). No T × T score matrix exists: the scores of one query
//! against one key tile ([K_TILE]) are all there is.
//!
//! A head's keys and values are packed once for all its query tiles, tile by tile: K transposed
//! ([HS, K_TILE] per tile, so that the scores of a query against the whole tile are vector
//! multiply-adds over keys with q[d] broadcast, no horizontal sums) and V in contiguous rows padded
//! to HSP (HS rounded up to 64, so that acc += p · v is whole vectors, and a tile's rows do not
//! share a few of L1's sets as rows C floats apart do). A query tile's queries are scaled once, so
//! that each q[d] is broadcast from memory. Queries go through in groups of GROUP = 4 that share
//! every loaded K and V vector: a 4 × 4-vector register tile, one load per four multiply-adds instead
//! of one per multiply-add.
//!
//! A call with one query (a decode step, whose cache comes from memory) takes another loop order with
//! the same arithmetic: the heads run inside blocks of cached rows, so that the rows are read block by
//! block in order rather than one head's columns of all rows at a time. It keeps every head's scores
//! for its one query ([NH, S], as the simd variant keeps one score row) and sums each in the
//! query-tile path's order, tile by tile: its outputs are bit-identical to that path's. The
//! transposition of keys runs 16 × 16 blocks through registers at AVX-512 (for one query, multiplied
//! there without being stored), elsewhere runs of 8 keys per dimension.
//!
//! Keys in blocks ([`KeyLayout::Blocks`], a KV cache's layout) are already transposed 16 keys at a
//! time: a key tile is packed by copying runs of 16, and one query multiplies each block in place,
//! reading the keys in order. The arithmetic, and so the bits, are those of keys in rows.

use pulp::{Simd, WithSimd};

use super::{AttentionDims, KEY_BLOCK, KeyLayout};
use crate::registry;
use crate::{Isa, vmath};

/// Queries per tile.
const Q_TILE: usize = 32;
/// Keys per tile: a multiple of 4 vectors at every lane count (16 at most).
const K_TILE: usize = 64;
/// Queries that share each loaded K and V vector: 4 queries × 4 vectors = 16 accumulators, which
/// fit the registers of every level.
const GROUP: usize = 4;
/// Vectors per accumulator row of the register tile.
const VECTORS: usize = 4;
/// Packed V rows and the running outputs are padded to a multiple of VECTORS · 16 lanes.
const HS_ALIGN: usize = VECTORS * 16;

struct Attention<'a> {
    dims: AttentionDims,
    /// Set when the call runs at AVX-512: key tiles are then transposed 16 × 16 in registers.
    transpose: Option<transpose::Transpose16>,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    out: &'a mut [f32],
}

/// The running state of one query tile.
struct Tile {
    /// [Q_TILE, HSP]: each query's running, unnormalised output.
    acc: Vec<f32>,
    /// [Q_TILE]: each query's running maximum score.
    m: [f32; Q_TILE],
    /// [Q_TILE]: each query's running sum of exp(score − m).
    l: [f32; Q_TILE],
    /// HSP.
    hsp: usize,
}

/// One packed key tile of a head.
#[derive(Clone, Copy)]
struct KeyTile<'a> {
    /// [HS, K_TILE]: the tile's keys, transposed.
    k_t: &'a [f32],
    /// [K_TILE, HSP]: the tile's values in padded rows.
    v: &'a [f32],
}

/// The online softmax update of one query by one key tile: `row` holds its scores, of which the first
/// `live` count, and becomes exp(score − m_new); the running max `m` and sum `l` move on. Returns
/// exp(m_old − m_new), the factor on the query's running output.
#[inline(always)]
fn online_update<S: Simd>(s: S, row: &mut [f32; K_TILE], live: usize, m: &mut f32, l: &mut f32) -> f32 {
    // The causal mask and the tile's end, in vector stores: `fill` would be a call to memset, and
    // a call makes the caller save every vector register.
    if live < K_TILE {
        let lanes = vmath::lanes::<S>();
        let masked = s.splat_f32s(f32::NEG_INFINITY);
        let whole = live.next_multiple_of(lanes);
        s.partial_store_f32s(&mut row[live..whole], masked);
        for x in S::as_mut_simd_f32s(&mut row[whole..]).0 {
            *x = masked;
        }
    }
    let (sv, _) = S::as_mut_simd_f32s(&mut row[..]);
    let mut tile_max = s.splat_f32s(f32::NEG_INFINITY);
    for &x in sv.iter() {
        tile_max = s.max_f32s(tile_max, x);
    }
    let m_new = m.max(s.reduce_max_f32s(tile_max));
    let rescale = (*m - m_new).exp();
    let mv = s.splat_f32s(m_new);
    let mut sum = s.splat_f32s(0.0);
    for x in sv.iter_mut() {
        *x = vmath::exp_nonpositive(s, s.sub_f32s(*x, mv));
        sum = s.add_f32s(sum, *x);
    }
    *l = *l * rescale + s.reduce_sum_f32s(sum);
    *m = m_new;
    rescale
}

/// Folds one key tile (keys j0 .. j0 + K_TILE, of which each query sees `live[g]`) into the state of
/// the G queries starting at row `r` of the query tile. K and V vectors are loaded once for all G.
// Index loops over the G × VECTORS register tile read more clearly than zipped iterators, and their
// constant bounds unroll completely.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn group<S: Simd, const G: usize>(
    s: S,
    d: &AttentionDims,
    tile: &mut Tile,
    packed: KeyTile,
    qs: [&[f32]; G],
    r: usize,
    live: [usize; G],
) {
    let (hs, hsp) = (d.head_size, tile.hsp);
    let lanes = vmath::lanes::<S>();
    let most = live[G - 1];
    let mut scores = [[f32::NEG_INFINITY; K_TILE]; G];

    // Scores: scores[g][j] = Σ_d (q_g[d] · scale) · Kᵀ[d, j], VECTORS vectors of keys at a time, then
    // one at a time up to the last key any of the G sees: on the diagonal a group sees a few keys of
    // the tile, not all. The queries come scaled, so that each q_g[d] is broadcast straight from
    // memory. Keys no query of the group sees keep the score −∞.
    let wide = lanes * VECTORS;
    let mut j = 0;
    while j + wide <= most.next_multiple_of(lanes) {
        group_scores::<S, G, VECTORS>(s, packed.k_t, hs, &qs, j, &mut scores);
        j += wide;
    }
    while j < most {
        group_scores::<S, G, 1>(s, packed.k_t, hs, &qs, j, &mut scores);
        j += lanes;
    }

    // The online softmax update of each query; p overwrites its scores.
    let mut rescale = [0.0f32; G];
    for g in 0..G {
        let (m, l) = (&mut tile.m[r + g], &mut tile.l[r + g]);
        rescale[g] = online_update(s, &mut scores[g], live[g], m, l);
    }

    // acc_g = acc_g · rescale_g + Σ_j p_g[j] · V[j], VECTORS vectors of the head at a time. Keys all G
    // queries see are shared; the few that only later queries see (on the diagonal) are added to
    // those queries alone, so a query never touches a value it may not see.
    for c in (0..hsp).step_by(lanes * VECTORS) {
        let mut acc = [[s.splat_f32s(0.0); VECTORS]; G];
        for g in 0..G {
            let (a, _) = S::as_simd_f32s(&tile.acc[(r + g) * hsp + c..][..lanes * VECTORS]);
            let rs = s.splat_f32s(rescale[g]);
            for u in 0..VECTORS {
                acc[g][u] = s.mul_f32s(a[u], rs);
            }
        }
        for j in 0..live[0] {
            let (vv, _) = S::as_simd_f32s(&packed.v[j * hsp + c..][..lanes * VECTORS]);
            for g in 0..G {
                let pb = s.splat_f32s(scores[g][j]);
                for u in 0..VECTORS {
                    acc[g][u] = s.mul_add_e_f32s(pb, vv[u], acc[g][u]);
                }
            }
        }
        for g in 1..G {
            for j in live[0]..live[g] {
                let (vv, _) = S::as_simd_f32s(&packed.v[j * hsp + c..][..lanes * VECTORS]);
                let pb = s.splat_f32s(scores[g][j]);
                for u in 0..VECTORS {
                    acc[g][u] = s.mul_add_e_f32s(pb, vv[u], acc[g][u]);
                }
            }
        }
        for g in 0..G {
            let (a, _) = S::as_mut_simd_f32s(&mut tile.acc[(r + g) * hsp + c..][..lanes * VECTORS]);
            a.copy_from_slice(&acc[g]);
        }
    }
}

/// dst = src in vector loads and stores: `copy_from_slice` of a length known only at run time is a
/// call to memmove per row.
#[inline(always)]
fn copy_row<S: Simd>(s: S, dst: &mut [f32], src: &[f32]) {
    let (dst_v, dst_tail) = S::as_mut_simd_f32s(dst);
    let (src_v, src_tail) = S::as_simd_f32s(src);
    for (d, &x) in dst_v.iter_mut().zip(src_v) {
        *d = x;
    }
    if !dst_tail.is_empty() {
        s.partial_store_f32s(dst_tail, s.partial_load_f32s(src_tail));
    }
}

/// The scores of the G queries qs (scaled) against U vectors of keys from key j of a packed tile
/// (k_t, [HS, K_TILE]), into scores[g][j ..]: each the multiply-add chain over the head's dimensions
/// in order.
// Index loops over the G × U register tile read more clearly than zipped iterators, and their
// constant bounds unroll completely.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn group_scores<S: Simd, const G: usize, const U: usize>(
    s: S,
    k_t: &[f32],
    hs: usize,
    qs: &[&[f32]; G],
    j: usize,
    scores: &mut [[f32; K_TILE]; G],
) {
    let lanes = vmath::lanes::<S>();
    let mut acc = [[s.splat_f32s(0.0); U]; G];
    for (dd, row) in k_t.chunks_exact(K_TILE).take(hs).enumerate() {
        let (kv, _) = S::as_simd_f32s(&row[j..j + lanes * U]);
        for g in 0..G {
            let qb = s.splat_f32s(qs[g][dd]);
            for u in 0..U {
                acc[g][u] = s.mul_add_e_f32s(qb, kv[u], acc[g][u]);
            }
        }
    }
    for g in 0..G {
        let (out, _) = S::as_mut_simd_f32s(&mut scores[g][j..j + lanes * U]);
        out.copy_from_slice(&acc[g]);
    }
}

/// Keys a transposed pack writes together: one short contiguous run per head dimension instead of
/// one scattered element, so the transposition is not bound by single-element stores.
const PACK_RUN: usize = 8;

/// Packs keys `keys` (in rows, `c` floats apart) of the head starting at column `col` transposed into
/// k_t ([HS, K_TILE]), the first of them at column `at`: whole 16 × 16 blocks in registers when
/// `transpose` is set, the rest in runs of PACK_RUN keys.
#[allow(clippy::too_many_arguments)]
fn pack_keys(
    transpose: Option<&transpose::Transpose16>,
    k: &[f32],
    c: usize,
    col: usize,
    hs: usize,
    keys: core::ops::Range<usize>,
    at: usize,
    k_t: &mut [f32],
) {
    let j0 = keys.start;
    let mut j = j0;
    if let Some(t) = transpose {
        let dims = hs / 16 * 16;
        if dims > 0 {
            while j + 16 <= keys.end {
                t.keys(k, c, col, dims, j, at + j - j0, k_t);
                j += 16;
            }
            // Dimensions past the last block of 16, for the keys just packed.
            for jj in j0..j {
                for (dd, &x) in k[jj * c + col..][..hs].iter().enumerate().skip(dims) {
                    k_t[dd * K_TILE + at + jj - j0] = x;
                }
            }
        }
    }
    while j + PACK_RUN <= keys.end {
        let rows: [&[f32]; PACK_RUN] = core::array::from_fn(|r| &k[(j + r) * c + col..][..hs]);
        for (dd, run) in k_t.chunks_exact_mut(K_TILE).take(hs).enumerate() {
            let run = &mut run[at + j - j0..][..PACK_RUN];
            for (x, row) in run.iter_mut().zip(&rows) {
                *x = row[dd];
            }
        }
        j += PACK_RUN;
    }
    for j in j..keys.end {
        for (dd, &x) in k[j * c + col..][..hs].iter().enumerate() {
            k_t[dd * K_TILE + at + j - j0] = x;
        }
    }
}

// A key tile starts on a block of keys.
const _: () = assert!(K_TILE.is_multiple_of(KEY_BLOCK));

/// Packs keys `keys` (starting on a block) of the head starting at column `col` from blocks into
/// k_t ([HS, K_TILE]): each head dimension of a block is already a run of keys.
fn pack_key_blocks(d: &AttentionDims, k: &[f32], col: usize, keys: core::ops::Range<usize>, k_t: &mut [f32]) {
    debug_assert!(keys.start.is_multiple_of(KEY_BLOCK), "a key tile starts on a block");
    for jb in keys.clone().step_by(KEY_BLOCK) {
        let live = (keys.end - jb).min(KEY_BLOCK);
        let block = &k[d.key_index(jb, 0)..];
        for (dd, run) in k_t.chunks_exact_mut(K_TILE).take(d.head_size).enumerate() {
            run[jb - keys.start..][..live].copy_from_slice(&block[(col + dd) * KEY_BLOCK..][..live]);
        }
    }
}

/// One query's scores against keys in blocks, into p ([NH, row]): block after block in order, each
/// head's multiply-add chains over its dimensions in order, V = KEY_BLOCK / lanes vectors of keys
/// side by side, each dimension's keys one contiguous load. Slots of p past the keys are left alone.
// Index loops over the V accumulators read more clearly than zipped iterators, and their constant
// bound unrolls completely (the accumulators stay in registers).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn block_scores<S: Simd, const V: usize>(s: S, d: &AttentionDims, k: &[f32], q: &[f32], row: usize, p: &mut [f32]) {
    let (hs, keys) = (d.head_size, d.keys());
    for jb in (0..keys).step_by(KEY_BLOCK) {
        let live = (keys - jb).min(KEY_BLOCK);
        let block = &k[d.key_index(jb, 0)..];
        for h in 0..d.heads {
            let (col, kv_col) = (h * hs, d.kv_column(h));
            let mut acc = [s.splat_f32s(0.0); V];
            for (dd, &qd) in q[col..][..hs].iter().enumerate() {
                let (kv, _) = S::as_simd_f32s(&block[(kv_col + dd) * KEY_BLOCK..][..KEY_BLOCK]);
                let qb = s.splat_f32s(qd);
                for u in 0..V {
                    acc[u] = s.mul_add_e_f32s(qb, kv[u], acc[u]);
                }
            }
            let mut scores = [0.0f32; KEY_BLOCK];
            S::as_mut_simd_f32s(&mut scores).0.copy_from_slice(&acc);
            p[h * row + jb..][..live].copy_from_slice(&scores[..live]);
        }
    }
}

/// The in-register transposition of key blocks at AVX-512.
#[cfg(target_arch = "x86_64")]
mod transpose {
    use core::arch::x86_64::{__m512, __m512d};
    use pulp::bytemuck::cast;
    use pulp::x86::V4;
    use pulp::{Simd, WithSimd};

    use super::K_TILE;
    use crate::Isa;

    /// Transposes 16 keys × 16 head dimensions with 64 lane shuffles instead of 256 scattered stores.
    pub struct Transpose16(V4);

    impl Transpose16 {
        /// The scores of keys j .. j + 16 (rows of k, c floats apart) against the first `heads` (at most
        /// four) heads, head u at columns cols[u] .. cols[u] + hs (hs a multiple of 16) with q · scale
        /// in qs[u]: each score the multiply-add chain over the head's dimensions in order, from
        /// 16 × 16 blocks transposed in registers and never stored. Scores past `heads` are zero.
        #[allow(clippy::too_many_arguments)]
        pub fn scores(
            &self,
            k: &[f32],
            c: usize,
            cols: [usize; 4],
            heads: usize,
            hs: usize,
            j: usize,
            qs: [&[f32]; 4],
        ) -> [[f32; 16]; 4] {
            let op = Scores {
                v4: self.0,
                k,
                c,
                cols,
                heads,
                hs,
                j,
                qs,
            };
            <V4 as Simd>::vectorize(self.0, op)
        }

        /// The transposer for a call at `isa`: only at AVX-512 (no other level may run its code).
        pub fn new(isa: Isa) -> Option<Self> {
            if isa == Isa::Avx512 {
                V4::try_new().map(Self)
            } else {
                None
            }
        }

        /// Writes keys j .. j + 16 (rows of k c floats apart, head columns col .. col + dims, dims a
        /// multiple of 16) transposed into k_t ([HS, K_TILE]) at column `at`.
        #[allow(clippy::too_many_arguments)]
        pub fn keys(&self, k: &[f32], c: usize, col: usize, dims: usize, j: usize, at: usize, k_t: &mut [f32]) {
            let op = Keys {
                v4: self.0,
                k,
                c,
                col,
                dims,
                j,
                at,
                k_t,
            };
            <V4 as Simd>::vectorize(self.0, op)
        }
    }

    /// One call of [`Transpose16::scores`], dispatched at AVX-512.
    struct Scores<'a> {
        v4: V4,
        k: &'a [f32],
        c: usize,
        cols: [usize; 4],
        heads: usize,
        hs: usize,
        j: usize,
        qs: [&'a [f32]; 4],
    }

    impl WithSimd for Scores<'_> {
        type Output = [[f32; 16]; 4];

        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) -> [[f32; 16]; 4] {
            let Scores {
                v4,
                k,
                c,
                cols,
                heads,
                hs,
                j,
                qs,
            } = self;
            let f = v4.avx512f;
            let zero = f._mm512_setzero_ps();
            let mut acc = [zero; 4];
            // Head after head, each reading its columns of the 16 rows in order. Taking the heads in
            // turn for every 16 dimensions read each row in scattered 64-byte pieces and was slower
            // from memory.
            for u in 0..heads.min(4) {
                for d0 in (0..hs).step_by(16) {
                    let columns = transpose(v4, load(v4, k, c, j, cols[u] + d0));
                    // The same fused multiply-add as pulp's mul_add_e_f32s at this level.
                    let q = &qs[u][d0..][..16];
                    for (column, &q) in columns.into_iter().zip(q) {
                        acc[u] = f._mm512_fmadd_ps(f._mm512_set1_ps(q), column, acc[u]);
                    }
                }
            }
            let mut scores = [[0.0f32; 16]; 4];
            for (out, acc) in scores.iter_mut().zip(acc) {
                *out = cast(acc);
            }
            scores
        }
    }

    /// One call of [`Transpose16::keys`], dispatched at AVX-512.
    struct Keys<'a> {
        v4: V4,
        k: &'a [f32],
        c: usize,
        col: usize,
        dims: usize,
        j: usize,
        at: usize,
        k_t: &'a mut [f32],
    }

    impl WithSimd for Keys<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let Keys {
                v4,
                k,
                c,
                col,
                dims,
                j,
                at,
                k_t,
            } = self;
            for d0 in (0..dims).step_by(16) {
                let columns = transpose(v4, load(v4, k, c, j, col + d0));
                for (dd, column) in columns.into_iter().enumerate() {
                    let out: &mut [f32; 16] = (&mut k_t[(d0 + dd) * K_TILE + at..][..16])
                        .try_into()
                        .expect("16 floats");
                    *out = cast(column);
                }
            }
        }
    }

    /// Floats col .. col + 16 of the 16 rows j .. j + 16 of k (rows c floats apart), one register
    /// each. Loops, not closures, here and in [`transpose`]: a closure is not compiled at AVX-512,
    /// and every shuffle in one would become a call.
    #[inline(always)]
    fn load(v4: V4, k: &[f32], c: usize, j: usize, col: usize) -> [__m512; 16] {
        let mut block = [v4.avx512f._mm512_setzero_ps(); 16];
        for (r, b) in block.iter_mut().enumerate() {
            let row: &[f32; 16] = k[(j + r) * c + col..][..16].try_into().expect("16 floats");
            *b = cast(*row);
        }
        block
    }

    /// The 16 × 16 transpose: pairs within 128-bit lanes, then pairs of pairs, then 128-bit lanes
    /// across registers in two rounds.
    #[inline(always)]
    fn transpose(v4: V4, r: [__m512; 16]) -> [__m512; 16] {
        let f = v4.avx512f;
        let zero = f._mm512_setzero_ps();
        // t[2i], t[2i + 1]: rows 2i and 2i + 1 interleaved (elements 0, 1 and 2, 3 of each lane).
        let mut t = [zero; 16];
        for i in 0..8 {
            t[2 * i] = f._mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = f._mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // u[4g + q]: element q of every 128-bit lane, for rows 4g .. 4g + 4.
        let mut u = [zero; 16];
        for g in 0..4 {
            for h in 0..2 {
                let a: __m512d = f._mm512_castps_pd(t[4 * g + h]);
                let b: __m512d = f._mm512_castps_pd(t[4 * g + 2 + h]);
                u[4 * g + 2 * h] = f._mm512_castpd_ps(f._mm512_unpacklo_pd(a, b));
                u[4 * g + 2 * h + 1] = f._mm512_castpd_ps(f._mm512_unpackhi_pd(a, b));
            }
        }
        // v[q][h]: lanes 0 and 2 (h even) or 1 and 3 (h odd) of row groups 0, 1 (h < 2) or 2, 3.
        let mut v = [[zero; 4]; 4];
        for q in 0..4 {
            v[q][0] = f._mm512_shuffle_f32x4::<0x88>(u[q], u[4 + q]);
            v[q][1] = f._mm512_shuffle_f32x4::<0xdd>(u[q], u[4 + q]);
            v[q][2] = f._mm512_shuffle_f32x4::<0x88>(u[8 + q], u[12 + q]);
            v[q][3] = f._mm512_shuffle_f32x4::<0xdd>(u[8 + q], u[12 + q]);
        }
        // Column d = q + 4h of the block gathers its four 128-bit lanes from v[q].
        let mut columns = [zero; 16];
        for q in 0..4 {
            columns[q] = f._mm512_shuffle_f32x4::<0x88>(v[q][0], v[q][2]);
            columns[q + 4] = f._mm512_shuffle_f32x4::<0x88>(v[q][1], v[q][3]);
            columns[q + 8] = f._mm512_shuffle_f32x4::<0xdd>(v[q][0], v[q][2]);
            columns[q + 12] = f._mm512_shuffle_f32x4::<0xdd>(v[q][1], v[q][3]);
        }
        columns
    }
}

/// No in-register transposition off x86-64: key tiles are packed in runs.
#[cfg(not(target_arch = "x86_64"))]
mod transpose {
    use crate::Isa;

    /// Never constructed off x86-64.
    pub enum Transpose16 {}

    impl Transpose16 {
        /// Always `None` off x86-64.
        pub fn new(_isa: Isa) -> Option<Self> {
            None
        }

        /// Unreachable: no value exists.
        #[allow(clippy::too_many_arguments)]
        pub fn scores(
            &self,
            _: &[f32],
            _: usize,
            _: [usize; 4],
            _: usize,
            _: usize,
            _: usize,
            _: [&[f32]; 4],
        ) -> [[f32; 16]; 4] {
            match *self {}
        }

        /// Unreachable: no value exists.
        #[allow(clippy::too_many_arguments)]
        pub fn keys(&self, _: &[f32], _: usize, _: usize, _: usize, _: usize, _: usize, _: &mut [f32]) {
            match *self {}
        }
    }
}

/// Heads whose scores a decode step takes together, one vector of keys each side by side in a packed
/// tile: independent multiply-add chains.
const HEAD_GROUP: usize = 4;

/// The sizes this variant branches on: query tiles and groups, key tiles, pack runs and the cache
/// layout's key blocks, head groups of a decode step, and the padding of head_size.
pub const TILES: &[registry::Tile] = &[
    registry::Tile::elements("queries", Q_TILE),
    registry::Tile::elements("queries", GROUP),
    registry::Tile::elements("keys", K_TILE),
    registry::Tile::elements("keys", PACK_RUN),
    registry::Tile::elements("keys", KEY_BLOCK),
    registry::Tile::elements("heads", HEAD_GROUP),
    registry::Tile::elements("head_size", HS_ALIGN),
    registry::Tile::vectors("head_size", 1),
];

// A group's vectors of keys sit side by side in one packed tile row, at up to 16 lanes.
const _: () = assert!(HEAD_GROUP * 16 <= K_TILE);

/// One query's scores against keys in rows, into p ([NH, row]): blocks of one vector's worth of key
/// rows in order, every head from each. At AVX-512 a block of 16 keys is transposed in registers and
/// multiplied there, head after head; elsewhere HEAD_GROUP heads are packed side by side. Slots of p
/// past the keys are left alone.
// Index loops over the HEAD_GROUP register tile read more clearly than zipped iterators, and their
// constant bound unrolls completely.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn row_scores<S: Simd>(s: S, att: &Attention, q: &[f32], row: usize, p: &mut [f32]) {
    let d = att.dims;
    let (kv_ld, hs, keys) = (d.kv_stride, d.head_size, d.keys());
    let lanes = vmath::lanes::<S>();
    // [HS, K_TILE]: the keys of HEAD_GROUP heads side by side, one vector's worth each.
    let mut k_t = vec![0.0; hs * K_TILE];
    for jb in (0..keys).step_by(lanes) {
        let je = (jb + lanes).min(keys);
        for h0 in (0..d.heads).step_by(HEAD_GROUP) {
            let heads = HEAD_GROUP.min(d.heads - h0);
            // A group short of heads repeats its last one in the packed path (the extra chains are not
            // stored); the register path computes its own heads only.
            let head: [usize; HEAD_GROUP] = core::array::from_fn(|u| h0 + u.min(heads - 1));
            let qs: [&[f32]; HEAD_GROUP] = core::array::from_fn(|u| &q[head[u] * hs..][..hs]);
            // A whole block of 16 keys at AVX-512, heads of whole blocks of 16 dimensions: in registers.
            if let Some(t) = att.transpose.as_ref().filter(|_| je - jb == 16 && hs % 16 == 0) {
                let scores = t.scores(att.k, kv_ld, head.map(|h| d.kv_column(h)), heads, hs, jb, qs);
                for (u, scores) in scores.iter().enumerate().take(heads) {
                    p[(h0 + u) * row + jb..][..16].copy_from_slice(scores);
                }
                continue;
            }
            for u in 0..heads {
                let kv_col = d.kv_column(h0 + u);
                pack_keys(
                    att.transpose.as_ref(),
                    att.k,
                    kv_ld,
                    kv_col,
                    hs,
                    jb..je,
                    u * lanes,
                    &mut k_t,
                );
            }
            let mut acc = [s.splat_f32s(0.0); HEAD_GROUP];
            for (dd, row) in k_t.chunks_exact(K_TILE).take(hs).enumerate() {
                let (kv, _) = S::as_simd_f32s(&row[..HEAD_GROUP * lanes]);
                for u in 0..HEAD_GROUP {
                    acc[u] = s.mul_add_e_f32s(s.splat_f32s(qs[u][dd]), kv[u], acc[u]);
                }
            }
            for u in 0..heads {
                let mut block = [0.0f32; 16];
                s.partial_store_f32s(&mut block[..lanes], acc[u]);
                p[(h0 + u) * row + jb..][..je - jb].copy_from_slice(&block[..je - jb]);
            }
        }
    }
}

/// One query (a decode step). The cached keys and values are read in order: every head's scores from
/// each block of keys ([`row_scores`] for keys in rows, [`block_scores`] for keys in blocks), then
/// every head's running output from each value row. One head's columns of all rows at a time (C
/// floats apart, as the query-tile path reads them) kept few cache lines in flight. Each head's
/// scores, online softmax (tile by tile) and output sum in the same order as in the query-tile path:
/// the bits are the same.
#[inline(always)]
fn one_query<S: Simd>(s: S, att: Attention) {
    let d = att.dims;
    let (c, kv_ld, hs, keys) = (d.channels(), d.kv_stride, d.head_size, d.keys());
    let lanes = vmath::lanes::<S>();
    let tiles = keys.div_ceil(K_TILE);
    // q · scale, as the query-tile path forms it.
    let q: Vec<f32> = att.q[..c].iter().map(|&x| x * d.scale).collect();
    // [NH, tiles · K_TILE]: each head's scores, then exp(score − m) tile by tile.
    let per_head = tiles * K_TILE;
    let mut p = vec![f32::NEG_INFINITY; d.heads * per_head];
    match d.key_layout {
        KeyLayout::Blocks => match lanes {
            16 => block_scores::<S, 1>(s, &d, att.k, &q, per_head, &mut p),
            8 => block_scores::<S, 2>(s, &d, att.k, &q, per_head, &mut p),
            4 => block_scores::<S, 4>(s, &d, att.k, &q, per_head, &mut p),
            1 => block_scores::<S, 16>(s, &d, att.k, &q, per_head, &mut p),
            _ => unreachable!("{lanes} lanes do not divide a block of {KEY_BLOCK} keys"),
        },
        KeyLayout::Rows => row_scores(s, &att, &q, per_head, &mut p),
    }
    // The online softmax of each head, tile by tile.
    let mut rescale = vec![0.0f32; d.heads * tiles]; // [NH, tiles]
    let mut l = vec![0.0f32; d.heads];
    for (h, l) in l.iter_mut().enumerate() {
        let mut m = f32::NEG_INFINITY;
        for t in 0..tiles {
            let row: &mut [f32; K_TILE] = (&mut p[(h * tiles + t) * K_TILE..][..K_TILE])
                .try_into()
                .expect("K_TILE floats");
            let live = (keys - t * K_TILE).min(K_TILE);
            rescale[h * tiles + t] = online_update(s, row, live, &mut m, l);
        }
    }
    // acc_h = acc_h · rescale_h,t + Σ_j p_h[j] · V[j, head h], value rows in order, every head from
    // each.
    let mut acc = vec![0.0f32; d.heads * hs]; // [NH, HS]
    for t in 0..tiles {
        for (h, acc) in acc.chunks_exact_mut(hs).enumerate() {
            let rs = s.splat_f32s(rescale[h * tiles + t]);
            let (a, a_tail) = S::as_mut_simd_f32s(acc);
            for a in a.iter_mut() {
                *a = s.mul_f32s(*a, rs);
            }
            if !a_tail.is_empty() {
                s.partial_store_f32s(a_tail, s.mul_f32s(s.partial_load_f32s(a_tail), rs));
            }
        }
        for j in t * K_TILE..((t + 1) * K_TILE).min(keys) {
            let v_row = &att.v[j * kv_ld..][..d.kv_channels()];
            for (h, acc) in acc.chunks_exact_mut(hs).enumerate() {
                let v = &v_row[d.kv_column(h)..][..hs];
                let pb = s.splat_f32s(p[h * per_head + j]);
                let (a, a_tail) = S::as_mut_simd_f32s(acc);
                let (vv, v_tail) = S::as_simd_f32s(v);
                for (a, &v) in a.iter_mut().zip(vv) {
                    *a = s.mul_add_e_f32s(pb, v, *a);
                }
                if !a_tail.is_empty() {
                    let (v, a0) = (s.partial_load_f32s(v_tail), s.partial_load_f32s(a_tail));
                    s.partial_store_f32s(a_tail, s.mul_add_e_f32s(pb, v, a0));
                }
            }
        }
    }
    for ((acc, out), &l) in acc.chunks_exact(hs).zip(att.out.chunks_exact_mut(hs)).zip(&l) {
        let inv = 1.0 / l;
        for (o, &x) in out.iter_mut().zip(acc) {
            *o = x * inv;
        }
    }
}

impl WithSimd for Attention<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let d = self.dims;
        if d.queries == 1 {
            return one_query(s, self);
        }
        let (ld, kv_ld, hs, keys) = (d.stride, d.kv_stride, d.head_size, d.keys());
        let hsp = hs.div_ceil(HS_ALIGN) * HS_ALIGN;
        let tiles = keys.div_ceil(K_TILE);
        // [tiles, HS, K_TILE]: one head's keys, transposed tile by tile, packed once for all its
        // query tiles.
        let mut k_t = vec![0.0; tiles * hs * K_TILE];
        // [tiles · K_TILE, HSP]: one head's values in contiguous, padded rows. In place, rows lie C
        // floats apart: at a C of a multiple of 1024 bytes (GPT-2's 3072) a tile's rows fall on a
        // quarter of L1's sets and evict one another before the next group of queries reads them.
        let mut v_pack = vec![0.0; tiles * K_TILE * hsp];
        let mut q_scaled = vec![0.0; Q_TILE * hs]; // [Q_TILE, HS]
        let mut tile = Tile {
            acc: vec![0.0; Q_TILE * hsp],
            m: [0.0; Q_TILE],
            l: [0.0; Q_TILE],
            hsp,
        };
        for h in 0..d.heads {
            let (col, kv_col) = (h * hs, d.kv_column(h));
            for (t, k_t) in k_t.chunks_exact_mut(hs * K_TILE).enumerate().take(tiles) {
                let (j0, j1) = (t * K_TILE, ((t + 1) * K_TILE).min(keys));
                match d.key_layout {
                    KeyLayout::Rows => pack_keys(self.transpose.as_ref(), self.k, kv_ld, kv_col, hs, j0..j1, 0, k_t),
                    KeyLayout::Blocks => pack_key_blocks(&d, self.k, kv_col, j0..j1, k_t),
                }
            }
            for (j, row) in v_pack.chunks_exact_mut(hsp).enumerate().take(keys) {
                copy_row(s, &mut row[..hs], &self.v[j * kv_ld + kv_col..][..hs]);
            }
            // LOOP 2: tiles of queries.
            for i0 in (0..d.queries).step_by(Q_TILE) {
                let i1 = (i0 + Q_TILE).min(d.queries);
                // q · scale of the tile's queries, as the one-query path forms it.
                for (i, row) in (i0..i1).zip(q_scaled.chunks_exact_mut(hs)) {
                    for (x, &q) in row.iter_mut().zip(&self.q[i * ld + col..][..hs]) {
                        *x = q * d.scale;
                    }
                }
                let q_row = |i: usize| &q_scaled[(i - i0) * hs..][..hs];
                tile.m.fill(f32::NEG_INFINITY);
                tile.l.fill(0.0);
                // Only the tile's own queries are cleared: one row, not Q_TILE, for a decode step.
                tile.acc[..(i1 - i0) * hsp].fill(0.0);
                // The last query of the tile sees keys up to pos0 + i1 − 1.
                let tile_keys = (d.pos0 + i1).min(keys);
                // LOOP 1: tiles of keys.
                for j0 in (0..tile_keys).step_by(K_TILE) {
                    let j1 = (j0 + K_TILE).min(tile_keys);
                    let packed = KeyTile {
                        k_t: &k_t[j0 * hs..][..hs * K_TILE],
                        v: &v_pack[j0 * hsp..][..K_TILE * hsp],
                    };
                    // Keys of this tile query i sees.
                    let live = |i: usize| (d.pos0 + i + 1).saturating_sub(j0).min(j1 - j0);
                    let mut i = i0;
                    while i < i1 {
                        if i + GROUP <= i1 && live(i) > 0 {
                            let qs = [q_row(i), q_row(i + 1), q_row(i + 2), q_row(i + 3)];
                            let lives = [live(i), live(i + 1), live(i + 2), live(i + 3)];
                            group::<S, GROUP>(s, &d, &mut tile, packed, qs, i - i0, lives);
                            i += GROUP;
                        } else {
                            if live(i) > 0 {
                                group::<S, 1>(s, &d, &mut tile, packed, [q_row(i)], i - i0, [live(i)]);
                            }
                            i += 1;
                        }
                    }
                }
                for i in i0..i1 {
                    let inv = 1.0 / tile.l[i - i0];
                    let a = &tile.acc[(i - i0) * hsp..][..hs];
                    for (o, &x) in self.out[i * ld + col..][..hs].iter_mut().zip(a) {
                        *o = x * inv;
                    }
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
        transpose: transpose::Transpose16::new(isa),
        q,
        k,
        v,
        out,
    });
}

#[cfg(test)]
mod tests {
    use super::transpose::Transpose16;
    use crate::Isa;

    /// The in-register transposition is AVX-512 code: it must never run for a call at another level.
    #[test]
    fn the_transposer_exists_only_at_avx512() {
        assert!(Transpose16::new(Isa::Scalar).is_none());
        assert!(Transpose16::new(Isa::Avx2).is_none());
        assert!(Transpose16::new(Isa::Neon).is_none());
        assert_eq!(Transpose16::new(Isa::Avx512).is_some(), Isa::Avx512.is_available());
    }
}
