//! The GPT-2 forward pass, written to be read top to bottom: embeddings, blocks (LayerNorm, causal
//! self-attention, residual, LayerNorm, MLP, residual), final LayerNorm and the tied LM head; with a
//! KV cache for incremental decoding and greedy generation on top of it.
//!
//! Legend: T = new tokens in this call, S = tokens attended to (cached + new), C = `n_embd`,
//! NH = `n_head`, HS = C / NH, I = `n_inner`, V = `vocab_size`, P = `n_positions`.

use ndarray::{Array1, Array2, ArrayView2, Axis, s};

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ops;
use crate::real::Real;

/// y = (x − mean) / √(var + eps) · weight + bias over the last axis.
#[derive(Debug, Clone)]
pub struct LayerNorm<F> {
    /// [C] gain.
    pub weight: Array1<F>,
    /// [C] shift.
    pub bias: Array1<F>,
    /// Added to the (biased) variance.
    pub eps: F,
}

/// y = x · weight + bias, with the weight stored [in, out] as GPT-2's Conv1D stores it.
#[derive(Debug, Clone)]
pub struct Linear<F> {
    /// [in, out]
    pub weight: Array2<F>,
    /// [out]
    pub bias: Array1<F>,
}

/// One transformer block.
#[derive(Debug, Clone)]
pub struct Block<F> {
    /// LayerNorm before attention.
    pub ln_1: LayerNorm<F>,
    /// [C, 3C]: the query, key and value projections, in that column order.
    pub c_attn: Linear<F>,
    /// [C, C]: attention output projection.
    pub attn_proj: Linear<F>,
    /// LayerNorm before the MLP.
    pub ln_2: LayerNorm<F>,
    /// [C, I]: MLP up projection.
    pub c_fc: Linear<F>,
    /// [I, C]: MLP down projection.
    pub mlp_proj: Linear<F>,
}

/// A GPT-2 decoder-only language model in precision `F` (f32 or f64).
#[derive(Debug, Clone)]
pub struct Gpt2<F> {
    /// The hyper-parameters.
    pub config: Config,
    /// [V, C] token embeddings, also the (tied) LM head.
    pub wte: Array2<F>,
    /// [P, C] position embeddings.
    pub wpe: Array2<F>,
    /// The L blocks.
    pub blocks: Vec<Block<F>>,
    /// The final LayerNorm.
    pub ln_f: LayerNorm<F>,
}

/// The keys and values of every token seen so far, per layer, each [S, W] (heads side by side; W is
/// C for GPT-2, and the key/value heads' width for Llama).
#[derive(Debug, Clone)]
pub struct KvCache<F> {
    pub(crate) keys: Vec<Array2<F>>,
    pub(crate) values: Vec<Array2<F>>,
}

impl<F: Real> KvCache<F> {
    /// An empty cache for a GPT-2 with `config`.
    pub fn new(config: &Config) -> Self {
        Self::empty(config.n_layer, config.n_embd)
    }

    /// An empty cache of `layers` layers whose keys and values are `width` wide.
    pub fn empty(layers: usize, width: usize) -> Self {
        let empty = Array2::zeros((0, width));
        Self {
            keys: vec![empty.clone(); layers],
            values: vec![empty; layers],
        }
    }

    /// Whether this cache fits a model of `layers` layers whose keys and values are `width` wide.
    pub(crate) fn check_fits(&self, layers: usize, width: usize) -> Result<()> {
        let cache_width = self.keys.first().map_or(0, |k| k.ncols());
        if self.keys.len() != layers || cache_width != width {
            return Err(Error::CacheMismatch {
                cache_layers: self.keys.len(),
                cache_width,
                n_layer: layers,
                width,
            });
        }
        Ok(())
    }

    /// The number of tokens cached, which is also the position of the next token.
    pub fn len(&self) -> usize {
        self.keys.first().map_or(0, |k| k.nrows())
    }

    /// Whether no token has been cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<F: Real> LayerNorm<F> {
    /// Normalises every row of x [T, C].
    pub fn forward(&self, x: &Array2<F>) -> Array2<F> {
        ops::layernorm(&x.view(), &self.weight.view(), &self.bias.view(), self.eps)
    }
}

impl<F: Real> Linear<F> {
    /// x [T, in] → [T, out].
    pub fn forward(&self, x: &ArrayView2<F>) -> Array2<F> {
        ops::linear(x, &self.weight.view(), Some(&self.bias.view()))
    }
}

impl<F: Real> Block<F> {
    /// Causal multi-head self-attention of x [T, C] (the tokens at positions S − T .. S) against
    /// every cached token; appends this call's keys and values to `keys` and `values` [S, C].
    fn attention(&self, config: &Config, x: &Array2<F>, keys: &mut Array2<F>, values: &mut Array2<F>) -> Array2<F> {
        let (c, hs) = (config.n_embd, config.head_size());
        let qkv = self.c_attn.forward(&x.view()); // [T, 3C]
        let q = qkv.slice(s![.., 0..c]); // [T, C]
        keys.append(Axis(0), qkv.slice(s![.., c..2 * c]))
            .expect("cache width is C");
        values
            .append(Axis(0), qkv.slice(s![.., 2 * c..3 * c]))
            .expect("cache width is C");
        // HF divides the scores by √HS; multiplying by 1/√HS differs from that by rounding only.
        let scale = if config.scale_attn_weights {
            F::one() / F::of(hs as f64).sqrt()
        } else {
            F::one()
        };
        let y = ops::causal_attention(&q, &keys.view(), &values.view(), config.n_head, scale); // [T, C]
        self.attn_proj.forward(&y.view())
    }

    /// The MLP: x [T, C] → gelu(x · W_fc + b_fc) [T, I] → [T, C].
    fn mlp(&self, x: &Array2<F>) -> Array2<F> {
        let hidden = self.c_fc.forward(&x.view()).mapv(ops::gelu_new);
        self.mlp_proj.forward(&hidden.view())
    }

    /// One block on the residual stream x [T, C] (pre-LayerNorm, as in GPT-2).
    fn forward(&self, config: &Config, x: Array2<F>, keys: &mut Array2<F>, values: &mut Array2<F>) -> Array2<F> {
        let x = &x + &self.attention(config, &self.ln_1.forward(&x), keys, values);
        &x + &self.mlp(&self.ln_2.forward(&x))
    }
}

impl<F: Real> Gpt2<F> {
    /// Builds the model from a loaded checkpoint, converting its float32 weights to `F`.
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Self {
        let config = checkpoint.config().clone();
        let matrix = |name: &str| checkpoint.matrix(name).mapv(F::from_f32);
        let vector = |name: &str| checkpoint.vector(name).mapv(F::from_f32);
        let eps = F::of(config.layer_norm_epsilon);
        let layernorm = |prefix: &str| LayerNorm {
            weight: vector(&format!("{prefix}.weight")),
            bias: vector(&format!("{prefix}.bias")),
            eps,
        };
        let linear = |prefix: &str| Linear {
            weight: matrix(&format!("{prefix}.weight")),
            bias: vector(&format!("{prefix}.bias")),
        };
        let blocks = (0..config.n_layer)
            .map(|l| Block {
                ln_1: layernorm(&format!("h.{l}.ln_1")),
                c_attn: linear(&format!("h.{l}.attn.c_attn")),
                attn_proj: linear(&format!("h.{l}.attn.c_proj")),
                ln_2: layernorm(&format!("h.{l}.ln_2")),
                c_fc: linear(&format!("h.{l}.mlp.c_fc")),
                mlp_proj: linear(&format!("h.{l}.mlp.c_proj")),
            })
            .collect();
        Self {
            wte: matrix("wte.weight"),
            wpe: matrix("wpe.weight"),
            blocks,
            ln_f: layernorm("ln_f"),
            config,
        }
    }

    /// An empty KV cache for this model.
    pub fn new_cache(&self) -> KvCache<F> {
        KvCache::new(&self.config)
    }

    /// The logits [T, V] of every position of `tokens`, processed all at once (prefill).
    pub fn forward(&self, tokens: &[u32]) -> Result<Array2<F>> {
        self.run(tokens, &mut self.new_cache(), None)
    }

    /// The logits [T, V] and the hidden states in Hugging Face's convention: L + 1 arrays [T, C],
    /// index 0 the embeddings, index l the output of block l − 1, and the last one the output of the
    /// last block after `ln_f`.
    pub fn forward_with_hidden_states(&self, tokens: &[u32]) -> Result<(Array2<F>, Vec<Array2<F>>)> {
        let mut hidden = Vec::with_capacity(self.config.n_layer + 1);
        let logits = self.run(tokens, &mut self.new_cache(), Some(&mut hidden))?;
        Ok((logits, hidden))
    }

    /// The logits [T, V] of `tokens` placed after the tokens already in `cache`, which grows by T.
    /// Feeding a sequence in pieces gives the logits of feeding it whole.
    pub fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache<F>) -> Result<Array2<F>> {
        self.run(tokens, cache, None)
    }

    /// [`Gpt2::forward_cached`] with the hidden states of the new tokens (L + 1 arrays [T, C], as
    /// [`Gpt2::forward_with_hidden_states`] gives them) and the logits of the rows `logit_rows` of
    /// this call only ([R, V], in that order): the LM head is the largest matmul of a long prefill,
    /// and a caller that checks a few positions need not pay for the others.
    pub fn forward_cached_rows(
        &self,
        tokens: &[u32],
        cache: &mut KvCache<F>,
        logit_rows: &[usize],
    ) -> Result<(Array2<F>, Vec<Array2<F>>)> {
        check_rows(logit_rows, tokens.len())?;
        let mut hidden = Vec::with_capacity(self.config.n_layer + 1);
        self.run_until_ln_f(tokens, cache, Some(&mut hidden))?;
        let last = hidden.last().expect("ln_f's output is the last hidden state");
        let logits = last.select(Axis(0), logit_rows).dot(&self.wte.t());
        Ok((logits, hidden))
    }

    /// Checks that `tokens` can follow the `cached` tokens: non-empty, in the vocabulary, and within
    /// the context.
    pub fn check_tokens(&self, tokens: &[u32], cached: usize) -> Result<()> {
        check_tokens(&self.config, tokens, cached)
    }

    fn run(&self, tokens: &[u32], cache: &mut KvCache<F>, hidden: Option<&mut Vec<Array2<F>>>) -> Result<Array2<F>> {
        let x = self.run_until_ln_f(tokens, cache, hidden)?;
        Ok(x.dot(&self.wte.t())) // [T, V], the LM head tied to wte
    }

    /// Every block and `ln_f`: the final hidden state [T, C] the LM head reads.
    fn run_until_ln_f(
        &self,
        tokens: &[u32],
        cache: &mut KvCache<F>,
        mut hidden: Option<&mut Vec<Array2<F>>>,
    ) -> Result<Array2<F>> {
        cache.check_fits(self.config.n_layer, self.config.n_embd)?;
        let p0 = cache.len();
        self.check_tokens(tokens, p0)?;

        // Embeddings: x[t] = wte[id[t]] + wpe[p0 + t].
        let mut x = ops::embedding(&self.wte.view(), &self.wpe.view(), tokens, p0); // [T, C]

        for (l, block) in self.blocks.iter().enumerate() {
            if let Some(h) = hidden.as_deref_mut() {
                h.push(x.clone());
            }
            x = block.forward(&self.config, x, &mut cache.keys[l], &mut cache.values[l]);
        }
        let x = self.ln_f.forward(&x); // [T, C]
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

/// What every family's model offers its callers: a KV cache, the cached forward pass with the
/// hidden states, and the checks of its input. The golden check and greedy generation are written
/// once against it.
pub trait CausalLm<F: Real> {
    /// An empty KV cache for this model.
    fn new_cache(&self) -> KvCache<F>;
    /// The logits [T, V] of `tokens` placed after those in `cache`, which grows by T.
    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache<F>) -> Result<Array2<F>>;
    /// The logits [R, V] of the rows `logit_rows` of this call and the L + 1 hidden states [T, C].
    fn forward_cached_rows(
        &self,
        tokens: &[u32],
        cache: &mut KvCache<F>,
        logit_rows: &[usize],
    ) -> Result<(Array2<F>, Vec<Array2<F>>)>;
    /// Checks that `tokens` can follow `cached` tokens.
    fn check_tokens(&self, tokens: &[u32], cached: usize) -> Result<()>;
    /// P: the longest sequence the model takes.
    fn n_positions(&self) -> usize;
}

impl<F: Real> CausalLm<F> for Gpt2<F> {
    fn new_cache(&self) -> KvCache<F> {
        Gpt2::new_cache(self)
    }
    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache<F>) -> Result<Array2<F>> {
        Gpt2::forward_cached(self, tokens, cache)
    }
    fn forward_cached_rows(
        &self,
        tokens: &[u32],
        cache: &mut KvCache<F>,
        logit_rows: &[usize],
    ) -> Result<(Array2<F>, Vec<Array2<F>>)> {
        Gpt2::forward_cached_rows(self, tokens, cache, logit_rows)
    }
    fn check_tokens(&self, tokens: &[u32], cached: usize) -> Result<()> {
        Gpt2::check_tokens(self, tokens, cached)
    }
    fn n_positions(&self) -> usize {
        self.config.n_positions
    }
}

/// Greedy decoding with any model: the `n` tokens that follow `prompt`, each the argmax of the
/// previous step's logits (the lowest id on ties), computed incrementally through the KV cache.
pub fn greedy<F: Real>(model: &(impl CausalLm<F> + ?Sized), prompt: &[u32], n: usize) -> Result<Vec<u32>> {
    model.check_tokens(prompt, 0)?;
    // The last generated token is never fed back, so n tokens need prompt + n − 1 positions.
    let fed = prompt.len() + n.saturating_sub(1);
    if fed > model.n_positions() {
        return Err(Error::GenerationOverflow {
            prompt: prompt.len(),
            n,
            n_positions: model.n_positions(),
        });
    }
    let mut cache = model.new_cache();
    let mut out = Vec::with_capacity(n);
    let mut logits = model.forward_cached(prompt, &mut cache)?;
    while out.len() < n {
        let next = ops::argmax(&logits.row(logits.nrows() - 1).to_owned());
        out.push(u32::try_from(next).expect("vocab_size fits u32"));
        if out.len() < n {
            logits = model.forward_cached(&[out[out.len() - 1]], &mut cache)?;
        }
    }
    Ok(out)
}

/// Checks that every row of `logit_rows` is one of a call's `tokens` rows.
pub fn check_rows(logit_rows: &[usize], tokens: usize) -> Result<()> {
    match logit_rows.iter().find(|&&r| r >= tokens) {
        Some(&row) => Err(Error::RowOutOfRange { row, tokens }),
        None => Ok(()),
    }
}

/// Checks that `tokens` can follow `cached` tokens in a model with `config`: non-empty, every id
/// below vocab_size, and cached + T within n_positions.
pub fn check_tokens(config: &Config, tokens: &[u32], cached: usize) -> Result<()> {
    check_token_ids(tokens, cached, config.vocab_size, config.n_positions)
}

/// Checks that `tokens` can follow `cached` tokens in a model of `vocab_size` ids and
/// `n_positions` positions.
pub fn check_token_ids(tokens: &[u32], cached: usize, vocab_size: usize, n_positions: usize) -> Result<()> {
    if tokens.is_empty() {
        return Err(Error::EmptyPrompt);
    }
    if let Some((index, &id)) = tokens.iter().enumerate().find(|&(_, &id)| id as usize >= vocab_size) {
        return Err(Error::TokenOutOfRange { index, id, vocab_size });
    }
    let total = cached + tokens.len();
    if total > n_positions {
        return Err(Error::ContextOverflow {
            cached,
            new: tokens.len(),
            total,
            n_positions,
        });
    }
    Ok(())
}
