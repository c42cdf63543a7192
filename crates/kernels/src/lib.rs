//! tkbench-kernels: the transformer ops (embedding, layernorm, softmax, attention, matmul, gelu, and
//! Llama's rmsnorm, rope and swiglu) in
//! interchangeable scalar, SIMD and cache-blocked variants, and the registry that lists them.
//!
//! Every variant of an op has the same signature: slices plus a small dims struct, and the ISA level
//! to run at. Kernels assert their contract at entry (lengths, ids in range) and never allocate more
//! than a tile of scratch. One module per op (its `mod.rs` states the maths, the shapes and the
//! special-value contract, the entry-point type, and lists the variants in `VARIANTS`, one line per
//! variant file), one file per variant; [`registry`] says what a listed variant is.
//!
//! This crate depends on neither `tkbench-reference` nor `tkbench-harness`.

// Kernels print nothing: a print left in one would write from inside timed and verified calls.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod attention;
pub mod embedding;
pub mod gelu;
pub mod isa;
pub mod layernorm;
pub mod matmul;
pub mod registry;
pub mod rmsnorm;
pub mod rope;
pub mod softmax;
pub mod swiglu;
pub mod vmath;

pub use isa::Isa;
pub use registry::{IsaSupport, Kind, Tile, TileSize, Variant};

/// Whether a slice of `len` floats holds `rows` rows of `width` floats whose starts lie `stride`
/// floats apart (stride ≥ width): exactly rows · width floats for whole rows (stride = width), at
/// least to the end of the last row for rows of a wider matrix.
pub(crate) fn holds_rows(len: usize, rows: usize, width: usize, stride: usize) -> bool {
    if stride == width {
        len == rows * width
    } else {
        len >= rows_end(rows, width, stride)
    }
}

/// Where `rows` rows of `width` floats, `stride` floats apart, end: the floats a slice of them needs.
pub(crate) fn rows_end(rows: usize, width: usize, stride: usize) -> usize {
    if rows == 0 || width == 0 {
        0
    } else {
        (rows - 1) * stride + width
    }
}

#[cfg(test)]
mod tests {
    use super::holds_rows;

    #[test]
    fn whole_rows_are_exact_and_strided_rows_reach_the_last_row_end() {
        assert!(holds_rows(12, 3, 4, 4) && !holds_rows(13, 3, 4, 4) && !holds_rows(11, 3, 4, 4));
        // Three rows of 4 floats, 10 apart: the last ends at 2 · 10 + 4.
        assert!(holds_rows(24, 3, 4, 10) && holds_rows(30, 3, 4, 10) && !holds_rows(23, 3, 4, 10));
        assert!(holds_rows(0, 0, 4, 10) && holds_rows(0, 3, 0, 10));
    }
}
