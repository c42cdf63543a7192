//! Matmul by the `matrixmultiply` crate's sgemm (through ndarray's safe `general_mat_mul`), the library
//! baseline. It picks its own kernel at run time (AVX-512, AVX2+FMA, SSE2 or NEON) and cannot be forced
//! to a level, so its ISA requirement is "library".

use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder, linalg::general_mat_mul};

use super::MatmulDims;
use crate::Isa;

/// a [M, K], b [K, N], bias [N] → c [M, N]; the ISA level is chosen by the library.
pub fn matmul(dims: &MatmulDims, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32], _isa: Isa) {
    dims.check(a, b, bias, c);
    dims.init_output(bias, c);
    let MatmulDims { m, k, n, ldb } = *dims;
    if k == 0 || n == 0 {
        return;
    }
    let a = ArrayView2::from_shape((m, k), a).expect("length checked");
    let b = ArrayView2::from_shape((k, n).strides((ldb, 1)), &b[..(k - 1) * ldb + n]).expect("length checked");
    let mut c = ArrayViewMut2::from_shape((m, n), c).expect("length checked");
    general_mat_mul(1.0, &a, &b, 1.0, &mut c);
}
