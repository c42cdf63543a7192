//! What a model family is to the rest of the crate: how its `config.json` is read and refused, which
//! tensors its checkpoint holds, and how its synthetic weights are drawn.
//!
//! Two families are implemented: GPT-2 ([`crate::Config`], [`crate::Gpt2`]) and Llama
//! ([`crate::LlamaConfig`], [`crate::Llama`]). [`Family::of_dir`] says which one a checkpoint
//! directory holds, from its `config.json`'s `model_type`.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// A model family's hyper-parameters, and what they imply about its checkpoint.
pub trait Architecture: Clone + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// The family.
    const FAMILY: Family;
    /// The prefix `save_pretrained` writes before tensor names that hub checkpoints may lack
    /// (`transformer.` for GPT-2); canonical names are without it.
    const PREFIX: Option<&'static str>;

    /// Parses and validates the text of a `config.json`; `path` is only used in error messages.
    fn from_json_str(text: &str, path: &Path) -> Result<Self>;

    /// Reads and validates a `config.json`.
    fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json_str(&text, path)
    }

    /// Checks the relations between fields that parsing alone cannot; `path` names the config.
    fn validate(&self, path: &Path) -> Result<()>;

    /// The canonical names and shapes of every tensor the model needs, in a fixed order, produced
    /// lazily: a config of implausibly many layers is refused at its first missing tensor, not
    /// after listing them all.
    fn expected_tensors(&self) -> Box<dyn Iterator<Item = (String, Vec<usize>)> + '_>;

    /// Whether `canonical` names one of [`Architecture::expected_tensors`], without listing them.
    fn is_model_tensor(&self, canonical: &str) -> bool;

    /// Whether a stored tensor the model does not read may be present all the same (a tied LM
    /// head's copy, a buffer an older `transformers` saved).
    fn ignorable(&self, canonical: &str) -> bool;

    /// The config as the fields of a Hugging Face `config.json` that a checkpoint writer needs.
    fn to_hf_json(&self) -> Value;

    /// The (offset, standard deviation) of the synthetic values of tensor `name` with `shape`.
    fn synthetic_init(name: &str, shape: &[usize]) -> (f64, f64);

    /// V: the vocabulary size.
    fn vocab_size(&self) -> usize;
    /// C: the width of the residual stream, which is also the width of every hidden state.
    fn width(&self) -> usize;
    /// L: the number of transformer blocks.
    fn n_layer(&self) -> usize;
    /// P: the longest sequence the model takes.
    fn n_positions(&self) -> usize;
}

/// A model family this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// GPT-2: learned positions, LayerNorm, GELU, biases, one key/value head per query head.
    #[default]
    Gpt2,
    /// Llama: rotary positions, RMSNorm, SwiGLU, no biases, grouped-query attention.
    Llama,
}

impl Family {
    /// Every family, in the order reports list them.
    pub const ALL: [Family; 2] = [Family::Gpt2, Family::Llama];

    /// The family's name, as `config.json`'s `model_type` and the command line spell it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Gpt2 => "gpt2",
            Family::Llama => "llama",
        }
    }

    /// The family named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The family of the checkpoint directory `dir`, from the `model_type` of its `config.json`.
    /// A config without one is GPT-2's, as the oldest GPT-2 configs are.
    pub fn of_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Self::of_json_str(&text, &path)
    }

    /// The family of the text of a `config.json`; `path` is only used in error messages.
    pub fn of_json_str(text: &str, path: &Path) -> Result<Self> {
        let root = crate::config::json_object(text, path)?;
        match root.get("model_type") {
            None | Some(Value::Null) => Ok(Family::Gpt2),
            Some(Value::String(name)) => Self::parse(name).ok_or_else(|| Error::Unsupported {
                path: path.to_owned(),
                field: "model_type".into(),
                value: format!("\"{name}\""),
                reason: "the families implemented are `gpt2` and `llama`".into(),
            }),
            Some(other) => Err(Error::Config {
                path: path.to_owned(),
                field: "model_type".into(),
                message: format!("expected a string, found {other}"),
            }),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
