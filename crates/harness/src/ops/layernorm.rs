//! The layernorm op: rows of x [R, C] normalised, scaled by gamma and shifted by beta (maths,
//! contract and variants in `tkbench_kernels::layernorm`).

use std::ops::Range;
use std::sync::Arc;

use ndarray::{ArrayView1, ArrayView2};
use tkbench_kernels::layernorm::{self, LayerNormDims};
use tkbench_kernels::{Isa, Variant};
use tkbench_reference::ops;

use super::{Kernel, 
    Buffer, Draw, GPT2_SMALL, Op, PeerCode, Plant, Profile, Reference, Special, bench_token_counts, sweep_widths,
};
use crate::aligned::AlignedVec;
use crate::check::tolerance::Rule;
use crate::measure::work::{F32, Unit, Work};
use crate::model::threads::By;

/// A layernorm entry point: one of `tkbench_kernels::layernorm`'s functions, or any closure of its type (an
/// outside kernel, which may hold state such as weights packed once).
pub type LayerNormKernel = Kernel<dyn Fn(&LayerNormDims, &[f32], &[f32], &[f32], &mut [f32], Isa) + Send + Sync>;

impl<G: Fn(&LayerNormDims, &[f32], &[f32], &[f32], &mut [f32], Isa) + Send + Sync + 'static> From<G> for LayerNormKernel {
    fn from(kernel: G) -> Self {
        Kernel::new(Arc::new(kernel))
    }
}

/// The epsilon of every LayerNorm check and bench, GPT-2's.
pub const EPS: f32 = 1e-5;

/// LayerNorm over rows.
#[derive(Debug, Clone, Copy)]
pub struct LayerNorm;

/// The input slices of a layernorm call.
#[derive(Debug, Clone, Copy)]
pub struct LayerNormArgs<'a> {
    /// x [R, C].
    pub x: &'a [f32],
    /// gamma [C].
    pub gamma: &'a [f32],
    /// beta [C].
    pub beta: &'a [f32],
}

/// x, gamma and beta, drawn.
pub struct LayerNormInputs {
    x: AlignedVec,
    gamma: AlignedVec,
    beta: AlignedVec,
}

impl Op for LayerNorm {
    const NAME: &'static str = "layernorm";
    const FIELDS: &'static [&'static str] = &["rows", "channels"];
    const RULE: Rule = Rule::PlainF32 { k: 4.0, ulps: 16.0 };
    const RATIONALE: &'static str =
        "two C-term reductions and a normalisation: 4x the plain f32 error (at least the random walk of a C-term sum, √C/2 u), floor 16 ulps of the output scale";
    const UNIT: Unit = Unit::Bytes;
    const PROFILES: &'static [Profile] = &[Profile::Uniform, Profile::Offset, Profile::Outliers, Profile::Extreme];

    type Kernel = LayerNormKernel;
    type Shape = LayerNormDims;
    type Args<'a> = LayerNormArgs<'a>;
    type Inputs = LayerNormInputs;

    fn variants() -> Vec<Variant<LayerNormKernel>> {
        layernorm::VARIANTS.iter().map(|v| v.map(|&f| LayerNormKernel::from(f))).collect()
    }

    fn fastest() -> &'static str {
        layernorm::FASTEST
    }

    fn values(s: &LayerNormDims) -> Vec<usize> {
        vec![s.rows, s.channels]
    }

    fn shape(v: &[usize]) -> Result<LayerNormDims, String> {
        Ok(LayerNormDims {
            rows: v[0],
            channels: v[1],
            eps: EPS,
        })
    }

    fn output(s: &LayerNormDims) -> (usize, usize) {
        (s.rows, s.channels)
    }

    /// x uniform, gains around 1 and shifts around 0, so that swapping them cannot hide.
    fn draw(s: &LayerNormDims, draw: &Draw) -> LayerNormInputs {
        LayerNormInputs {
            x: draw.signal("x", s.rows * s.channels, s.channels).into(),
            gamma: draw.values("gamma", s.channels, 1.0, 0.5).into(),
            beta: draw.values("beta", s.channels, 0.0, 0.5).into(),
        }
    }

    fn args<'a>(_: &LayerNormDims, x: &'a LayerNormInputs) -> LayerNormArgs<'a> {
        LayerNormArgs {
            x: &x.x,
            gamma: &x.gamma,
            beta: &x.beta,
        }
    }

    fn buffers(x: &mut LayerNormInputs) -> Vec<(&'static str, Buffer<'_>)> {
        vec![("x", Buffer::F32(&mut x.x)), ("gamma", Buffer::F32(&mut x.gamma)), ("beta", Buffer::F32(&mut x.beta))]
    }

    fn call(
        f: &LayerNormKernel,
        isa: Isa,
        s: &LayerNormDims,
        a: LayerNormArgs<'_>,
        by: By,
        r: Range<usize>,
        out: &mut [f32],
    ) {
        debug_assert_eq!(by, By::Rows);
        let c = s.channels;
        let dims = LayerNormDims { rows: r.len(), ..*s };
        f(&dims, &a.x[r.start * c..r.end * c], a.gamma, a.beta, out, isa)
    }

    fn reference(s: &LayerNormDims, x: &LayerNormInputs) -> Reference {
        let xv = ArrayView2::from_shape((s.rows, s.channels), &x.x[..]).expect("x is [R, C]");
        let (gamma, beta) = (ArrayView1::from(&x.gamma[..]), ArrayView1::from(&x.beta[..]));
        Reference {
            f64: ops::layernorm(
                &xv.mapv(f64::from).view(),
                &gamma.mapv(f64::from).view(),
                &beta.mapv(f64::from).view(),
                f64::from(s.eps),
            )
            .into_iter()
            .collect(),
            f32: ops::layernorm(&xv, &gamma, &beta, s.eps).into_iter().collect(),
            terms: s.channels,
            conditioning: conditioning(&xv, &gamma, s.eps),
            ..Reference::default()
        }
    }

    /// Per element: 1 add (mean), 3 (x − μ, square, add) for the variance, 4 to normalise
    /// (subtract, scale, multiply-add); x read, out written, gamma and beta read once.
    fn work(s: &LayerNormDims) -> Work {
        let (r, c) = (s.rows as f64, s.channels as f64);
        Work {
            flops: 8.0 * r * c,
            bytes: 2.0 * r * c * F32 + 2.0 * c * F32,
            written: r * c * F32,
        }
    }

    /// Five rows of every sweep width and of 768, no rows, rows of no channels, one element, and an
    /// odd block.
    fn sweep() -> Vec<LayerNormDims> {
        let dims = |rows, channels| LayerNormDims {
            rows,
            channels,
            eps: EPS,
        };
        let mut shapes: Vec<LayerNormDims> = sweep_widths().into_iter().chain([768]).map(|c| dims(5, c)).collect();
        shapes.extend([dims(0, 8), dims(3, 0), dims(1, 1), dims(9, 45)]);
        shapes
    }

    fn straddle(dim: &str, value: usize) -> Vec<LayerNormDims> {
        match dim {
            "channels" => vec![LayerNormDims { rows: 2, channels: value, eps: EPS }],
            "rows" => vec![LayerNormDims { rows: value, channels: 40, eps: EPS }],
            _ => Vec::new(),
        }
    }

    /// Rows of 45 channels (vector body and tail at every level).
    fn specials() -> Vec<Special<LayerNormDims>> {
        let (rows, channels) = (3, 45);
        let shape = LayerNormDims { rows, channels, eps: EPS };
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
            case("inf", "+inf in row 1 makes that row NaN", in_row_1(f32::INFINITY)),
            case("neg-inf", "−inf in row 1 makes that row NaN", in_row_1(f32::NEG_INFINITY)),
            case("constant-row", "a constant row has no variance: its output is beta", Plant::fill("x", 0..channels, 3.25)),
            case("nan-in-gamma", "NaN in gamma makes that channel NaN in every row", vec![Plant::new("gamma", 7, f32::NAN)]),
        ]
    }

    /// One row per token of each token count, and four sequences of 1024 tokens: a batch-sized
    /// shape whose 25 MB in and out are near the size of a last-level cache.
    fn bench_shapes(quick: bool) -> Vec<LayerNormDims> {
        let c = GPT2_SMALL.n_embd;
        let dims = |rows| LayerNormDims {
            rows,
            channels: c,
            eps: EPS,
        };
        let mut shapes: Vec<LayerNormDims> = bench_token_counts(quick).into_iter().map(dims).collect();
        if !quick {
            shapes.push(dims(4096));
        }
        shapes
    }

    fn peer(s: &LayerNormDims) -> Result<PeerCode, String> {
        let (r, c) = (s.rows, s.channels);
        Ok(PeerCode {
            setup: format!("x = rand({r}, {c})\nw = rand({c}) + 1\nb = rand({c})"),
            stmt: format!("F.layer_norm(x, ({c},), w, b, {})", s.eps),
        })
    }

    /// Small shapes around the vector widths and tiles.
    fn random_case(pick: &mut dyn FnMut(usize) -> usize) -> (LayerNormDims, f32) {
        let shape = LayerNormDims {
            rows: 1 + pick(5),
            channels: 1 + pick(299),
            eps: EPS,
        };
        (shape, super::random_magnitude(pick, &[1.0, 30.0, 1e4]))
    }
}

/// The largest |x| / σ of a row times the largest |gamma|: how far the roundings of a row's sums
/// (at the scale of |x|) are magnified in its output, which a large common offset or an outlier
/// channel makes large.
fn conditioning(x: &ArrayView2<f32>, gamma: &ArrayView1<f32>, eps: f32) -> f64 {
    let gain = gamma.iter().fold(0.0f64, |m, &g| m.max(f64::from(g).abs()));
    let worst_row = x.rows().into_iter().fold(0.0f64, |m, row| {
        let n = row.len().max(1) as f64;
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        let largest = row.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
        m.max(largest / (var + f64::from(eps)).sqrt())
    });
    worst_row * gain
}
