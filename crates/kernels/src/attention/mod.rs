//! Causal multi-head attention: for every head h and query i, `out_i = softmax(q_i · K_gᵀ · scale) ·
//! V_g` over the keys the query may see, where g = h / (NH / NKV) is the key/value head that query
//! head h reads: NKV = NH is multi-head attention (GPT-2), NKV < NH grouped-query attention (Llama;
//! each key/value head serves NH / NKV consecutive query heads, as Hugging Face's `repeat_kv` repeats
//! it), NKV = 1 multi-query attention.
//!
//! Shapes: q [Tq, C], out [Tq, C] with C = NH · HS (heads side by side, as in GPT-2's qkv
//! projection), k [S, CKV], v [S, CKV] with CKV = NKV · HS, and S = pos0 + Tq. Rows of q and out may
//! lie `stride` floats apart (stride ≥ C) and rows of k and v `kv_stride` apart (≥ CKV), so that
//! some of a call's heads are a call of their own: threads split a decode step by whole groups of
//! heads. Keys may instead come in blocks of [`KEY_BLOCK`] keys stored channel by channel
//! ([`KeyLayout::Blocks`], a KV cache's layout): one head dimension of a block of keys is then one
//! contiguous run, which a decode step reads in order. The queries sit at positions pos0 .. pos0 + Tq: query i
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

use crate::Isa;
use crate::registry::Variant;

/// attention(dims, q [Tq, C], k [S, CKV] or in blocks, v [S, CKV], out [Tq, C], isa).
pub type AttentionFn = fn(&AttentionDims, &[f32], &[f32], &[f32], &mut [f32], Isa);

/// Every variant of attention, one line per variant file.
pub static VARIANTS: &[Variant<AttentionFn>] = &[
    crate::variant!(attention, scalar, Scalar, Plain),
    crate::variant!(attention, simd, Simd, Dispatch),
    crate::variant!(attention, blocked, Blocked, Dispatch, tiles),
];

/// The fastest variant on long inputs, as the benches measure it (PERFORMANCE.md): the one the
/// `fastest` kernel set takes.
pub const FASTEST: &str = "blocked";

/// Keys in one block of [`KeyLayout::Blocks`]: one vector at AVX-512, whole vectors at every level.
pub const KEY_BLOCK: usize = 16;

/// How k holds the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLayout {
    /// [S, CKV], as v: key j in row j, rows `kv_stride` floats apart.
    Rows,
    /// [⌈S / KEY_BLOCK⌉, CKV, KEY_BLOCK]: channel c of key j at
    /// (j / KEY_BLOCK) · KEY_BLOCK · kv_stride + c · KEY_BLOCK + j % KEY_BLOCK. The last block is
    /// whole; its slots past key S − 1 affect no output and may hold anything, NaN included.
    Blocks,
}

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionDims {
    /// Tq: queries.
    pub queries: usize,
    /// The position of the first query; keys and values hold pos0 + Tq rows.
    pub pos0: usize,
    /// NH: query heads.
    pub heads: usize,
    /// NKV: key/value heads, dividing NH.
    pub kv_heads: usize,
    /// HS: channels per head.
    pub head_size: usize,
    /// The factor on q · k, 1/√HS in GPT-2.
    pub scale: f32,
    /// Floats from one row of q or out to the next: C for a whole call, more for a call on some of
    /// the heads of a wider one.
    pub stride: usize,
    /// Floats from one row of k or v to the next: CKV for a whole call, more for a call on some of
    /// the heads of a wider one. Blocks of keys lie KEY_BLOCK · kv_stride floats apart.
    pub kv_stride: usize,
    /// How k holds the keys.
    pub key_layout: KeyLayout,
}

impl AttentionDims {
    /// The dims of a multi-head call on whole rows (stride = C), keys in rows.
    pub fn new(queries: usize, pos0: usize, heads: usize, head_size: usize, scale: f32) -> Self {
        AttentionDims {
            queries,
            pos0,
            heads,
            kv_heads: heads,
            head_size,
            scale,
            stride: heads * head_size,
            kv_stride: heads * head_size,
            key_layout: KeyLayout::Rows,
        }
    }

    /// The same call with `kv_heads` key/value heads on whole rows (kv_stride = CKV).
    pub fn with_kv_heads(self, kv_heads: usize) -> Self {
        AttentionDims {
            kv_heads,
            kv_stride: kv_heads * self.head_size,
            ..self
        }
    }

    /// NH / NKV: the query heads that share each key/value head.
    pub fn group(&self) -> usize {
        self.heads / self.kv_heads.max(1)
    }

    /// The column of k and v where the key/value head of query head `h` starts.
    pub fn kv_column(&self, h: usize) -> usize {
        h / self.group().max(1) * self.head_size
    }

    /// CKV = NKV · HS.
    pub fn kv_channels(&self) -> usize {
        self.kv_heads * self.head_size
    }

    /// The same call with keys held as `key_layout` says.
    pub fn with_key_layout(self, key_layout: KeyLayout) -> Self {
        AttentionDims { key_layout, ..self }
    }

    /// C = NH · HS.
    pub fn channels(&self) -> usize {
        self.heads * self.head_size
    }

    /// S = pos0 + Tq.
    pub fn keys(&self) -> usize {
        self.pos0 + self.queries
    }

    /// Where channel `c` of key `j` is in k.
    pub fn key_index(&self, j: usize, c: usize) -> usize {
        match self.key_layout {
            KeyLayout::Rows => j * self.kv_stride + c,
            KeyLayout::Blocks => j / KEY_BLOCK * KEY_BLOCK * self.kv_stride + c * KEY_BLOCK + j % KEY_BLOCK,
        }
    }

    /// Writes `key` (the channels of key `j` from channel 0) into k where this layout keeps them.
    pub fn store_key(&self, k: &mut [f32], j: usize, key: &[f32]) {
        match self.key_layout {
            KeyLayout::Rows => k[self.key_index(j, 0)..][..key.len()].copy_from_slice(key),
            KeyLayout::Blocks => {
                for (ch, &x) in key.iter().enumerate() {
                    k[self.key_index(j, ch)] = x;
                }
            }
        }
    }

    /// The floats of k the call takes: the first `key_floats()` of a whole call's keys are the keys
    /// of any call on fewer of its queries (see [`AttentionDims::rows`]).
    pub fn key_floats(&self) -> usize {
        let (rows, width, stride) = self.key_rows();
        crate::rows_end(rows, width, stride)
    }

    /// k as rows of floats: (rows, floats of each that belong to the call, floats from one row to
    /// the next). A block of keys is one row.
    fn key_rows(&self) -> (usize, usize, usize) {
        let (s, c) = (self.keys(), self.kv_channels());
        match self.key_layout {
            KeyLayout::Rows => (s, c, self.kv_stride),
            KeyLayout::Blocks => (s.div_ceil(KEY_BLOCK), KEY_BLOCK * c, KEY_BLOCK * self.kv_stride),
        }
    }

    /// Key `j`'s channels col .. col + buf.len(): a slice of k in rows, else gathered into `buf`.
    pub(crate) fn key_row<'a>(&self, k: &'a [f32], j: usize, col: usize, buf: &'a mut [f32]) -> &'a [f32] {
        match self.key_layout {
            KeyLayout::Rows => &k[self.key_index(j, col)..][..buf.len()],
            KeyLayout::Blocks => {
                for (dd, x) in buf.iter_mut().enumerate() {
                    *x = k[self.key_index(j, col + dd)];
                }
                buf
            }
        }
    }

    /// The call for queries `rows` of this one (a thread's block): they keep their positions and
    /// see the keys up to the last of them, the first `keys()` rows of v and the first
    /// `key_floats()` floats of k.
    pub fn rows(&self, rows: core::ops::Range<usize>) -> AttentionDims {
        AttentionDims {
            queries: rows.len(),
            pos0: self.pos0 + rows.start,
            ..*self
        }
    }

    /// The call for query heads `heads` of this one, which must be whole groups of the heads that
    /// share a key/value head, and the columns its slices start at: (dims, column of q and out,
    /// column of k and v). The same queries and keys, rows still `stride` and `kv_stride` floats
    /// apart. Its q and out are this call's from the first column on, its v from the second, its k
    /// from `key_index(0, second)`.
    pub fn heads(&self, heads: core::ops::Range<usize>) -> (AttentionDims, usize, usize) {
        let group = self.group();
        assert!(
            heads.end <= self.heads && heads.start.is_multiple_of(group) && heads.len().is_multiple_of(group),
            "attention: heads {heads:?} of {} are not whole groups of {group}",
            self.heads
        );
        let dims = AttentionDims {
            heads: heads.len(),
            kv_heads: heads.len() / group,
            ..*self
        };
        (dims, heads.start * self.head_size, self.kv_column(heads.start))
    }

    /// Asserts the contract: NKV divides NH; slice lengths match the dims, exactly for whole rows
    /// (stride = C, kv_stride = CKV), to the end of the last row's heads otherwise; k the same by
    /// blocks of keys in blocks.
    pub fn check(&self, q: &[f32], k: &[f32], v: &[f32], out: &[f32]) {
        let (t, s, c, stride) = (self.queries, self.keys(), self.channels(), self.stride);
        let (ckv, kv_stride) = (self.kv_channels(), self.kv_stride);
        assert!(
            self.kv_heads > 0 && self.heads.is_multiple_of(self.kv_heads),
            "attention: kv_heads = {} does not divide heads = {}",
            self.kv_heads,
            self.heads
        );
        assert!(stride >= c, "attention: stride = {stride} is below C = {c}");
        assert!(
            kv_stride >= ckv,
            "attention: kv_stride = {kv_stride} is below CKV = {ckv}"
        );
        let assert_rows = |name: &str, len: usize, rows: usize, what: &str| {
            assert!(
                crate::holds_rows(len, rows, c, stride),
                "attention: {name} ({len} floats) is not [{what} = {rows}, C = {c}] with rows {stride} apart"
            );
        };
        let assert_kv_rows = |name: &str, len: usize| {
            assert!(
                crate::holds_rows(len, s, ckv, kv_stride),
                "attention: {name} ({len} floats) is not [S = {s}, CKV = {ckv}] with rows {kv_stride} apart"
            );
        };
        assert_rows("q", q.len(), t, "Tq");
        match self.key_layout {
            KeyLayout::Rows => assert_kv_rows("k", k.len()),
            KeyLayout::Blocks => {
                let (blocks, width, block_stride) = self.key_rows();
                assert!(
                    crate::holds_rows(k.len(), blocks, width, block_stride),
                    "attention: k ({len} floats) is not [⌈S / {KEY_BLOCK}⌉ = {blocks}, CKV = {ckv}, {KEY_BLOCK}] \
                     with blocks {block_stride} apart",
                    len = k.len()
                );
            }
        }
        assert_kv_rows("v", v.len());
        assert_rows("out", out.len(), t, "Tq");
    }
}

#[cfg(test)]
mod tests {
    use super::{AttentionDims, KEY_BLOCK, KeyLayout};

    /// 21 keys of two heads of 3 channels (C = 6) in blocks: two blocks of 16 · 6 floats.
    fn blocks() -> AttentionDims {
        AttentionDims::new(1, 20, 2, 3, 1.0).with_key_layout(KeyLayout::Blocks)
    }

    #[test]
    fn keys_in_blocks_lie_channel_by_channel() {
        let d = blocks();
        assert_eq!(d.key_index(0, 0), 0);
        assert_eq!(d.key_index(1, 0), 1);
        assert_eq!(d.key_index(0, 1), KEY_BLOCK);
        assert_eq!(d.key_index(17, 5), 16 * 6 + 5 * 16 + 1);
        assert_eq!(d.key_floats(), 2 * 16 * 6);
        // Head 1 alone: its k starts at channel 3 of the first block, blocks still 16 · 6 apart.
        let (part, col, _) = d.heads(1..2);
        assert_eq!(d.key_index(0, col), 3 * 16);
        assert_eq!(part.key_index(17, 2), 16 * 6 + 2 * 16 + 1);
        assert_eq!(part.key_floats(), 16 * 6 + 3 * 16);
        // Keys in rows: whole rows, and a strided head to the end of its last row.
        let rows = AttentionDims::new(1, 20, 2, 3, 1.0);
        assert_eq!(rows.key_index(17, 5), 17 * 6 + 5);
        assert_eq!(rows.key_floats(), 21 * 6);
        assert_eq!(rows.heads(1..2).0.key_floats(), 20 * 6 + 3);
        assert_eq!(
            AttentionDims::new(0, 0, 2, 3, 1.0)
                .with_key_layout(KeyLayout::Blocks)
                .key_floats(),
            0
        );
    }

    #[test]
    fn whole_blocks_of_keys_pass_the_check() {
        let d = blocks();
        d.check(&[0.0; 6], &vec![0.0; 2 * 16 * 6], &[0.0; 21 * 6], &[0.0; 6]);
    }

    #[test]
    #[should_panic(expected = "k (191 floats) is not [⌈S / 16⌉ = 2, CKV = 6, 16] with blocks 96 apart")]
    fn a_short_last_block_of_keys_is_refused() {
        blocks().check(&[0.0; 6], &vec![0.0; 2 * 16 * 6 - 1], &[0.0; 21 * 6], &[0.0; 6]);
    }

    #[test]
    #[should_panic(expected = "k (126 floats) is not")]
    fn keys_in_rows_are_refused_where_blocks_are_due() {
        blocks().check(&[0.0; 6], &[0.0; 21 * 6], &[0.0; 21 * 6], &[0.0; 6]);
    }
}
