//! The op checker: runs any variant, at any ISA level, on seeded random inputs (never zeros) with its
//! output poisoned with NaN, and compares every element with the float64 reference op under the op's
//! [`tolerance::rule`](crate::tolerance::rule). A failure names op, variant, ISA, shape, seed, the
//! worst element and a command that replays exactly that case.

use std::fmt;
use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use tkbench_kernels::attention::AttentionDims;
use tkbench_kernels::embedding::EmbeddingDims;
use tkbench_kernels::layernorm::LayerNormDims;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Isa, Kernel, Op, Variant};
use tkbench_reference::{ops, synthetic};

use crate::aligned::AlignedVec;
use crate::metrics::sticky_max;

use crate::tolerance::{F32_UNIT_ROUNDOFF, Rule, rule};

/// The shape of one op check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// ids [T], wte [V, C], wpe [P, C]; tokens at positions pos0 ..
    Embedding {
        /// T.
        tokens: usize,
        /// C.
        channels: usize,
        /// V.
        vocab: usize,
        /// P.
        positions: usize,
        /// The first position.
        pos0: usize,
    },
    /// x [R, C].
    LayerNorm {
        /// R.
        rows: usize,
        /// C.
        channels: usize,
    },
    /// x [R, N].
    Softmax {
        /// R.
        rows: usize,
        /// N.
        cols: usize,
    },
    /// q [Tq, C], k and v [pos0 + Tq, C], C = heads · head_size.
    Attention {
        /// Tq.
        queries: usize,
        /// The position of the first query.
        pos0: usize,
        /// NH.
        heads: usize,
        /// HS.
        head_size: usize,
    },
    /// a [M, K] · b [K, N] (+ bias [N]).
    Matmul {
        /// M.
        m: usize,
        /// K.
        k: usize,
        /// N.
        n: usize,
        /// Whether a bias is added.
        bias: bool,
    },
    /// x [N].
    Gelu {
        /// N.
        n: usize,
    },
}

impl Shape {
    /// The op this shape is for.
    pub fn op(&self) -> Op {
        match self {
            Shape::Embedding { .. } => Op::Embedding,
            Shape::LayerNorm { .. } => Op::LayerNorm,
            Shape::Softmax { .. } => Op::Softmax,
            Shape::Attention { .. } => Op::Attention,
            Shape::Matmul { .. } => Op::Matmul,
            Shape::Gelu { .. } => Op::Gelu,
        }
    }

    /// The dims of a whole call on an attention shape (GPT-2's scale, rows C apart); None for
    /// other ops.
    pub fn attention_dims(&self) -> Option<AttentionDims> {
        match *self {
            Shape::Attention {
                queries,
                pos0,
                heads,
                head_size,
            } => Some(AttentionDims::new(
                queries,
                pos0,
                heads,
                head_size,
                attention_scale(head_size),
            )),
            _ => None,
        }
    }

    /// The field names of `op`'s shapes, in order.
    pub fn fields(op: Op) -> &'static [&'static str] {
        match op {
            Op::Embedding => &["tokens", "channels", "vocab", "positions", "pos0"],
            Op::LayerNorm => &["rows", "channels"],
            Op::Softmax => &["rows", "cols"],
            Op::Attention => &["queries", "pos0", "heads", "head_size"],
            Op::Matmul => &["m", "k", "n", "bias"],
            Op::Gelu => &["n"],
        }
    }

    fn values(&self) -> Vec<usize> {
        match *self {
            Shape::Embedding {
                tokens,
                channels,
                vocab,
                positions,
                pos0,
            } => vec![tokens, channels, vocab, positions, pos0],
            Shape::LayerNorm { rows, channels } => vec![rows, channels],
            Shape::Softmax { rows, cols } => vec![rows, cols],
            Shape::Attention {
                queries,
                pos0,
                heads,
                head_size,
            } => vec![queries, pos0, heads, head_size],
            Shape::Matmul { m, k, n, bias } => vec![m, k, n, usize::from(bias)],
            Shape::Gelu { n } => vec![n],
        }
    }

    /// Parses `name=value,...` (every field of `op`, in any order; `bias` is 0 or 1).
    pub fn parse(op: Op, text: &str) -> Result<Shape, String> {
        let fields = Shape::fields(op);
        let mut values = vec![None; fields.len()];
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}` is not name=value"))?;
            let slot = fields.iter().position(|f| *f == name.trim()).ok_or_else(|| {
                format!(
                    "`{name}` is not a field of {} (fields: {})",
                    op.name(),
                    fields.join(", ")
                )
            })?;
            let value: usize = value
                .trim()
                .parse()
                .map_err(|_| format!("{name}: `{value}` is not a size"))?;
            values[slot] = Some(value);
        }
        let v: Vec<usize> = fields
            .iter()
            .zip(&values)
            .map(|(f, v)| v.ok_or_else(|| format!("field `{f}` is missing (fields: {})", fields.join(", "))))
            .collect::<Result<_, _>>()?;
        let shape = match op {
            Op::Embedding => Shape::Embedding {
                tokens: v[0],
                channels: v[1],
                vocab: v[2],
                positions: v[3],
                pos0: v[4],
            },
            Op::LayerNorm => Shape::LayerNorm {
                rows: v[0],
                channels: v[1],
            },
            Op::Softmax => Shape::Softmax { rows: v[0], cols: v[1] },
            Op::Attention => Shape::Attention {
                queries: v[0],
                pos0: v[1],
                heads: v[2],
                head_size: v[3],
            },
            Op::Matmul => Shape::Matmul {
                m: v[0],
                k: v[1],
                n: v[2],
                bias: v[3] != 0,
            },
            Op::Gelu => Shape::Gelu { n: v[0] },
        };
        shape.validate()?;
        Ok(shape)
    }

    /// Checks that the shape is a valid call of its op.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Shape::Embedding {
                tokens,
                vocab,
                positions,
                pos0,
                ..
            } => {
                if vocab == 0 {
                    return Err("vocab must be positive".into());
                }
                if pos0 + tokens > positions {
                    return Err(format!(
                        "pos0 + tokens = {} exceeds positions = {positions}",
                        pos0 + tokens
                    ));
                }
            }
            Shape::Attention { heads, head_size, .. } if heads == 0 || head_size == 0 => {
                return Err("heads and head_size must be positive".into());
            }
            _ => {}
        }
        Ok(())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Shape::fields(self.op())
            .iter()
            .zip(self.values())
            .map(|(name, v)| format!("{name}={v}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// The result of checking one variant at one level on one shape and seed.
#[derive(Debug, Clone)]
pub struct Check {
    /// The op.
    pub op: Op,
    /// The variant's name.
    pub variant: String,
    /// The level requested.
    pub isa: Isa,
    /// What actually ran.
    pub ran_at: String,
    /// The shape.
    pub shape: Shape,
    /// The input seed.
    pub seed: u64,
    /// The input magnitude: values are uniform in (−magnitude, magnitude).
    pub magnitude: f32,
    /// max |out − ref| over the elements.
    pub max_abs_err: f64,
    /// The element with the largest error relative to its bound, its error, its bound, and the
    /// variant's and the reference's values there.
    pub worst: Option<Worst>,
    /// The plain float32 implementation's largest error on the same input.
    pub plain_f32_err: f64,
    /// Whether every element is within its bound.
    pub pass: bool,
}

/// The worst element of a check.
#[derive(Debug, Clone, Copy)]
pub struct Worst {
    /// Flat index into the output.
    pub index: usize,
    /// |out − ref| there (NaN if out is NaN).
    pub err: f64,
    /// The bound there.
    pub bound: f64,
    /// The variant's output there.
    pub out: f32,
    /// The float64 reference there.
    pub reference: f64,
}

impl Worst {
    /// err / bound: 0 for an exact zero bound met exactly, infinity for one missed, NaN for NaN.
    pub fn ratio(&self) -> f64 {
        if self.bound > 0.0 || self.err.is_nan() {
            self.err / self.bound
        } else if self.err == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    }
}

impl Check {
    /// The worst element's err / bound ([`Worst::ratio`]); 0 for an empty output.
    pub fn error_ratio(&self) -> f64 {
        self.worst.map_or(0.0, |w| w.ratio())
    }

    /// The command that replays exactly this check.
    pub fn replay(&self) -> String {
        format!(
            "cargo xtask opcheck --op {} --variant {} --isa {} --shape {} --seed {} --magnitude {}",
            self.op.name(),
            self.variant,
            self.isa,
            self.shape,
            self.seed,
            self.magnitude
        )
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.pass { "pass" } else { "FAIL" };
        write!(
            f,
            "{verdict}: {} {} at {} ({}), shape {}, seed {}, magnitude {}: max |err| {:.3e}, plain f32 {:.3e}",
            self.op.name(),
            self.variant,
            self.isa,
            self.ran_at,
            self.shape,
            self.seed,
            self.magnitude,
            self.max_abs_err,
            self.plain_f32_err
        )?;
        if let Some(w) = self.worst {
            write!(
                f,
                "; worst at flat index {}: out {} vs f64 {} (err {:.3e}, bound {:.3e})",
                w.index, w.out, w.reference, w.err, w.bound
            )?;
        }
        if !self.pass {
            write!(f, "\n  replay: {}", self.replay())?;
        }
        Ok(())
    }
}

/// Seeded inputs: uniform in (−magnitude, magnitude), never all zeros.
pub struct Draw {
    seed: u64,
    magnitude: f32,
}

impl Draw {
    /// Inputs for `seed` with values in (−magnitude, magnitude).
    pub fn new(seed: u64, magnitude: f32) -> Self {
        Self { seed, magnitude }
    }

    /// `n` values of the stream `name`, uniform in (offset − width, offset + width).
    pub fn values(&self, name: &str, n: usize, offset: f32, width: f32) -> Vec<f32> {
        let key = self.seed ^ synthetic::fnv1a64(name.as_bytes());
        (0..n as u64)
            .map(|i| offset + width * synthetic::symmetric_uniform(key, i) as f32)
            .collect()
    }

    /// `n` values of the stream `name`, uniform in (−magnitude, magnitude).
    pub fn uniform(&self, name: &str, n: usize) -> Vec<f32> {
        self.values(name, n, 0.0, self.magnitude)
    }

    /// `n` ids below `bound`.
    pub fn ids(&self, name: &str, n: usize, bound: usize) -> Vec<u32> {
        let key = self.seed ^ synthetic::fnv1a64(name.as_bytes());
        (0..n as u64)
            .map(|i| (synthetic::draw(key, i) % bound as u64) as u32)
            .collect()
    }
}

/// The inputs of one check, the variant's output, and the references.
pub struct Run {
    /// The variant's output, flat.
    pub out: Vec<f32>,
    /// The float64 reference, flat.
    pub reference: Vec<f64>,
    /// The plain float32 reference, flat.
    pub plain: Vec<f32>,
    /// Per-element bound factors for [`Rule::DotProduct`] (Σ|a||b| + |bias|), else empty.
    pub magnitudes: Vec<f64>,
}

fn m2(data: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, cols), data).expect("length matches shape")
}

fn flat64(a: Array2<f64>) -> Vec<f64> {
    a.into_iter().collect()
}

fn flat32(a: Array2<f32>) -> Vec<f32> {
    a.into_iter().collect()
}

fn up(a: ArrayView2<f32>) -> Array2<f64> {
    a.mapv(f64::from)
}

fn up1(a: &[f32]) -> Array1<f64> {
    a.iter().map(|&x| f64::from(x)).collect()
}

/// The inputs of one op call, drawn once. What a, b and c hold depends on the op: embedding wte,
/// wpe (and `ids`); layernorm x, gamma, beta; softmax and gelu x; attention q, k, v; matmul a, b and
/// the bias (empty without one).
pub struct Inputs {
    /// Token ids (embedding only).
    pub ids: Vec<u32>,
    /// The first tensor.
    pub a: AlignedVec,
    /// The second tensor.
    pub b: AlignedVec,
    /// The third tensor.
    pub c: AlignedVec,
}

/// The inputs of `shape` drawn by `draw`: uniform in (−magnitude, magnitude), LayerNorm gains around 1.
pub fn inputs(shape: &Shape, draw: &Draw) -> Inputs {
    let none = AlignedVec::default;
    match *shape {
        Shape::Embedding {
            tokens,
            channels,
            vocab,
            positions,
            ..
        } => Inputs {
            ids: draw.ids("ids", tokens, vocab),
            a: draw.uniform("wte", vocab * channels).into(),
            b: draw.uniform("wpe", positions * channels).into(),
            c: none(),
        },
        Shape::LayerNorm { rows, channels } => Inputs {
            ids: vec![],
            a: draw.uniform("x", rows * channels).into(),
            b: draw.values("gamma", channels, 1.0, 0.5).into(),
            c: draw.values("beta", channels, 0.0, 0.5).into(),
        },
        Shape::Softmax { rows, cols } => Inputs {
            ids: vec![],
            a: draw.uniform("x", rows * cols).into(),
            b: none(),
            c: none(),
        },
        Shape::Attention { queries, .. } => {
            let d = shape.attention_dims().expect("an attention shape");
            let (c, s) = (d.channels(), d.keys());
            Inputs {
                ids: vec![],
                a: draw.uniform("q", queries * c).into(),
                b: draw.uniform("k", s * c).into(),
                c: draw.uniform("v", s * c).into(),
            }
        }
        Shape::Matmul { m, k, n, bias } => Inputs {
            ids: vec![],
            a: draw.uniform("a", m * k).into(),
            b: draw.uniform("b", k * n).into(),
            c: if bias { draw.uniform("bias", n).into() } else { none() },
        },
        Shape::Gelu { n } => Inputs {
            ids: vec![],
            a: draw.uniform("x", n).into(),
            b: none(),
            c: none(),
        },
    }
}

/// The (rows, row width) of the output of `shape`: tokens, rows or queries of the op, or elements
/// for gelu. Rows are what threads split.
pub fn output_rows(shape: &Shape) -> (usize, usize) {
    match *shape {
        Shape::Embedding { tokens, channels, .. } => (tokens, channels),
        Shape::LayerNorm { rows, channels } => (rows, channels),
        Shape::Softmax { rows, cols } => (rows, cols),
        Shape::Attention {
            queries,
            heads,
            head_size,
            ..
        } => (queries, heads * head_size),
        Shape::Matmul { m, n, .. } => (m, n),
        Shape::Gelu { n } => (n, 1),
    }
}

/// Calls `kernel` at `isa` for the output rows `rows` of `shape` (all of them, or one thread's
/// block), writing `out` ([rows.len(), width]). A block of rows is a smaller call of the same op:
/// tokens and queries keep their positions, attention keeps the keys its queries see.
pub fn call_rows(kernel: Kernel, isa: Isa, shape: &Shape, x: &Inputs, rows: Range<usize>, out: &mut [f32]) {
    let r = rows;
    match (*shape, kernel) {
        (
            Shape::Embedding {
                tokens,
                channels,
                vocab,
                positions,
                pos0,
            },
            Kernel::Embedding(f),
        ) => {
            let whole = EmbeddingDims {
                tokens,
                channels,
                vocab,
                positions,
                pos0,
            };
            f(&whole.rows(r.clone()), &x.ids[r], &x.a, &x.b, out, isa)
        }
        (Shape::LayerNorm { channels, .. }, Kernel::LayerNorm(f)) => {
            let dims = LayerNormDims {
                rows: r.len(),
                channels,
                eps: LAYERNORM_EPS,
            };
            f(&dims, &x.a[r.start * channels..r.end * channels], &x.b, &x.c, out, isa)
        }
        (Shape::Softmax { cols, .. }, Kernel::Softmax(f)) => f(
            &SoftmaxDims { rows: r.len(), cols },
            &x.a[r.start * cols..r.end * cols],
            out,
            isa,
        ),
        (Shape::Attention { .. }, Kernel::Attention(f)) => {
            let whole = shape.attention_dims().expect("an attention shape");
            let c = whole.channels();
            let dims = whole.rows(r.clone());
            f(
                &dims,
                &x.a[r.start * c..r.end * c],
                &x.b[..dims.key_floats()],
                &x.c[..dims.keys() * c],
                out,
                isa,
            )
        }
        (Shape::Matmul { k, n, bias, .. }, Kernel::Matmul(f)) => {
            let bias = bias.then_some(&x.c[..]);
            f(
                &MatmulDims::new(r.len(), k, n),
                &x.a[r.start * k..r.end * k],
                &x.b,
                bias,
                out,
                isa,
            )
        }
        (Shape::Gelu { .. }, Kernel::Gelu(f)) => f(&x.a[r], out, isa),
        _ => panic!(
            "a {} kernel cannot run a {} shape",
            kernel.op().name(),
            shape.op().name()
        ),
    }
}

/// Calls a matmul `kernel` at `isa` for the columns `cols` of a one-row matmul `shape`, writing `out`
/// ([cols.len()]): b is the block of columns (rows N apart), as threads split a decode step.
pub fn call_columns(kernel: Kernel, isa: Isa, shape: &Shape, x: &Inputs, cols: Range<usize>, out: &mut [f32]) {
    match (*shape, kernel) {
        (Shape::Matmul { m: 1, k, n, bias }, Kernel::Matmul(f)) => {
            let (dims, b) = MatmulDims::new(1, k, n).columns(&x.b, cols.clone());
            f(&dims, &x.a, b, bias.then(|| &x.c[cols]), out, isa)
        }
        _ => panic!("columns are split for one-row matmuls only, not {shape}"),
    }
}

/// Calls an attention `kernel` at `isa` for the heads `heads` of a one-query attention `shape`,
/// writing `out` ([heads.len() · HS]): q, k, v from the heads' first column, rows C apart, as threads
/// split a decode step.
pub fn call_heads(kernel: Kernel, isa: Isa, shape: &Shape, x: &Inputs, heads: Range<usize>, out: &mut [f32]) {
    match (*shape, kernel) {
        (Shape::Attention { queries: 1, .. }, Kernel::Attention(f)) => {
            let (dims, col) = shape.attention_dims().expect("an attention shape").heads(heads);
            f(
                &dims,
                &x.a[col..],
                &x.b[dims.key_index(0, col)..],
                &x.c[col..],
                out,
                isa,
            )
        }
        _ => panic!("heads are split for one-query attention only, not {shape}"),
    }
}

/// The keys `rows` ([S, C], rows C apart) laid out as the attention call `dims` takes them
/// (`dims.key_layout`, S = `dims.keys()`), every float of the result that holds no key NaN.
pub fn keys_as(dims: &AttentionDims, rows: &[f32]) -> Vec<f32> {
    let mut k = vec![f32::NAN; dims.key_floats()];
    for (j, key) in rows.chunks_exact(dims.channels()).enumerate() {
        dims.store_key(&mut k, j, key);
    }
    k
}

/// The attention scale of every check and bench: GPT-2's 1/√HS.
fn attention_scale(head_size: usize) -> f32 {
    1.0 / (head_size as f32).sqrt()
}

/// The epsilon of every LayerNorm check and bench.
const LAYERNORM_EPS: f32 = 1e-5;

/// Runs `kernel` at `isa` on the inputs of `shape` drawn by `draw`, with the output poisoned, and the
/// reference ops in f64 and f32 on the same inputs.
pub fn run(kernel: Kernel, isa: Isa, shape: &Shape, draw: &Draw) -> Run {
    let x = inputs(shape, draw);
    let (rows, width) = output_rows(shape);
    let mut out = vec![f32::NAN; rows * width];
    call_rows(kernel, isa, shape, &x, 0..rows, &mut out);
    let (reference, plain, magnitudes) = match *shape {
        Shape::Embedding {
            channels: c,
            vocab,
            positions,
            pos0,
            ..
        } => (
            flat64(ops::embedding(
                &up(m2(&x.a, vocab, c)).view(),
                &up(m2(&x.b, positions, c)).view(),
                &x.ids,
                pos0,
            )),
            flat32(ops::embedding(
                &m2(&x.a, vocab, c),
                &m2(&x.b, positions, c),
                &x.ids,
                pos0,
            )),
            vec![],
        ),
        Shape::LayerNorm { rows, channels } => {
            let xv = m2(&x.a, rows, channels);
            let eps = LAYERNORM_EPS;
            (
                flat64(ops::layernorm(
                    &up(xv).view(),
                    &up1(&x.b).view(),
                    &up1(&x.c).view(),
                    f64::from(eps),
                )),
                flat32(ops::layernorm(
                    &xv,
                    &ArrayView1::from(&x.b),
                    &ArrayView1::from(&x.c),
                    eps,
                )),
                vec![],
            )
        }
        Shape::Softmax { rows, cols } => {
            let xv = m2(&x.a, rows, cols);
            (
                flat64(ops::softmax_rows(&up(xv).view())),
                flat32(ops::softmax_rows(&xv)),
                vec![],
            )
        }
        Shape::Attention { queries, heads, .. } => {
            let d = shape.attention_dims().expect("an attention shape");
            let (c, s, scale) = (d.channels(), d.keys(), d.scale);
            let (qv, kv, vv) = (m2(&x.a, queries, c), m2(&x.b, s, c), m2(&x.c, s, c));
            (
                flat64(ops::causal_attention(
                    &up(qv).view(),
                    &up(kv).view(),
                    &up(vv).view(),
                    heads,
                    f64::from(scale),
                )),
                flat32(ops::causal_attention(&qv, &kv, &vv, heads, scale)),
                vec![],
            )
        }
        Shape::Matmul { m, k, n, bias } => {
            let (av, bv) = (m2(&x.a, m, k), m2(&x.b, k, n));
            let bias64 = bias.then(|| up1(&x.c));
            let bias32 = bias.then(|| ArrayView1::from(&x.c));
            let mut magnitudes = up(av).mapv(f64::abs).dot(&up(bv).mapv(f64::abs));
            if let Some(b) = &bias64 {
                magnitudes += &b.mapv(f64::abs);
            }
            (
                flat64(ops::linear(
                    &up(av).view(),
                    &up(bv).view(),
                    bias64.as_ref().map(|b| b.view()).as_ref(),
                )),
                flat32(ops::linear(&av, &bv, bias32.as_ref())),
                flat64(magnitudes),
            )
        }
        Shape::Gelu { .. } => (
            x.a.iter().map(|&v| ops::gelu_new(f64::from(v))).collect(),
            x.a.iter().map(|&v| ops::gelu_new(v)).collect(),
            vec![],
        ),
    };
    Run {
        out,
        reference,
        plain,
        magnitudes,
    }
}

/// Checks `variant` at `isa` on `shape` with inputs of `seed` and `magnitude`.
pub fn check(variant: &Variant, isa: Isa, shape: &Shape, seed: u64, magnitude: f32) -> Check {
    let run = run(variant.kernel, isa, shape, &Draw::new(seed, magnitude));
    let (rule, _) = rule(variant.op());
    let u = F32_UNIT_ROUNDOFF;
    let plain_f32_err = run
        .plain
        .iter()
        .zip(&run.reference)
        .fold(0.0f64, |m, (&p, &r)| m.max((f64::from(p) - r).abs()));
    let scale = run.reference.iter().fold(0.0f64, |m, r| m.max(r.abs()));
    let bound = |i: usize| match rule {
        Rule::CorrectlyRounded => u * run.reference[i].abs(),
        Rule::DotProduct => {
            let k = match shape {
                Shape::Matmul { k, .. } => *k as f64 + 1.0,
                _ => unreachable!("the dot-product rule is for matmul"),
            };
            k * u / (1.0 - k * u) * run.magnitudes[i]
        }
        Rule::PlainF32 { k, ulps } => k * plain_f32_err + ulps * u * scale,
    };
    // Elements ranked by err / bound, NaN above everything: the reported element is the worst one,
    // not the first one out of bound.
    let rank = |w: &Worst| {
        let ratio = w.ratio();
        (ratio.is_nan(), if ratio.is_nan() { 0.0 } else { ratio })
    };
    let mut max_abs_err = 0.0f64;
    // The worst element so far, and its rank.
    let mut worst: Option<(Worst, (bool, f64))> = None;
    let mut pass = true;
    for (i, (&o, &r)) in run.out.iter().zip(&run.reference).enumerate() {
        let err = (f64::from(o) - r).abs();
        let b = bound(i);
        pass &= err <= b; // false for NaN
        max_abs_err = sticky_max(max_abs_err, err);
        let here = Worst {
            index: i,
            err,
            bound: b,
            out: o,
            reference: r,
        };
        let here_rank = rank(&here);
        if worst.as_ref().is_none_or(|(_, worst_rank)| here_rank > *worst_rank) {
            worst = Some((here, here_rank));
        }
    }
    Check {
        op: variant.op(),
        variant: variant.name.to_owned(),
        isa,
        ran_at: variant.ran_at(isa),
        shape: *shape,
        seed,
        magnitude,
        max_abs_err,
        worst: worst.map(|(w, _)| w),
        plain_f32_err,
        pass,
    }
}

/// The edge-case shapes every variant of `op` is checked on: zero and one, lengths around every SIMD
/// width (1..=17, 31, 33, 63, 65, 127, 129), long rows (50257), head sizes 8, 24, 64, 66, T = 1 and T
/// beyond the tile sizes, non-zero decode offsets.
pub fn sweep(op: Op) -> Vec<Shape> {
    let mut widths: Vec<usize> = (1..=17).collect();
    widths.extend([31, 33, 63, 65, 127, 129]);
    let mut shapes = Vec::new();
    match op {
        Op::Embedding => {
            for &channels in widths.iter().chain(&[768]) {
                shapes.push(Shape::Embedding {
                    tokens: 5,
                    channels,
                    vocab: 50,
                    positions: 40,
                    pos0: 0,
                });
            }
            shapes.push(Shape::Embedding {
                tokens: 0,
                channels: 8,
                vocab: 3,
                positions: 4,
                pos0: 0,
            });
            shapes.push(Shape::Embedding {
                tokens: 1,
                channels: 33,
                vocab: 50257,
                positions: 40,
                pos0: 39,
            });
            shapes.push(Shape::Embedding {
                tokens: 37,
                channels: 65,
                vocab: 97,
                positions: 64,
                pos0: 7,
            });
        }
        Op::LayerNorm => {
            for &channels in widths.iter().chain(&[768]) {
                shapes.push(Shape::LayerNorm { rows: 5, channels });
            }
            shapes.push(Shape::LayerNorm { rows: 0, channels: 8 });
            shapes.push(Shape::LayerNorm { rows: 1, channels: 1 });
            shapes.push(Shape::LayerNorm { rows: 9, channels: 45 });
        }
        Op::Softmax => {
            for &cols in widths.iter().chain(&[1024]) {
                shapes.push(Shape::Softmax { rows: 3, cols });
            }
            shapes.push(Shape::Softmax { rows: 4, cols: 0 });
            shapes.push(Shape::Softmax { rows: 0, cols: 5 });
            shapes.push(Shape::Softmax { rows: 2, cols: 50257 });
        }
        Op::Attention => {
            for head_size in [1, 8, 15, 24, 64, 66] {
                shapes.push(Shape::Attention {
                    queries: 7,
                    pos0: 0,
                    heads: 2,
                    head_size,
                });
            }
            for (queries, pos0) in [
                (1, 0),
                (1, 1),
                (1, 70),
                (2, 63),
                (17, 0),
                (33, 31),
                (65, 64),
                (70, 0),
                (100, 29),
            ] {
                shapes.push(Shape::Attention {
                    queries,
                    pos0,
                    heads: 3,
                    head_size: 24,
                });
            }
            shapes.push(Shape::Attention {
                queries: 0,
                pos0: 5,
                heads: 2,
                head_size: 8,
            });
            shapes.push(Shape::Attention {
                queries: 40,
                pos0: 90,
                heads: 12,
                head_size: 64,
            });
        }
        Op::Matmul => {
            for &n in &widths {
                shapes.push(Shape::Matmul {
                    m: 3,
                    k: 17,
                    n,
                    bias: true,
                });
            }
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
                shapes.push(Shape::Matmul { m, k, n, bias: true });
                shapes.push(Shape::Matmul { m, k, n, bias: false });
            }
        }
        Op::Gelu => {
            for &n in widths.iter().chain(&[0, 50257]) {
                shapes.push(Shape::Gelu { n });
            }
        }
    }
    shapes
}
