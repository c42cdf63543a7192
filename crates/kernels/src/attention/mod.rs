//! Causal multi-head attention: for every head h and query i, `out_i = softmax(q_i · Kᵀ · scale) · V`
//! over the keys the query may see.
//!
//! Shapes: q [Tq, C], k [S, C], v [S, C], out [Tq, C], with C = NH · HS (heads side by side, as in
//! GPT-2's qkv projection) and S = pos0 + Tq. Rows of all four may lie `stride` floats apart
//! (stride ≥ C), so that some of a call's heads are a call of their own: threads split a decode step
//! by heads. The queries sit at positions pos0 .. pos0 + Tq: query i
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
    /// Floats from one row of q, k, v or out to the next: C for a whole call, more for a call on
    /// some of the heads of a wider one.
    pub stride: usize,
}

impl AttentionDims {
    /// The dims of a call on whole rows (stride = C).
    pub fn new(queries: usize, pos0: usize, heads: usize, head_size: usize, scale: f32) -> Self {
        AttentionDims {
            queries,
            pos0,
            heads,
            head_size,
            scale,
            stride: heads * head_size,
        }
    }

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

    /// The call for heads `heads` of this one and the column its slices start at: the same queries
    /// and keys, rows still `stride` floats apart. Its q, k, v and out are this call's, from that
    /// column on.
    pub fn heads(&self, heads: core::ops::Range<usize>) -> (AttentionDims, usize) {
        assert!(heads.end <= self.heads, "attention: heads {heads:?} of {}", self.heads);
        let dims = AttentionDims {
            heads: heads.len(),
            ..*self
        };
        (dims, heads.start * self.head_size)
    }

    /// Asserts the contract: slice lengths match the dims, exactly for whole rows (stride = C), to
    /// the end of the last row's heads otherwise.
    pub fn check(&self, q: &[f32], k: &[f32], v: &[f32], out: &[f32]) {
        let (t, s, c, stride) = (self.queries, self.keys(), self.channels(), self.stride);
        assert!(stride >= c, "attention: stride = {stride} is below C = {c}");
        let assert_rows = |name: &str, len: usize, rows: usize, what: &str| {
            assert!(
                crate::holds_rows(len, rows, c, stride),
                "attention: {name} ({len} floats) is not [{what} = {rows}, C = {c}] with rows {stride} apart"
            );
        };
        assert_rows("q", q.len(), t, "Tq");
        assert_rows("k", k.len(), s, "S");
        assert_rows("v", v.len(), s, "S");
        assert_rows("out", out.len(), t, "Tq");
    }
}
