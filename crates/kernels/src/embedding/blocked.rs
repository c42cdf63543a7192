//! Embedding in tiles of tokens × channels: each tile's position rows (contiguous in wpe) and output
//! rows stay in L1 while the token rows are gathered.

use pulp::{Simd, WithSimd};

use super::EmbeddingDims;
use super::simd::add_rows;
use crate::Isa;
use crate::registry::Tile;

/// Tokens per tile.
const TOKEN_TILE: usize = 16;
/// Channels per tile: 16 rows × 256 f32 × 3 streams = 48 KiB, about one L1.
const CHANNEL_TILE: usize = 256;

/// The sizes this variant branches on: its token and channel tiles.
pub const TILES: &[Tile] = &[
    Tile::elements("tokens", TOKEN_TILE),
    Tile::elements("channels", CHANNEL_TILE),
];

/// All tiles of a call, in one dispatch.
struct Tiles<'a> {
    dims: EmbeddingDims,
    ids: &'a [u32],
    wte: &'a [f32],
    wpe: &'a [f32],
    out: &'a mut [f32],
}

impl WithSimd for Tiles<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Tiles {
            dims,
            ids,
            wte,
            wpe,
            out,
        } = self;
        let c = dims.channels;
        // LOOP 2: tiles of tokens.
        for t0 in (0..dims.tokens).step_by(TOKEN_TILE) {
            let t1 = (t0 + TOKEN_TILE).min(dims.tokens);
            // LOOP 1: tiles of channels.
            for c0 in (0..c).step_by(CHANNEL_TILE) {
                let c1 = (c0 + CHANNEL_TILE).min(c);
                for t in t0..t1 {
                    let token = ids[t] as usize * c;
                    let position = (dims.pos0 + t) * c;
                    add_rows(
                        s,
                        &wte[token + c0..token + c1],
                        &wpe[position + c0..position + c1],
                        &mut out[t * c + c0..t * c + c1],
                    );
                }
            }
        }
    }
}

/// ids [T], wte [V, C], wpe [P, C] → out [T, C], run at `isa`.
pub fn embedding(dims: &EmbeddingDims, ids: &[u32], wte: &[f32], wpe: &[f32], out: &mut [f32], isa: Isa) {
    dims.check(ids, wte, wpe, out);
    if dims.channels == 0 || dims.tokens == 0 {
        return;
    }
    isa.run(Tiles {
        dims: *dims,
        ids,
        wte,
        wpe,
        out,
    });
}
