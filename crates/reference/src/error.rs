//! The one error type of the reference crate: every variant names the file, tensor or field at fault.

use std::path::PathBuf;

/// Everything that can go wrong while loading a checkpoint or running the model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON, or a field is missing or of the wrong type.
    #[error("{path}: field `{field}`: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// The field at fault (`<root>` when the file as a whole is unreadable).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The config asks for something this model does not implement.
    #[error("{path}: field `{field}` = {value} is not supported: {reason}")]
    Unsupported {
        /// The config file.
        path: PathBuf,
        /// The field at fault.
        field: String,
        /// The value found, as JSON.
        value: String,
        /// What would be needed instead.
        reason: String,
    },
    /// The safetensors file is truncated or corrupt.
    #[error("{path}: not a valid safetensors file: {message}")]
    Safetensors {
        /// The tensor file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A tensor the model needs is not in the file.
    #[error("{path}: missing tensor `{name}` (looked for {looked_for})")]
    MissingTensor {
        /// The tensor file.
        path: PathBuf,
        /// The canonical tensor name (for GPT-2, without the `transformer.` prefix).
        name: String,
        /// The stored names looked for, quoted.
        looked_for: String,
    },
    /// The file holds a tensor the model does not use: the config does not describe the file.
    #[error(
        "{path}: tensor `{name}` is not part of the model the config describes (is config.json for another model?)"
    )]
    UnexpectedTensor {
        /// The tensor file.
        path: PathBuf,
        /// The tensor name as stored.
        name: String,
    },
    /// A tensor holds NaN or infinity.
    #[error("{path}: tensor `{name}` holds {value} at flat index {index}; weights must be finite")]
    NonFinite {
        /// The tensor file.
        path: PathBuf,
        /// The tensor name as stored.
        name: String,
        /// The flat index of the first non-finite value.
        index: usize,
        /// That value.
        value: f32,
    },
    /// A KV cache made for another model.
    #[error(
        "the KV cache has {cache_layers} layers of width {cache_width}, but the model has {n_layer} of width {width}"
    )]
    CacheMismatch {
        /// Layers of the cache.
        cache_layers: usize,
        /// Width of the cache.
        cache_width: usize,
        /// Layers of the model.
        n_layer: usize,
        /// Width of the model's keys and values.
        width: usize,
    },
    /// A tensor has the wrong shape for the config.
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        /// The tensor file.
        path: PathBuf,
        /// The tensor name as stored.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has a dtype the loader does not read.
    #[error("{path}: tensor `{name}` has dtype {dtype}; only F32 and BF16 checkpoints are read")]
    TensorDtype {
        /// The tensor file.
        path: PathBuf,
        /// The tensor name as stored.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// The prompt has no tokens.
    #[error("the prompt is empty: at least one token is needed")]
    EmptyPrompt,
    /// A token id does not index the vocabulary.
    #[error("token {index} has id {id}, but vocab_size is {vocab_size} (ids must be < vocab_size)")]
    TokenOutOfRange {
        /// Position of the token in the prompt.
        index: usize,
        /// The token id.
        id: u32,
        /// The model's vocabulary size.
        vocab_size: usize,
    },
    /// The sequence would run past the learned position embeddings.
    #[error("{total} tokens do not fit the context: n_positions is {n_positions} ({cached} already cached, {new} new)")]
    ContextOverflow {
        /// Tokens already in the KV cache.
        cached: usize,
        /// Tokens being added.
        new: usize,
        /// `cached + new`.
        total: usize,
        /// The model's context length.
        n_positions: usize,
    },
    /// Logits were asked for a row the call does not have.
    #[error("logits of row {row} were asked for, but the call has {tokens} tokens")]
    RowOutOfRange {
        /// The row asked for.
        row: usize,
        /// The tokens of the call.
        tokens: usize,
    },
    /// Generation would run past the learned position embeddings.
    #[error(
        "a prompt of {prompt} tokens cannot be continued by {n}: n_positions is {n_positions}, so at most {} new tokens fit",
        n_positions + 1 - prompt
    )]
    GenerationOverflow {
        /// Tokens in the prompt.
        prompt: usize,
        /// Tokens asked for.
        n: usize,
        /// The model's context length.
        n_positions: usize,
    },
    /// A tokenizer failed, or a tokenizer file could not be read.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// The result type of the reference crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
