//! tkbench-harness: what holds kernel variants to the truth and measures them, by concern:
//!
//! - [`ops`]: one definition module per op (shapes, inputs, the call path, references, bounds, work,
//!   sweep, bench shapes, PyTorch peer) and [`ops::OPS`], the list of ops;
//! - [`registry`]: the variants to run (registered, or added from outside) and kernel sets;
//! - [`check`]: verification: golden cases, metrics, the op checker and its bound rules, the
//!   model-level verify;
//! - [`model`]: the kernel-driven GPT-2 and, in [`model::threads`], its thread policy;
//! - [`measure`]: the machine probe, the work of a call, the bench cases, reports and plots;
//! - [`plugin`]: C plugins (`include/tkbench.h`), loaded and their variants added to a registry.

pub mod aligned;
pub mod check;
pub mod measure;
pub mod model;
pub mod ops;
pub mod plugin;
pub mod registry;
