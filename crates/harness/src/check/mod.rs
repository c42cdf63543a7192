//! Verification: the golden-case format and its loading, error metrics, the op checker with its
//! bound rules, and the model-level verify of every kernel set against the golden logits.

pub mod golden;
pub mod metrics;
pub mod opcheck;
pub mod tolerance;
pub mod verify;
