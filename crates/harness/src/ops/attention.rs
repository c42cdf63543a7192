//! The attention op: causal multi-head or grouped-query attention of queries at positions pos0 ..
//! over the keys they see (maths, contract, key layouts and variants in
//! `tkbench_kernels::attention`).

use std::ops::Range;
use std::sync::Arc;

use ndarray::ArrayView2;
use tkbench_kernels::attention::{self, AttentionDims, KeyLayout};
use tkbench_kernels::{Isa, Variant};
use tkbench_reference::ops;

use super::{Kernel, Buffer, Draw, GPT2_SMALL, Op, PeerCode, Plant, Profile, Reference, SMOLLM2, Special, bench_token_counts};
use crate::aligned::AlignedVec;
use crate::check::tolerance::Rule;
use crate::measure::work::{F32, Unit, Work};
use crate::model::threads::{By, Split, attention_blocks, row_blocks};

/// A attention entry point: one of `tkbench_kernels::attention`'s functions, or any closure of its type (an
/// outside kernel, which may hold state such as weights packed once).
pub type AttentionKernel = Kernel<dyn Fn(&AttentionDims, &[f32], &[f32], &[f32], &mut [f32], Isa) + Send + Sync>;

impl<G: Fn(&AttentionDims, &[f32], &[f32], &[f32], &mut [f32], Isa) + Send + Sync + 'static> From<G> for AttentionKernel {
    fn from(kernel: G) -> Self {
        Kernel::new(Arc::new(kernel))
    }
}

/// Causal multi-head (or grouped-query) attention.
#[derive(Debug, Clone, Copy)]
pub struct Attention;

/// The input slices of an attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttentionArgs<'a> {
    /// q [Tq, C].
    pub q: &'a [f32],
    /// k [S, CKV], or in blocks as the shape's key layout says.
    pub k: &'a [f32],
    /// v [S, CKV].
    pub v: &'a [f32],
}

/// q, k and v, drawn; k also in rows, for the reference.
pub struct AttentionInputs {
    q: AlignedVec,
    /// k in the shape's key layout.
    k: AlignedVec,
    /// k [S, CKV].
    k_rows: AlignedVec,
    v: AlignedVec,
}

/// The keys `rows` ([S, CKV], rows CKV apart) laid out as the attention call `dims` takes them
/// (`dims.key_layout`, S = `dims.keys()`), every float of the result that holds no key NaN.
pub fn keys_as(dims: &AttentionDims, rows: &[f32]) -> Vec<f32> {
    let mut k = vec![f32::NAN; dims.key_floats()];
    for (j, key) in rows.chunks_exact(dims.kv_channels()).enumerate() {
        dims.store_key(&mut k, j, key);
    }
    k
}

/// GPT-2's attention scale, 1/√HS: the scale of every check and bench.
pub fn gpt2_scale(head_size: usize) -> f32 {
    1.0 / (head_size as f32).sqrt()
}

impl Op for Attention {
    const NAME: &'static str = "attention";
    /// `key_blocks=1` holds the keys in blocks (a KV cache's layout), `0` (the default) in rows;
    /// `group` is the query heads per key/value head (1, the default: multi-head attention).
    const FIELDS: &'static [&'static str] = &["queries", "pos0", "heads", "head_size", "key_blocks", "group"];
    const DEFAULTS: &'static [(&'static str, usize)] = &[("key_blocks", 0), ("group", 1)];
    const RULE: Rule = Rule::PlainF32 { k: 4.0, ulps: 16.0 };
    const RATIONALE: &'static str = "dot products, a softmax and a weighted sum, online or not (the FlashAttention rule): 4x the plain f32 error (at least the random walk of an (S + head_size)-term sum), floor 16 ulps";
    const UNIT: Unit = Unit::Flops;
    const PROFILES: &'static [Profile] = &[Profile::Uniform, Profile::Offset, Profile::Outliers];

    type Kernel = AttentionKernel;
    type Shape = AttentionDims;
    type Args<'a> = AttentionArgs<'a>;
    type Inputs = AttentionInputs;

    fn variants() -> Vec<Variant<AttentionKernel>> {
        attention::VARIANTS.iter().map(|v| v.map(|&f| AttentionKernel::from(f))).collect()
    }

    fn fastest() -> &'static str {
        attention::FASTEST
    }

    fn values(s: &AttentionDims) -> Vec<usize> {
        let key_blocks = usize::from(s.key_layout == KeyLayout::Blocks);
        vec![s.queries, s.pos0, s.heads, s.head_size, key_blocks, s.group()]
    }

    /// GPT-2's scale (which is Llama's), rows C and CKV apart, keys in rows or in blocks.
    fn shape(v: &[usize]) -> Result<AttentionDims, String> {
        let (queries, pos0, heads, head_size, key_blocks, group) = (v[0], v[1], v[2], v[3], v[4], v[5]);
        if heads == 0 || head_size == 0 {
            return Err("heads and head_size must be positive".into());
        }
        if group == 0 || !heads.is_multiple_of(group) {
            return Err(format!("group = {group} (query heads per key/value head) does not divide heads = {heads}"));
        }
        let layout = match key_blocks {
            0 => KeyLayout::Rows,
            1 => KeyLayout::Blocks,
            _ => return Err(format!("key_blocks is 0 (keys in rows) or 1 (in blocks), not {key_blocks}")),
        };
        Ok(AttentionDims::new(queries, pos0, heads, head_size, gpt2_scale(head_size))
            .with_kv_heads(heads / group)
            .with_key_layout(layout))
    }

    fn output(s: &AttentionDims) -> (usize, usize) {
        (s.queries, s.channels())
    }

    fn draw(s: &AttentionDims, draw: &Draw) -> AttentionInputs {
        let (c, ckv, keys) = (s.channels(), s.kv_channels(), s.keys());
        let k_rows: AlignedVec = draw.signal("k", keys * ckv, ckv).into();
        let k = match s.key_layout {
            KeyLayout::Rows => k_rows.clone(),
            KeyLayout::Blocks => keys_as(s, &k_rows).into(),
        };
        AttentionInputs {
            // A common offset goes on the keys only: it moves every score of a query by the same
            // amount, which the softmax inside must cancel.
            q: if draw.profile() == Profile::Offset {
                draw.uniform("q", s.queries * c)
            } else {
                draw.signal("q", s.queries * c, c)
            }
            .into(),
            k,
            k_rows,
            v: draw.uniform("v", keys * ckv).into(),
        }
    }

    fn args<'a>(_: &AttentionDims, x: &'a AttentionInputs) -> AttentionArgs<'a> {
        AttentionArgs {
            q: &x.q,
            k: &x.k,
            v: &x.v,
        }
    }

    fn buffers(x: &mut AttentionInputs) -> Vec<(&'static str, Buffer<'_>)> {
        vec![("q", Buffer::F32(&mut x.q)), ("k", Buffer::F32(&mut x.k)), ("k_rows", Buffer::F32(&mut x.k_rows)), ("v", Buffer::F32(&mut x.v))]
    }

    /// Queries at equal work (query i sees pos0 + i + 1 keys, so equal query counts would give the
    /// last thread three times the first one's work in a prefill); a single query (a decode step)
    /// by whole groups of heads, each thread reading its key/value heads' columns of the cache.
    fn split(s: &AttentionDims, threads: usize) -> Split {
        if s.queries == 1 {
            let group = s.group();
            Split {
                blocks: row_blocks(s.kv_heads, threads)
                    .into_iter()
                    .map(|r| r.start * group..r.end * group)
                    .collect(),
                by: By::Heads,
                width: s.head_size,
            }
        } else {
            Split {
                blocks: attention_blocks(s.queries, s.pos0, threads),
                by: By::Rows,
                width: s.channels(),
            }
        }
    }

    /// A block of queries keeps its positions and sees the keys up to its last query's; a block of
    /// heads takes q and out from its first head's column on, k and v from its first key/value
    /// head's, rows still `stride` and `kv_stride` apart.
    fn call(
        f: &AttentionKernel,
        isa: Isa,
        s: &AttentionDims,
        x: AttentionArgs<'_>,
        by: By,
        r: Range<usize>,
        out: &mut [f32],
    ) {
        match by {
            By::Rows => {
                let c = s.channels();
                let dims = s.rows(r.clone());
                f(
                    &dims,
                    &x.q[r.start * c..r.end * c],
                    &x.k[..dims.key_floats()],
                    &x.v[..dims.keys() * s.kv_channels()],
                    out,
                    isa,
                )
            }
            By::Heads => {
                let (dims, col, kv_col) = s.heads(r);
                f(
                    &dims,
                    &x.q[col..],
                    &x.k[dims.key_index(0, kv_col)..],
                    &x.v[kv_col..],
                    out,
                    isa,
                )
            }
            By::Columns => unreachable!("attention is not split by columns"),
        }
    }

    fn reference(s: &AttentionDims, x: &AttentionInputs) -> Reference {
        let (c, ckv, keys) = (s.channels(), s.kv_channels(), s.keys());
        let q = ArrayView2::from_shape((s.queries, c), &x.q[..]).expect("q is [Tq, C]");
        let k = ArrayView2::from_shape((keys, ckv), &x.k_rows[..]).expect("k is [S, CKV]");
        let v = ArrayView2::from_shape((keys, ckv), &x.v[..]).expect("v is [S, CKV]");
        let up = |a: ArrayView2<f32>| a.mapv(f64::from);
        let (nh, nkv) = (s.heads, s.kv_heads);
        Reference {
            f64: ops::grouped_causal_attention(&up(q).view(), &up(k).view(), &up(v).view(), nh, nkv, f64::from(s.scale))
                .into_iter()
                .collect(),
            f32: ops::grouped_causal_attention(&q, &k, &v, nh, nkv, s.scale)
                .into_iter()
                .collect(),
            terms: s.keys() + s.head_size,
            conditioning: conditioning(s, &q, &k, &v),
            ..Reference::default()
        }
    }

    /// Per visible query-key pair and head channel: a multiply-add for q · k and one for p · v. q
    /// read, out written, k and v (of the key/value heads) read once.
    fn work(s: &AttentionDims) -> Work {
        let (c, ckv) = (s.channels() as f64, s.kv_channels() as f64);
        let pairs: f64 = (0..s.queries).map(|i| (s.pos0 + i + 1) as f64).sum();
        let keys = s.keys() as f64;
        Work {
            flops: 4.0 * c * pairs,
            bytes: (2.0 * s.queries as f64 * c + 2.0 * keys * ckv) * F32,
            written: s.queries as f64 * c * F32,
        }
    }

    /// Head sizes around the vector widths, query counts and offsets around the tiles (a decode step
    /// on 1, 2 and 71 keys among them), no queries, and GPT-2 small's heads after a cache.
    fn sweep() -> Vec<AttentionDims> {
        let dims = |queries, pos0, heads, head_size| {
            AttentionDims::new(queries, pos0, heads, head_size, gpt2_scale(head_size))
        };
        let mut shapes: Vec<AttentionDims> = [1, 8, 15, 24, 64, 66].into_iter().map(|hs| dims(7, 0, 2, hs)).collect();
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
            shapes.push(dims(queries, pos0, 3, 24));
        }
        shapes.push(dims(0, 5, 2, 8));
        shapes.push(dims(40, 90, 12, 64));
        // Grouped-query attention: groups of 2, 3 and 4, multi-query, and SmolLM2's 9 heads over 3,
        // in a prefill, a chunk after a cache and a decode step.
        for (queries, pos0, heads, kv_heads, hs) in [
            (7, 0, 4, 2, 24),
            (33, 31, 6, 2, 16),
            (1, 70, 8, 2, 32),
            (9, 5, 4, 1, 15),
            (1, 20, 5, 1, 64),
            (20, 40, 9, 3, 64),
            (1, 66, 9, 3, 64),
        ] {
            shapes.push(dims(queries, pos0, heads, hs).with_kv_heads(kv_heads));
        }
        both_layouts(shapes)
    }

    /// Every shape in both key layouts. `keys` gives a decode step over that many keys and a chunk
    /// of five queries after a cache; `heads` a decode step and a short prefill.
    fn straddle(dim: &str, value: usize) -> Vec<AttentionDims> {
        let dims = |queries, pos0, heads, head_size| AttentionDims::new(queries, pos0, heads, head_size, gpt2_scale(head_size));
        let rows = match dim {
            "queries" => vec![dims(value, 0, 3, 24)],
            "keys" => {
                let mut shapes = vec![dims(1, value - 1, 3, 24)];
                if value > 5 {
                    shapes.push(dims(5, value - 5, 3, 24));
                }
                shapes
            }
            "heads" => vec![dims(1, 20, value, 8), dims(3, 0, value, 8)],
            "head_size" => vec![dims(3, 2, 2, value)],
            _ => Vec::new(),
        };
        both_layouts(rows)
    }

    /// Query groups, key tiles and transposed-pack runs cut at odd places; five heads, since a
    /// one-query call takes heads in groups of four, the last one short; and two decode steps.
    fn split_shapes() -> Vec<AttentionDims> {
        [
            (0, 2, 8),
            (0, 2, 64),
            (70, 2, 15),
            (70, 2, 24),
            (130, 2, 64),
            (66, 5, 16),
        ]
        .into_iter()
        .map(|(pos0, heads, hs)| AttentionDims::new(9, pos0, heads, hs, gpt2_scale(hs)))
        // Decode steps, split by heads, and by groups of heads.
        .chain([
            AttentionDims::new(1, 70, 5, 32, gpt2_scale(32)),
            AttentionDims::new(1, 16, 3, 24, gpt2_scale(24)),
            AttentionDims::new(1, 70, 9, 64, gpt2_scale(64)).with_kv_heads(3),
            AttentionDims::new(9, 20, 6, 16, gpt2_scale(16)).with_kv_heads(2),
        ])
        .collect()
    }

    /// Keys in blocks for keys in rows: the KV cache holds them so, and the model's bits must not
    /// depend on it.
    fn twin(s: &AttentionDims) -> Option<AttentionDims> {
        (s.key_layout == KeyLayout::Rows).then(|| s.with_key_layout(KeyLayout::Blocks))
    }

    /// A short prefill after a cache, and a decode step over two key tiles (the last block of keys
    /// short) with five heads (head groups of four, the last one short), each with keys in rows and
    /// in blocks (whose slots past the keys hold NaN, which must reach no output). NaN only: an
    /// infinite score of −inf is a mask, not a special value.
    fn specials() -> Vec<Special<AttentionDims>> {
        let mut cases = Vec::new();
        for layout in [KeyLayout::Rows, KeyLayout::Blocks] {
            let blocks = layout == KeyLayout::Blocks;
            let name = |rows: &'static str, in_blocks: &'static str| if blocks { in_blocks } else { rows };
            let case = |name, about, shape: AttentionDims, plants| Special {
                name,
                about,
                shape: shape.with_key_layout(layout),
                seed: 16,
                plants,
            };
            // The same key value in the layout the call takes and in the rows the reference reads.
            let key = |shape: &AttentionDims, j: usize, ch: usize| {
                let laid = shape.with_key_layout(layout);
                [
                    Plant::new("k", laid.key_index(j, ch), f32::NAN),
                    Plant::new("k_rows", j * shape.kv_channels() + ch, f32::NAN),
                ]
            };
            let (heads, hs) = (2, 20);
            let prefill = AttentionDims::new(6, 3, heads, hs, gpt2_scale(hs));
            let c = prefill.channels();
            cases.push(case(
                name("nan-in-q", "nan-in-q-key-blocks"),
                "NaN in query 2's head 1 makes exactly that query's head-1 outputs NaN",
                prefill,
                vec![Plant::new("q", 2 * c + hs + 7, f32::NAN)],
            ));
            cases.push(case(
                name("nan-in-k", "nan-in-k-key-blocks"),
                "NaN in key 5's head 0 makes head 0 NaN for the queries that see key 5",
                prefill,
                key(&prefill, 5, 3).to_vec(),
            ));
            let (heads, hs) = (5, 32);
            let decode = AttentionDims::new(1, 70, heads, hs, gpt2_scale(hs));
            let c = decode.channels();
            cases.push(case(
                name("decode-nan-in-q", "decode-nan-in-q-key-blocks"),
                "NaN in the query's head 3 makes exactly head 3 NaN",
                decode,
                vec![Plant::new("q", 3 * hs + 5, f32::NAN)],
            ));
            cases.push(case(
                name("decode-nan-in-k", "decode-nan-in-k-key-blocks"),
                "NaN in key 40's head 1 makes exactly head 1 NaN",
                decode,
                key(&decode, 40, hs + 31).to_vec(),
            ));
            cases.push(case(
                name("decode-nan-in-v", "decode-nan-in-v-key-blocks"),
                "NaN in value 66 makes exactly its channel NaN",
                decode,
                vec![Plant::new("v", 66 * c + 4 * hs + 9, f32::NAN)],
            ));
            // Grouped-query: a NaN in key/value head 1 of 2 reaches exactly query heads 3, 4 and 5.
            let grouped = AttentionDims::new(1, 40, 6, 16, gpt2_scale(16)).with_kv_heads(2);
            cases.push(case(
                name("grouped-nan-in-k", "grouped-nan-in-k-key-blocks"),
                "NaN in key 30 of key/value head 1 makes exactly query heads 3 to 5 NaN",
                grouped,
                key(&grouped, 30, 16 + 9).to_vec(),
            ));
            cases.push(case(
                name("grouped-nan-in-v", "grouped-nan-in-v-key-blocks"),
                "NaN in value 12 of key/value head 0 makes channel 4 of query heads 0 to 2 NaN",
                grouped,
                vec![Plant::new("v", 12 * grouped.kv_channels() + 4, f32::NAN)],
            ));
        }
        cases
    }

    /// GPT-2 small's heads and SmolLM2's (9 query heads over 3 key/value heads): a decode step
    /// after 512 tokens, prefills from 0.
    fn bench_shapes(quick: bool) -> Vec<AttentionDims> {
        let (nh, hs) = (GPT2_SMALL.n_head, GPT2_SMALL.head_size());
        let (lh, lkv, lhs) = (SMOLLM2.num_attention_heads, SMOLLM2.num_key_value_heads, SMOLLM2.head_dim);
        let pos0 = |t| if t == 1 { 512 } else { 0 };
        let gpt2 = bench_token_counts(quick)
            .into_iter()
            .map(|t| AttentionDims::new(t, pos0(t), nh, hs, gpt2_scale(hs)));
        let llama = bench_token_counts(quick)
            .into_iter()
            .map(|t| AttentionDims::new(t, pos0(t), lh, lhs, gpt2_scale(lhs)).with_kv_heads(lkv));
        gpt2.chain(llama).collect()
    }

    /// SDPA, causal for a prefill; a decode step sees every cached key; grouped-query attention
    /// through SDPA's `enable_gqa`.
    fn peer(s: &AttentionDims) -> Result<PeerCode, String> {
        let (nh, nkv, hs, tq, keys) = (s.heads, s.kv_heads, s.head_size, s.queries, s.keys());
        let setup =
            format!("q = rand(1, {nh}, {tq}, {hs})\nk = rand(1, {nkv}, {keys}, {hs})\nv = rand(1, {nkv}, {keys}, {hs})");
        let gqa = if nkv == nh { "" } else { ", enable_gqa=True" };
        let stmt = match (s.pos0, tq) {
            (0, _) => format!("F.scaled_dot_product_attention(q, k, v, is_causal=True{gqa})"),
            (_, 1) => format!("F.scaled_dot_product_attention(q, k, v{gqa})"),
            _ => return Err("attention with pos0 > 0 and more than one query is not timed".into()),
        };
        Ok(PeerCode { setup, stmt })
    }

    /// Small shapes around the vector widths and tiles.
    fn random_case(pick: &mut dyn FnMut(usize) -> usize) -> (AttentionDims, f32) {
        let (queries, pos0, kv_heads, head_size) = (1 + pick(39), pick(80), 1 + pick(3), 1 + pick(69));
        let group = 1 + pick(3);
        let shape = AttentionDims::new(queries, pos0, kv_heads * group, head_size, gpt2_scale(head_size))
            .with_kv_heads(kv_heads);
        (shape, super::random_magnitude(pick, &[1.0]))
    }
}

/// `shapes` with keys in rows, then the same with keys in blocks.
fn both_layouts(shapes: Vec<AttentionDims>) -> Vec<AttentionDims> {
    let blocks: Vec<AttentionDims> = shapes.iter().map(|s| s.with_key_layout(KeyLayout::Blocks)).collect();
    shapes.into_iter().chain(blocks).collect()
}

/// The largest |score| any query gives a key it sees, times the largest |v|: a score's rounding,
/// relative to the score, moves its weight by that much, which a common offset on the keys or outlier
/// channels make large while the output stays a mean of the values.
fn conditioning(s: &AttentionDims, q: &ArrayView2<f32>, k: &ArrayView2<f32>, v: &ArrayView2<f32>) -> f64 {
    let hs = s.head_size;
    let value = v.iter().fold(0.0f64, |m, &x| m.max(f64::from(x).abs()));
    let mut score = 0.0f64;
    for i in 0..s.queries {
        for key in 0..=s.pos0 + i {
            for h in 0..s.heads {
                let kv_col = s.kv_column(h);
                let dot: f64 = (0..hs)
                    .map(|d| f64::from(q[[i, h * hs + d]]) * f64::from(k[[key, kv_col + d]]))
                    .sum();
                score = score.max((dot * f64::from(s.scale)).abs());
            }
        }
    }
    score * value
}
