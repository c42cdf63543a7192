//! Whole-model benches, on the fastest kernel set at the widest level, on one thread and on all: a
//! GPT-2-small-sized model (12 layers of 768, 12 heads, vocabulary 50257) and a SmolLM2-135M-sized
//! Llama (30 layers of 576, 9 heads over 3 key/value heads, MLP 1536, vocabulary 49152), both with
//! deterministic synthetic weights; a prefill of 128 and 512 tokens, and one decode step after 512
//! cached tokens. Throughput in tokens (criterion's elements). Groups are `model/<phase>,...`,
//! the Llama's phases prefixed `llama-`.

use criterion::{criterion_group, criterion_main};

criterion_group!(name = benches; config = tkbench_benches::config(); targets = tkbench_benches::bench_models);
criterion_main!(benches);
