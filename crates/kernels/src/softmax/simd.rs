//! Softmax with pulp: a vector max, a vector exp whose values are stored and summed, and a vector
//! scale by 1 / sum, row after row. The max of the next row is taken in the exp pass of this one:
//! the next row's first read from memory overlaps this row's writes, where three separate passes
//! left the memory system either reading or writing (PERFORMANCE.md, "Softmax: the next row's max
//! in this row's exp pass"); the results are the same bits.
//!
//! The exp pass also prefetches the lines of x and out that the passes after it will take from
//! memory: on small pages the hardware prefetchers stop at every 4 KiB, where each row of 1024
//! floats starts. A call larger than a last-level cache prefetches into L2 rather than L1. Its exp
//! is `vmath::exp_nonpositive`, as x − max ≤ 0.

use pulp::{Simd, WithSimd};

use super::SoftmaxDims;
use crate::isa::{Prefetch, prefetch_into};
use crate::registry::Tile;
use crate::{Isa, vmath};

/// Every row of x [R, cols] into out.
struct Rows<'a> {
    cols: usize,
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

/// The rotation, in vectors (a multiple of 4, below `len`), that puts loads from `y` 2 KiB modulo
/// 4 KiB away from stores to the same position of `out`.
fn rotation<S: Simd>(out: usize, y: usize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let apart = y.wrapping_sub(out) % 4096;
    let shift = (2048 + 4096 - apart) % 4096;
    (shift / core::mem::size_of::<S::f32s>() / 4 * 4) % len
}

/// How far ahead of the next row's start the exp pass prefetches x, in floats: 16 KiB, four rows of
/// 1024 floats, the middle of a range (4 to 32 KiB) over which the distance barely changes the time
/// (PERFORMANCE.md, "Softmax: prefetch across 4 KiB pages, and a leaner exp").
const X_AHEAD: usize = 4096;

/// The bytes of x and out together above which a call prefetches into L2, not L1: 32 MiB, the L3 of
/// the EPYCs measured. Such a call streams from memory, and prefetches into L1 from there fill it
/// with lines not wanted for a while: on the Zen 4 EPYC (32 KiB of L1d) prefetching into L2 ran
/// 12288 × 1024 1.35–1.39× faster, and a call within the L3 (6144 × 512) 0.93–0.96× as fast
/// (PERFORMANCE.md, "Softmax: streams from memory prefetched into L2"). The choice changes no value,
/// so the gate's shapes need not meet it; a test checks the bits on both sides.
pub const STREAM_BYTES: usize = 32 << 20;

/// The sizes this variant branches on: how far ahead it prefetches, and the vector width.
pub const TILES: &[Tile] = &[Tile::elements("cols", X_AHEAD), Tile::vectors("cols", 1)];

/// The streams of one exp pass: out = exp(x − m), summed into acc (vector i into acc[i mod 4]); when
/// NEXT, the maximum of y (the next row) into next_max; and prefetches of `x_ahead` and `out_ahead`
/// into `cache`, the lines of x and out the passes after this one read from memory, chunk k of those
/// slices beside chunk k of out. out, x and y have the same length, a multiple of 4 vectors.
struct Streams<'a, S: Simd> {
    out: &'a mut [S::f32s],
    x: &'a [S::f32s],
    y: &'a [S::f32s],
    x_ahead: &'a [f32],
    out_ahead: &'a [f32],
    cache: Prefetch,
}

/// One exp pass over `streams` (see [`Streams`]), four vectors at a time.
#[inline(always)]
fn exp_pass<S: Simd, const NEXT: bool>(
    s: S,
    streams: Streams<'_, S>,
    m: S::f32s,
    acc: &mut [S::f32s; 4],
    next_max: &mut [S::f32s; 4],
) {
    let Streams {
        out,
        x,
        y,
        x_ahead,
        out_ahead,
        cache,
    } = streams;
    let chunk = 4 * vmath::lanes::<S>();
    for (k, ((o, v), w)) in out
        .chunks_exact_mut(4)
        .zip(x.chunks_exact(4))
        .zip(y.chunks_exact(4))
        .enumerate()
    {
        for ahead in [x_ahead, out_ahead] {
            if let Some(lines) = ahead.get(k * chunk..(k + 1) * chunk) {
                prefetch_into(s, lines, cache);
            }
        }
        for u in 0..4 {
            o[u] = vmath::exp_nonpositive(s, s.sub_f32s(v[u], m));
            acc[u] = s.add_f32s(acc[u], o[u]);
            if NEXT {
                next_max[u] = s.max_f32s(next_max[u], w[u]);
            }
        }
    }
}

impl WithSimd for Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let n = self.cols;
        let rows = self.x.len() / n;
        let cache = if 2 * core::mem::size_of_val(self.x) > STREAM_BYTES {
            Prefetch::L2
        } else {
            Prefetch::L1
        };
        let mut max = row_max(s, &self.x[..n]);
        let mut out_rows = self.out;
        for i in 0..rows {
            let (out_row, out_next) = core::mem::take(&mut out_rows).split_at_mut(n);
            out_rows = out_next;
            let x_row = &self.x[i * n..][..n];
            let next = (i + 1 < rows).then(|| &self.x[(i + 1) * n..][..n]);
            let m = s.splat_f32s(max);
            let (x, x_tail) = S::as_simd_f32s(x_row);
            let (out, out_tail) = S::as_mut_simd_f32s(out_row);
            // Four accumulators: four shorter summation chains, both faster and more accurate. The
            // next row's maximum is taken in the same pass, so that its read from memory overlaps
            // this row's writes instead of waiting for them.
            let mut acc = [s.splat_f32s(0.0); 4];
            let mut next_max = [s.splat_f32s(f32::NEG_INFINITY); 4];
            let y = next.map_or(&[][..], |next| S::as_simd_f32s(next).0);
            let done = x.len() / 4 * 4;
            // Where the lines the next passes read from memory start: x X_AHEAD floats past the next
            // row's first, and out's next row. Each chunk of the pass prefetches the matching chunk.
            let x_ahead = self.x.get((i + 1) * n + X_AHEAD..).unwrap_or_default();
            let out_ahead = &*out_rows;
            if next.is_some() {
                // A load at the same address modulo 4 KiB as a pending store waits for it, and rows
                // of 1024 floats sit 4 KiB apart, so unrotated each load of the next row would wait
                // on a store to this one (PERFORMANCE.md, "Softmax: the next row's max in this row's
                // exp pass"): the next row is read rotated by c vectors so that its loads sit 2 KiB
                // away from this row's stores.
                let c = rotation::<S>(out.as_ptr() as usize, y.as_ptr() as usize, done);
                let (out_a, out_b) = out[..done].split_at_mut(done - c);
                let (x_a, x_b) = x[..done].split_at(done - c);
                let lanes = vmath::lanes::<S>();
                let a = Streams {
                    out: out_a,
                    x: x_a,
                    y: &y[c..done],
                    x_ahead: x_ahead.get(c * lanes..).unwrap_or_default(),
                    out_ahead,
                    cache,
                };
                exp_pass::<S, true>(s, a, m, &mut acc, &mut next_max);
                let b = Streams {
                    out: out_b,
                    x: x_b,
                    y: &y[..c],
                    x_ahead,
                    out_ahead: out_ahead.get((done - c) * lanes..).unwrap_or_default(),
                    cache,
                };
                exp_pass::<S, true>(s, b, m, &mut acc, &mut next_max);
            } else {
                // The last row: no next row and nothing ahead; x stands in for y, which is not read.
                let last = Streams {
                    out: &mut out[..done],
                    x: &x[..done],
                    y: &x[..done],
                    x_ahead: &[],
                    out_ahead: &[],
                    cache,
                };
                exp_pass::<S, false>(s, last, m, &mut acc, &mut next_max);
            }
            for (u, (o, &v)) in out[done..].iter_mut().zip(&x[done..]).enumerate() {
                *o = vmath::exp_nonpositive(s, s.sub_f32s(v, m));
                acc[u] = s.add_f32s(acc[u], *o);
            }
            for (u, &w) in y.iter().skip(done).enumerate() {
                next_max[u] = s.max_f32s(next_max[u], w);
            }
            let mut sum = s.reduce_sum_f32s(s.add_f32s(s.add_f32s(acc[0], acc[1]), s.add_f32s(acc[2], acc[3])));
            // The tail goes through the same vector exp, one partial vector.
            if !x_tail.is_empty() {
                let e = vmath::exp_nonpositive(s, s.sub_f32s(s.partial_load_f32s(x_tail), m));
                s.partial_store_f32s(out_tail, e);
                sum += out_tail.iter().sum::<f32>();
            }
            let inv = 1.0 / sum;
            let scale = s.splat_f32s(inv);
            for o in out.iter_mut() {
                *o = s.mul_f32s(*o, scale);
            }
            for o in out_tail.iter_mut() {
                *o *= inv;
            }
            if let Some(next) = next {
                let (_, y_tail) = S::as_simd_f32s(next);
                let folded = s.max_f32s(
                    s.max_f32s(next_max[0], next_max[1]),
                    s.max_f32s(next_max[2], next_max[3]),
                );
                max = y_tail.iter().copied().fold(s.reduce_max_f32s(folded), f32::max);
            }
        }
    }
}

/// x [R, N] → out [R, N], run at `isa`.
pub fn softmax(dims: &SoftmaxDims, x: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(x, out);
    if dims.rows == 0 || dims.cols == 0 {
        return;
    }
    isa.run(Rows {
        cols: dims.cols,
        x,
        out,
    });
}

#[cfg(test)]
mod tests {
    use super::{STREAM_BYTES, softmax};
    use crate::Isa;
    use crate::softmax::SoftmaxDims;

    /// A call just above [`STREAM_BYTES`] prefetches into L2 and its halves, below it, into L1: the
    /// results have the same bits either way, at every level.
    #[test]
    fn the_prefetch_into_l2_changes_no_bit() {
        let (rows, cols) = (4097, 1024);
        assert!(2 * rows * cols * 4 > STREAM_BYTES && 2 * (rows / 2 + 1) * cols * 4 <= STREAM_BYTES);
        let seed = 0x5eed_50f7_u64;
        let mut state = seed;
        let x: Vec<f32> = (0..rows * cols)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 40) as f32 / (1u64 << 24) as f32 * 16.0 - 8.0
            })
            .collect();
        for isa in Isa::available() {
            let mut whole = vec![f32::NAN; rows * cols];
            softmax(&SoftmaxDims { rows, cols }, &x, &mut whole, isa);
            let mut halves = vec![f32::NAN; rows * cols];
            let top = rows / 2;
            let (x_top, x_rest) = x.split_at(top * cols);
            let (out_top, out_rest) = halves.split_at_mut(top * cols);
            softmax(&SoftmaxDims { rows: top, cols }, x_top, out_top, isa);
            softmax(&SoftmaxDims { rows: rows - top, cols }, x_rest, out_rest, isa);
            let differ = whole.iter().zip(&halves).position(|(a, b)| a.to_bits() != b.to_bits());
            assert_eq!(
                differ, None,
                "softmax simd at {isa:?}, {rows} × {cols}, seed {seed:#x}: the whole call and its halves differ at element {differ:?}"
            );
        }
    }
}
