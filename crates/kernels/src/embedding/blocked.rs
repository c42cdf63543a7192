//! Embedding in tiles of tokens × channels: each tile's position rows (contiguous in wpe) and output
//! rows stay in L1 while the token rows are gathered.

use super::EmbeddingDims;
use super::simd::AddRows;
use crate::Isa;

/// Tokens per tile.
const TOKEN_TILE: usize = 16;
/// Channels per tile: 16 rows × 256 f32 × 3 streams = 48 KiB, about one L1.
const CHANNEL_TILE: usize = 256;

/// ids [T], wte [V, C], wpe [P, C] → out [T, C], run at `isa`.
pub fn embedding(dims: &EmbeddingDims, ids: &[u32], wte: &[f32], wpe: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(ids, wte, wpe, out);
    let c = dims.channels;
    // LOOP 2: tiles of tokens.
    for t0 in (0..dims.tokens).step_by(TOKEN_TILE) {
        let t1 = (t0 + TOKEN_TILE).min(dims.tokens);
        // LOOP 1: tiles of channels.
        for c0 in (0..c).step_by(CHANNEL_TILE) {
            let c1 = (c0 + CHANNEL_TILE).min(c);
            for t in t0..t1 {
                isa.run(AddRows {
                    a: &wte[ids[t] as usize * c + c0..ids[t] as usize * c + c1],
                    b: &wpe[(dims.pos0 + t) * c + c0..(dims.pos0 + t) * c + c1],
                    out: &mut out[t * c + c0..t * c + c1],
                });
            }
        }
    }
}
