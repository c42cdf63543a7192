//! Deterministic synthetic GPT-2 checkpoints: weights drawn from a counter-based generator that
//! `golden/oracle/make_golden.py` implements identically, so a checkpoint too large to commit is
//! rebuilt bit for bit from its config and seed.
//!
//! Scheme `tkbench-splitmix64-v1`. Every tensor has a key `seed ^ fnv1a64(canonical name)`; element
//! `i` is `z = splitmix64(key + (i + 1) · 0x9E3779B97F4A7C15)`, mapped to a symmetric uniform
//! `u = ((z >> 40) + 0.5) / 2²⁴ · 2 − 1` and to `offset + std · √3 · u` in float64, then rounded to
//! float32. [`init`] gives the offset and standard deviation of each tensor: LayerNorm gains around
//! 1 and every bias non-zero, so that a forgotten bias or a swapped gain cannot hide.

use std::collections::BTreeMap;
use std::path::Path;

use crate::checkpoint::{Checkpoint, Tensor, expected_tensors};
use crate::config::Config;

/// The name of the generator scheme, recorded in golden manifests.
pub const SCHEME: &str = "tkbench-splitmix64-v1";

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 output function.
pub fn splitmix64(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 64-bit FNV-1a hash of a byte string.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// The `i`-th raw 64-bit draw of the stream `key`.
pub fn draw(key: u64, i: u64) -> u64 {
    splitmix64(key.wrapping_add((i + 1).wrapping_mul(GOLDEN_GAMMA)))
}

/// The `i`-th draw of the stream `key` as a uniform value in (−1, 1).
pub fn symmetric_uniform(key: u64, i: u64) -> f64 {
    ((draw(key, i) >> 40) as f64 + 0.5) / 16_777_216.0 * 2.0 - 1.0
}

/// The (offset, standard deviation) of the synthetic values of tensor `name` with `shape`.
pub fn init(name: &str, shape: &[usize]) -> (f64, f64) {
    let is_layernorm = ["ln_1.", "ln_2.", "ln_f."].iter().any(|ln| name.contains(ln));
    match (name, is_layernorm) {
        ("wte.weight" | "wpe.weight", _) => (0.0, 1.0 / (shape[1] as f64).sqrt()),
        (_, true) if name.ends_with(".weight") => (1.0, 0.1),
        (_, true) => (0.0, 0.1),
        _ if name.ends_with(".weight") => (0.0, 1.0 / (shape[0] as f64).sqrt()),
        _ => (0.0, 0.05),
    }
}

/// The synthetic tensor `name` of `shape` for `seed`.
pub fn tensor(seed: u64, name: &str, shape: &[usize]) -> Tensor {
    let key = seed ^ fnv1a64(name.as_bytes());
    let (offset, std) = init(name, shape);
    let half_width = std * 3f64.sqrt();
    let len: usize = shape.iter().product();
    let data = (0..len as u64)
        .map(|i| (offset + half_width * symmetric_uniform(key, i)) as f32)
        .collect();
    Tensor {
        shape: shape.to_vec(),
        data,
    }
}

/// The synthetic checkpoint of `config` for `seed`.
pub fn checkpoint(config: &Config, seed: u64) -> Checkpoint {
    let tensors: BTreeMap<String, Tensor> = expected_tensors(config)
        .map(|(name, shape)| {
            let t = tensor(seed, &name, &shape);
            (name, t)
        })
        .collect();
    let origin = format!("<synthetic {SCHEME} seed {seed}>");
    Checkpoint::from_tensors(config.clone(), tensors, Path::new(&origin))
        .expect("the generator makes every expected tensor with its expected shape")
}

/// `n` token ids below `vocab_size` drawn from the stream of `seed`.
pub fn tokens(seed: u64, n: usize, vocab_size: usize) -> Vec<u32> {
    let key = seed ^ fnv1a64(b"tokens");
    (0..n as u64)
        .map(|i| u32::try_from(draw(key, i) % vocab_size as u64).expect("vocab_size fits u32"))
        .collect()
}
