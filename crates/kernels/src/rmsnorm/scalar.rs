//! RMSNorm, two plain passes per row: the readable twin.

use super::RmsNormDims;
use crate::Isa;

/// x [R, C], gamma [C] → out [R, C]. The ISA level is ignored: this is plain Rust.
pub fn rmsnorm(dims: &RmsNormDims, x: &[f32], gamma: &[f32], out: &mut [f32], _isa: Isa) {
    dims.check(x, gamma, out);
    let c = dims.channels;
    if c == 0 {
        return;
    }
    for (row, out_row) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
        let mean_square = row.iter().map(|&v| v * v).sum::<f32>() / c as f32;
        let rstd = 1.0 / (mean_square + dims.eps).sqrt();
        for i in 0..c {
            out_row[i] = row[i] * rstd * gamma[i];
        }
    }
}
