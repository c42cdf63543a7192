//! tkbench-kernels: the transformer ops (embedding, layernorm, softmax, attention, matmul, gelu) in
//! interchangeable scalar, SIMD and cache-blocked variants, and the registry that lists them.
//!
//! Every variant of an op has the same signature: slices plus a small dims struct, and the ISA level
//! to run at. Kernels assert their contract at entry (lengths, ids in range) and never allocate more
//! than a tile of scratch. One module per op (its `mod.rs` states the maths, the shapes and the
//! special-value contract), one file per variant, one line per variant in [`registry`].
//!
//! This crate depends on neither `tkbench-reference` nor `tkbench-harness`.

// Kernels print nothing: a print left in one would write from inside timed and verified calls.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod attention;
pub mod embedding;
pub mod gelu;
pub mod isa;
pub mod layernorm;
pub mod matmul;
pub mod registry;
pub mod softmax;
pub mod vmath;

pub use isa::Isa;
pub use registry::{IsaSupport, Kernel, Kind, Op, Variant, fastest, find, variants, variants_of};
