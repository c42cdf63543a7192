//! Embedding lookup: `out[t] = wte[ids[t]] + wpe[pos0 + t]`.
//!
//! Shapes: ids [T], wte [V, C], wpe [P, C], out [T, C]; the tokens sit at positions pos0 .. pos0 + T
//! (pos0 > 0 in a decode step after a KV cache). Each output element is one f32 addition, so every
//! variant gives the correctly rounded sum. NaN or infinity in a table row propagates to the outputs
//! that read it.
//!
//! Variants: [`scalar`] (plain loops), [`simd`] (pulp vector add), [`blocked`] (tiles of tokens ×
//! channels).

pub mod blocked;
pub mod scalar;
pub mod simd;

use crate::Isa;
use crate::registry::Variant;

/// embedding(dims, ids [T], wte [V, C], wpe [P, C], out [T, C], isa).
pub type EmbeddingFn = fn(&EmbeddingDims, &[u32], &[f32], &[f32], &mut [f32], Isa);

/// Every variant of embedding, one line per variant file.
pub static VARIANTS: &[Variant<EmbeddingFn>] = &[
    crate::variant!(embedding, scalar, Scalar, Plain),
    crate::variant!(embedding, simd, Simd, Dispatch),
    crate::variant!(embedding, blocked, Blocked, Dispatch, tiles),
];

/// The fastest variant on long inputs, as the benches measure it (PERFORMANCE.md): the one the
/// `fastest` kernel set takes.
pub const FASTEST: &str = "simd";

/// The sizes of one embedding call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingDims {
    /// T: tokens.
    pub tokens: usize,
    /// C: channels.
    pub channels: usize,
    /// V: rows of wte.
    pub vocab: usize,
    /// P: rows of wpe.
    pub positions: usize,
    /// The position of the first token.
    pub pos0: usize,
}

impl EmbeddingDims {
    /// The call for tokens `rows` of this one (a thread's block): they keep their positions.
    pub fn rows(&self, rows: core::ops::Range<usize>) -> EmbeddingDims {
        EmbeddingDims {
            tokens: rows.len(),
            pos0: self.pos0 + rows.start,
            ..*self
        }
    }

    /// Asserts the contract: slice lengths match the dims, ids are below V, positions below P.
    pub fn check(&self, ids: &[u32], wte: &[f32], wpe: &[f32], out: &[f32]) {
        let (t, c) = (self.tokens, self.channels);
        assert_eq!(
            ids.len(),
            t,
            "embedding: ids has {} entries, expected T = {t}",
            ids.len()
        );
        assert_eq!(
            wte.len(),
            self.vocab * c,
            "embedding: wte is not [V = {}, C = {c}]",
            self.vocab
        );
        assert_eq!(
            wpe.len(),
            self.positions * c,
            "embedding: wpe is not [P = {}, C = {c}]",
            self.positions
        );
        assert_eq!(out.len(), t * c, "embedding: out is not [T = {t}, C = {c}]");
        assert!(
            self.pos0 + t <= self.positions,
            "embedding: positions {}..{} exceed P = {}",
            self.pos0,
            self.pos0 + t,
            self.positions
        );
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= self.vocab) {
            panic!("embedding: token id {bad} is not below V = {}", self.vocab);
        }
    }
}
