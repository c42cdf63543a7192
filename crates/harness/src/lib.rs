//! tkbench-harness: the golden-case format, error metrics, the op checker with its tolerances, and
//! the checks that hold an implementation to the oracle's logits.

pub mod golden;
pub mod metrics;
pub mod opcheck;
pub mod tolerance;
