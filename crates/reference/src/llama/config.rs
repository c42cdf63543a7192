//! The Llama hyper-parameters read from a Hugging Face `config.json`, and the refusal, field by
//! field, of what the model does not implement.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Fields;
use crate::error::{Error, Result};
use crate::family::{Architecture, Family};

/// The hyper-parameters of a Llama-architecture model, under Hugging Face's names.
///
/// Dimension letters used with them: L = `num_hidden_layers`, C = `hidden_size`, I =
/// `intermediate_size`, NH = `num_attention_heads`, NKV = `num_key_value_heads`, HS = `head_dim`,
/// V = `vocab_size`, P = `max_position_embeddings`, T = tokens in a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaConfig {
    /// L: number of transformer blocks.
    pub num_hidden_layers: usize,
    /// C: width of the residual stream.
    pub hidden_size: usize,
    /// I: width of the MLP's gate and up projections.
    pub intermediate_size: usize,
    /// NH: number of query heads.
    pub num_attention_heads: usize,
    /// NKV: number of key/value heads, dividing NH (NH: multi-head; 1: multi-query).
    pub num_key_value_heads: usize,
    /// HS: width of one head (C / NH unless the config says otherwise).
    pub head_dim: usize,
    /// V: vocabulary size.
    pub vocab_size: usize,
    /// P: the longest sequence the model takes.
    pub max_position_embeddings: usize,
    /// The epsilon added to the mean square in every RMSNorm.
    pub rms_norm_eps: f64,
    /// θ, the base of the rotary embedding's frequencies.
    pub rope_theta: f64,
    /// Whether the LM head is the token embedding matrix (no `lm_head.weight` of its own).
    pub tie_word_embeddings: bool,
}

impl LlamaConfig {
    /// SmolLM2-135M's hyper-parameters (30 layers of 576, 9 heads of 64 over 3 key/value heads, MLP
    /// 1536, vocabulary 49152, 8192 positions, θ = 100000, tied embeddings).
    pub const fn smollm2_135m() -> Self {
        Self {
            num_hidden_layers: 30,
            hidden_size: 576,
            intermediate_size: 1536,
            num_attention_heads: 9,
            num_key_value_heads: 3,
            head_dim: 64,
            vocab_size: 49152,
            max_position_embeddings: 8192,
            rms_norm_eps: 1e-5,
            rope_theta: 100_000.0,
            tie_word_embeddings: true,
        }
    }

    /// NH · HS: the width of the queries and of the attention's output.
    pub fn q_width(&self) -> usize {
        self.num_attention_heads * self.head_dim
    }

    /// NKV · HS: the width of the keys and of the values.
    pub fn kv_width(&self) -> usize {
        self.num_key_value_heads * self.head_dim
    }

    /// The number of parameters the config implies, or None if it overflows.
    pub fn parameter_count(&self) -> Option<usize> {
        let (c, i) = (self.hidden_size, self.intermediate_size);
        let heads = self
            .q_width()
            .checked_mul(2)?
            .checked_add(self.kv_width().checked_mul(2)?)?;
        // Per block: q, k, v and o projections, gate, up and down projections, two norms.
        let block = c
            .checked_mul(heads)?
            .checked_add(c.checked_mul(i)?.checked_mul(3)?)?
            .checked_add(c.checked_mul(2)?)?;
        let embeddings = self.vocab_size.checked_mul(c)?;
        let head = if self.tie_word_embeddings { 0 } else { embeddings };
        embeddings
            .checked_add(head)?
            .checked_add(block.checked_mul(self.num_hidden_layers)?)?
            .checked_add(c)
    }
}

/// The fields of a `config.json` that ask, when true, for something this model does not do, with the
/// reason.
const REFUSED_WHEN_TRUE: [(&str, &str); 3] = [
    (
        "attention_bias",
        "biases on the attention projections are not implemented",
    ),
    ("mlp_bias", "biases on the MLP projections are not implemented"),
    ("use_sliding_window", "sliding-window attention is not implemented"),
];

impl LlamaConfig {
    /// Parses and validates the text of a Llama `config.json`; `path` is only used in errors.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let map = crate::config::json_object(text, path)?;
        let fields = Fields::new(&map, path);
        if fields.optional_str("model_type")? != Some("llama") {
            return Err(fields.unsupported("model_type", "a Llama config has `model_type` \"llama\""));
        }
        if let Some(act) = fields.optional_str("hidden_act")?
            && act != "silu"
        {
            return Err(fields.unsupported("hidden_act", "only SiLU (`silu`) gates the MLP here"));
        }
        for (field, reason) in REFUSED_WHEN_TRUE {
            if fields.optional_bool(field)? == Some(true) {
                return Err(fields.unsupported(field, reason));
            }
        }
        if fields.get("sliding_window").is_some() {
            return Err(fields.unsupported("sliding_window", "sliding-window attention is not implemented"));
        }
        if let Some(layer_types) = fields.get("layer_types")
            && layer_types
                .as_array()
                .is_none_or(|types| types.iter().any(|t| t != "full_attention"))
        {
            return Err(fields.unsupported(
                "layer_types",
                "every layer must be `full_attention`; other attention types are not implemented",
            ));
        }
        let rope_theta = rope_theta(&fields)?;

        let hidden_size = fields.positive("hidden_size")?;
        let num_attention_heads = fields.positive("num_attention_heads")?;
        let num_key_value_heads = match fields.get("num_key_value_heads") {
            None => num_attention_heads,
            Some(_) => fields.positive("num_key_value_heads")?,
        };
        let head_dim = match fields.get("head_dim") {
            None if hidden_size.is_multiple_of(num_attention_heads) => hidden_size / num_attention_heads,
            None => {
                return Err(Error::Config {
                    path: path.to_owned(),
                    field: "head_dim".into(),
                    message: format!(
                        "missing, and hidden_size = {hidden_size} is not a multiple of num_attention_heads = \
                         {num_attention_heads}"
                    ),
                });
            }
            Some(_) => fields.positive("head_dim")?,
        };
        let rms_norm_eps = match fields.get("rms_norm_eps") {
            None => 1e-6,
            Some(value) => match value.as_f64() {
                Some(eps) if eps > 0.0 && eps.is_finite() => eps,
                _ => return Err(fields.invalid("rms_norm_eps", "a positive number", value)),
            },
        };
        let config = Self {
            num_hidden_layers: fields.positive("num_hidden_layers")?,
            hidden_size,
            intermediate_size: fields.positive("intermediate_size")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            vocab_size: fields.positive("vocab_size")?,
            max_position_embeddings: fields.positive("max_position_embeddings")?,
            rms_norm_eps,
            rope_theta,
            tie_word_embeddings: fields.optional_bool("tie_word_embeddings")?.unwrap_or(false),
        };
        config.validate(path)?;
        Ok(config)
    }

    /// Checks the relations between fields that parsing alone cannot: every size positive, NKV
    /// dividing NH, HS even (the rotary embedding pairs its halves), ids fitting u32, ε and θ
    /// plausible, and a parameter count that fits in memory arithmetic.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, message: String| Error::Config {
            path: path.to_owned(),
            field: field.into(),
            message,
        };
        crate::config::require_positive(
            path,
            &[
                ("num_hidden_layers", self.num_hidden_layers),
                ("hidden_size", self.hidden_size),
                ("intermediate_size", self.intermediate_size),
                ("num_attention_heads", self.num_attention_heads),
                ("num_key_value_heads", self.num_key_value_heads),
                ("head_dim", self.head_dim),
                ("vocab_size", self.vocab_size),
                ("max_position_embeddings", self.max_position_embeddings),
            ],
        )?;
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return Err(bad(
                "num_key_value_heads",
                format!(
                    "{} does not divide num_attention_heads = {}",
                    self.num_key_value_heads, self.num_attention_heads
                ),
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(bad(
                "head_dim",
                format!(
                    "{} is odd; the rotary embedding rotates pairs of channels",
                    self.head_dim
                ),
            ));
        }
        if !(self.rope_theta > 1.0 && self.rope_theta.is_finite()) {
            return Err(bad(
                "rope_theta",
                format!("{} is not a number above 1", self.rope_theta),
            ));
        }
        crate::config::check_plausible(
            path,
            self.vocab_size,
            ("rms_norm_eps", self.rms_norm_eps),
            self.parameter_count(),
        )
    }

    /// The config as the fields of a Hugging Face `config.json` that a checkpoint writer needs.
    pub fn to_hf_json(&self) -> Value {
        serde_json::json!({
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "num_hidden_layers": self.num_hidden_layers,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
            "hidden_act": "silu",
            "attention_bias": false,
            "mlp_bias": false,
            "tie_word_embeddings": self.tie_word_embeddings,
        })
    }
}

/// θ, from `rope_parameters` (transformers 5) or `rope_theta` (earlier), refusing every rotary
/// scaling but the default.
fn rope_theta(fields: &Fields<'_>) -> Result<f64> {
    let default_type = |value: &Value, field: &str| -> Result<()> {
        let kind = value.get("rope_type").or_else(|| value.get("type"));
        match kind {
            None => Ok(()),
            Some(kind) if kind == "default" => Ok(()),
            Some(_) => Err(fields.unsupported(
                field,
                "only the default rotary embedding is implemented (no linear, dynamic, yarn, llama3 or other scaling)",
            )),
        }
    };
    if let Some(scaling) = fields.get("rope_scaling") {
        default_type(scaling, "rope_scaling")?;
    }
    let theta = match fields.get("rope_parameters") {
        Some(parameters) => {
            if !parameters.is_object() {
                return Err(fields.invalid("rope_parameters", "an object", parameters));
            }
            default_type(parameters, "rope_parameters")?;
            parameters.get("rope_theta").cloned()
        }
        None => fields.get("rope_theta").cloned(),
    };
    match theta {
        None => Ok(10_000.0),
        Some(value) => match value.as_f64() {
            Some(theta) if theta > 1.0 && theta.is_finite() => Ok(theta),
            _ => Err(fields.invalid("rope_theta", "a number above 1", &value)),
        },
    }
}

impl LlamaConfig {
    /// The tensors of one block, by suffix after `model.layers.<l>.`, with their shapes.
    fn block_tensors(&self) -> [(&'static str, Vec<usize>); 9] {
        let (c, i) = (self.hidden_size, self.intermediate_size);
        let (q, kv) = (self.q_width(), self.kv_width());
        [
            ("input_layernorm.weight", vec![c]),
            ("self_attn.q_proj.weight", vec![q, c]),
            ("self_attn.k_proj.weight", vec![kv, c]),
            ("self_attn.v_proj.weight", vec![kv, c]),
            ("self_attn.o_proj.weight", vec![c, q]),
            ("post_attention_layernorm.weight", vec![c]),
            ("mlp.gate_proj.weight", vec![i, c]),
            ("mlp.up_proj.weight", vec![i, c]),
            ("mlp.down_proj.weight", vec![c, i]),
        ]
    }
}

impl Architecture for LlamaConfig {
    const FAMILY: Family = Family::Llama;
    const PREFIX: Option<&'static str> = None;

    fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        LlamaConfig::from_json_str(text, path)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        LlamaConfig::validate(self, path)
    }

    /// Linear weights are stored as `torch.nn.Linear` stores them, [out, in]: `y = x · Wᵀ`.
    fn expected_tensors(&self) -> Box<dyn Iterator<Item = (String, Vec<usize>)> + '_> {
        let (c, v) = (self.hidden_size, self.vocab_size);
        let blocks = (0..self.num_hidden_layers).flat_map(move |l| {
            self.block_tensors()
                .into_iter()
                .map(move |(suffix, shape)| (format!("model.layers.{l}.{suffix}"), shape))
        });
        let head = (!self.tie_word_embeddings).then(|| ("lm_head.weight".to_owned(), vec![v, c]));
        Box::new(
            std::iter::once(("model.embed_tokens.weight".to_owned(), vec![v, c]))
                .chain(blocks)
                .chain(std::iter::once(("model.norm.weight".to_owned(), vec![c])))
                .chain(head),
        )
    }

    fn is_model_tensor(&self, canonical: &str) -> bool {
        match canonical {
            "model.embed_tokens.weight" | "model.norm.weight" => true,
            "lm_head.weight" => !self.tie_word_embeddings,
            _ => crate::checkpoint::block_suffix(canonical, "model.layers.", self.num_hidden_layers)
                .is_some_and(|suffix| self.block_tensors().iter().any(|(s, _)| *s == suffix)),
        }
    }

    fn ignorable(&self, canonical: &str) -> bool {
        // A tied head's stored copy, and the rotary frequencies older versions saved as a buffer.
        (self.tie_word_embeddings && canonical == "lm_head.weight") || canonical.ends_with(".rotary_emb.inv_freq")
    }

    fn to_hf_json(&self) -> Value {
        LlamaConfig::to_hf_json(self)
    }

    /// Norm gains around 1; every matrix, stored [out, in], 1/√in (the embedding's rows too).
    fn synthetic_init(name: &str, shape: &[usize]) -> (f64, f64) {
        if name.ends_with("norm.weight") {
            (1.0, 0.1)
        } else {
            (0.0, 1.0 / (shape[1] as f64).sqrt())
        }
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn width(&self) -> usize {
        self.hidden_size
    }
    fn n_layer(&self) -> usize {
        self.num_hidden_layers
    }
    fn n_positions(&self) -> usize {
        self.max_position_embeddings
    }
}
