//! Verification: the golden-case format and its loading, error metrics, the op checker with its
//! bound rules and input profiles, the special-value contract, the op-level gate over every variant,
//! and the model-level verify of every kernel set against the golden logits.

pub mod gate;
pub mod golden;
pub mod metrics;
pub mod opcheck;
pub mod profiles;
pub mod specials;
pub mod tolerance;
pub mod verify;
