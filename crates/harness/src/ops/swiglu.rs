//! The swiglu op: Llama's MLP gate, silu(gate) · up over rows of x [R, 2I] holding the gate and up
//! projections side by side (maths, contract and variants in `tkbench_kernels::swiglu`).

use std::ops::Range;
use std::sync::Arc;

use ndarray::ArrayView2;
use tkbench_kernels::swiglu::{self, SwigluDims};
use tkbench_kernels::{Isa, Variant};
use tkbench_reference::ops;

use super::{Kernel, Buffer, Draw, Op, PeerCode, Plant, Profile, Reference, SMOLLM2, Special, bench_token_counts, sweep_widths};
use crate::aligned::AlignedVec;
use crate::check::tolerance::Rule;
use crate::measure::work::{F32, Unit, Work};
use crate::model::threads::By;

/// A swiglu entry point: one of `tkbench_kernels::swiglu`'s functions, or any closure of its type (an
/// outside kernel, which may hold state such as weights packed once).
pub type SwigluKernel = Kernel<dyn Fn(&SwigluDims, &[f32], &mut [f32], Isa) + Send + Sync>;

impl<G: Fn(&SwigluDims, &[f32], &mut [f32], Isa) + Send + Sync + 'static> From<G> for SwigluKernel {
    fn from(kernel: G) -> Self {
        Kernel::new(Arc::new(kernel))
    }
}

/// SwiGLU over rows.
#[derive(Debug, Clone, Copy)]
pub struct Swiglu;

/// x [R, 2I], drawn.
pub struct SwigluInputs {
    x: AlignedVec,
}

/// The gate and up halves of each row of x [R, 2I], as two [R, I] arrays.
fn halves(s: &SwigluDims, x: &[f32]) -> (ndarray::Array2<f32>, ndarray::Array2<f32>) {
    let (r, i) = (s.rows, s.width);
    let both = ArrayView2::from_shape((r, 2 * i), x).expect("x is [R, 2I]");
    (
        both.slice(ndarray::s![.., ..i]).to_owned(),
        both.slice(ndarray::s![.., i..]).to_owned(),
    )
}

impl Op for Swiglu {
    const NAME: &'static str = "swiglu";
    const FIELDS: &'static [&'static str] = &["rows", "width"];
    const RULE: Rule = Rule::PlainF32 { k: 4.0, ulps: 16.0 };
    const RATIONALE: &'static str =
        "elementwise: an exp, a divide and two products: 4x the plain f32 error, floor 16 ulps";
    const UNIT: Unit = Unit::Bytes;
    // A large offset or outliers only move silu onto g or 0, which a copy of the gate or zeros
    // would meet; the extreme profile alternates the two.
    const PROFILES: &'static [Profile] = &[Profile::Uniform, Profile::Extreme];
    const BLOCKS: bool = false;

    type Kernel = SwigluKernel;
    type Shape = SwigluDims;
    /// x [R, 2I].
    type Args<'a> = &'a [f32];
    type Inputs = SwigluInputs;

    fn variants() -> Vec<Variant<SwigluKernel>> {
        swiglu::VARIANTS.iter().map(|v| v.map(|&f| SwigluKernel::from(f))).collect()
    }

    fn fastest() -> &'static str {
        swiglu::FASTEST
    }

    fn values(s: &SwigluDims) -> Vec<usize> {
        vec![s.rows, s.width]
    }

    fn shape(v: &[usize]) -> Result<SwigluDims, String> {
        Ok(SwigluDims { rows: v[0], width: v[1] })
    }

    fn output(s: &SwigluDims) -> (usize, usize) {
        (s.rows, s.width)
    }

    fn draw(s: &SwigluDims, draw: &Draw) -> SwigluInputs {
        SwigluInputs {
            x: draw.signal("x", s.rows * 2 * s.width, 2 * s.width).into(),
        }
    }

    fn args<'a>(_: &SwigluDims, x: &'a SwigluInputs) -> &'a [f32] {
        &x.x
    }

    fn buffers(x: &mut SwigluInputs) -> Vec<(&'static str, Buffer<'_>)> {
        vec![("x", Buffer::F32(&mut x.x))]
    }

    fn call(f: &SwigluKernel, isa: Isa, s: &SwigluDims, x: &[f32], by: By, r: Range<usize>, out: &mut [f32]) {
        debug_assert_eq!(by, By::Rows);
        let dims = SwigluDims { rows: r.len(), ..*s };
        f(&dims, &x[r.start * 2 * s.width..r.end * 2 * s.width], out, isa)
    }

    fn reference(s: &SwigluDims, x: &SwigluInputs) -> Reference {
        let (gate, up) = halves(s, &x.x);
        Reference {
            f64: ops::swiglu(&gate.mapv(f64::from).view(), &up.mapv(f64::from).view())
                .into_iter()
                .collect(),
            f32: ops::swiglu(&gate.view(), &up.view()).into_iter().collect(),
            ..Reference::default()
        }
    }

    /// Per element: a negation, exp, an add, a divide and two multiplies; x read (2I per row), out
    /// written (I per row).
    fn work(s: &SwigluDims) -> Work {
        let n = (s.rows * s.width) as f64;
        Work {
            flops: 8.0 * n,
            bytes: 3.0 * n * F32,
            written: n * F32,
        }
    }

    /// Three rows of every sweep width, no rows, no width, and rows of SmolLM2's MLP.
    fn sweep() -> Vec<SwigluDims> {
        let mut shapes: Vec<SwigluDims> = sweep_widths()
            .into_iter()
            .chain([SMOLLM2.intermediate_size])
            .map(|width| SwigluDims { rows: 3, width })
            .collect();
        shapes.extend([SwigluDims { rows: 0, width: 8 }, SwigluDims { rows: 2, width: 0 }]);
        shapes
    }

    fn straddle(dim: &str, value: usize) -> Vec<SwigluDims> {
        match dim {
            "width" => vec![SwigluDims { rows: 2, width: value }],
            "rows" => vec![SwigluDims { rows: value, width: 40 }],
            _ => Vec::new(),
        }
    }

    /// Special gates and ups in the vector body and again in the tail at every level (I = 37 =
    /// 2 · 16 + 5), in the second row.
    fn specials() -> Vec<Special<SwigluDims>> {
        let width = 37;
        let row = 2 * width;
        let gates = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 100.0, -100.0, 0.0, 20.0, -20.0];
        let body = gates.iter().enumerate().map(|(i, &v)| Plant::new("x", row + i, v));
        let tail = gates[..5].iter().enumerate().map(|(i, &v)| Plant::new("x", row + 32 + i, v));
        let ups = [f32::NAN, f32::INFINITY, 0.0];
        let up = ups.iter().enumerate().map(|(i, &v)| Plant::new("x", row + width + 8 + i, v));
        vec![
            Special {
                name: "gates",
                about: "gate NaN → NaN, +inf → ±inf, −inf → NaN (−inf / inf), large and zero gates exact",
                shape: SwigluDims { rows: 3, width },
                seed: 17,
                plants: body.chain(tail).collect(),
            },
            Special {
                name: "ups",
                about: "up NaN → NaN, +inf → ±inf, 0 → ±0",
                shape: SwigluDims { rows: 3, width },
                seed: 18,
                plants: up.collect(),
            },
        ]
    }

    /// The MLP activations of each token count at SmolLM2's width.
    fn bench_shapes(quick: bool) -> Vec<SwigluDims> {
        bench_token_counts(quick)
            .into_iter()
            .map(|rows| SwigluDims {
                rows,
                width: SMOLLM2.intermediate_size,
            })
            .collect()
    }

    fn peer(s: &SwigluDims) -> Result<PeerCode, String> {
        let (r, i) = (s.rows, s.width);
        Ok(PeerCode {
            setup: format!("x = rand({r}, {}) * 4\nout = torch.empty({r}, {i})", 2 * i),
            stmt: format!("torch.mul(F.silu(x[:, :{i}]), x[:, {i}:], out=out)"),
        })
    }

    /// Small shapes around the vector widths.
    fn random_case(pick: &mut dyn FnMut(usize) -> usize) -> (SwigluDims, f32) {
        let shape = SwigluDims {
            rows: 1 + pick(4),
            width: pick(200),
        };
        (shape, [1.0, 8.0, 1e4][pick(3)])
    }
}
