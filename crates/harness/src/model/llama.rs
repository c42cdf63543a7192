//! The kernel-driven Llama: the reference Llama's forward pass with every op done by a kernel
//! variant of a [`KernelSet`] at one ISA level, on N threads, with a KV cache for decoding; bit-
//! identical for every thread count, as the GPT-2 one is.
//!
//! Legend: T = new tokens, S = tokens attended to, C = `hidden_size`, I = `intermediate_size`, V =
//! `vocab_size`, NH query heads and NKV key/value heads of HS channels, Q = NH · HS, KV = NKV · HS.

use tkbench_kernels::Isa;
use tkbench_kernels::attention::{AttentionDims, KEY_BLOCK, KeyLayout};
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::rmsnorm::RmsNormDims;
use tkbench_kernels::rope::RopeDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::swiglu::SwigluDims;
use tkbench_reference::{Checkpoint, LlamaConfig, Result};

use super::{Calls, KvCache, Output, add_in_place};
use crate::aligned::{AlignedVec, LINE, Pages};
use crate::measure::work::Work;
use crate::ops::attention::AttentionArgs;
use crate::ops::matmul::{MatmulArgs, MatmulShape};
use crate::ops::rmsnorm::RmsNormArgs;
use crate::ops::rope::RopeArgs;
use crate::ops::{Attention, Matmul, Op, RmsNorm, Rope, Softmax, Swiglu};
use crate::registry::KernelSet;

/// One block's weights in the layout the kernels take: every projection transposed to [in, out]
/// (the matmul computes x · B), q, k and v side by side so that one matmul makes all three, and
/// gate and up side by side so that one matmul makes the rows swiglu reads.
struct Block {
    /// [C]
    input_norm: AlignedVec,
    /// [C, Q + 2 KV]: q_proj, k_proj and v_proj transposed, side by side.
    qkv: AlignedVec,
    /// [Q, C]: o_proj transposed.
    o: AlignedVec,
    /// [C]
    post_norm: AlignedVec,
    /// [C, 2I]: gate_proj and up_proj transposed, side by side.
    gate_up: AlignedVec,
    /// [I, C]: down_proj transposed.
    down: AlignedVec,
}

/// The weights of a Llama checkpoint laid out for the kernels, on huge pages where the system
/// grants them; built once per checkpoint and shared by every kernel set.
pub struct LlamaWeights<'a> {
    checkpoint: &'a Checkpoint<LlamaConfig>,
    /// [V, C] the token embeddings, whose rows the lookup copies.
    embed: AlignedVec,
    blocks: Vec<Block>,
    /// [C]
    norm: AlignedVec,
    /// [C, V] the LM head transposed (the embeddings when tied), rows `head_ld` floats apart.
    head_t: AlignedVec,
    /// V rounded up to whole cache lines.
    head_ld: usize,
    /// [P, HS / 2] the rotary tables, computed in float64 and rounded once.
    rope_cos: AlignedVec,
    rope_sin: AlignedVec,
    asked: Pages,
}

/// The matrices `parts` ([out_p, in] each, as `torch.nn.Linear` stores them) transposed and side by
/// side: [in, Σ out_p], rows `ld` floats apart (ld ≥ Σ out_p).
fn transposed(parts: &[ndarray::ArrayView2<'_, f32>], ld: usize, pages: Pages) -> AlignedVec {
    let inputs = parts[0].ncols();
    let mut out = AlignedVec::filled_on(inputs * ld, 0.0, pages);
    let mut col = 0;
    for part in parts {
        for (o, row) in part.rows().into_iter().enumerate() {
            for (i, &w) in row.iter().enumerate() {
                out[i * ld + col + o] = w;
            }
        }
        col += part.nrows();
    }
    out
}

impl<'a> LlamaWeights<'a> {
    /// Prepares `checkpoint` for the kernel-driven model, on huge pages where the system grants them.
    pub fn new(checkpoint: &'a Checkpoint<LlamaConfig>) -> Self {
        Self::on_pages(checkpoint, Pages::Huge)
    }

    /// Prepares `checkpoint` for the kernel-driven model, its copies (and its caches) on `pages`.
    pub fn on_pages(checkpoint: &'a Checkpoint<LlamaConfig>, pages: Pages) -> Self {
        let cfg = checkpoint.config();
        let copy = |values: &[f32]| AlignedVec::from_slice_on(values, pages);
        let vector = |name: &str| copy(&checkpoint.tensors()[name].data);
        let blocks = (0..cfg.num_hidden_layers)
            .map(|l| {
                let m = |suffix: &str| checkpoint.matrix(&format!("model.layers.{l}.{suffix}"));
                let (q, k, v) = (
                    m("self_attn.q_proj.weight"),
                    m("self_attn.k_proj.weight"),
                    m("self_attn.v_proj.weight"),
                );
                let (gate, up) = (m("mlp.gate_proj.weight"), m("mlp.up_proj.weight"));
                Block {
                    input_norm: vector(&format!("model.layers.{l}.input_layernorm.weight")),
                    qkv: transposed(&[q, k, v], cfg.q_width() + 2 * cfg.kv_width(), pages),
                    o: transposed(&[m("self_attn.o_proj.weight")], cfg.hidden_size, pages),
                    post_norm: vector(&format!("model.layers.{l}.post_attention_layernorm.weight")),
                    gate_up: transposed(&[gate, up], 2 * cfg.intermediate_size, pages),
                    down: transposed(&[m("mlp.down_proj.weight")], cfg.hidden_size, pages),
                }
            })
            .collect();
        let embed = checkpoint.matrix("model.embed_tokens.weight");
        let head = if cfg.tie_word_embeddings {
            embed
        } else {
            checkpoint.matrix("lm_head.weight")
        };
        let head_ld = cfg.vocab_size.div_ceil(LINE) * LINE;
        let (cos, sin) =
            tkbench_reference::ops::rope_table::<f32>(cfg.max_position_embeddings, cfg.head_dim, cfg.rope_theta);
        let table = |a: ndarray::Array2<f32>| copy(a.as_slice().expect("a table is contiguous"));
        Self {
            checkpoint,
            embed: copy(&checkpoint.tensors()["model.embed_tokens.weight"].data),
            blocks,
            norm: vector("model.norm.weight"),
            head_t: transposed(&[head], head_ld, pages),
            head_ld,
            rope_cos: table(cos),
            rope_sin: table(sin),
            asked: pages,
        }
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        self.checkpoint.config()
    }

    /// Which pages hold the weights (`Small` when the system refused huge ones).
    pub fn pages(&self) -> Pages {
        self.norm.pages()
    }
}

/// A Llama whose ops run on a kernel set at one ISA level.
pub struct LlamaKernelModel<'w> {
    weights: &'w LlamaWeights<'w>,
    calls: Calls,
}

impl<'w> LlamaKernelModel<'w> {
    /// A model on `weights` running `kernels` at `isa` on `threads` threads (0 = all cores).
    pub fn new(weights: &'w LlamaWeights<'w>, kernels: &KernelSet, isa: Isa, threads: usize) -> Self {
        Self {
            weights,
            calls: Calls::new(kernels, isa, threads),
        }
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.calls.workers.threads()
    }

    /// An empty KV cache: keys in blocks and values, KV wide.
    pub fn new_cache(&self) -> KvCache {
        let cfg = self.weights.config();
        let kv = cfg.kv_width();
        let positions = cfg.max_position_embeddings;
        let buffer = |positions: usize| AlignedVec::filled_on(positions * kv, 0.0, self.weights.asked);
        let key_positions = positions.div_ceil(KEY_BLOCK) * KEY_BLOCK;
        KvCache {
            keys: (0..cfg.num_hidden_layers).map(|_| buffer(key_positions)).collect(),
            values: (0..cfg.num_hidden_layers).map(|_| buffer(positions)).collect(),
            len: 0,
        }
    }

    /// The logits, probabilities and hidden states of `tokens` processed at once (prefill).
    pub fn forward(&self, tokens: &[u32]) -> Result<Output> {
        self.forward_cached(tokens, &mut self.new_cache())
    }

    /// The same for `tokens` placed after the tokens in `cache`, which grows by T.
    pub fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Output> {
        self.calls.workers.install(|| self.forward_on_pool(tokens, cache, None))
    }

    /// [`LlamaKernelModel::forward_cached`] with the logits and probabilities of the rows
    /// `logit_rows` of this call only ([R, V], in that order); the hidden states are every row's.
    pub fn forward_cached_rows(&self, tokens: &[u32], cache: &mut KvCache, logit_rows: &[usize]) -> Result<Output> {
        tkbench_reference::model::check_rows(logit_rows, tokens.len())?;
        self.calls
            .workers
            .install(|| self.forward_on_pool(tokens, cache, Some(logit_rows)))
    }

    fn forward_on_pool(&self, tokens: &[u32], cache: &mut KvCache, logit_rows: Option<&[usize]>) -> Result<Output> {
        let cfg = self.weights.config();
        let w = self.weights;
        tkbench_reference::model::check_token_ids(tokens, cache.len, cfg.vocab_size, cfg.max_position_embeddings)?;
        let (t, c, i, v) = (tokens.len(), cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
        let (nh, nkv, hs) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
        let (q_w, kv_w) = (cfg.q_width(), cfg.kv_width());
        let qkv_w = q_w + 2 * kv_w;
        let p0 = cache.len;
        let attention = AttentionDims::new(t, p0, nh, hs, 1.0 / (hs as f32).sqrt())
            .with_kv_heads(nkv)
            .with_key_layout(KeyLayout::Blocks);
        let rope = |heads| RopeDims {
            rows: t,
            pos0: p0,
            heads,
            head_size: hs,
        };
        let mut hidden = Vec::with_capacity(cfg.num_hidden_layers + 1);

        // Token embeddings: a copy of each id's row (Llama adds no position table; positions enter
        // through the rotary embedding).
        let mut x = vec![0.0f32; t * c]; // [T, C] the residual stream
        for (row, &id) in x.chunks_exact_mut(c).zip(tokens) {
            row.copy_from_slice(&w.embed[id as usize * c..][..c]);
        }
        let mut h = vec![0.0f32; t * c]; // [T, C]
        let mut qkv = vec![0.0f32; t * qkv_w]; // [T, Q + 2 KV]
        let mut q_raw = vec![0.0f32; t * q_w]; // [T, Q]
        let mut q = vec![0.0f32; t * q_w]; // [T, Q]
        let mut k_raw = vec![0.0f32; t * kv_w]; // [T, KV]
        let mut k = vec![0.0f32; t * kv_w]; // [T, KV]
        let mut a = vec![0.0f32; t * q_w]; // [T, Q]
        let mut proj = vec![0.0f32; t * c]; // [T, C]
        let mut gate_up = vec![0.0f32; t * 2 * i]; // [T, 2I]
        let mut act = vec![0.0f32; t * i]; // [T, I]
        for (l, block) in w.blocks.iter().enumerate() {
            hidden.push(x.clone());
            // Attention: x += o(attention(rope(q), rope(k), v)), q, k, v from rmsnorm(x).
            self.rmsnorm(&x, &block.input_norm, &mut h);
            self.matmul(&h, &block.qkv, c, qkv_w, qkv_w, &mut qkv);
            for (row, qkv_row) in qkv.chunks_exact(qkv_w).enumerate() {
                q_raw[row * q_w..][..q_w].copy_from_slice(&qkv_row[..q_w]);
                k_raw[row * kv_w..][..kv_w].copy_from_slice(&qkv_row[q_w..q_w + kv_w]);
            }
            self.rope(&rope(nh), &q_raw, &mut q);
            self.rope(&rope(nkv), &k_raw, &mut k);
            let (keys, values) = (&mut cache.keys[l], &mut cache.values[l]);
            for row in 0..t {
                attention.store_key(keys, p0 + row, &k[row * kv_w..][..kv_w]);
                values[(p0 + row) * kv_w..][..kv_w].copy_from_slice(&qkv[row * qkv_w + q_w + kv_w..][..kv_w]);
            }
            let (keys, values) = (&keys[..attention.key_floats()], &values[..(p0 + t) * kv_w]);
            self.run::<Attention>(
                &attention,
                AttentionArgs {
                    q: &q,
                    k: keys,
                    v: values,
                },
                &mut a,
            );
            self.matmul(&a, &block.o, q_w, c, c, &mut proj);
            add_in_place(&mut x, &proj);
            // MLP: x += down(swiglu(gate_up(rmsnorm(x)))).
            self.rmsnorm(&x, &block.post_norm, &mut h);
            self.matmul(&h, &block.gate_up, c, 2 * i, 2 * i, &mut gate_up);
            self.run::<Swiglu>(&SwigluDims { rows: t, width: i }, &gate_up, &mut act);
            self.matmul(&act, &block.down, i, c, c, &mut proj);
            add_in_place(&mut x, &proj);
        }
        self.rmsnorm(&x, &w.norm, &mut h);
        hidden.push(h.clone());
        let (logits, probs) = self.calls.head(h, c, logit_rows, &w.head_t, v, w.head_ld);
        cache.len += t;
        Ok(Output { logits, probs, hidden })
    }

    /// One call of `O` with the set's variant, split across the threads.
    fn run<O: Op>(&self, shape: &O::Shape, args: O::Args<'_>, out: &mut [f32]) {
        self.calls.run::<O>(shape, args, out);
    }

    fn rmsnorm(&self, x: &[f32], gamma: &[f32], out: &mut [f32]) {
        let cfg = self.weights.config();
        let shape = RmsNormDims {
            rows: x.len() / cfg.hidden_size,
            channels: cfg.hidden_size,
            eps: cfg.rms_norm_eps as f32,
        };
        self.run::<RmsNorm>(&shape, RmsNormArgs { x, gamma }, out);
    }

    fn rope(&self, shape: &RopeDims, x: &[f32], out: &mut [f32]) {
        let args = RopeArgs {
            x,
            cos: &self.weights.rope_cos,
            sin: &self.weights.rope_sin,
        };
        self.run::<Rope>(shape, args, out);
    }

    /// out [T, N] = x [T, K] · b [K, N], b's rows `ldb` floats apart; no bias (Llama has none).
    fn matmul(&self, x: &[f32], b: &[f32], k: usize, n: usize, ldb: usize, out: &mut [f32]) {
        let shape = MatmulShape {
            dims: MatmulDims {
                ldb,
                ..MatmulDims::new(x.len() / k, k, n)
            },
            bias: false,
        };
        self.run::<Matmul>(&shape, MatmulArgs { a: x, b, bias: None }, out);
    }
}

/// The work of one Llama forward pass over T new tokens after `cached` tokens: the sum of its op
/// calls, each op's work as its definition states it (the embedding lookup is a copy of T rows).
pub fn llama_work(config: &LlamaConfig, tokens: usize, cached: usize) -> Work {
    let (c, i, v, t) = (config.hidden_size, config.intermediate_size, config.vocab_size, tokens);
    let (nh, nkv, hs) = (config.num_attention_heads, config.num_key_value_heads, config.head_dim);
    let (q_w, kv_w) = (config.q_width(), config.kv_width());
    let rmsnorm = RmsNorm::work(&RmsNormDims {
        rows: t,
        channels: c,
        eps: config.rms_norm_eps as f32,
    });
    let matmul = |k, n| Matmul::work(&MatmulShape::new(t, k, n, false));
    let rope = |heads| {
        Rope::work(&RopeDims {
            rows: t,
            pos0: cached,
            heads,
            head_size: hs,
        })
    };
    let attention = Attention::work(&AttentionDims::new(t, cached, nh, hs, 1.0).with_kv_heads(nkv));
    let block = rmsnorm
        + matmul(c, q_w + 2 * kv_w)
        + rope(nh)
        + rope(nkv)
        + attention
        + matmul(q_w, c)
        + rmsnorm
        + matmul(c, 2 * i)
        + Swiglu::work(&SwigluDims { rows: t, width: i })
        + matmul(i, c);
    let lookup = Work {
        flops: 0.0,
        bytes: 2.0 * (t * c) as f64 * crate::measure::work::F32,
        written: (t * c) as f64 * crate::measure::work::F32,
    };
    let mut total = lookup;
    for _ in 0..config.num_hidden_layers {
        total = total + block;
    }
    total + rmsnorm + matmul(c, v) + Softmax::work(&SoftmaxDims { rows: t, cols: v })
}

/// What the PyTorch peer runs for a Llama forward pass of `tokens` tokens after `cached` ones:
/// Hugging Face's `LlamaForCausalLM` of `config`'s sizes (randomly initialised), a prefill, or one
/// decode step through its KV cache cropped back after each step.
pub fn llama_peer(config: &LlamaConfig, tokens: usize, cached: usize) -> crate::ops::PeerCode {
    let setup = format!(
        "import transformers\n\
         transformers.utils.logging.set_verbosity_error()\n\
         cfg = transformers.LlamaConfig(num_hidden_layers={}, hidden_size={}, intermediate_size={}, \
         num_attention_heads={}, num_key_value_heads={}, head_dim={}, vocab_size={}, \
         max_position_embeddings={}, rms_norm_eps={}, rope_parameters={{'rope_type': 'default', 'rope_theta': {}}}, \
         tie_word_embeddings={})\n\
         model = transformers.LlamaForCausalLM(cfg).eval()\n\
         ids = torch.randint(0, {}, (1, {}), generator=g)",
        config.num_hidden_layers,
        config.hidden_size,
        config.intermediate_size,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.head_dim,
        config.vocab_size,
        config.max_position_embeddings,
        config.rms_norm_eps,
        config.rope_theta,
        if config.tie_word_embeddings { "True" } else { "False" },
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
