//! The softmax op: rows of x [R, N] to probabilities, as attention scores and next-token
//! distributions need them (maths, contract and variants in `tkbench_kernels::softmax`).

use std::ops::Range;
use std::sync::Arc;

use ndarray::ArrayView2;
use tkbench_kernels::softmax::{self, SoftmaxDims};
use tkbench_kernels::{Isa, Variant};
use tkbench_reference::ops;

use super::{Kernel, 
    Buffer, Draw, GPT2_SMALL, Op, PeerCode, Plant, Profile, Reference, Special, bench_token_counts, sweep_widths,
};
use crate::aligned::AlignedVec;
use crate::check::tolerance::Rule;
use crate::measure::work::{F32, Unit, Work};
use crate::model::threads::By;

/// A softmax entry point: one of `tkbench_kernels::softmax`'s functions, or any closure of its type (an
/// outside kernel, which may hold state such as weights packed once).
pub type SoftmaxKernel = Kernel<dyn Fn(&SoftmaxDims, &[f32], &mut [f32], Isa) + Send + Sync>;

impl<G: Fn(&SoftmaxDims, &[f32], &mut [f32], Isa) + Send + Sync + 'static> From<G> for SoftmaxKernel {
    fn from(kernel: G) -> Self {
        Kernel::new(Arc::new(kernel))
    }
}

/// Softmax over rows.
#[derive(Debug, Clone, Copy)]
pub struct Softmax;

/// x [R, N].
pub struct SoftmaxInputs {
    /// The rows.
    pub x: AlignedVec,
}

impl Op for Softmax {
    const NAME: &'static str = "softmax";
    const FIELDS: &'static [&'static str] = &["rows", "cols"];
    const RULE: Rule = Rule::PlainF32 { k: 4.0, ulps: 16.0 };
    const RATIONALE: &'static str =
        "a vector exp of a few ulps and an N-term sum in another order: 4x the plain f32 error (at least the random walk of an N-term sum, √N/2 u), floor 16 ulps";
    const UNIT: Unit = Unit::Bytes;
    const PROFILES: &'static [Profile] = &[Profile::Uniform, Profile::Offset, Profile::Outliers, Profile::Extreme];

    type Kernel = SoftmaxKernel;
    type Shape = SoftmaxDims;
    /// x [R, N].
    type Args<'a> = &'a [f32];
    type Inputs = SoftmaxInputs;

    fn variants() -> Vec<Variant<SoftmaxKernel>> {
        softmax::VARIANTS.iter().map(|v| v.map(|&f| SoftmaxKernel::from(f))).collect()
    }

    fn fastest() -> &'static str {
        softmax::FASTEST
    }

    fn values(s: &SoftmaxDims) -> Vec<usize> {
        vec![s.rows, s.cols]
    }

    fn shape(v: &[usize]) -> Result<SoftmaxDims, String> {
        Ok(SoftmaxDims { rows: v[0], cols: v[1] })
    }

    fn output(s: &SoftmaxDims) -> (usize, usize) {
        (s.rows, s.cols)
    }

    fn draw(s: &SoftmaxDims, draw: &Draw) -> SoftmaxInputs {
        SoftmaxInputs {
            x: draw.signal("x", s.rows * s.cols, s.cols).into(),
        }
    }

    fn args<'a>(_: &SoftmaxDims, x: &'a SoftmaxInputs) -> &'a [f32] {
        &x.x
    }

    fn buffers(x: &mut SoftmaxInputs) -> Vec<(&'static str, Buffer<'_>)> {
        vec![("x", Buffer::F32(&mut x.x))]
    }

    fn call(f: &SoftmaxKernel, isa: Isa, s: &SoftmaxDims, x: &[f32], by: By, r: Range<usize>, out: &mut [f32]) {
        debug_assert_eq!(by, By::Rows);
        let cols = s.cols;
        f(
            &SoftmaxDims { rows: r.len(), cols },
            &x[r.start * cols..r.end * cols],
            out,
            isa,
        )
    }

    fn reference(s: &SoftmaxDims, x: &SoftmaxInputs) -> Reference {
        let xv = ArrayView2::from_shape((s.rows, s.cols), &x.x[..]).expect("x is [R, N]");
        Reference {
            f64: ops::softmax_rows(&xv.mapv(f64::from).view()).into_iter().collect(),
            f32: ops::softmax_rows(&xv).into_iter().collect(),
            terms: s.cols,
            ..Reference::default()
        }
    }

    /// Per element: max, subtract, exp, add, scale; x read and out written once.
    fn work(s: &SoftmaxDims) -> Work {
        let n = (s.rows * s.cols) as f64;
        Work {
            flops: 5.0 * n,
            bytes: 2.0 * n * F32,
            written: n * F32,
        }
    }

    /// Three rows of every sweep width and of 1024, empty rows and no rows, and two vocabulary rows.
    fn sweep() -> Vec<SoftmaxDims> {
        let mut shapes: Vec<SoftmaxDims> = sweep_widths()
            .into_iter()
            .chain([1024])
            .map(|cols| SoftmaxDims { rows: 3, cols })
            .collect();
        shapes.push(SoftmaxDims { rows: 4, cols: 0 });
        shapes.push(SoftmaxDims { rows: 0, cols: 5 });
        shapes.push(SoftmaxDims { rows: 2, cols: 50257 });
        shapes
    }

    fn straddle(dim: &str, value: usize) -> Vec<SoftmaxDims> {
        match dim {
            "cols" => vec![SoftmaxDims { rows: 2, cols: value }],
            "rows" => vec![SoftmaxDims { rows: value, cols: 9 }],
            _ => Vec::new(),
        }
    }

    /// Rows of 37 (vector body and tail at every level) and of 1029 (several chunks of the online
    /// form, and a tail).
    fn specials() -> Vec<Special<SoftmaxDims>> {
        let (rows, cols) = (3, 37);
        let at = |r: usize, c: usize| r * cols + c;
        let case = |name, about, shape, plants| Special {
            name,
            about,
            shape,
            seed: 11,
            plants,
        };
        let short = SoftmaxDims { rows, cols };
        let mut among_masked = Plant::fill("x", at(1, 0)..at(2, 0), f32::NEG_INFINITY);
        among_masked.extend([Plant::new("x", at(1, 0), f32::NAN), Plant::new("x", at(1, cols - 1), 1.0)]);
        let mut masked: Vec<Plant> = (0..cols).step_by(3).map(|c| Plant::new("x", at(0, c), f32::NEG_INFINITY)).collect();
        masked.extend(Plant::fill("x", at(2, 0)..at(3, 0), f32::NEG_INFINITY));
        let long = SoftmaxDims { rows: 2, cols: 1029 };
        vec![
            case("nan", "NaN in row 1 makes that row NaN, the others finite", short, vec![Plant::new("x", at(1, 5), f32::NAN)]),
            case("inf", "+inf in row 1, in the tail, makes that row NaN", short, vec![Plant::new("x", at(1, cols - 1), f32::INFINITY)]),
            case("nan-among-masked", "NaN in a row of −inf (a lane whose maximum skips it) makes the row NaN", short, among_masked),
            case("masked", "−inf entries get exactly 0, a row of only −inf is NaN", short, masked),
            case(
                "long-row",
                "NaN at the end of a long row and −inf deep in another",
                long,
                vec![Plant::new("x", 1028, f32::NAN), Plant::new("x", 1029 + 700, f32::NEG_INFINITY)],
            ),
        ]
    }

    /// Attention score rows (NH · T rows of T) and vocabulary rows (one, and a batch of 64).
    fn bench_shapes(quick: bool) -> Vec<SoftmaxDims> {
        let (nh, v) = (GPT2_SMALL.n_head, GPT2_SMALL.vocab_size);
        let mut shapes: Vec<SoftmaxDims> = bench_token_counts(quick)
            .into_iter()
            .filter(|&t| t > 1)
            .map(|t| SoftmaxDims { rows: nh * t, cols: t })
            .collect();
        shapes.push(SoftmaxDims { rows: 1, cols: v });
        shapes.push(SoftmaxDims { rows: 64, cols: v });
        shapes
    }

    fn peer(s: &SoftmaxDims) -> Result<PeerCode, String> {
        let (r, n) = (s.rows, s.cols);
        Ok(PeerCode {
            setup: format!("x = rand({r}, {n}) * 4\nout = torch.empty({r}, {n})"),
            stmt: "torch.ops.aten._softmax.out(x, -1, False, out=out)".into(),
        })
    }

    /// Small shapes around the vector widths and tiles.
    fn random_case(pick: &mut dyn FnMut(usize) -> usize) -> (SoftmaxDims, f32) {
        let shape = SoftmaxDims {
            rows: 1 + pick(3),
            cols: 1 + pick(399),
        };
        (shape, super::random_magnitude(pick, &[1.0, 30.0, 1e4]))
    }
}
