//! The NaN and infinity contract of every op (stated in each op's `mod.rs`), held by every variant at
//! every ISA level: special values propagate to exactly the outputs that depend on them, and are never
//! silently replaced.

use tkbench_harness::ops::attention::{gpt2_scale, keys_as};
use tkbench_harness::ops::layernorm::EPS;
use tkbench_harness::ops::{Attention, Draw, Embedding, Gelu, LayerNorm, Matmul, Op, Softmax};
use tkbench_kernels::attention::{AttentionDims, AttentionFn, KeyLayout};
use tkbench_kernels::embedding::EmbeddingDims;
use tkbench_kernels::layernorm::LayerNormDims;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Isa, Variant};

/// Every (variant, level) of `O`, with a label for messages.
fn runs<O: Op>() -> Vec<(&'static Variant<O::Kernel>, Isa, String)> {
    O::variants()
        .iter()
        .flat_map(|v| {
            v.levels()
                .into_iter()
                .map(move |isa| (v, isa, format!("{} {} at {isa}", O::NAME, v.name)))
        })
        .collect()
}

/// Every run of attention, once with keys in rows and once with keys in blocks (the label says which).
fn attention_runs() -> Vec<(&'static Variant<AttentionFn>, Isa, String, KeyLayout)> {
    runs::<Attention>()
        .into_iter()
        .flat_map(|(variant, isa, label)| {
            [KeyLayout::Rows, KeyLayout::Blocks]
                .map(|layout| (variant, isa, format!("{label}, keys in {layout:?}"), layout))
        })
        .collect()
}

/// What outputs hold before a call: finite, so that rows expected NaN must be written NaN, and
/// marked, so that rows expected finite must be written too.
const UNWRITTEN: f32 = -7.25;

/// A finite value the kernel wrote (not the [`UNWRITTEN`] mark).
fn written_finite(x: f32) -> bool {
    x.is_finite() && x != UNWRITTEN
}

#[test]
fn softmax_special_values() {
    let (rows, cols) = (3, 37);
    let dims = SoftmaxDims { rows, cols };
    for (variant, isa, label) in runs::<Softmax>() {
        let f = variant.kernel;
        for poison in [f32::NAN, f32::INFINITY] {
            let mut x = Draw::new(1, 3.0).uniform("x", rows * cols);
            x[cols + 5] = poison;
            let mut out = vec![UNWRITTEN; rows * cols];
            f(&dims, &x, &mut out, isa);
            assert!(
                out[cols..2 * cols].iter().all(|v| v.is_nan()),
                "{label}: {poison} in row 1 must make it NaN"
            );
            assert!(
                out[..cols].iter().chain(&out[2 * cols..]).all(|&v| written_finite(v)),
                "{label}: other rows finite"
            );
        }
        // NaN among −inf entries (a lane of the online form whose maximum skips the NaN).
        let mut x = vec![f32::NEG_INFINITY; rows * cols];
        x[cols] = f32::NAN;
        x[2 * cols - 1] = 1.0;
        x[..cols].fill(0.5);
        x[2 * cols..].fill(0.25);
        let mut out = vec![UNWRITTEN; rows * cols];
        f(&dims, &x, &mut out, isa);
        assert!(
            out[cols..2 * cols].iter().all(|v| v.is_nan()),
            "{label}: NaN among −inf must make its row NaN"
        );
        assert!(
            out[..cols].iter().chain(&out[2 * cols..]).all(|&v| written_finite(v)),
            "{label}: other rows finite"
        );
        // −inf is a mask: probability 0, the rest still sums to 1; a fully masked row is NaN.
        let mut x = Draw::new(2, 3.0).uniform("x", rows * cols);
        for j in (0..cols).step_by(3) {
            x[j] = f32::NEG_INFINITY;
        }
        x[2 * cols..].fill(f32::NEG_INFINITY);
        let mut out = vec![UNWRITTEN; rows * cols];
        f(&dims, &x, &mut out, isa);
        assert!(
            (0..cols).step_by(3).all(|j| out[j] == 0.0),
            "{label}: masked entries must be exactly 0"
        );
        let sum: f32 = out[..cols].iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{label}: masked row sums to {sum}");
        assert!(
            out[2 * cols..].iter().all(|v| v.is_nan()),
            "{label}: an all −inf row is NaN"
        );
    }
}

#[test]
fn layernorm_special_values() {
    let (rows, channels) = (3, 45);
    let dims = LayerNormDims {
        rows,
        channels,
        eps: EPS,
    };
    let gamma = Draw::new(3, 1.0).values("g", channels, 1.0, 0.5);
    let beta = Draw::new(3, 1.0).values("b", channels, 0.0, 0.5);
    for (variant, isa, label) in runs::<LayerNorm>() {
        let f = variant.kernel;
        for poison in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut x = Draw::new(4, 2.0).uniform("x", rows * channels);
            x[channels + 44] = poison;
            let mut out = vec![UNWRITTEN; rows * channels];
            f(&dims, &x, &gamma, &beta, &mut out, isa);
            assert!(
                out[channels..2 * channels].iter().all(|v| v.is_nan()),
                "{label}: {poison} makes its row NaN"
            );
            assert!(
                out[..channels]
                    .iter()
                    .chain(&out[2 * channels..])
                    .all(|&v| written_finite(v)),
                "{label}"
            );
        }
        // A constant row has zero variance: the output is beta.
        let x = vec![3.25f32; rows * channels];
        let mut out = vec![f32::NAN; rows * channels];
        f(&dims, &x, &gamma, &beta, &mut out, isa);
        for (i, (&o, &b)) in out[..channels].iter().zip(&beta).enumerate() {
            assert!(
                (o - b).abs() <= 1e-6,
                "{label}: constant row, channel {i}: {o} vs beta {b}"
            );
        }
    }
}

#[test]
fn gelu_special_values() {
    let x = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        100.0,
        -100.0,
        0.0,
        20.0,
        -20.0,
    ];
    for (variant, isa, label) in runs::<Gelu>() {
        let f = variant.kernel;
        let mut out = [0.5f32; 8];
        f(&x, &mut out, isa);
        assert!(out[0].is_nan(), "{label}: NaN → NaN");
        assert_eq!(out[1], f32::INFINITY, "{label}: +inf → +inf");
        assert!(out[2].is_nan(), "{label}: −inf → NaN (−inf · 0), as PyTorch");
        assert_eq!(out[3], 100.0, "{label}: gelu(100)");
        assert_eq!(out[4], 0.0, "{label}: gelu(−100)");
        assert_eq!(out[5], 0.0, "{label}: gelu(0)");
        assert_eq!(out[6], 20.0, "{label}: gelu(20)");
        assert!(out[7].abs() < 1e-30, "{label}: gelu(−20) = {}", out[7]);
    }
}

/// Several queries, keys in rows and in blocks: NaN in a query makes exactly that query's outputs of
/// that head NaN, NaN in a key exactly the outputs of that head for the queries that see it, and the
/// slots of the last block of keys past the keys (NaN) reach no output.
#[test]
fn attention_special_values() {
    let (heads, hs, pos0, t) = (2, 20, 3, 6);
    let (c, s) = (heads * hs, pos0 + t);
    let rows = AttentionDims::new(t, pos0, heads, hs, gpt2_scale(hs));
    let draw = Draw::new(5, 1.0);
    for (variant, isa, label, layout) in attention_runs() {
        let f = variant.kernel;
        let dims = rows.with_key_layout(layout);
        // NaN in query 2, head 1: exactly that query's head-1 outputs are NaN.
        let (mut q, k, v) = (
            draw.uniform("q", t * c),
            draw.uniform("k", s * c),
            draw.uniform("v", s * c),
        );
        q[2 * c + hs + 7] = f32::NAN;
        let mut out = vec![UNWRITTEN; t * c];
        f(&dims, &q, &keys_as(&dims, &k), &v, &mut out, isa);
        for (i, row) in out.chunks(c).enumerate() {
            let (h0, h1) = row.split_at(hs);
            assert!(h0.iter().all(|&x| written_finite(x)), "{label}: query {i} head 0");
            assert_eq!(h1.iter().all(|x| x.is_nan()), i == 2, "{label}: query {i} head 1");
        }
        // NaN in key 5 (position 5), head 0: the queries that see it (positions ≥ 5) are NaN in head 0.
        let (q, mut k) = (draw.uniform("q", t * c), draw.uniform("k", s * c));
        k[5 * c + 3] = f32::NAN;
        let mut out = vec![UNWRITTEN; t * c];
        f(&dims, &q, &keys_as(&dims, &k), &v, &mut out, isa);
        for (i, row) in out.chunks(c).enumerate() {
            let (h0, h1) = row.split_at(hs);
            assert_eq!(
                h0.iter().all(|x| x.is_nan()),
                pos0 + i >= 5,
                "{label}: query {i} head 0"
            );
            assert!(h1.iter().all(|&x| written_finite(x)), "{label}: query {i} head 1");
        }
    }
}

/// One query (a decode step), whole and split by heads as threads split it, keys in rows and in blocks:
/// NaN in its q or in a key of one head makes exactly that head's outputs NaN, NaN in a value makes
/// exactly that channel's output NaN, NaN in the slots of the last block of keys past the keys
/// reaches no output, and a call on some of the heads writes those heads' outputs only.
#[test]
fn attention_special_values_for_one_query() {
    // Five heads of 32 (groups of four heads, the last one short), 71 keys (two key tiles, the last
    // block of keys short).
    let (heads, hs, pos0) = (5, 32, 70);
    let (c, s) = (heads * hs, pos0 + 1);
    let rows = AttentionDims::new(1, pos0, heads, hs, gpt2_scale(hs));
    let draw = Draw::new(8, 1.0);
    for (variant, isa, label, layout) in attention_runs() {
        let whole = rows.with_key_layout(layout);
        let f = variant.kernel;
        // Where the NaN goes, and which outputs it must reach: head 3 (all of it) through q, head 1
        // through key 40, channel 4 · HS + 9 through value 66.
        for (what, nan) in [("q", 3 * hs..4 * hs), ("k", hs..2 * hs), ("v", 4 * hs + 9..4 * hs + 10)] {
            let (mut q, mut k, mut v) = (draw.uniform("q", c), draw.uniform("k", s * c), draw.uniform("v", s * c));
            match what {
                "q" => q[3 * hs + 5] = f32::NAN,
                "k" => k[40 * c + hs + 31] = f32::NAN,
                _ => v[66 * c + 4 * hs + 9] = f32::NAN,
            }
            // The keys as the layout holds them, every slot that holds no key NaN.
            let k = keys_as(&whole, &k);
            let mut out = vec![UNWRITTEN; c];
            f(&whole, &q, &k, &v, &mut out, isa);
            for (ch, &x) in out.iter().enumerate() {
                let ok = if nan.contains(&ch) {
                    x.is_nan()
                } else {
                    written_finite(x)
                };
                assert!(ok, "{label}: NaN in {what}, output {ch} = {x}");
            }
            // Heads 1 ..= 3 alone: rows C apart, outputs of those heads only.
            let (dims, col) = whole.heads(1..4);
            let mut part = vec![UNWRITTEN; c];
            f(
                &dims,
                &q[col..],
                &k[dims.key_index(0, col)..],
                &v[col..],
                &mut part[col..],
                isa,
            );
            for (ch, &x) in part.iter().enumerate() {
                let ok = if !(hs..4 * hs).contains(&ch) {
                    x.to_bits() == UNWRITTEN.to_bits()
                } else if nan.contains(&ch) {
                    x.is_nan()
                } else {
                    written_finite(x)
                };
                assert!(ok, "{label}: heads 1..4, NaN in {what}, output {ch} = {x}");
            }
        }
    }
}

#[test]
fn embedding_special_values() {
    let dims = EmbeddingDims {
        tokens: 4,
        channels: 19,
        vocab: 6,
        positions: 8,
        pos0: 2,
    };
    let ids = [1u32, 3, 1, 0];
    let draw = Draw::new(6, 1.0);
    for (variant, isa, label) in runs::<Embedding>() {
        let f = variant.kernel;
        let (mut wte, wpe) = (draw.uniform("wte", 6 * 19), draw.uniform("wpe", 8 * 19));
        wte[19 + 17] = f32::NAN; // token 1, channel 17
        let mut out = vec![UNWRITTEN; 4 * 19];
        f(&dims, &ids, &wte, &wpe, &mut out, isa);
        for (t, row) in out.chunks(19).enumerate() {
            for (ch, x) in row.iter().enumerate() {
                assert_eq!(x.is_nan(), ids[t] == 1 && ch == 17, "{label}: token {t}, channel {ch}");
            }
        }
    }
}

#[test]
fn matmul_special_values() {
    let dims = MatmulDims::new(5, 33, 40);
    let draw = Draw::new(7, 1.0);
    for (variant, isa, label) in runs::<Matmul>() {
        let f = variant.kernel;
        let (mut a, b, bias) = (
            draw.uniform("a", 5 * 33),
            draw.uniform("b", 33 * 40),
            draw.uniform("bias", 40),
        );
        a[3 * 33 + 31] = f32::NAN;
        let mut c = vec![UNWRITTEN; 5 * 40];
        f(&dims, &a, &b, Some(&bias), &mut c, isa);
        for (i, row) in c.chunks(40).enumerate() {
            assert_eq!(row.iter().all(|x| x.is_nan()), i == 3, "{label}: row {i}");
            assert!(
                i == 3 || row.iter().all(|&x| written_finite(x)),
                "{label}: row {i} finite"
            );
        }
    }
}
