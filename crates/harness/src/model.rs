//! The kernel-driven GPT-2: the reference model's forward pass with every op done by a registered
//! kernel variant (a [`KernelSet`]) at one ISA level, on N threads, with a KV cache for decoding.
//!
//! Threads split rows (tokens, or queries for attention) into contiguous blocks, one kernel call per
//! block, and a one-row matmul (a decode step) into blocks of columns; every kernel computes each
//! output row, and each element of it, from the same inputs in the same order whatever the block, so
//! the output is bit-identical for every thread count.
//!
//! Legend: T = new tokens, S = tokens attended to, C = `n_embd`, I = `n_inner`, V = `vocab_size`,
//! NH = `n_head`, HS = C / NH.

use std::collections::HashMap;
use std::ops::Range;

use rayon::prelude::*;

use tkbench_kernels::attention::{AttentionDims, KEY_BLOCK, KeyLayout};
use tkbench_kernels::embedding::EmbeddingDims;
use tkbench_kernels::layernorm::LayerNormDims;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Isa, Kernel, Op};
use tkbench_reference::{Checkpoint, Config, Result};

use crate::aligned::{AlignedVec, LINE, Pages};
use crate::kernels::KernelSet;

/// The weights in the layout the kernels take: a copy of the checkpoint's tensors, each on a cache
/// line, and wte transposed to [C, V] for the LM head, all on huge pages where the system grants them.
/// Built once per checkpoint and shared by every kernel set.
///
/// A decode step streams every weight from memory once. On the 2-CPU AVX-512 host a plain read
/// stream on one core moved 34-41 GB/s from 4 KiB pages and 42-45 GB/s from 2 MiB pages (fewer
/// TLB misses, and fewer page ends where the hardware prefetcher stops).
pub struct Weights<'a> {
    checkpoint: &'a Checkpoint,
    /// Every tensor of the checkpoint, each starting on a cache line.
    arena: AlignedVec,
    /// Where each tensor lies in `arena`.
    places: HashMap<String, Range<usize>>,
    /// [C, V], rows `wte_ld` floats apart and each on a cache line. With V = 50257 unpadded rows
    /// start on a line one time in sixteen; padded, the LM head of a decode step streamed 4.49-4.54
    /// against 4.62-4.82 ms on one thread.
    wte_t: AlignedVec,
    /// V rounded up to whole cache lines.
    wte_ld: usize,
    /// The pages asked for, which the caches of models on these weights ask for too (a buffer
    /// below one huge page gets small ones either way).
    asked: Pages,
}

impl<'a> Weights<'a> {
    /// Prepares `checkpoint` for the kernel-driven model, on huge pages where the system grants them.
    pub fn new(checkpoint: &'a Checkpoint) -> Self {
        Self::on_pages(checkpoint, Pages::Huge)
    }

    /// Prepares `checkpoint` for the kernel-driven model, its copies (and the caches of models on
    /// these weights) on `pages`.
    pub fn on_pages(checkpoint: &'a Checkpoint, pages: Pages) -> Self {
        let tensors = checkpoint.tensors();
        let mut places = HashMap::with_capacity(tensors.len());
        let mut end = 0;
        for (name, tensor) in tensors {
            places.insert(name.clone(), end..end + tensor.data.len());
            end += tensor.data.len().div_ceil(LINE) * LINE;
        }
        let mut arena = AlignedVec::filled_on(end, 0.0, pages);
        for (name, tensor) in tensors {
            arena[places[name].clone()].copy_from_slice(&tensor.data);
        }
        let wte = checkpoint.matrix("wte.weight"); // [V, C]
        let (v, c) = wte.dim();
        let wte_ld = v.div_ceil(LINE) * LINE;
        let mut wte_t = AlignedVec::filled_on(c * wte_ld, 0.0, pages);
        for (row, column) in wte_t.chunks_exact_mut(wte_ld).zip(wte.columns()) {
            for (x, &w) in row.iter_mut().zip(column) {
                *x = w;
            }
        }
        Self {
            checkpoint,
            arena,
            places,
            wte_t,
            wte_ld,
            asked: pages,
        }
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &Config {
        self.checkpoint.config()
    }

    /// Which pages hold the weights (`Small` when the system refused huge ones).
    pub fn pages(&self) -> Pages {
        self.arena.pages()
    }

    fn tensor(&self, name: &str) -> &[f32] {
        &self.arena[self.places[name].clone()]
    }
}

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct Output {
    /// [T, V] logits.
    pub logits: Vec<f32>,
    /// [T, V] next-token probabilities, by the set's softmax kernel.
    pub probs: Vec<f32>,
    /// L + 1 arrays [T, C] in Hugging Face's hidden_states convention (the last after ln_f).
    pub hidden: Vec<Vec<f32>>,
}

/// Keys and values of every token seen so far, per layer, with the first `len` positions used: values
/// [P, C], keys in blocks of [`KEY_BLOCK`] positions stored channel by channel
/// ([`KeyLayout::Blocks`]), which a decode step reads in order.
pub struct KvCache {
    keys: Vec<AlignedVec>,
    values: Vec<AlignedVec>,
    len: usize,
}

impl KvCache {
    /// Tokens cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every token after the first `len` (a decode step can then be repeated).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// A GPT-2 whose ops run on a kernel set at one ISA level.
pub struct KernelModel<'w> {
    weights: &'w Weights<'w>,
    kernels: KernelSet,
    isa: Isa,
    workers: Workers,
}

/// Splits `rows` into at most `parts` contiguous, non-empty ranges of (nearly) equal length.
pub fn row_blocks(rows: usize, parts: usize) -> Vec<Range<usize>> {
    let size = rows.div_ceil(parts.max(1)).max(1);
    (0..rows)
        .step_by(size)
        .map(|start| start..(start + size).min(rows))
        .collect()
}

/// Columns a block of a one-row matmul starts on a multiple of: whole cache lines and whole vectors
/// at every level.
const COLUMN_ALIGN: usize = 64;

/// Splits a one-row matmul's `n` columns into at most `parts` contiguous blocks of nearly equal width,
/// each starting on a multiple of [`COLUMN_ALIGN`]: with one row of a (a decode step) there are no
/// rows to share, and the columns of b, which must be read once from memory, are the work.
pub fn column_blocks(n: usize, parts: usize) -> Vec<Range<usize>> {
    let size = n.div_ceil(parts.max(1)).div_ceil(COLUMN_ALIGN).max(1) * COLUMN_ALIGN;
    (0..n).step_by(size).map(|start| start..(start + size).min(n)).collect()
}

/// Splits causal attention's `queries` (at positions pos0 ..) into at most `parts` contiguous ranges
/// of nearly equal work: query i sees pos0 + i + 1 keys, so equal query counts would give the last
/// thread three times the first one's work in a prefill.
pub fn attention_blocks(queries: usize, pos0: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, queries.max(1));
    let total: usize = (0..queries).map(|i| pos0 + i + 1).sum();
    let mut blocks = Vec::with_capacity(parts);
    let (mut start, mut done) = (0, 0);
    for i in 0..queries {
        done += pos0 + i + 1;
        let remaining_blocks = parts - blocks.len() - 1;
        let share = total * (blocks.len() + 1) / parts;
        // Close a block at its share of the work, leaving at least one query per later block.
        if remaining_blocks > 0 && done >= share && queries - (i + 1) >= remaining_blocks {
            blocks.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < queries || blocks.is_empty() {
        blocks.push(start..queries);
    }
    blocks
}

/// What the blocks of a [`Split`] count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Output rows (for attention, queries).
    Rows,
    /// Columns of a one-row matmul (a decode step, with no rows to share).
    Columns,
    /// Heads of a one-query attention (a decode step): each reads its heads' columns of the cache.
    Heads,
}

/// How threads split one call of an op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The blocks, one per thread at most.
    pub blocks: Vec<Range<usize>>,
    /// What the blocks count.
    pub by: By,
}

/// The split of a call of `op` with `rows` output rows of `width` (for attention, queries from
/// position `pos0` over `heads` heads; 1 for other ops) on `threads` threads: the one policy of the
/// model and the benches.
pub fn split(op: Op, rows: usize, width: usize, pos0: usize, heads: usize, threads: usize) -> Split {
    let (blocks, by) = match op {
        Op::Matmul if rows == 1 => (column_blocks(width, threads), By::Columns),
        Op::Attention if rows == 1 => (row_blocks(heads, threads), By::Heads),
        Op::Attention => (attention_blocks(rows, pos0, threads), By::Rows),
        _ => (row_blocks(rows, threads), By::Rows),
    };
    Split { blocks, by }
}

/// Cuts `out` ([rows, width]) into one mutable slice per block of rows.
fn split_rows<'a>(mut out: &'a mut [f32], blocks: &[Range<usize>], width: usize) -> Vec<&'a mut [f32]> {
    let mut parts = Vec::with_capacity(blocks.len());
    for block in blocks {
        let (head, tail) = std::mem::take(&mut out).split_at_mut(block.len() * width);
        parts.push(head);
        out = tail;
    }
    parts
}

/// The threads a call is split across: a pool of `threads` threads. Work that splits many calls runs
/// inside [`Workers::install`], on a pool thread: each split call then starts its blocks there, the
/// calling thread takes part and the others steal the rest, with no hand-over from outside the pool.
/// A call from outside hands all its blocks to the pool and waits, two wake-ups more: on the 2-CPU
/// host 53 against 44 µs for 1024 × 768 layernorm rows on 2 threads, 282–315 against 178–198 µs for
/// 4096 rows. (A caller outside a pool of one thread fewer, taking the first block itself, was slower
/// still: 93 against 61 µs.)
pub struct Workers {
    /// The pool; none for one thread.
    pool: Option<rayon::ThreadPool>,
    threads: usize,
}

impl Workers {
    /// `threads` threads (0: rayon's default, `RAYON_NUM_THREADS` or one per CPU).
    pub fn new(threads: usize) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        let threads = pool.current_num_threads();
        Self {
            pool: (threads > 1).then_some(pool),
            threads,
        }
    }

    /// The number of threads that work on a split call.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `op` on a thread of the pool, so that the calls it splits start on a pool thread; with
    /// one thread there is no pool, and `op` runs on the calling thread.
    pub fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(op),
            None => op(),
        }
    }

    /// Calls `work(block, out_block)` on each block of rows of `out` ([rows, width]), the blocks in
    /// parallel on the pool (from inside [`Workers::install`], the calling pool thread takes part); a
    /// single block runs on the calling thread (from outside the pool, handing it over would only add
    /// two wake-ups, about 20 µs on the 2-CPU host).
    pub fn run(
        &self,
        blocks: &[Range<usize>],
        width: usize,
        out: &mut [f32],
        work: impl Fn(Range<usize>, &mut [f32]) + Sync,
    ) {
        let parts = split_rows(out, blocks, width);
        match self.pool.as_ref().filter(|_| blocks.len() > 1) {
            Some(pool) => pool.install(|| {
                parts
                    .into_par_iter()
                    .zip(blocks.par_iter())
                    .for_each(|(out, block)| work(block.clone(), out));
            }),
            None => {
                for (out, block) in parts.into_iter().zip(blocks) {
                    work(block.clone(), out);
                }
            }
        }
    }
}

impl<'w> KernelModel<'w> {
    /// A model on `weights` running `kernels` at `isa` on `threads` threads (0 = all cores).
    pub fn new(weights: &'w Weights<'w>, kernels: KernelSet, isa: Isa, threads: usize) -> Self {
        assert!(isa.is_available(), "ISA level {isa} is not available on this CPU");
        Self {
            weights,
            kernels,
            isa,
            workers: Workers::new(threads),
        }
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.workers.threads()
    }

    /// An empty KV cache.
    pub fn new_cache(&self) -> KvCache {
        let cfg = self.weights.config();
        let buffer = |positions: usize| AlignedVec::filled_on(positions * cfg.n_embd, 0.0, self.weights.asked);
        let key_positions = cfg.n_positions.div_ceil(KEY_BLOCK) * KEY_BLOCK;
        KvCache {
            keys: (0..cfg.n_layer).map(|_| buffer(key_positions)).collect(),
            values: (0..cfg.n_layer).map(|_| buffer(cfg.n_positions)).collect(),
            len: 0,
        }
    }

    /// The logits, probabilities and hidden states of `tokens` processed at once (prefill).
    pub fn forward(&self, tokens: &[u32]) -> Result<Output> {
        self.forward_cached(tokens, &mut self.new_cache())
    }

    /// The same for `tokens` placed after the tokens in `cache`, which grows by T.
    pub fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Output> {
        // On a pool thread, so that each of the pass's split calls starts there.
        self.workers.install(|| self.forward_on_pool(tokens, cache))
    }

    /// [`KernelModel::forward_cached`], on a thread of the pool.
    fn forward_on_pool(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Output> {
        let cfg = self.weights.config();
        // The reference model's own checks: non-empty, ids in range, within the context.
        tkbench_reference::model::check_tokens(cfg, tokens, cache.len)?;
        let (t, c, i, v) = (tokens.len(), cfg.n_embd, cfg.n_inner, cfg.vocab_size);
        let p0 = cache.len;
        let w = self.weights;
        let attention = self.attention_dims(t, p0);
        let mut hidden = Vec::with_capacity(cfg.n_layer + 1);

        let mut x = vec![0.0f32; t * c]; // [T, C] the residual stream
        self.embedding(tokens, p0, &mut x);
        let mut h = vec![0.0f32; t * c]; // [T, C]
        let mut qkv = vec![0.0f32; t * 3 * c]; // [T, 3C]
        let mut q = vec![0.0f32; t * c]; // [T, C]
        let mut a = vec![0.0f32; t * c]; // [T, C]
        let mut proj = vec![0.0f32; t * c]; // [T, C]
        let mut fc = vec![0.0f32; t * i]; // [T, I]
        let mut act = vec![0.0f32; t * i]; // [T, I]
        for l in 0..cfg.n_layer {
            hidden.push(x.clone());
            let name = |suffix: &str| format!("h.{l}.{suffix}");
            // Attention: x += c_proj(attention(c_attn(ln_1(x)))).
            self.layernorm(&x, &name("ln_1"), &mut h);
            self.matmul(&h, &name("attn.c_attn"), c, 3 * c, &mut qkv);
            let (keys, values) = (&mut cache.keys[l], &mut cache.values[l]);
            for (row, qkv_row) in qkv.chunks_exact(3 * c).enumerate() {
                q[row * c..][..c].copy_from_slice(&qkv_row[..c]);
                attention.store_key(keys, p0 + row, &qkv_row[c..2 * c]);
                values[(p0 + row) * c..][..c].copy_from_slice(&qkv_row[2 * c..]);
            }
            let (keys, values) = (&keys[..attention.key_floats()], &values[..(p0 + t) * c]);
            self.attention(&attention, &q, keys, values, &mut a);
            self.matmul(&a, &name("attn.c_proj"), c, c, &mut proj);
            add_in_place(&mut x, &proj);
            // MLP: x += c_proj(gelu(c_fc(ln_2(x)))).
            self.layernorm(&x, &name("ln_2"), &mut h);
            self.matmul(&h, &name("mlp.c_fc"), c, i, &mut fc);
            self.gelu(&fc, &mut act);
            self.matmul(&act, &name("mlp.c_proj"), i, c, &mut proj);
            add_in_place(&mut x, &proj);
        }
        self.layernorm(&x, "ln_f", &mut h);
        hidden.push(h.clone());
        let mut logits = vec![0.0f32; t * v]; // [T, V]
        let lm_head = MatmulDims {
            ldb: w.wte_ld,
            ..MatmulDims::new(t, c, v)
        };
        self.matmul_with(&h, &w.wte_t, None, lm_head, &mut logits);
        let mut probs = vec![0.0f32; t * v]; // [T, V]
        self.softmax(&logits, v, &mut probs);
        cache.len += t;
        Ok(Output { logits, probs, hidden })
    }

    fn embedding(&self, tokens: &[u32], p0: usize, out: &mut [f32]) {
        let Kernel::Embedding(f) = self.kernels.get(Op::Embedding).kernel else {
            unreachable!()
        };
        let cfg = self.weights.config();
        let c = cfg.n_embd;
        let (wte, wpe) = (self.weights.tensor("wte.weight"), self.weights.tensor("wpe.weight"));
        let whole = EmbeddingDims {
            tokens: tokens.len(),
            channels: c,
            vocab: cfg.vocab_size,
            positions: cfg.n_positions,
            pos0: p0,
        };
        self.for_rows(Op::Embedding, tokens.len(), c, out, |rows, out| {
            f(&whole.rows(rows.clone()), &tokens[rows], wte, wpe, out, self.isa);
        });
    }

    fn layernorm(&self, x: &[f32], prefix: &str, out: &mut [f32]) {
        let Kernel::LayerNorm(f) = self.kernels.get(Op::LayerNorm).kernel else {
            unreachable!()
        };
        let cfg = self.weights.config();
        let c = cfg.n_embd;
        let gamma = self.weights.tensor(&format!("{prefix}.weight"));
        let beta = self.weights.tensor(&format!("{prefix}.bias"));
        let eps = cfg.layer_norm_epsilon as f32;
        self.for_rows(Op::LayerNorm, x.len() / c, c, out, |rows, out| {
            let dims = LayerNormDims {
                rows: rows.len(),
                channels: c,
                eps,
            };
            f(&dims, &x[rows.start * c..rows.end * c], gamma, beta, out, self.isa);
        });
    }

    fn matmul(&self, x: &[f32], prefix: &str, k: usize, n: usize, out: &mut [f32]) {
        let weight = self.weights.tensor(&format!("{prefix}.weight"));
        let bias = self.weights.tensor(&format!("{prefix}.bias"));
        self.matmul_with(x, weight, Some(bias), MatmulDims::new(x.len() / k, k, n), out);
    }

    /// out = x · b (+ bias) for the matmul `whole` (its rows are x's, b's rows ldb apart).
    fn matmul_with(&self, x: &[f32], b: &[f32], bias: Option<&[f32]>, whole: MatmulDims, out: &mut [f32]) {
        let Kernel::Matmul(f) = self.kernels.get(Op::Matmul).kernel else {
            unreachable!()
        };
        let (k, n) = (whole.k, whole.n);
        let split = split(Op::Matmul, whole.m, n, 0, 1, self.threads());
        if split.by == By::Columns {
            // One row: threads share the columns (each reads its block of b's rows, ldb apart).
            self.workers.run(&split.blocks, 1, out, |cols, out| {
                let (dims, b) = whole.columns(b, cols.clone());
                f(&dims, x, b, bias.map(|bias| &bias[cols]), out, self.isa);
            });
        } else {
            self.workers.run(&split.blocks, n, out, |rows, out| {
                let dims = MatmulDims { m: rows.len(), ..whole };
                f(&dims, &x[rows.start * k..rows.end * k], b, bias, out, self.isa);
            });
        }
    }

    /// The attention call of `t` tokens after `p0` cached ones: GPT-2's scale, keys in blocks.
    fn attention_dims(&self, t: usize, p0: usize) -> AttentionDims {
        let cfg = self.weights.config();
        let hs = cfg.head_size();
        let scale = if cfg.scale_attn_weights {
            1.0 / (hs as f32).sqrt()
        } else {
            1.0
        };
        AttentionDims::new(t, p0, cfg.n_head, hs, scale).with_key_layout(KeyLayout::Blocks)
    }

    /// out = attention(q, k, v) for the call `whole`, split over the threads.
    fn attention(&self, whole: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
        let Kernel::Attention(f) = self.kernels.get(Op::Attention).kernel else {
            unreachable!()
        };
        let (c, hs, p0) = (whole.channels(), whole.head_size, whole.pos0);
        let split = split(Op::Attention, whole.queries, c, p0, whole.heads, self.threads());
        if split.by == By::Heads {
            // One query: threads share the heads (each reads its heads' columns of the cache).
            self.workers.run(&split.blocks, hs, out, |heads, out| {
                let (dims, col) = whole.heads(heads);
                f(&dims, &q[col..], &k[dims.key_index(0, col)..], &v[col..], out, self.isa);
            });
        } else {
            self.workers.run(&split.blocks, c, out, |rows, out| {
                // Queries keep their positions and see the keys up to their own.
                let dims = whole.rows(rows.clone());
                f(
                    &dims,
                    &q[rows.start * c..rows.end * c],
                    &k[..dims.key_floats()],
                    &v[..dims.keys() * c],
                    out,
                    self.isa,
                );
            });
        }
    }

    fn gelu(&self, x: &[f32], out: &mut [f32]) {
        let Kernel::Gelu(f) = self.kernels.get(Op::Gelu).kernel else {
            unreachable!()
        };
        let i = self.weights.config().n_inner;
        self.for_rows(Op::Gelu, x.len() / i, i, out, |rows, out| {
            f(&x[rows.start * i..rows.end * i], out, self.isa)
        });
    }

    fn softmax(&self, x: &[f32], cols: usize, out: &mut [f32]) {
        let Kernel::Softmax(f) = self.kernels.get(Op::Softmax).kernel else {
            unreachable!()
        };
        self.for_rows(Op::Softmax, x.len() / cols, cols, out, |rows, out| {
            f(
                &SoftmaxDims { rows: rows.len(), cols },
                &x[rows.start * cols..rows.end * cols],
                out,
                self.isa,
            );
        });
    }

    /// Calls `work(rows, out_rows)` on the blocks of rows of `out` ([rows, width]) that [`split`]
    /// gives a call of `op` (not a one-row matmul), in parallel.
    fn for_rows(
        &self,
        op: Op,
        rows: usize,
        width: usize,
        out: &mut [f32],
        work: impl Fn(Range<usize>, &mut [f32]) + Sync,
    ) {
        let split = split(op, rows, width, 0, 1, self.threads());
        debug_assert_eq!(split.by, By::Rows, "{} is split by rows here", op.name());
        self.workers.run(&split.blocks, width, out, work);
    }
}

/// x += y, elementwise (the residual connection).
fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::attention_blocks;

    #[test]
    fn attention_blocks_cover_every_query_once_with_balanced_work() {
        for (queries, pos0, parts) in [(1024, 0, 2), (7, 0, 3), (5, 512, 2), (3, 0, 8), (1, 0, 2), (128, 0, 5)] {
            let blocks = attention_blocks(queries, pos0, parts);
            assert_eq!(blocks.first().unwrap().start, 0);
            assert_eq!(blocks.last().unwrap().end, queries);
            assert!(blocks.windows(2).all(|w| w[0].end == w[1].start && !w[1].is_empty()));
            assert!(blocks.len() <= parts.min(queries));
        }
        // A 1024-token prefill on 2 threads splits near 1024/√2, not at 512.
        let blocks = attention_blocks(1024, 0, 2);
        assert!((720..=726).contains(&blocks[0].end), "{blocks:?}");
    }
}
