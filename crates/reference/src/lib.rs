//! tkbench-reference: plain decoder-only models on ndarray (GPT-2, and the Llama family), in float64
//! and float32, with their checkpoint loader, the GPT-2 tokenizer and deterministic synthetic
//! checkpoints.
//!
//! This crate is the readable twin every fast kernel is measured against: no unsafe code, no SIMD,
//! no threads. Read [`model`] top to bottom for the whole forward pass.
//!
//! ```no_run
//! use tkbench_reference::{Checkpoint, Gpt2, Tokenizer};
//! # fn main() -> Result<(), tkbench_reference::Error> {
//! let checkpoint = Checkpoint::load(std::path::Path::new("path/to/gpt2"))?;
//! let model = Gpt2::<f64>::from_checkpoint(&checkpoint);
//! let logits = model.forward(&Tokenizer::gpt2().encode("Hello world"))?; // [T, V]
//! # Ok(()) }
//! ```

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod family;
pub mod llama;
pub mod model;
pub mod ops;
pub mod real;
pub mod synthetic;
pub mod tokenizer;

pub use checkpoint::{Checkpoint, Tensor};
pub use config::Config;
pub use error::{Error, Result};
pub use family::{Architecture, Family};
pub use llama::{Llama, LlamaConfig};
pub use model::{CausalLm, Gpt2, KvCache};
pub use real::Real;
pub use tokenizer::{HfTokenizer, Tokenizer};
