//! The rmsnorm op: rows of x [R, C] divided by their root mean square and scaled by gamma, Llama's
//! norm (maths, contract and variants in `tkbench_kernels::rmsnorm`).

use std::ops::Range;
use std::sync::Arc;

use ndarray::{ArrayView1, ArrayView2};
use tkbench_kernels::rmsnorm::{self, RmsNormDims};
use tkbench_kernels::{Isa, Variant};
use tkbench_reference::ops;

use super::{Kernel, 
    Buffer, Draw, Op, PeerCode, Plant, Profile, Reference, SMOLLM2, Special, bench_token_counts, sweep_widths,
};
use crate::aligned::AlignedVec;
use crate::check::tolerance::Rule;
use crate::measure::work::{F32, Unit, Work};
use crate::model::threads::By;

/// A rmsnorm entry point: one of `tkbench_kernels::rmsnorm`'s functions, or any closure of its type (an
/// outside kernel, which may hold state such as weights packed once).
pub type RmsNormKernel = Kernel<dyn Fn(&RmsNormDims, &[f32], &[f32], &mut [f32], Isa) + Send + Sync>;

impl<G: Fn(&RmsNormDims, &[f32], &[f32], &mut [f32], Isa) + Send + Sync + 'static> From<G> for RmsNormKernel {
    fn from(kernel: G) -> Self {
        Kernel::new(Arc::new(kernel))
    }
}

/// The epsilon of every RMSNorm check and bench, SmolLM2's.
pub const EPS: f32 = 1e-5;

/// RMSNorm over rows.
#[derive(Debug, Clone, Copy)]
pub struct RmsNorm;

/// The input slices of an rmsnorm call.
#[derive(Debug, Clone, Copy)]
pub struct RmsNormArgs<'a> {
    /// x [R, C].
    pub x: &'a [f32],
    /// gamma [C].
    pub gamma: &'a [f32],
}

/// x and gamma, drawn.
pub struct RmsNormInputs {
    x: AlignedVec,
    gamma: AlignedVec,
}

impl Op for RmsNorm {
    const NAME: &'static str = "rmsnorm";
    const FIELDS: &'static [&'static str] = &["rows", "channels"];
    const RULE: Rule = Rule::PlainF32 { k: 4.0, ulps: 16.0 };
    const RATIONALE: &'static str =
        "a C-term sum of squares and a scale: 4x the plain f32 error (at least the random walk of a C-term sum, √C/2 u), floor 16 ulps of the output scale";
    const UNIT: Unit = Unit::Bytes;
    const PROFILES: &'static [Profile] = &[Profile::Uniform, Profile::Offset, Profile::Outliers, Profile::Extreme];

    type Kernel = RmsNormKernel;
    type Shape = RmsNormDims;
    type Args<'a> = RmsNormArgs<'a>;
    type Inputs = RmsNormInputs;

    fn variants() -> Vec<Variant<RmsNormKernel>> {
        rmsnorm::VARIANTS.iter().map(|v| v.map(|&f| RmsNormKernel::from(f))).collect()
    }

    fn fastest() -> &'static str {
        rmsnorm::FASTEST
    }

    fn values(s: &RmsNormDims) -> Vec<usize> {
        vec![s.rows, s.channels]
    }

    fn shape(v: &[usize]) -> Result<RmsNormDims, String> {
        Ok(RmsNormDims {
            rows: v[0],
            channels: v[1],
            eps: EPS,
        })
    }

    fn output(s: &RmsNormDims) -> (usize, usize) {
        (s.rows, s.channels)
    }

    /// x as the profile says, gains around 1 (a variant that drops or squares gamma shows).
    fn draw(s: &RmsNormDims, draw: &Draw) -> RmsNormInputs {
        RmsNormInputs {
            x: draw.signal("x", s.rows * s.channels, s.channels).into(),
            gamma: draw.values("gamma", s.channels, 1.0, 0.5).into(),
        }
    }

    fn args<'a>(_: &RmsNormDims, x: &'a RmsNormInputs) -> RmsNormArgs<'a> {
        RmsNormArgs { x: &x.x, gamma: &x.gamma }
    }

    fn buffers(x: &mut RmsNormInputs) -> Vec<(&'static str, Buffer<'_>)> {
        vec![("x", Buffer::F32(&mut x.x)), ("gamma", Buffer::F32(&mut x.gamma))]
    }

    fn call(
        f: &RmsNormKernel,
        isa: Isa,
        s: &RmsNormDims,
        a: RmsNormArgs<'_>,
        by: By,
        r: Range<usize>,
        out: &mut [f32],
    ) {
        debug_assert_eq!(by, By::Rows);
        let c = s.channels;
        let dims = RmsNormDims { rows: r.len(), ..*s };
        f(&dims, &a.x[r.start * c..r.end * c], a.gamma, out, isa)
    }

    fn reference(s: &RmsNormDims, x: &RmsNormInputs) -> Reference {
        let xv = ArrayView2::from_shape((s.rows, s.channels), &x.x[..]).expect("x is [R, C]");
        let gamma = ArrayView1::from(&x.gamma[..]);
        Reference {
            f64: ops::rmsnorm(&xv.mapv(f64::from).view(), &gamma.mapv(f64::from).view(), f64::from(s.eps))
                .into_iter()
                .collect(),
            f32: ops::rmsnorm(&xv, &gamma, s.eps).into_iter().collect(),
            terms: s.channels,
            conditioning: conditioning(&xv, &gamma, s.eps),
            ..Reference::default()
        }
    }

    /// Per element: 2 (square, add) for the mean square, 2 to scale (gamma · rstd, multiply); x
    /// read, out written, gamma read once.
    fn work(s: &RmsNormDims) -> Work {
        let (r, c) = (s.rows as f64, s.channels as f64);
        Work {
            flops: 4.0 * r * c,
            bytes: 2.0 * r * c * F32 + c * F32,
            written: r * c * F32,
        }
    }

    /// Five rows of every sweep width and of 576, no rows, rows of no channels, one row of two (one
    /// row of one is ±gamma whatever x, which a copy of gamma meets), and an odd block.
    fn sweep() -> Vec<RmsNormDims> {
        let dims = |rows, channels| RmsNormDims {
            rows,
            channels,
            eps: EPS,
        };
        let mut shapes: Vec<RmsNormDims> = sweep_widths().into_iter().chain([576]).map(|c| dims(5, c)).collect();
        shapes.extend([dims(0, 8), dims(3, 0), dims(1, 2), dims(9, 45)]);
        shapes
    }

    fn straddle(dim: &str, value: usize) -> Vec<RmsNormDims> {
        match dim {
            "channels" => vec![RmsNormDims { rows: 2, channels: value, eps: EPS }],
            "rows" => vec![RmsNormDims { rows: value, channels: 40, eps: EPS }],
            _ => Vec::new(),
        }
    }

    /// Rows of 45 channels (vector body and tail at every level).
    fn specials() -> Vec<Special<RmsNormDims>> {
        let (rows, channels) = (3, 45);
        let shape = RmsNormDims { rows, channels, eps: EPS };
        let case = |name, about, plants| Special {
            name,
            about,
            shape,
            seed: 12,
            plants,
        };
        let in_row_1 = |value| vec![Plant::new("x", channels + channels - 1, value)];
        vec![
            case("nan", "NaN in row 1, in the tail, makes that row NaN", in_row_1(f32::NAN)),
            case("inf", "+inf in row 1: NaN there (inf · 0), ±0 in the rest of the row", in_row_1(f32::INFINITY)),
            case("neg-inf", "−inf in row 1: NaN there, ±0 in the rest of the row", in_row_1(f32::NEG_INFINITY)),
            case("zero-row", "a row of zeros gives zeros: eps keeps the scale finite", Plant::fill("x", 0..channels, 0.0)),
            case("nan-in-gamma", "NaN in gamma makes that channel NaN in every row", vec![Plant::new("gamma", 7, f32::NAN)]),
        ]
    }

    /// One row per token of each token count at SmolLM2's width, and four sequences of 1024 tokens.
    fn bench_shapes(quick: bool) -> Vec<RmsNormDims> {
        let c = SMOLLM2.hidden_size;
        let dims = |rows| RmsNormDims {
            rows,
            channels: c,
            eps: EPS,
        };
        let mut shapes: Vec<RmsNormDims> = bench_token_counts(quick).into_iter().map(dims).collect();
        if !quick {
            shapes.push(dims(4096));
        }
        shapes
    }

    fn peer(s: &RmsNormDims) -> Result<PeerCode, String> {
        let (r, c) = (s.rows, s.channels);
        Ok(PeerCode {
            setup: format!("x = rand({r}, {c})\nw = rand({c}) + 1"),
            stmt: format!("F.rms_norm(x, ({c},), w, {})", s.eps),
        })
    }

    /// Small shapes around the vector widths and tiles.
    fn random_case(pick: &mut dyn FnMut(usize) -> usize) -> (RmsNormDims, f32) {
        let shape = RmsNormDims {
            rows: 1 + pick(5),
            channels: 1 + pick(299),
            eps: EPS,
        };
        (shape, super::random_magnitude(pick, &[1.0, 30.0, 1e4]))
    }
}

/// The largest |x| / rms of a row times the largest |gamma|: the scale of the largest output, at
/// which the roundings of the row's sum of squares (all of one sign, so never cancelling) show.
fn conditioning(x: &ArrayView2<f32>, gamma: &ArrayView1<f32>, eps: f32) -> f64 {
    let gain = gamma.iter().fold(0.0f64, |m, &g| m.max(f64::from(g).abs()));
    let worst_row = x.rows().into_iter().fold(0.0f64, |m, row| {
        let n = row.len().max(1) as f64;
        let mean_square = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n;
        let largest = row.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
        m.max(largest / (mean_square + f64::from(eps)).sqrt())
    });
    worst_row * gain
}
