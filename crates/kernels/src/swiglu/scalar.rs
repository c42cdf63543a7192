//! SwiGLU, the formula element by element: the readable twin.

use super::SwigluDims;
use crate::Isa;

/// x [R, 2I] → out [R, I]. The ISA level is ignored: this is plain Rust.
pub fn swiglu(dims: &SwigluDims, x: &[f32], out: &mut [f32], _isa: Isa) {
    dims.check(x, out);
    let i = dims.width;
    if i == 0 {
        return;
    }
    for (row, out_row) in x.chunks_exact(2 * i).zip(out.chunks_exact_mut(i)) {
        let (gate, up) = row.split_at(i);
        for ((o, &g), &u) in out_row.iter_mut().zip(gate).zip(up) {
            *o = g / (1.0 + (-g).exp()) * u;
        }
    }
}
