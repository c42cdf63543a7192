//! The Llama forward pass, written to be read top to bottom: token embeddings, blocks (RMSNorm,
//! grouped-query self-attention with rotary positions, residual, RMSNorm, SwiGLU MLP, residual),
//! a final RMSNorm and the LM head (tied to the embeddings or not); with a KV cache for incremental
//! decoding and greedy generation on top of it. No layer has a bias.
//!
//! Legend: T = new tokens in this call, S = tokens attended to (cached + new), C = `hidden_size`,
//! NH = query heads, NKV = key/value heads, HS = `head_dim`, I = `intermediate_size`, V =
//! `vocab_size`, P = `max_position_embeddings`.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::llama::config::LlamaConfig;
use crate::model::{CausalLm, KvCache, greedy};
use crate::ops;
use crate::real::Real;

/// y = x / √(mean(x²) + eps) · weight over the last axis.
#[derive(Debug, Clone)]
pub struct RmsNorm<F> {
    /// [C] gain.
    pub weight: Array1<F>,
    /// Added to the mean square.
    pub eps: F,
}

impl<F: Real> RmsNorm<F> {
    /// Normalises every row of x [T, C].
    pub fn forward(&self, x: &Array2<F>) -> Array2<F> {
        ops::rmsnorm(&x.view(), &self.weight.view(), self.eps)
    }
}

/// One Llama block. Every projection is stored [out, in], as `torch.nn.Linear` stores it.
#[derive(Debug, Clone)]
pub struct LlamaBlock<F> {
    /// RMSNorm before attention.
    pub input_layernorm: RmsNorm<F>,
    /// [NH · HS, C]: the query projection.
    pub q_proj: Array2<F>,
    /// [NKV · HS, C]: the key projection.
    pub k_proj: Array2<F>,
    /// [NKV · HS, C]: the value projection.
    pub v_proj: Array2<F>,
    /// [C, NH · HS]: the attention's output projection.
    pub o_proj: Array2<F>,
    /// RMSNorm before the MLP.
    pub post_attention_layernorm: RmsNorm<F>,
    /// [I, C]: the MLP's gate projection.
    pub gate_proj: Array2<F>,
    /// [I, C]: the MLP's up projection.
    pub up_proj: Array2<F>,
    /// [C, I]: the MLP's down projection.
    pub down_proj: Array2<F>,
}

/// A Llama-architecture decoder-only language model in precision `F` (f32 or f64).
#[derive(Debug, Clone)]
pub struct Llama<F> {
    /// The hyper-parameters.
    pub config: LlamaConfig,
    /// [V, C] token embeddings.
    pub embed_tokens: Array2<F>,
    /// The L blocks.
    pub blocks: Vec<LlamaBlock<F>>,
    /// The final RMSNorm.
    pub norm: RmsNorm<F>,
    /// [V, C] the LM head: a copy of `embed_tokens` when the embeddings are tied.
    pub lm_head: Array2<F>,
    /// [P, HS / 2] the cosines of the rotary angles of every position.
    pub rope_cos: Array2<F>,
    /// [P, HS / 2] their sines.
    pub rope_sin: Array2<F>,
}

/// x · Wᵀ for x [T, in] and a weight W [out, in] → [T, out].
fn project<F: Real>(x: &ArrayView2<F>, w: &Array2<F>) -> Array2<F> {
    x.dot(&w.t())
}

impl<F: Real> LlamaBlock<F> {
    /// Grouped-query self-attention of x [T, C] (the tokens at positions S − T .. S) against every
    /// cached token; appends this call's keys, rotated, and values to `keys` and `values`
    /// [S, NKV · HS].
    fn attention(&self, model: &Llama<F>, x: &Array2<F>, keys: &mut Array2<F>, values: &mut Array2<F>) -> Array2<F> {
        let config = &model.config;
        let p0 = keys.nrows(); // position of the first new token
        let (cos, sin) = (model.rope_cos.view(), model.rope_sin.view());
        let q = project(&x.view(), &self.q_proj); // [T, NH · HS]
        let q = ops::rope(&q.view(), config.num_attention_heads, &cos, &sin, p0);
        let k = project(&x.view(), &self.k_proj); // [T, NKV · HS]
        let k = ops::rope(&k.view(), config.num_key_value_heads, &cos, &sin, p0);
        let v = project(&x.view(), &self.v_proj); // [T, NKV · HS]
        keys.append(Axis(0), k.view()).expect("cache width is NKV · HS");
        values.append(Axis(0), v.view()).expect("cache width is NKV · HS");
        // HF multiplies the scores by HS^(−1/2); the reciprocal of the root differs by rounding only.
        let scale = F::one() / F::of(config.head_dim as f64).sqrt();
        let y = ops::grouped_causal_attention(
            &q.view(),
            &keys.view(),
            &values.view(),
            config.num_attention_heads,
            config.num_key_value_heads,
            scale,
        ); // [T, NH · HS]
        project(&y.view(), &self.o_proj) // [T, C]
    }

    /// The MLP: x [T, C] → silu(x · W_gateᵀ) · (x · W_upᵀ) [T, I] → [T, C].
    fn mlp(&self, x: &Array2<F>) -> Array2<F> {
        let gate = project(&x.view(), &self.gate_proj); // [T, I]
        let up = project(&x.view(), &self.up_proj); // [T, I]
        let hidden = ops::swiglu(&gate.view(), &up.view()); // [T, I]
        project(&hidden.view(), &self.down_proj) // [T, C]
    }

    /// One block on the residual stream x [T, C] (pre-norm).
    fn forward(&self, model: &Llama<F>, x: Array2<F>, keys: &mut Array2<F>, values: &mut Array2<F>) -> Array2<F> {
        let x = &x + &self.attention(model, &self.input_layernorm.forward(&x), keys, values);
        &x + &self.mlp(&self.post_attention_layernorm.forward(&x))
    }
}

impl<F: Real> Llama<F> {
    /// Builds the model from a loaded checkpoint, converting its float32 weights to `F`.
    pub fn from_checkpoint(checkpoint: &Checkpoint<LlamaConfig>) -> Self {
        let config = checkpoint.config().clone();
        let matrix = |name: &str| checkpoint.matrix(name).mapv(F::from_f32);
        let eps = F::of(config.rms_norm_eps);
        let norm = |name: &str| RmsNorm {
            weight: checkpoint.vector(name).mapv(F::from_f32),
            eps,
        };
        let blocks = (0..config.num_hidden_layers)
            .map(|l| {
                let layer = |suffix: &str| format!("model.layers.{l}.{suffix}");
                LlamaBlock {
                    input_layernorm: norm(&layer("input_layernorm.weight")),
                    q_proj: matrix(&layer("self_attn.q_proj.weight")),
                    k_proj: matrix(&layer("self_attn.k_proj.weight")),
                    v_proj: matrix(&layer("self_attn.v_proj.weight")),
                    o_proj: matrix(&layer("self_attn.o_proj.weight")),
                    post_attention_layernorm: norm(&layer("post_attention_layernorm.weight")),
                    gate_proj: matrix(&layer("mlp.gate_proj.weight")),
                    up_proj: matrix(&layer("mlp.up_proj.weight")),
                    down_proj: matrix(&layer("mlp.down_proj.weight")),
                }
            })
            .collect();
        let embed_tokens = matrix("model.embed_tokens.weight");
        let lm_head = if config.tie_word_embeddings {
            embed_tokens.clone()
        } else {
            matrix("lm_head.weight")
        };
        let (rope_cos, rope_sin) = ops::rope_table(config.max_position_embeddings, config.head_dim, config.rope_theta);
        Self {
            embed_tokens,
            blocks,
            norm: norm("model.norm.weight"),
            lm_head,
            rope_cos,
            rope_sin,
            config,
        }
    }

    /// An empty KV cache for this model: NKV · HS wide, per layer.
    pub fn new_cache(&self) -> KvCache<F> {
        KvCache::empty(self.config.num_hidden_layers, self.config.kv_width())
    }

    /// The logits [T, V] of every position of `tokens`, processed all at once (prefill).
    pub fn forward(&self, tokens: &[u32]) -> Result<Array2<F>> {
        let x = self.run_until_norm(tokens, &mut self.new_cache(), None)?;
        Ok(project(&x.view(), &self.lm_head))
    }

    /// The logits [T, V] of `tokens` placed after the tokens already in `cache`, which grows by T.
    /// Feeding a sequence in pieces gives the logits of feeding it whole.
    pub fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache<F>) -> Result<Array2<F>> {
        let x = self.run_until_norm(tokens, cache, None)?;
        Ok(project(&x.view(), &self.lm_head))
    }

    /// [`Llama::forward_cached`] with the hidden states of the new tokens (L + 1 arrays [T, C]:
    /// index 0 the embeddings, index l the output of block l − 1, the last one after the final
    /// norm, as Hugging Face gives them) and the logits of the rows `logit_rows` of this call only
    /// ([R, V], in that order).
    pub fn forward_cached_rows(
        &self,
        tokens: &[u32],
        cache: &mut KvCache<F>,
        logit_rows: &[usize],
    ) -> Result<(Array2<F>, Vec<Array2<F>>)> {
        crate::model::check_rows(logit_rows, tokens.len())?;
        let mut hidden = Vec::with_capacity(self.config.num_hidden_layers + 1);
        let x = self.run_until_norm(tokens, cache, Some(&mut hidden))?;
        let logits = project(&x.select(Axis(0), logit_rows).view(), &self.lm_head);
        Ok((logits, hidden))
    }

    /// Checks that `tokens` can follow the `cached` tokens: non-empty, in the vocabulary, and within
    /// the context.
    pub fn check_tokens(&self, tokens: &[u32], cached: usize) -> Result<()> {
        crate::model::check_token_ids(
            tokens,
            cached,
            self.config.vocab_size,
            self.config.max_position_embeddings,
        )
    }

    /// Every block and the final norm: the hidden state [T, C] the LM head reads.
    fn run_until_norm(
        &self,
        tokens: &[u32],
        cache: &mut KvCache<F>,
        mut hidden: Option<&mut Vec<Array2<F>>>,
    ) -> Result<Array2<F>> {
        cache.check_fits(self.config.num_hidden_layers, self.config.kv_width())?;
        self.check_tokens(tokens, cache.len())?;

        // Token embeddings only: positions enter through the rotary embedding of q and k.
        let mut x = self.embed_tokens.select(Axis(0), &ids(tokens)); // [T, C]
        for (l, block) in self.blocks.iter().enumerate() {
            if let Some(h) = hidden.as_deref_mut() {
                h.push(x.clone());
            }
            x = block.forward(self, x, &mut cache.keys[l], &mut cache.values[l]);
        }
        let x = self.norm.forward(&x); // [T, C]
        if let Some(h) = hidden {
            h.push(x.clone());
        }
        Ok(x)
    }

    /// Greedy decoding: the `n` tokens that follow `prompt`, each the argmax of the previous step's
    /// logits (the lowest id on ties), computed incrementally through the KV cache.
    pub fn generate(&self, prompt: &[u32], n: usize) -> Result<Vec<u32>> {
        greedy(self, prompt, n)
    }
}

impl<F: Real> CausalLm<F> for Llama<F> {
    fn new_cache(&self) -> KvCache<F> {
        Llama::new_cache(self)
    }
    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache<F>) -> Result<Array2<F>> {
        Llama::forward_cached(self, tokens, cache)
    }
    fn forward_cached_rows(
        &self,
        tokens: &[u32],
        cache: &mut KvCache<F>,
        logit_rows: &[usize],
    ) -> Result<(Array2<F>, Vec<Array2<F>>)> {
        Llama::forward_cached_rows(self, tokens, cache, logit_rows)
    }
    fn check_tokens(&self, tokens: &[u32], cached: usize) -> Result<()> {
        Llama::check_tokens(self, tokens, cached)
    }
    fn n_positions(&self) -> usize {
        self.config.max_position_embeddings
    }
}

/// Token ids as row indices.
fn ids(tokens: &[u32]) -> Vec<usize> {
    tokens.iter().map(|&id| id as usize).collect()
}
