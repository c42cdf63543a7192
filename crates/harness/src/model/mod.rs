//! The kernel-driven GPT-2: the reference model's forward pass with every op done by a registered
//! kernel variant (a [`KernelSet`]) at one ISA level, on N threads, with a KV cache for decoding.
//!
//! Every op call goes through its definition's call path ([`threads::run_split`]): threads split it
//! as the op's definition says, and every kernel computes each output element from the same inputs in
//! the same order whatever the block, so the output is bit-identical for every thread count.
//!
//! Legend: T = new tokens, S = tokens attended to, C = `n_embd`, I = `n_inner`, V = `vocab_size`,
//! NH = `n_head`, HS = C / NH.

pub mod llama;
pub mod threads;

use std::collections::HashMap;
use std::ops::Range;

use tkbench_kernels::Isa;
use tkbench_kernels::attention::{AttentionDims, KEY_BLOCK, KeyLayout};
use tkbench_kernels::embedding::EmbeddingDims;
use tkbench_kernels::layernorm::LayerNormDims;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_reference::{Checkpoint, Config, Family, Result};

use crate::aligned::{AlignedVec, LINE, Pages};
use crate::measure::work::Work;
use crate::ops::attention::AttentionArgs;
use crate::ops::embedding::EmbeddingArgs;
use crate::ops::gelu::GeluShape;
use crate::ops::layernorm::LayerNormArgs;
use crate::ops::matmul::{MatmulArgs, MatmulShape};
use crate::ops::{Attention, Embedding, Gelu, LayerNorm, Matmul, Op, Softmax};
use crate::registry::KernelSet;
use threads::{Workers, run_split};

/// The weights in the layout the kernels take: a copy of the checkpoint's tensors, each on a cache
/// line, and wte transposed to [C, V] for the LM head, all on huge pages where the system grants them.
/// Built once per checkpoint and shared by every kernel set.
///
/// A decode step streams every weight from memory once, which huge pages speed up (fewer TLB misses,
/// and fewer page ends where the hardware prefetcher stops; PERFORMANCE.md, "Huge pages for the
/// weights and the KV cache").
pub struct Weights<'a> {
    checkpoint: &'a Checkpoint,
    /// Every tensor of the checkpoint, each starting on a cache line.
    arena: AlignedVec,
    /// Where each tensor lies in `arena`.
    places: HashMap<String, Range<usize>>,
    /// [C, V], rows `wte_ld` floats apart and each on a cache line: with V = 50257 unpadded rows
    /// would start on a line one time in sixteen, and the LM head of a decode step streams padded
    /// rows faster (PERFORMANCE.md).
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

/// The ops a family's kernel-driven model calls, by name.
pub fn family_ops(family: Family) -> &'static [&'static str] {
    match family {
        Family::Gpt2 => &["embedding", "layernorm", "matmul", "attention", "gelu", "softmax"],
        Family::Llama => &["rmsnorm", "matmul", "rope", "attention", "swiglu", "softmax"],
    }
}

/// What the checks ask of a kernel-driven model of any family.
pub trait KernelLm {
    /// The number of threads it runs on.
    fn threads(&self) -> usize;
    /// An empty KV cache.
    fn new_cache(&self) -> KvCache;
    /// The logits, probabilities and hidden states of every row of `tokens` placed after the
    /// tokens in `cache`, which grows by T.
    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Output>;
    /// The logits and probabilities of the rows `logit_rows` of `tokens` placed after the tokens in
    /// `cache` (which grows by T), and every row's hidden states.
    fn forward_cached_rows(&self, tokens: &[u32], cache: &mut KvCache, logit_rows: &[usize]) -> Result<Output>;
}

impl KernelLm for KernelModel<'_> {
    fn threads(&self) -> usize {
        KernelModel::threads(self)
    }
    fn new_cache(&self) -> KvCache {
        KernelModel::new_cache(self)
    }
    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Output> {
        KernelModel::forward_cached(self, tokens, cache)
    }
    fn forward_cached_rows(&self, tokens: &[u32], cache: &mut KvCache, logit_rows: &[usize]) -> Result<Output> {
        KernelModel::forward_cached_rows(self, tokens, cache, logit_rows)
    }
}

impl KernelLm for llama::LlamaKernelModel<'_> {
    fn threads(&self) -> usize {
        llama::LlamaKernelModel::threads(self)
    }
    fn new_cache(&self) -> KvCache {
        llama::LlamaKernelModel::new_cache(self)
    }
    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Output> {
        llama::LlamaKernelModel::forward_cached(self, tokens, cache)
    }
    fn forward_cached_rows(&self, tokens: &[u32], cache: &mut KvCache, logit_rows: &[usize]) -> Result<Output> {
        llama::LlamaKernelModel::forward_cached_rows(self, tokens, cache, logit_rows)
    }
}

/// The kernel layout of a checkpoint of either family.
pub enum AnyWeights<'a> {
    /// GPT-2's.
    Gpt2(Weights<'a>),
    /// Llama's.
    Llama(llama::LlamaWeights<'a>),
}

impl<'a> AnyWeights<'a> {
    /// Prepares `checkpoint` for its family's kernel-driven model.
    pub fn new(checkpoint: &'a crate::check::golden::AnyCheckpoint) -> Self {
        match checkpoint {
            crate::check::golden::AnyCheckpoint::Gpt2(c) => AnyWeights::Gpt2(Weights::new(c)),
            crate::check::golden::AnyCheckpoint::Llama(c) => AnyWeights::Llama(llama::LlamaWeights::new(c)),
        }
    }

    /// The family's kernel-driven model on these weights, running `kernels` at `isa` on `threads`.
    pub fn model(&self, kernels: &KernelSet, isa: Isa, threads: usize) -> Box<dyn KernelLm + '_> {
        match self {
            AnyWeights::Gpt2(w) => Box::new(KernelModel::new(w, kernels, isa, threads)),
            AnyWeights::Llama(w) => Box::new(llama::LlamaKernelModel::new(w, kernels, isa, threads)),
        }
    }
}

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct Output {
    /// [T, V] logits, or [R, V] for the R rows asked for.
    pub logits: Vec<f32>,
    /// The next-token probabilities of those rows, by the set's softmax kernel.
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

/// A kernel set at one ISA level on a pool of threads: how a kernel-driven model makes its calls.
pub(crate) struct Calls {
    kernels: KernelSet,
    isa: Isa,
    workers: Workers,
}

impl Calls {
    /// `kernels` at `isa` on `threads` threads (0 = all cores).
    fn new(kernels: &KernelSet, isa: Isa, threads: usize) -> Self {
        assert!(isa.is_available(), "ISA level {isa} is not available on this CPU");
        Self {
            kernels: kernels.clone(),
            isa,
            workers: Workers::new(threads),
        }
    }

    /// The LM head and the softmax on the rows `logit_rows` of the final hidden state h [T, C] (every
    /// row when `None`): the logits and probabilities [R, V], from `head_t` [C, V] whose rows lie
    /// `ldb` floats apart.
    fn head(
        &self,
        h: Vec<f32>,
        c: usize,
        logit_rows: Option<&[usize]>,
        head_t: &[f32],
        v: usize,
        ldb: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let h = match logit_rows {
            None => h,
            Some(rows) => rows.iter().flat_map(|&r| &h[r * c..][..c]).copied().collect(),
        };
        let r = h.len() / c;
        let mut logits = vec![0.0f32; r * v]; // [R, V]
        let mut probs = vec![0.0f32; r * v]; // [R, V]
        // No rows asked for: no LM head call (a kernel need not take an empty call).
        if r > 0 {
            let shape = MatmulShape {
                dims: MatmulDims {
                    ldb,
                    ..MatmulDims::new(r, c, v)
                },
                bias: false,
            };
            let args = MatmulArgs {
                a: &h,
                b: head_t,
                bias: None,
            };
            self.run::<Matmul>(&shape, args, &mut logits);
            self.run::<Softmax>(&SoftmaxDims { rows: r, cols: v }, &logits, &mut probs);
        }
        (logits, probs)
    }

    /// One call of `O` with the set's variant, split across the threads.
    fn run<O: Op>(&self, shape: &O::Shape, args: O::Args<'_>, out: &mut [f32]) {
        run_split::<O>(
            &self.workers,
            &self.kernels.kernel::<O>().kernel,
            self.isa,
            shape,
            args,
            out,
        );
    }
}

/// A GPT-2 whose ops run on a kernel set at one ISA level.
pub struct KernelModel<'w> {
    weights: &'w Weights<'w>,
    calls: Calls,
}

impl<'w> KernelModel<'w> {
    /// A model on `weights` running `kernels` at `isa` on `threads` threads (0 = all cores).
    pub fn new(weights: &'w Weights<'w>, kernels: &KernelSet, isa: Isa, threads: usize) -> Self {
        Self {
            weights,
            calls: Calls::new(kernels, isa, threads),
        }
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.calls.workers.threads()
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
        self.calls.workers.install(|| self.forward_on_pool(tokens, cache, None))
    }

    /// [`KernelModel::forward_cached`] with the logits and probabilities of the rows `logit_rows`
    /// of this call only ([R, V], in that order); the hidden states are every row's. The LM head
    /// and the softmax then run on those R rows.
    pub fn forward_cached_rows(&self, tokens: &[u32], cache: &mut KvCache, logit_rows: &[usize]) -> Result<Output> {
        tkbench_reference::model::check_rows(logit_rows, tokens.len())?;
        self.calls
            .workers
            .install(|| self.forward_on_pool(tokens, cache, Some(logit_rows)))
    }

    /// [`KernelModel::forward_cached`], on a thread of the pool: the logits of `logit_rows`, or of
    /// every row.
    fn forward_on_pool(&self, tokens: &[u32], cache: &mut KvCache, logit_rows: Option<&[usize]>) -> Result<Output> {
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
            self.run::<Attention>(
                &attention,
                AttentionArgs {
                    q: &q,
                    k: keys,
                    v: values,
                },
                &mut a,
            );
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
        let (logits, probs) = self.calls.head(h, c, logit_rows, &w.wte_t, v, w.wte_ld);
        cache.len += t;
        Ok(Output { logits, probs, hidden })
    }

    /// One call of `O` with the set's variant, split across the threads.
    fn run<O: Op>(&self, shape: &O::Shape, args: O::Args<'_>, out: &mut [f32]) {
        self.calls.run::<O>(shape, args, out);
    }

    fn embedding(&self, tokens: &[u32], p0: usize, out: &mut [f32]) {
        let cfg = self.weights.config();
        let shape = EmbeddingDims {
            tokens: tokens.len(),
            channels: cfg.n_embd,
            vocab: cfg.vocab_size,
            positions: cfg.n_positions,
            pos0: p0,
        };
        let args = EmbeddingArgs {
            ids: tokens,
            wte: self.weights.tensor("wte.weight"),
            wpe: self.weights.tensor("wpe.weight"),
        };
        self.run::<Embedding>(&shape, args, out);
    }

    fn layernorm(&self, x: &[f32], prefix: &str, out: &mut [f32]) {
        let cfg = self.weights.config();
        let c = cfg.n_embd;
        let shape = LayerNormDims {
            rows: x.len() / c,
            channels: c,
            eps: cfg.layer_norm_epsilon as f32,
        };
        let args = LayerNormArgs {
            x,
            gamma: self.weights.tensor(&format!("{prefix}.weight")),
            beta: self.weights.tensor(&format!("{prefix}.bias")),
        };
        self.run::<LayerNorm>(&shape, args, out);
    }

    fn matmul(&self, x: &[f32], prefix: &str, k: usize, n: usize, out: &mut [f32]) {
        let weight = self.weights.tensor(&format!("{prefix}.weight"));
        let bias = self.weights.tensor(&format!("{prefix}.bias"));
        self.matmul_with(x, weight, Some(bias), MatmulDims::new(x.len() / k, k, n), out);
    }

    /// out = x · b (+ bias) for the matmul `dims` (its rows are x's, b's rows ldb apart).
    fn matmul_with(&self, x: &[f32], b: &[f32], bias: Option<&[f32]>, dims: MatmulDims, out: &mut [f32]) {
        let shape = MatmulShape {
            dims,
            bias: bias.is_some(),
        };
        self.run::<Matmul>(&shape, MatmulArgs { a: x, b, bias }, out);
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

    fn gelu(&self, x: &[f32], out: &mut [f32]) {
        self.run::<Gelu>(&GeluShape { n: x.len() }, x, out);
    }
}

/// The work of one GPT-2 forward pass over T new tokens after `cached` tokens: the sum of its op
/// calls, each op's work as its definition states it.
pub fn model_work(config: &Config, tokens: usize, cached: usize) -> Work {
    let (c, i, v, t) = (config.n_embd, config.n_inner, config.vocab_size, tokens);
    let embedding = Embedding::work(&EmbeddingDims {
        tokens: t,
        channels: c,
        vocab: v,
        positions: config.n_positions,
        pos0: cached,
    });
    let layernorm = LayerNorm::work(&LayerNormDims {
        rows: t,
        channels: c,
        eps: config.layer_norm_epsilon as f32,
    });
    let matmul = |k, n, bias| Matmul::work(&MatmulShape::new(t, k, n, bias));
    let attention = Attention::work(&AttentionDims::new(t, cached, config.n_head, config.head_size(), 1.0));
    let block = layernorm
        + matmul(c, 3 * c, true)
        + attention
        + matmul(c, c, true)
        + layernorm
        + matmul(c, i, true)
        + Gelu::work(&GeluShape { n: t * i })
        + matmul(i, c, true);
    let mut total = embedding;
    for _ in 0..config.n_layer {
        total = total + block;
    }
    total + layernorm + matmul(c, v, false) + Softmax::work(&SoftmaxDims { rows: t, cols: v })
}

/// x += y, elementwise (the residual connection).
fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// What the PyTorch peer runs for a forward pass of `tokens` tokens after `cached` ones: Hugging
/// Face's `GPT2LMHeadModel` of `config`'s sizes (randomly initialised; the time does not depend on
/// the weights), a prefill, or one decode step through its KV cache cropped back after each step.
pub fn model_peer(config: &Config, tokens: usize, cached: usize) -> crate::ops::PeerCode {
    let setup = format!(
        "import transformers\n\
         transformers.utils.logging.set_verbosity_error()\n\
         cfg = transformers.GPT2Config(n_layer={}, n_head={}, n_embd={}, n_positions={}, vocab_size={})\n\
         model = transformers.GPT2LMHeadModel(cfg).eval()\n\
         ids = torch.randint(0, {}, (1, {}), generator=g)",
        config.n_layer,
        config.n_head,
        config.n_embd,
        config.n_positions,
        config.vocab_size,
        config.vocab_size,
        tokens + cached,
    );
    if cached == 0 {
        return crate::ops::PeerCode {
            setup,
            stmt: format!("model(ids[:, :{tokens}])"),
        };
    }
    crate::ops::PeerCode {
        setup: format!("{setup}\ncache = model(ids[:, :{cached}], use_cache=True).past_key_values"),
        stmt: format!(
            "extra = cache.get_seq_length() - {cached}\n\
             if extra > 0:\n    cache.crop(-extra)\n\
             model(ids[:, {cached}:], past_key_values=cache, use_cache=True)"
        ),
    }
}
