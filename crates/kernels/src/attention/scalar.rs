//! Attention with the full score matrix of each head: the readable twin.

use super::AttentionDims;
use crate::Isa;

/// q [Tq, C], k [S, CKV] (or in blocks), v [S, CKV] → out [Tq, C], rows `stride` and `kv_stride`
/// apart. The ISA level is ignored: this is plain Rust.
pub fn attention(dims: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], _isa: Isa) {
    dims.check(q, k, v, out);
    let (t, s, ld, kv_ld, hs) = (dims.queries, dims.keys(), dims.stride, dims.kv_stride, dims.head_size);
    let mut scores = vec![0.0f32; t * s]; // [Tq, S]
    for h in 0..dims.heads {
        let (col, kv_col) = (h * hs, dims.kv_column(h));
        for i in 0..t {
            let visible = dims.pos0 + i + 1;
            let row = &mut scores[i * s..][..visible];
            for (j, score) in row.iter_mut().enumerate() {
                let mut dot = 0.0f32;
                for d in 0..hs {
                    dot += q[i * ld + col + d] * k[dims.key_index(j, kv_col + d)];
                }
                *score = dot * dims.scale;
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for score in row.iter_mut() {
                *score = (*score - max).exp();
                sum += *score;
            }
            for d in 0..hs {
                let mut acc = 0.0f32;
                for (j, &p) in row.iter().enumerate() {
                    acc += p * v[j * kv_ld + kv_col + d];
                }
                out[i * ld + col + d] = acc / sum;
            }
        }
    }
}
