//! The GPT-2 hyper-parameters read from a Hugging Face `config.json`, and the checks that refuse what
//! the model does not implement.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::family::{Architecture, Family};

/// The activation functions accepted, all the tanh approximation of GELU that GPT-2 uses.
const TANH_GELU_NAMES: [&str; 2] = ["gelu_new", "gelu_pytorch_tanh"];

/// The hyper-parameters of a GPT-2-style model.
///
/// Dimension letters used throughout the crate: L = `n_layer`, NH = `n_head`, C = `n_embd`,
/// HS = C / NH, I = `n_inner`, V = `vocab_size`, P = `n_positions`, T = tokens in a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// L: number of transformer blocks.
    pub n_layer: usize,
    /// NH: number of attention heads.
    pub n_head: usize,
    /// C: width of the residual stream.
    pub n_embd: usize,
    /// P: number of learned positions (the context length).
    pub n_positions: usize,
    /// V: vocabulary size.
    pub vocab_size: usize,
    /// I: width of the MLP's hidden layer.
    pub n_inner: usize,
    /// The epsilon added to the variance in every LayerNorm.
    pub layer_norm_epsilon: f64,
    /// Whether attention scores are divided by √HS (`scale_attn_weights`).
    pub scale_attn_weights: bool,
}

impl Config {
    /// GPT-2 small's hyper-parameters (12 layers of 768, 12 heads, 1024 positions, vocabulary 50257).
    pub const fn gpt2_small() -> Self {
        Self {
            n_layer: 12,
            n_head: 12,
            n_embd: 768,
            n_positions: 1024,
            vocab_size: 50257,
            n_inner: 3072,
            layer_norm_epsilon: 1e-5,
            scale_attn_weights: true,
        }
    }

    /// HS: the width of one attention head.
    pub fn head_size(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Reads and validates a Hugging Face GPT-2 `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json_str(&text, path)
    }

    /// Parses and validates the text of a `config.json`; `path` is only used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let map = json_object(text, path)?;
        let fields = Fields { map: &map, path };

        if let Some(model_type) = fields.optional_str("model_type")?
            && model_type != "gpt2"
        {
            return Err(fields.unsupported("model_type", "only GPT-2 (`gpt2`) models are implemented"));
        }
        if let Some(activation) = fields.optional_str("activation_function")?
            && !TANH_GELU_NAMES.contains(&activation)
        {
            return Err(fields.unsupported(
                "activation_function",
                "only the tanh approximation of GELU (`gelu_new`) is implemented",
            ));
        }
        for (field, reason) in [
            (
                "scale_attn_by_inverse_layer_idx",
                "attention scores scaled by 1/(layer index + 1) are not implemented",
            ),
            (
                "reorder_and_upcast_attn",
                "the reordered, upcast attention is not implemented",
            ),
        ] {
            if fields.optional_bool(field)? == Some(true) {
                return Err(fields.unsupported(field, reason));
            }
        }
        if fields.optional_bool("tie_word_embeddings")? == Some(false) {
            return Err(fields.unsupported(
                "tie_word_embeddings",
                "the LM head must be tied to the token embeddings (`wte`)",
            ));
        }

        let n_embd = fields.positive("n_embd")?;
        let n_inner = match map.get("n_inner") {
            None | Some(Value::Null) => n_embd.saturating_mul(4),
            Some(_) => fields.positive("n_inner")?,
        };
        let layer_norm_epsilon = match map.get("layer_norm_epsilon") {
            None => 1e-5,
            Some(value) => match value.as_f64() {
                Some(eps) if eps > 0.0 && eps.is_finite() => eps,
                _ => return Err(fields.invalid("layer_norm_epsilon", "a positive number", value)),
            },
        };
        let config = Self {
            n_layer: fields.positive("n_layer")?,
            n_head: fields.positive("n_head")?,
            n_embd,
            n_positions: fields.positive("n_positions")?,
            vocab_size: fields.positive("vocab_size")?,
            n_inner,
            layer_norm_epsilon,
            scale_attn_weights: fields.optional_bool("scale_attn_weights")?.unwrap_or(true),
        };
        config.validate(path)?;
        Ok(config)
    }

    /// Checks the relations between fields that parsing alone cannot: every size positive, n_head
    /// dividing n_embd, ids fitting u32, and a parameter count that fits in memory arithmetic.
    /// `path` names the config in errors.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, message: String| Error::Config {
            path: path.to_owned(),
            field: field.into(),
            message,
        };
        require_positive(
            path,
            &[
                ("n_layer", self.n_layer),
                ("n_head", self.n_head),
                ("n_embd", self.n_embd),
                ("n_positions", self.n_positions),
                ("vocab_size", self.vocab_size),
                ("n_inner", self.n_inner),
            ],
        )?;
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(bad(
                "n_head",
                format!("n_embd = {} is not a multiple of n_head = {}", self.n_embd, self.n_head),
            ));
        }
        check_plausible(
            path,
            self.vocab_size,
            ("layer_norm_epsilon", self.layer_norm_epsilon),
            self.parameter_count(),
        )
    }

    /// The number of parameters the config implies, or None if it overflows.
    pub fn parameter_count(&self) -> Option<usize> {
        let (c, i) = (self.n_embd, self.n_inner);
        let embeddings = self.vocab_size.checked_add(self.n_positions)?.checked_mul(c)?;
        // Per block: two LayerNorms (4C), c_attn (C·3C + 3C), attn c_proj (C·C + C),
        // c_fc (C·I + I), mlp c_proj (I·C + C).
        let block = c
            .checked_mul(c.checked_mul(4)?)?
            .checked_add(c.checked_mul(i)?.checked_mul(2)?)?
            .checked_add(c.checked_mul(9)?)?
            .checked_add(i)?;
        embeddings
            .checked_add(block.checked_mul(self.n_layer)?)?
            .checked_add(c.checked_mul(2)?)
    }

    /// The config as the fields of a Hugging Face `config.json` that a checkpoint writer needs.
    pub fn to_hf_json(&self) -> Value {
        serde_json::json!({
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_embd": self.n_embd,
            "n_positions": self.n_positions,
            "vocab_size": self.vocab_size,
            "n_inner": self.n_inner,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "activation_function": "gelu_new",
            "scale_attn_weights": self.scale_attn_weights,
            "scale_attn_by_inverse_layer_idx": false,
            "reorder_and_upcast_attn": false,
            "tie_word_embeddings": true,
        })
    }
}

impl Architecture for Config {
    const FAMILY: Family = Family::Gpt2;
    const PREFIX: Option<&'static str> = Some("transformer.");

    fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        Config::from_json_str(text, path)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        Config::validate(self, path)
    }

    fn expected_tensors(&self) -> Box<dyn Iterator<Item = (String, Vec<usize>)> + '_> {
        Box::new(crate::checkpoint::gpt2_tensors(self))
    }

    fn is_model_tensor(&self, canonical: &str) -> bool {
        crate::checkpoint::is_gpt2_tensor(canonical, self)
    }

    fn ignorable(&self, canonical: &str) -> bool {
        // The LM head is tied to `wte`; the causal-mask buffers are constants older versions saved.
        canonical == "lm_head.weight" || canonical.ends_with(".attn.bias") || canonical.ends_with(".attn.masked_bias")
    }

    fn to_hf_json(&self) -> Value {
        Config::to_hf_json(self)
    }

    fn synthetic_init(name: &str, shape: &[usize]) -> (f64, f64) {
        let is_layernorm = ["ln_1.", "ln_2.", "ln_f."].iter().any(|ln| name.contains(ln));
        match (name, is_layernorm) {
            ("wte.weight" | "wpe.weight", _) => (0.0, 1.0 / (shape[1] as f64).sqrt()),
            (_, true) if name.ends_with(".weight") => (1.0, 0.1),
            (_, true) => (0.0, 0.1),
            _ if name.ends_with(".weight") => (0.0, 1.0 / (shape[0] as f64).sqrt()),
            _ => (0.0, 0.05),
        }
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn width(&self) -> usize {
        self.n_embd
    }
    fn n_layer(&self) -> usize {
        self.n_layer
    }
    fn n_positions(&self) -> usize {
        self.n_positions
    }
}

/// Checks that every size of `sizes` (field, value) is positive; `path` names the config.
pub(crate) fn require_positive(path: &Path, sizes: &[(&str, usize)]) -> Result<()> {
    match sizes.iter().find(|&&(_, value)| value == 0) {
        Some(&(field, _)) => Err(Error::Config {
            path: path.to_owned(),
            field: field.into(),
            message: "must be positive".into(),
        }),
        None => Ok(()),
    }
}

/// Checks what every family's config needs whatever its relations: token ids of 32 bits, a norm
/// epsilon `(field, value)` that is a positive number, and a parameter count that did not overflow.
pub(crate) fn check_plausible(
    path: &Path,
    vocab_size: usize,
    eps: (&str, f64),
    parameters: Option<usize>,
) -> Result<()> {
    let bad = |field: &str, message: String| Error::Config {
        path: path.to_owned(),
        field: field.into(),
        message,
    };
    if u32::try_from(vocab_size).is_err() {
        return Err(bad(
            "vocab_size",
            format!("{vocab_size} does not fit token ids of 32 bits"),
        ));
    }
    let (eps_field, eps) = eps;
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(bad(eps_field, format!("{eps} is not a positive number")));
    }
    if parameters.is_none() {
        return Err(bad(
            "<root>",
            "the parameter count overflows: the sizes are not plausible".into(),
        ));
    }
    Ok(())
}

/// The object at the root of the text of a `config.json`; `path` is only used in errors.
pub(crate) fn json_object(text: &str, path: &Path) -> Result<Map<String, Value>> {
    let root: Value = serde_json::from_str(text).map_err(|e| Error::Config {
        path: path.to_owned(),
        field: "<root>".into(),
        message: format!("not valid JSON: {e}"),
    })?;
    match root {
        Value::Object(map) => Ok(map),
        _ => Err(Error::Config {
            path: path.to_owned(),
            field: "<root>".into(),
            message: "expected a JSON object".into(),
        }),
    }
}

/// Typed access to the fields of the config object, with errors that name the field.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path,
}

impl<'a> Fields<'a> {
    /// The fields of `map`, read from `path`.
    pub(crate) fn new(map: &'a Map<String, Value>, path: &'a Path) -> Self {
        Self { map, path }
    }

    /// The value of `field`, if present and not null.
    pub(crate) fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub(crate) fn invalid(&self, field: &str, expected: &str, found: &Value) -> Error {
        Error::Config {
            path: self.path.to_owned(),
            field: field.into(),
            message: format!("expected {expected}, found {found}"),
        }
    }

    pub(crate) fn unsupported(&self, field: &str, reason: &str) -> Error {
        Error::Unsupported {
            path: self.path.to_owned(),
            field: field.into(),
            value: self.map.get(field).map_or_else(String::new, Value::to_string),
            reason: reason.into(),
        }
    }

    pub(crate) fn positive(&self, field: &str) -> Result<usize> {
        let value = self.map.get(field).ok_or_else(|| Error::Config {
            path: self.path.to_owned(),
            field: field.into(),
            message: "missing (it has no default here)".into(),
        })?;
        match value.as_u64() {
            Some(n) if n > 0 => usize::try_from(n).map_err(|_| self.invalid(field, "a smaller integer", value)),
            _ => Err(self.invalid(field, "a positive integer", value)),
        }
    }

    pub(crate) fn optional_bool(&self, field: &str) -> Result<Option<bool>> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(value) => Err(self.invalid(field, "true or false", value)),
        }
    }

    pub(crate) fn optional_str(&self, field: &str) -> Result<Option<&str>> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(value) => Err(self.invalid(field, "a string", value)),
        }
    }
}
