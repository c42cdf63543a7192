//! Deterministic synthetic checkpoints of every family: weights drawn from a counter-based generator that
//! `golden/oracle/make_golden.py` implements identically, so a checkpoint too large to commit is
//! rebuilt bit for bit from its config and seed.
//!
//! Scheme `tkbench-splitmix64-v1`. Every tensor has a key `seed ^ fnv1a64(canonical name)`; element
//! `i` is `z = splitmix64(key + (i + 1) · 0x9E3779B97F4A7C15)`, mapped to a symmetric uniform
//! `u = ((z >> 40) + 0.5) / 2²⁴ · 2 − 1` and to `offset + std · √3 · u` in float64, then rounded to
//! float32. Each family's [`Architecture::synthetic_init`] gives the offset and standard deviation
//! of each tensor: norm gains around 1 and every bias non-zero, so that a forgotten bias or a
//! swapped gain cannot hide; weight matrices get 1/√fan_in.

use std::collections::BTreeMap;
use std::path::Path;

use crate::checkpoint::{Checkpoint, Tensor};
use crate::family::Architecture;

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

/// The synthetic tensor `name` of `shape` for `seed`, of family `A`.
pub fn tensor<A: Architecture>(seed: u64, name: &str, shape: &[usize]) -> Tensor {
    let key = seed ^ fnv1a64(name.as_bytes());
    let (offset, std) = A::synthetic_init(name, shape);
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
pub fn checkpoint<A: Architecture>(config: &A, seed: u64) -> Checkpoint<A> {
    let tensors: BTreeMap<String, Tensor> = config
        .expected_tensors()
        .map(|(name, shape)| {
            let t = tensor::<A>(seed, &name, &shape);
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
