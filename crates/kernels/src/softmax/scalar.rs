//! Softmax, three plain passes per row (max, exp and sum, normalize): the readable twin.

use super::SoftmaxDims;
use crate::Isa;

/// x [R, N] → out [R, N]. The ISA level is ignored: this is plain Rust.
pub fn softmax(dims: &SoftmaxDims, x: &[f32], out: &mut [f32], _isa: Isa) {
    dims.check(x, out);
    let n = dims.cols;
    if n == 0 {
        return;
    }
    for (row, out_row) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        // f32::max skips NaN, but exp(NaN − max) is NaN and the sum carries it to the whole row.
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for (o, &v) in out_row.iter_mut().zip(row) {
            *o = (v - max).exp();
            sum += *o;
        }
        for o in out_row.iter_mut() {
            *o /= sum;
        }
    }
}
