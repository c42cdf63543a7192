//! The rope op: Llama's rotary position embedding of the heads of rows x [T, NH · HS] at positions
//! pos0 .. pos0 + T, from tables of cosines and sines (maths, contract and variants in
//! `tkbench_kernels::rope`).

use std::ops::Range;
use std::sync::Arc;

use ndarray::ArrayView2;
use tkbench_kernels::rope::{self, RopeDims};
use tkbench_kernels::{Isa, Variant};
use tkbench_reference::ops;

use super::{Kernel, Buffer, Draw, Op, PeerCode, Plant, Profile, Reference, SMOLLM2, Special, bench_token_counts};
use crate::aligned::AlignedVec;
use crate::check::tolerance::Rule;
use crate::measure::work::{F32, Unit, Work};
use crate::model::threads::By;

/// A rope entry point: one of `tkbench_kernels::rope`'s functions, or any closure of its type (an
/// outside kernel, which may hold state such as weights packed once).
pub type RopeKernel = Kernel<dyn Fn(&RopeDims, &[f32], &[f32], &[f32], &mut [f32], Isa) + Send + Sync>;

impl<G: Fn(&RopeDims, &[f32], &[f32], &[f32], &mut [f32], Isa) + Send + Sync + 'static> From<G> for RopeKernel {
    fn from(kernel: G) -> Self {
        Kernel::new(Arc::new(kernel))
    }
}

/// The rotary embedding.
#[derive(Debug, Clone, Copy)]
pub struct Rope;

/// The input slices of a rope call.
#[derive(Debug, Clone, Copy)]
pub struct RopeArgs<'a> {
    /// x [T, NH · HS].
    pub x: &'a [f32],
    /// cos [P, HS / 2], P ≥ pos0 + T.
    pub cos: &'a [f32],
    /// sin [P, HS / 2].
    pub sin: &'a [f32],
}

/// x and the tables, drawn.
pub struct RopeInputs {
    x: AlignedVec,
    cos: AlignedVec,
    sin: AlignedVec,
}

/// The head sizes of the sweep: even, and around every multiple of two vectors (a head's half is one
/// or more vectors plus a tail) at 4, 8 and 16 lanes.
const SWEEP_HEAD_SIZES: [usize; 14] = [2, 4, 6, 8, 10, 14, 16, 18, 30, 32, 34, 62, 64, 66];

impl Op for Rope {
    const NAME: &'static str = "rope";
    const FIELDS: &'static [&'static str] = &["rows", "pos0", "heads", "head_size"];
    const DEFAULTS: &'static [(&'static str, usize)] = &[("pos0", 0)];
    const RULE: Rule = Rule::PlainF32 { k: 4.0, ulps: 16.0 };
    const RATIONALE: &'static str =
        "two products and a sum per output: 4x the plain f32 error, floor 16 ulps of the output scale";
    const UNIT: Unit = Unit::Bytes;
    const PROFILES: &'static [Profile] = &[Profile::Uniform, Profile::Outliers, Profile::Extreme];
    const BLOCKS: bool = false;

    type Kernel = RopeKernel;
    type Shape = RopeDims;
    type Args<'a> = RopeArgs<'a>;
    type Inputs = RopeInputs;

    fn variants() -> Vec<Variant<RopeKernel>> {
        rope::VARIANTS.iter().map(|v| v.map(|&f| RopeKernel::from(f))).collect()
    }

    fn fastest() -> &'static str {
        rope::FASTEST
    }

    fn values(s: &RopeDims) -> Vec<usize> {
        vec![s.rows, s.pos0, s.heads, s.head_size]
    }

    fn shape(v: &[usize]) -> Result<RopeDims, String> {
        if !v[3].is_multiple_of(2) {
            return Err(format!("head_size = {} is odd: the rotary embedding pairs the halves of a head", v[3]));
        }
        Ok(RopeDims {
            rows: v[0],
            pos0: v[1],
            heads: v[2],
            head_size: v[3],
        })
    }

    fn output(s: &RopeDims) -> (usize, usize) {
        (s.rows, s.width())
    }

    /// x as the profile says, and the tables of random angles of every position up to the last row:
    /// a variant that computes its own angles, or reads another position's, shows.
    fn draw(s: &RopeDims, draw: &Draw) -> RopeInputs {
        let table = (s.pos0 + s.rows) * (s.head_size / 2);
        let angles = draw.values("angle", table, 0.0, std::f32::consts::PI);
        RopeInputs {
            x: draw.signal("x", s.rows * s.width(), s.width()).into(),
            cos: angles.iter().map(|&a| f64::from(a).cos() as f32).collect::<Vec<_>>().into(),
            sin: angles.iter().map(|&a| f64::from(a).sin() as f32).collect::<Vec<_>>().into(),
        }
    }

    fn args<'a>(_: &RopeDims, x: &'a RopeInputs) -> RopeArgs<'a> {
        RopeArgs {
            x: &x.x,
            cos: &x.cos,
            sin: &x.sin,
        }
    }

    fn buffers(x: &mut RopeInputs) -> Vec<(&'static str, Buffer<'_>)> {
        vec![("x", Buffer::F32(&mut x.x)), ("cos", Buffer::F32(&mut x.cos)), ("sin", Buffer::F32(&mut x.sin))]
    }

    fn call(f: &RopeKernel, isa: Isa, s: &RopeDims, a: RopeArgs<'_>, by: By, r: Range<usize>, out: &mut [f32]) {
        debug_assert_eq!(by, By::Rows);
        let w = s.width();
        f(&s.rows(r.clone()), &a.x[r.start * w..r.end * w], a.cos, a.sin, out, isa)
    }

    fn reference(s: &RopeDims, x: &RopeInputs) -> Reference {
        let half = s.head_size / 2;
        let positions = s.pos0 + s.rows;
        let xv = ArrayView2::from_shape((s.rows, s.width()), &x.x[..]).expect("x is [T, NH · HS]");
        let cos = ArrayView2::from_shape((positions, half), &x.cos[..]).expect("cos is [P, HS / 2]");
        let sin = ArrayView2::from_shape((positions, half), &x.sin[..]).expect("sin is [P, HS / 2]");
        let f64_of = |a: &ArrayView2<f32>| a.mapv(f64::from);
        Reference {
            f64: ops::rope(&f64_of(&xv).view(), s.heads, &f64_of(&cos).view(), &f64_of(&sin).view(), s.pos0)
                .into_iter()
                .collect(),
            f32: ops::rope(&xv, s.heads, &cos, &sin, s.pos0).into_iter().collect(),
            terms: 2,
            ..Reference::default()
        }
    }

    /// Per output: two products and a sum; x read and out written, a row of both tables read per
    /// row of x.
    fn work(s: &RopeDims) -> Work {
        let n = (s.rows * s.width()) as f64;
        let tables = (s.rows * s.head_size) as f64;
        Work {
            flops: 3.0 * n,
            bytes: 2.0 * n * F32 + tables * F32,
            written: n * F32,
        }
    }

    /// Three rows of two heads at every sweep head size, from position 0 and from position 5; no
    /// rows; one head of 2; and SmolLM2's queries and keys.
    fn sweep() -> Vec<RopeDims> {
        let dims = |rows, pos0, heads, head_size| RopeDims {
            rows,
            pos0,
            heads,
            head_size,
        };
        let mut shapes: Vec<RopeDims> = SWEEP_HEAD_SIZES
            .iter()
            .flat_map(|&hs| [dims(3, 0, 2, hs), dims(3, 5, 2, hs)])
            .collect();
        shapes.extend([dims(0, 4, 2, 8), dims(1, 0, 1, 2)]);
        shapes.extend([
            dims(4, 9, SMOLLM2.num_attention_heads, SMOLLM2.head_dim),
            dims(4, 9, SMOLLM2.num_key_value_heads, SMOLLM2.head_dim),
        ]);
        shapes
    }

    fn straddle(dim: &str, value: usize) -> Vec<RopeDims> {
        match dim {
            "rows" => vec![RopeDims {
                rows: value,
                pos0: 3,
                heads: 2,
                head_size: 16,
            }],
            _ => Vec::new(),
        }
    }

    /// Special values in a row's first head, in its halves' vector body and tail at every level (HS
    /// = 74: halves of 37 = 2 · 16 + 5), and an infinity against a sine of 0.
    fn specials() -> Vec<Special<RopeDims>> {
        let shape = RopeDims {
            rows: 2,
            pos0: 1,
            heads: 2,
            head_size: 74,
        };
        let (w, half) = (shape.width(), shape.head_size / 2);
        let row = w; // row 1, at position 2
        let case = |name, about, plants| Special {
            name,
            about,
            shape,
            seed: 19,
            plants,
        };
        vec![
            case(
                "nan",
                "NaN in a (body) and in b (tail) makes both outputs of those pairs NaN",
                vec![Plant::new("x", row + 3, f32::NAN), Plant::new("x", row + half + 34, f32::NAN)],
            ),
            case(
                "inf",
                "±inf in a and in b give infinities, or NaN where they meet each other",
                vec![
                    Plant::new("x", row + 5, f32::INFINITY),
                    Plant::new("x", row + half + 5, f32::NEG_INFINITY),
                    Plant::new("x", row + half + 36, f32::INFINITY),
                ],
            ),
            case(
                "inf-against-zero-sine",
                "+inf in a where the sine is 0: its partner b's output is inf · 0 = NaN",
                vec![Plant::new("x", row + 7, f32::INFINITY), Plant::new("sin", 2 * half + 7, 0.0)],
            ),
        ]
    }

    /// SmolLM2's queries (9 heads of 64) at each token count: prefills from position 0, the decode
    /// step at position 512.
    fn bench_shapes(quick: bool) -> Vec<RopeDims> {
        bench_token_counts(quick)
            .into_iter()
            .map(|rows| RopeDims {
                rows,
                pos0: if rows == 1 { 512 } else { 0 },
                heads: SMOLLM2.num_attention_heads,
                head_size: SMOLLM2.head_dim,
            })
            .collect()
    }

    /// Hugging Face's `apply_rotary_pos_emb` on one tensor: x · cos + rotate_half(x) · sin, with the
    /// tables already gathered for the rows' positions and repeated over both halves.
    fn peer(s: &RopeDims) -> Result<PeerCode, String> {
        let (t, h, hs) = (s.rows, s.heads, s.head_size);
        let half = hs / 2;
        Ok(PeerCode {
            setup: format!(
                "x = rand(1, {h}, {t}, {hs})\nangle = rand(1, 1, {t}, {half}) * 3\n\
                 cos = torch.cat((angle.cos(), angle.cos()), -1)\nsin = torch.cat((angle.sin(), angle.sin()), -1)"
            ),
            stmt: format!("x * cos + torch.cat((-x[..., {half}:], x[..., :{half}]), -1) * sin"),
        })
    }

    /// Small shapes around the vector widths.
    fn random_case(pick: &mut dyn FnMut(usize) -> usize) -> (RopeDims, f32) {
        let shape = RopeDims {
            rows: 1 + pick(4),
            pos0: pick(20),
            heads: 1 + pick(3),
            head_size: 2 * (1 + pick(40)),
        };
        (shape, [1.0, 8.0, 1e4][pick(3)])
    }
}
