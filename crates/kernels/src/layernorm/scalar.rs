//! LayerNorm, two plain passes per row: the readable twin.

use super::LayerNormDims;
use crate::Isa;

/// x [R, C], gamma [C], beta [C] → out [R, C]. The ISA level is ignored: this is plain Rust.
pub fn layernorm(dims: &LayerNormDims, x: &[f32], gamma: &[f32], beta: &[f32], out: &mut [f32], _isa: Isa) {
    dims.check(x, gamma, beta, out);
    let c = dims.channels;
    if c == 0 {
        return;
    }
    for (row, out_row) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
        let mean = row.iter().sum::<f32>() / c as f32;
        let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / c as f32;
        let rstd = 1.0 / (var + dims.eps).sqrt();
        for i in 0..c {
            out_row[i] = (row[i] - mean) * rstd * gamma[i] + beta[i];
        }
    }
}
