//! The Llama family: its config ([`LlamaConfig`]) and its forward pass ([`Llama`]), beside GPT-2's
//! and as plain.

pub mod config;
pub mod model;

pub use config::LlamaConfig;
pub use model::{Llama, LlamaBlock, RmsNorm};
