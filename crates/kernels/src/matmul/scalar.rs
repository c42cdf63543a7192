//! Matmul, the triple loop: the readable twin.

use super::MatmulDims;
use crate::Isa;

/// a [M, K], b [K, N], bias [N] → c [M, N]. The ISA level is ignored: this is plain Rust.
pub fn matmul(dims: &MatmulDims, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32], _isa: Isa) {
    dims.check(a, b, bias, c);
    let MatmulDims { m, k, n, ldb } = *dims;
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for p in 0..k {
                acc += a[i * k + p] * b[p * ldb + j];
            }
            c[i * n + j] = acc + bias.map_or(0.0, |bias| bias[j]);
        }
    }
}
