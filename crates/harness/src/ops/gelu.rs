//! The gelu op: GPT-2's tanh-approximated GELU, elementwise over x [N] (maths, contract and variants
//! in `tkbench_kernels::gelu`).

use std::ops::Range;
use std::sync::Arc;

use tkbench_kernels::gelu;
use tkbench_kernels::{Isa, Variant};
use tkbench_reference::ops;

use super::{Kernel, 
    Buffer, Draw, GPT2_SMALL, Op, PeerCode, Plant, Profile, Reference, Special, bench_token_counts, sweep_widths,
};
use crate::aligned::AlignedVec;
use crate::check::tolerance::Rule;
use crate::measure::work::{F32, Unit, Work};
use crate::model::threads::By;

/// A gelu entry point: one of `tkbench_kernels::gelu`'s functions, or any closure of its type (an
/// outside kernel, which may hold state such as weights packed once).
pub type GeluKernel = Kernel<dyn Fn(&[f32], &mut [f32], Isa) + Send + Sync>;

impl<G: Fn(&[f32], &mut [f32], Isa) + Send + Sync + 'static> From<G> for GeluKernel {
    fn from(kernel: G) -> Self {
        Kernel::new(Arc::new(kernel))
    }
}

/// GELU, tanh approximation.
#[derive(Debug, Clone, Copy)]
pub struct Gelu;

/// x [N].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeluShape {
    /// N: elements.
    pub n: usize,
}

/// x [N], drawn.
pub struct GeluInputs {
    x: AlignedVec,
}

impl Op for Gelu {
    const NAME: &'static str = "gelu";
    const FIELDS: &'static [&'static str] = &["n"];
    const RULE: Rule = Rule::PlainF32 { k: 4.0, ulps: 16.0 };
    const RATIONALE: &'static str =
        "elementwise, through exp instead of tanh in the SIMD form: 4x the plain f32 error, floor 16 ulps";
    const UNIT: Unit = Unit::Bytes;
    // A large offset or outlier channels only move gelu onto x or 0, which a copy of the input or
    // zeros would meet; the extreme profile alternates the two.
    const PROFILES: &'static [Profile] = &[Profile::Uniform, Profile::Extreme];
    const BLOCKS: bool = false;

    type Kernel = GeluKernel;
    type Shape = GeluShape;
    /// x [N].
    type Args<'a> = &'a [f32];
    type Inputs = GeluInputs;

    fn variants() -> Vec<Variant<GeluKernel>> {
        gelu::VARIANTS.iter().map(|v| v.map(|&f| GeluKernel::from(f))).collect()
    }

    fn fastest() -> &'static str {
        gelu::FASTEST
    }

    fn values(s: &GeluShape) -> Vec<usize> {
        vec![s.n]
    }

    fn shape(v: &[usize]) -> Result<GeluShape, String> {
        Ok(GeluShape { n: v[0] })
    }

    /// Elements are the rows: threads split x anywhere (every element is computed alike).
    fn output(s: &GeluShape) -> (usize, usize) {
        (s.n, 1)
    }

    fn draw(s: &GeluShape, draw: &Draw) -> GeluInputs {
        GeluInputs {
            x: draw.signal("x", s.n, 1).into(),
        }
    }

    fn args<'a>(_: &GeluShape, x: &'a GeluInputs) -> &'a [f32] {
        &x.x
    }

    fn buffers(x: &mut GeluInputs) -> Vec<(&'static str, Buffer<'_>)> {
        vec![("x", Buffer::F32(&mut x.x))]
    }

    fn call(f: &GeluKernel, isa: Isa, _: &GeluShape, x: &[f32], by: By, r: Range<usize>, out: &mut [f32]) {
        debug_assert_eq!(by, By::Rows);
        f(&x[r], out, isa)
    }

    fn reference(_: &GeluShape, x: &GeluInputs) -> Reference {
        Reference {
            f64: x.x.iter().map(|&v| ops::gelu_new(f64::from(v))).collect(),
            f32: x.x.iter().map(|&v| ops::gelu_new(v)).collect(),
            ..Reference::default()
        }
    }

    /// Per element: x², a multiply-add, two multiplies, exp, an add and a divide.
    fn work(s: &GeluShape) -> Work {
        Work {
            flops: 8.0 * s.n as f64,
            bytes: 2.0 * s.n as f64 * F32,
            written: s.n as f64 * F32,
        }
    }

    /// Every sweep width, empty, and a vocabulary-long run.
    fn sweep() -> Vec<GeluShape> {
        sweep_widths()
            .into_iter()
            .chain([0, 50257])
            .map(|n| GeluShape { n })
            .collect()
    }

    fn straddle(dim: &str, n: usize) -> Vec<GeluShape> {
        match dim {
            "n" => vec![GeluShape { n }],
            _ => Vec::new(),
        }
    }

    /// The special inputs in the vector body and again in the tail at every level (37 = 2 · 16 + 5).
    fn specials() -> Vec<Special<GeluShape>> {
        let values = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 100.0, -100.0, 0.0, 20.0, -20.0];
        let body = values.iter().enumerate().map(|(i, &v)| Plant::new("x", i, v));
        let tail = values[..5].iter().enumerate().map(|(i, &v)| Plant::new("x", 32 + i, v));
        vec![Special {
            name: "specials",
            about: "NaN → NaN, +inf → +inf, −inf → NaN (−inf · 0), large and zero inputs exact",
            shape: GeluShape { n: 37 },
            seed: 13,
            plants: body.chain(tail).collect(),
        }]
    }

    /// The MLP activations of each token count, [T, I].
    fn bench_shapes(quick: bool) -> Vec<GeluShape> {
        bench_token_counts(quick)
            .into_iter()
            .map(|t| GeluShape {
                n: t * GPT2_SMALL.n_inner,
            })
            .collect()
    }

    fn peer(s: &GeluShape) -> Result<PeerCode, String> {
        let n = s.n;
        Ok(PeerCode {
            setup: format!("x = rand({n}) * 4\nout = torch.empty({n})"),
            stmt: "torch.ops.aten.gelu.out(x, approximate='tanh', out=out)".into(),
        })
    }

    /// Small shapes around the vector widths and tiles.
    fn random_case(pick: &mut dyn FnMut(usize) -> usize) -> (GeluShape, f32) {
        (GeluShape { n: pick(300) }, [1.0, 8.0, 1e4][pick(3)])
    }
}
