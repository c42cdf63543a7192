//! tkbench-kernels: the transformer ops (embedding, layernorm, softmax, attention, matmul, gelu) in
//! interchangeable scalar, SIMD and cache-blocked variants, and the registry that lists them.
//!
//! No op is implemented yet: this crate holds the place the layout gives it, and depends on neither
//! `tkbench-reference` nor `tkbench-harness`.
