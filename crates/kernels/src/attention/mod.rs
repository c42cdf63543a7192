//! Causal multi-head attention: for every head h and query i, `out_i = softmax(q_i · Kᵀ · scale) · V`
//! over the keys the query may see.
//!
//! Shapes: q [Tq, C], k [S, C], v [S, C], out [Tq, C], with C = NH · HS (heads side by side, as in
//! GPT-2's qkv projection) and S = pos0 + Tq. The queries sit at positions pos0 .. pos0 + Tq: query i
//! sees keys 0 ..= pos0 + i. pos0 = 0 is a prefill; pos0 > 0 with Tq = 1 is a decode step against a KV
//! cache. Special values: NaN or infinity in anything a query's output depends on (its own q row, or
//! the k and v rows it sees in that head) makes that output NaN; outputs that do not depend on it are
//! unaffected.
//!
//! Variants: [`scalar`] (the full score matrix per head), [`simd`] (pulp dot products, one score row
//! at a time), [`blocked`] (flash-style: tiles of queries × keys with an online softmax, no T × T
//! matrix).

pub mod blocked;
pub mod scalar;
pub mod simd;

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionDims {
    /// Tq: queries.
    pub queries: usize,
    /// The position of the first query; keys and values hold pos0 + Tq rows.
    pub pos0: usize,
    /// NH: heads.
    pub heads: usize,
    /// HS: channels per head.
    pub head_size: usize,
    /// The factor on q · k, 1/√HS in GPT-2.
    pub scale: f32,
}

impl AttentionDims {
    /// C = NH · HS.
    pub fn channels(&self) -> usize {
        self.heads * self.head_size
    }

    /// S = pos0 + Tq.
    pub fn keys(&self) -> usize {
        self.pos0 + self.queries
    }

    /// The call for queries `rows` of this one (a thread's block): they keep their positions and
    /// see the keys up to the last of them, the first `keys()` rows of k and v.
    pub fn rows(&self, rows: core::ops::Range<usize>) -> AttentionDims {
        AttentionDims {
            queries: rows.len(),
            pos0: self.pos0 + rows.start,
            ..*self
        }
    }

    /// Asserts the contract: slice lengths match the dims.
    pub fn check(&self, q: &[f32], k: &[f32], v: &[f32], out: &[f32]) {
        let (t, s, c) = (self.queries, self.keys(), self.channels());
        assert_eq!(q.len(), t * c, "attention: q is not [Tq = {t}, C = {c}]");
        assert_eq!(k.len(), s * c, "attention: k is not [S = {s}, C = {c}]");
        assert_eq!(v.len(), s * c, "attention: v is not [S = {s}, C = {c}]");
        assert_eq!(out.len(), t * c, "attention: out is not [Tq = {t}, C = {c}]");
    }
}
