//! tkbench-harness: the golden-case format, error metrics, and the checks that hold an
//! implementation to the oracle's logits.

pub mod golden;
pub mod metrics;
