//! The matmul op: `c = a · b (+ bias)`, GPT-2's linear layers and LM head (maths, contract and
//! variants in `tkbench_kernels::matmul`).

use std::ops::Range;
use std::sync::Arc;

use ndarray::{ArrayView1, ArrayView2};
use tkbench_kernels::matmul::{self, MatmulDims};
use tkbench_kernels::{Isa, Variant};
use tkbench_reference::ops;

use super::{Kernel, 
    Buffer, Draw, GPT2_SMALL, Op, PeerCode, Plant, Profile, Reference, Special, bench_token_counts, sweep_widths,
};
use crate::aligned::AlignedVec;
use crate::check::tolerance::Rule;
use crate::measure::work::{F32, Unit, Work};
use crate::model::threads::{By, Split, column_blocks, row_blocks};

/// A matmul entry point: one of `tkbench_kernels::matmul`'s functions, or any closure of its type (an
/// outside kernel, which may hold state such as weights packed once).
pub type MatmulKernel = Kernel<dyn Fn(&MatmulDims, &[f32], &[f32], Option<&[f32]>, &mut [f32], Isa) + Send + Sync>;

impl<G: Fn(&MatmulDims, &[f32], &[f32], Option<&[f32]>, &mut [f32], Isa) + Send + Sync + 'static> From<G> for MatmulKernel {
    fn from(kernel: G) -> Self {
        Kernel::new(Arc::new(kernel))
    }
}

/// Matrix multiply with bias.
#[derive(Debug, Clone, Copy)]
pub struct Matmul;

/// a [M, K] · b [K, N] (+ bias [N]), b's rows `dims.ldb` floats apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulShape {
    /// M, K, N and the distance between rows of b.
    pub dims: MatmulDims,
    /// Whether a bias is added.
    pub bias: bool,
}

impl MatmulShape {
    /// [M, K] · [K, N] with a whole b, with or without a bias.
    pub fn new(m: usize, k: usize, n: usize, bias: bool) -> Self {
        MatmulShape {
            dims: MatmulDims::new(m, k, n),
            bias,
        }
    }
}

/// The input slices of a matmul call.
#[derive(Debug, Clone, Copy)]
pub struct MatmulArgs<'a> {
    /// a [M, K].
    pub a: &'a [f32],
    /// b [K, N], rows ldb apart.
    pub b: &'a [f32],
    /// bias [N], when the shape has one.
    pub bias: Option<&'a [f32]>,
}

/// a, b and the bias (empty without one), drawn.
pub struct MatmulInputs {
    a: AlignedVec,
    b: AlignedVec,
    bias: AlignedVec,
}

impl Op for Matmul {
    const NAME: &'static str = "matmul";
    const FIELDS: &'static [&'static str] = &["m", "k", "n", "bias"];
    const RULE: Rule = Rule::DotProduct;
    const RATIONALE: &'static str =
        "a K-term dot product plus a bias, in any order: the classical worst-case bound γ(K+1)·|A||B|";
    const UNIT: Unit = Unit::Flops;
    const PROFILES: &'static [Profile] = &[Profile::Uniform, Profile::Offset, Profile::Outliers, Profile::Exact];

    type Kernel = MatmulKernel;
    type Shape = MatmulShape;
    type Args<'a> = MatmulArgs<'a>;
    type Inputs = MatmulInputs;

    fn variants() -> Vec<Variant<MatmulKernel>> {
        matmul::VARIANTS.iter().map(|v| v.map(|&f| MatmulKernel::from(f))).collect()
    }

    fn fastest() -> &'static str {
        matmul::FASTEST
    }

    fn values(s: &MatmulShape) -> Vec<usize> {
        vec![s.dims.m, s.dims.k, s.dims.n, usize::from(s.bias)]
    }

    fn shape(v: &[usize]) -> Result<MatmulShape, String> {
        if v[3] > 1 {
            return Err(format!("bias must be 0 or 1, not {}", v[3]));
        }
        Ok(MatmulShape::new(v[0], v[1], v[2], v[3] == 1))
    }

    fn output(s: &MatmulShape) -> (usize, usize) {
        (s.dims.m, s.dims.n)
    }

    fn draw(s: &MatmulShape, draw: &Draw) -> MatmulInputs {
        let MatmulDims { m, k, n, .. } = s.dims;
        MatmulInputs {
            a: draw.signal("a", m * k, k).into(),
            b: draw.signal("b", k * n, n).into(),
            bias: if s.bias {
                draw.signal("bias", n, n).into()
            } else {
                AlignedVec::default()
            },
        }
    }

    fn args<'a>(s: &MatmulShape, x: &'a MatmulInputs) -> MatmulArgs<'a> {
        MatmulArgs {
            a: &x.a,
            b: &x.b,
            bias: s.bias.then_some(&x.bias[..]),
        }
    }

    fn buffers(x: &mut MatmulInputs) -> Vec<(&'static str, Buffer<'_>)> {
        vec![("a", Buffer::F32(&mut x.a)), ("b", Buffer::F32(&mut x.b)), ("bias", Buffer::F32(&mut x.bias))]
    }

    /// Rows for several rows of a; for one row (a decode step) there are no rows to share, and the
    /// columns of b, which must be read once from memory, are the work ([`column_blocks`]).
    fn split(s: &MatmulShape, threads: usize) -> Split {
        if s.dims.m == 1 {
            Split {
                blocks: column_blocks(s.dims.n, threads),
                by: By::Columns,
                width: 1,
            }
        } else {
            Split {
                blocks: row_blocks(s.dims.m, threads),
                by: By::Rows,
                width: s.dims.n,
            }
        }
    }

    /// A block of rows is a matmul of those rows of a; a block of columns reads its columns of b
    /// (rows still ldb apart) and of the bias.
    fn call(f: &MatmulKernel, isa: Isa, s: &MatmulShape, x: MatmulArgs<'_>, by: By, r: Range<usize>, out: &mut [f32]) {
        let whole = s.dims;
        match by {
            By::Rows => {
                let k = whole.k;
                let dims = MatmulDims { m: r.len(), ..whole };
                f(&dims, &x.a[r.start * k..r.end * k], x.b, x.bias, out, isa)
            }
            By::Columns => {
                let (dims, b) = whole.columns(x.b, r.clone());
                f(&dims, x.a, b, x.bias.map(|bias| &bias[r]), out, isa)
            }
            By::Heads => unreachable!("a matmul is not split by heads"),
        }
    }

    fn reference(s: &MatmulShape, x: &MatmulInputs) -> Reference {
        let MatmulDims { m, k, n, .. } = s.dims;
        let a = ArrayView2::from_shape((m, k), &x.a[..]).expect("a is [M, K]");
        let b = ArrayView2::from_shape((k, n), &x.b[..]).expect("b is [K, N]");
        let (a64, b64) = (a.mapv(f64::from), b.mapv(f64::from));
        let bias32 = s.bias.then(|| ArrayView1::from(&x.bias[..]));
        let bias64 = bias32.map(|b| b.mapv(f64::from));
        let mut magnitudes = a64.mapv(f64::abs).dot(&b64.mapv(f64::abs));
        if let Some(bias) = &bias64 {
            magnitudes += &bias.mapv(f64::abs);
        }
        Reference {
            f64: ops::linear(&a64.view(), &b64.view(), bias64.as_ref().map(|b| b.view()).as_ref())
                .into_iter()
                .collect(),
            f32: ops::linear(&a, &b, bias32.as_ref()).into_iter().collect(),
            magnitudes: magnitudes.into_iter().collect(),
            terms: k + 1,
            ..Reference::default()
        }
    }

    /// A multiply-add per (i, p, j), plus the bias add; a, b and the bias read, c written.
    fn work(s: &MatmulShape) -> Work {
        let MatmulDims { m, k, n, .. } = s.dims;
        let (m, k, n) = (m as f64, k as f64, n as f64);
        let (bias_flops, bias_bytes) = if s.bias { (m * n, n * F32) } else { (0.0, 0.0) };
        Work {
            flops: 2.0 * m * k * n + bias_flops,
            bytes: (m * k + k * n + m * n) * F32 + bias_bytes,
            written: m * n * F32,
        }
    }

    /// Every sweep width of N, and shapes around the register tile and the cache blocks, with and
    /// without a bias, including one row of GPT-2 small's qkv projection.
    fn sweep() -> Vec<MatmulShape> {
        let mut shapes: Vec<MatmulShape> = sweep_widths()
            .into_iter()
            .map(|n| MatmulShape::new(3, 17, n, true))
            .collect();
        for (m, k, n) in [
            (0, 3, 4),
            (4, 0, 5),
            (1, 1, 1),
            (13, 31, 65),
            (17, 63, 129),
            (37, 257, 45),
            (130, 300, 70),
            (3, 20, 1100),
            (5, 20, 1100),
            (150, 40, 33),
            (1, 768, 2304),
        ] {
            shapes.push(MatmulShape::new(m, k, n, true));
            shapes.push(MatmulShape::new(m, k, n, false));
        }
        shapes
    }

    /// Both the packed path (five rows) and the streamed one (one row) for depths and widths.
    fn straddle(dim: &str, value: usize) -> Vec<MatmulShape> {
        match dim {
            "m" => vec![MatmulShape::new(value, 24, 40, true)],
            "k" => vec![MatmulShape::new(5, value, 33, true), MatmulShape::new(1, value, 33, false)],
            "n" => vec![MatmulShape::new(5, 20, value, true), MatmulShape::new(1, 20, value, false)],
            _ => Vec::new(),
        }
    }

    /// Depths across the streamed path's groups of rows of b and its KC slices, widths with vector
    /// tails.
    fn split_shapes() -> Vec<MatmulShape> {
        let mut shapes = Vec::new();
        for k in [1, 7, 8, 9, 191, 192, 200, 400] {
            for n in [1, 17, 40] {
                shapes.push(MatmulShape::new(9, k, n, n != 17));
            }
        }
        shapes
    }

    /// A small call (widths with a vector tail at every level) and one deep enough for several
    /// cache blocks of depth.
    fn specials() -> Vec<Special<MatmulShape>> {
        let (m, k, n) = (5, 33, 40);
        let small = MatmulShape::new(m, k, n, true);
        let case = |name, about, shape, plants| Special {
            name,
            about,
            shape,
            seed: 15,
            plants,
        };
        let (dm, dk, dn) = (20, 700, 70);
        vec![
            case("nan-in-a", "NaN in row 3 of a makes row 3 NaN", small, vec![Plant::new("a", 3 * k + 31, f32::NAN)]),
            case("inf-in-a", "+inf in row 3 of a makes row 3 infinite (signed by b)", small, vec![Plant::new("a", 3 * k + 2, f32::INFINITY)]),
            case("nan-in-b", "NaN in column 39 of b makes column 39 NaN", small, vec![Plant::new("b", 20 * n + 39, f32::NAN)]),
            case("inf-in-bias", "+inf in the bias makes its column +inf", small, vec![Plant::new("bias", 37, f32::INFINITY)]),
            case(
                "deep",
                "NaN deep in a row of a and in the last column of b, past the first depth block",
                MatmulShape::new(dm, dk, dn, false),
                vec![Plant::new("a", 7 * dk + 690, f32::NAN), Plant::new("b", 600 * dn + dn - 1, f32::NAN)],
            ),
        ]
    }

    /// The qkv projection at each token count, 768³, one row of the LM head, and the MLP's first
    /// layer over 1024 tokens.
    fn bench_shapes(quick: bool) -> Vec<MatmulShape> {
        let (c, i, v) = (GPT2_SMALL.n_embd, GPT2_SMALL.n_inner, GPT2_SMALL.vocab_size);
        let mut shapes: Vec<MatmulShape> = bench_token_counts(quick)
            .into_iter()
            .map(|t| MatmulShape::new(t, c, 3 * c, true))
            .collect();
        shapes.push(MatmulShape::new(768, 768, 768, false));
        shapes.push(MatmulShape::new(1, c, v, false));
        if !quick {
            shapes.push(MatmulShape::new(1024, c, i, true));
        }
        shapes
    }

    fn peer(s: &MatmulShape) -> Result<PeerCode, String> {
        let MatmulDims { m, k, n, .. } = s.dims;
        let setup = format!("a = rand({m}, {k})\nb = rand({k}, {n})\nout = torch.empty({m}, {n})");
        Ok(if s.bias {
            PeerCode {
                setup: format!("{setup}\nbias = rand({n})"),
                stmt: "torch.addmm(bias, a, b, out=out)".into(),
            }
        } else {
            PeerCode {
                setup,
                stmt: "torch.mm(a, b, out=out)".into(),
            }
        })
    }

    /// Small shapes around the vector widths and tiles.
    fn random_case(pick: &mut dyn FnMut(usize) -> usize) -> (MatmulShape, f32) {
        let shape = MatmulShape::new(1 + pick(39), 1 + pick(299), 1 + pick(79), pick(2) == 1);
        (shape, super::random_magnitude(pick, &[1.0, 30.0, 1e4]))
    }
}
