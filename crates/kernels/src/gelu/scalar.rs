//! GELU, the formula as written: the readable twin.

use crate::Isa;
use crate::vmath::{GELU_CUBIC, GELU_K};

/// x [N] → out [N]. The ISA level is ignored: this is plain Rust.
pub fn gelu(x: &[f32], out: &mut [f32], _isa: Isa) {
    super::check(x, out);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = 0.5 * v * (1.0 + (GELU_K * (v + GELU_CUBIC * v * v * v)).tanh());
    }
}
