//! Matrix multiply with bias: `c = a · b + bias`, the linear layer of GPT-2 with its weight stored
//! [in, out] (Conv1D).
//!
//! Shapes: a [M, K], b [K, N], bias [N] (optional), c [M, N], all row-major; rows of b may lie `ldb`
//! floats apart (ldb ≥ N), so that a block of b's columns is a matmul of its own: threads split a
//! one-row matmul (a decode step) by columns, and every variant gives each element of c the same bits
//! wherever a block starts. Special values: NaN or
//! infinity in a row of a or a column of b reaches the outputs that read it (IEEE arithmetic; no
//! variant skips a zero multiplier).
//!
//! Variants: [`scalar`] (the triple loop), [`simd`] (pulp, rows of b streamed with vector
//! multiply-adds), [`matrixmultiply`] (the library baseline), [`blocked`] (packing and an own pulp
//! micro-kernel in the five-loop GotoBLAS nest).

pub mod blocked;
pub mod matrixmultiply;
pub mod scalar;
pub mod simd;

use crate::Isa;
use crate::registry::Variant;

/// matmul(dims, a [M, K], b [K, N], bias [N], c [M, N], isa).
pub type MatmulFn = fn(&MatmulDims, &[f32], &[f32], Option<&[f32]>, &mut [f32], Isa);

/// Every variant of matmul, one line per variant file.
pub static VARIANTS: &[Variant<MatmulFn>] = &[
    crate::variant!(matmul, scalar, Scalar, Plain),
    crate::variant!(matmul, simd, Simd, Dispatch),
    crate::variant!(matmul, blocked, Blocked, Dispatch, tiles),
    crate::variant!(matmul, matrixmultiply, Library, Library),
];

/// The fastest variant on long inputs, as the benches measure it (PERFORMANCE.md): the one the
/// `fastest` kernel set takes.
pub const FASTEST: &str = "blocked";

/// The sizes of one matmul call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulDims {
    /// M: rows of a and c.
    pub m: usize,
    /// K: the reduction length.
    pub k: usize,
    /// N: columns of b and c.
    pub n: usize,
    /// The distance between rows of b in floats, at least N: N when b is a whole matrix, the full
    /// width when b is a block of columns of a wider one.
    pub ldb: usize,
}

impl MatmulDims {
    /// The dims of a [M, K] · [K, N] matmul with a whole b (ldb = N).
    pub fn new(m: usize, k: usize, n: usize) -> Self {
        MatmulDims { m, k, n, ldb: n }
    }

    /// The call for columns `cols` of this matmul, whose b is whole: its dims (rows of b stay ldb
    /// apart) and the part of `b` it reads, from column `cols.start` of the first row (none for K = 0).
    pub fn columns<'b>(&self, b: &'b [f32], cols: core::ops::Range<usize>) -> (MatmulDims, &'b [f32]) {
        let dims = MatmulDims { n: cols.len(), ..*self };
        (dims, if self.k == 0 { &b[..0] } else { &b[cols.start..] })
    }

    /// Asserts the contract: slice lengths match the dims. b holds exactly K · N floats when
    /// ldb = N, and at least (K − 1) · ldb + N (to the end of the wider matrix) otherwise.
    pub fn check(&self, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &[f32]) {
        let MatmulDims { m, k, n, ldb } = *self;
        assert_eq!(a.len(), m * k, "matmul: a is not [M = {m}, K = {k}]");
        assert!(ldb >= n, "matmul: ldb = {ldb} is below N = {n}");
        assert!(
            crate::holds_rows(b.len(), k, n, ldb),
            "matmul: b ({} floats) is not [K = {k}, N = {n}] with rows {ldb} apart",
            b.len()
        );
        assert_eq!(c.len(), m * n, "matmul: c is not [M = {m}, N = {n}]");
        if let Some(bias) = bias {
            assert_eq!(bias.len(), n, "matmul: bias is not [N = {n}]");
        }
    }

    /// Fills every row of c [M, N] with the bias, or with zeros.
    pub(crate) fn init_output(&self, bias: Option<&[f32]>, c: &mut [f32]) {
        if self.n == 0 {
            return;
        }
        for row in c.chunks_exact_mut(self.n) {
            match bias {
                Some(bias) => row.copy_from_slice(bias),
                None => row.fill(0.0),
            }
        }
    }
}
