//! tkbench-harness: the golden-case format, error metrics, the op checker with its tolerances, and
//! the checks that hold an implementation to the oracle's logits.

pub mod aligned;
pub mod golden;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod opcheck;
pub mod probe;
pub mod report;
pub mod svg;
pub mod tolerance;
pub mod verify;
pub mod work;
