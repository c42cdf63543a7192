//! Embedding, plain loops: the readable twin.

use super::EmbeddingDims;
use crate::Isa;

/// ids [T], wte [V, C], wpe [P, C] → out [T, C]. The ISA level is ignored: this is plain Rust.
pub fn embedding(dims: &EmbeddingDims, ids: &[u32], wte: &[f32], wpe: &[f32], out: &mut [f32], _isa: Isa) {
    dims.check(ids, wte, wpe, out);
    let c = dims.channels;
    for (t, &id) in ids.iter().enumerate() {
        let token = &wte[id as usize * c..][..c];
        let position = &wpe[(dims.pos0 + t) * c..][..c];
        for i in 0..c {
            out[t * c + i] = token[i] + position[i];
        }
    }
}
