//! The work of one op call: floating-point operations and bytes moved, the numbers behind every
//! throughput, roofline bound and percentage in the reports. Each op's definition states its own
//! (`Op::work`); the model's forward pass sums its calls (`model::model_work`).
//!
//! Conventions: a fused multiply-add is 2 FLOPs; exp and tanh count as 1 FLOP each (they are
//! polynomials, but the count should describe the op, not an implementation); bytes are the
//! compulsory traffic of the op's inputs and outputs in f32 (every input read once, every output
//! written once), with GB = 1e9 bytes. The bytes written are also counted on their own: a stream of
//! writes costs a core more than one of reads (each line written is first read into the cache), so
//! the roofline weighs them apart.

use std::ops::Add;

use serde::{Deserialize, Serialize};

/// Bytes of an f32.
pub const F32: f64 = 4.0;

/// FLOPs and bytes of one call.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Work {
    /// Floating-point operations.
    pub flops: f64,
    /// Bytes read and written.
    pub bytes: f64,
    /// Of `bytes`, those written. Reports from before the split lack it and load it as 0; their
    /// roofline bounds were computed when they were written.
    #[serde(default)]
    pub written: f64,
}

impl Work {
    /// Of `bytes`, those read.
    pub fn read(self) -> f64 {
        self.bytes - self.written
    }
}

impl Add for Work {
    type Output = Work;

    fn add(self, other: Work) -> Work {
        Work {
            flops: self.flops + other.flops,
            bytes: self.bytes + other.bytes,
            written: self.written + other.written,
        }
    }
}

/// What an op's throughput is stated in: FLOPs for ops bound by arithmetic (matmul, attention),
/// bytes for the rest, bound by memory. The benches' throughput unit and the report's plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Floating-point operations.
    Flops,
    /// Bytes moved.
    Bytes,
}
