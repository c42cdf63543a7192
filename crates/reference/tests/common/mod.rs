//! Shared fixtures of the reference crate's tests: small synthetic checkpoints on disk.

#![allow(dead_code)]

use std::path::Path;

use tkbench_reference::{Architecture, Checkpoint, Config, synthetic};

/// A small config whose dimensions are all different, so that a transposed tensor cannot pass.
pub fn small_config() -> Config {
    Config {
        n_layer: 2,
        n_head: 3,
        n_embd: 24,
        n_positions: 20,
        vocab_size: 50,
        n_inner: 40,
        layer_norm_epsilon: 1e-5,
        scale_attn_weights: true,
    }
}

/// The synthetic checkpoint of [`small_config`].
pub fn small_checkpoint() -> Checkpoint {
    synthetic::checkpoint(&small_config(), 7)
}

/// Writes `tensors` (name, shape, f32 data) as a safetensors file.
pub fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, data)| data.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors.iter().zip(&bytes).map(|((name, shape, _), raw)| {
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), raw).unwrap();
        (name.clone(), view)
    });
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// The tensors of `checkpoint` as (name, shape, data), with an optional name prefix.
pub fn tensor_list<A: Architecture>(checkpoint: &Checkpoint<A>, prefix: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    checkpoint
        .tensors()
        .iter()
        .map(|(name, t)| (format!("{prefix}{name}"), t.shape.clone(), t.data.clone()))
        .collect()
}
