//! The op checker can fail: deliberately wrong kernels, each a classic bug, are rejected with a
//! message that names the case and replays it.

use pulp::{Simd, WithSimd};
use tkbench_harness::check::opcheck::{check, rows_alone};
use tkbench_harness::ops::gelu::GeluShape;
use tkbench_harness::ops::{Attention, Embedding, Gelu, LayerNorm, Matmul, Op, Softmax};
use tkbench_kernels::attention::AttentionDims;
use tkbench_kernels::embedding::EmbeddingDims;
use tkbench_kernels::gelu::GeluFn;
use tkbench_kernels::layernorm::LayerNormDims;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Isa, IsaSupport, Kind, Variant};

/// `kernel` as a variant of `O` from outside the registry: scalar, plain Rust.
fn wrong<O: Op>(kernel: impl Into<O::Kernel>) -> Variant<O::Kernel> {
    Variant {
        name: "wrong",
        kind: Kind::Scalar,
        isa: IsaSupport::Plain,
        file: "",
        tiles: &[],
        kernel: kernel.into(),
    }
}

/// Runs `variant` over `shapes` at every level it supports; returns the first failure's text.
fn first_failure<O: Op>(variant: &Variant<O::Kernel>, shapes: &[O::Shape], magnitude: f32) -> Option<String> {
    for isa in variant.levels() {
        for (i, shape) in shapes.iter().enumerate() {
            let result = check::<O>(variant, isa, shape, 100 + i as u64, magnitude);
            if !result.pass {
                return Some(result.to_string());
            }
        }
    }
    None
}

fn assert_rejected<O: Op>(variant: Variant<O::Kernel>, shapes: &[O::Shape], magnitude: f32) {
    let failure = first_failure::<O>(&variant, shapes, magnitude).expect("the checker accepted a wrong kernel");
    assert!(failure.contains("replay: cargo xtask opcheck --op"), "{failure}");
    assert!(failure.contains("seed") && failure.contains("shape"), "{failure}");
}

/// Attention (keys in either layout) with knobs for three classic bugs: keys visible past the
/// diagonal, the scale, and the position of the queries.
fn attention_with(
    dims: &AttentionDims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    extra_visible: usize,
    scale: f32,
) {
    let (t, c, ckv, hs) = (dims.queries, dims.channels(), dims.kv_channels(), dims.head_size);
    let s = dims.keys();
    for h in 0..dims.heads {
        let kv_col = dims.kv_column(h);
        for i in 0..t {
            let visible = (dims.pos0 + i + 1 + extra_visible).min(s);
            let scores: Vec<f32> = (0..visible)
                .map(|j| {
                    (0..hs)
                        .map(|d| q[i * c + h * hs + d] * k[dims.key_index(j, kv_col + d)])
                        .sum::<f32>()
                        * scale
                })
                .collect();
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = scores.iter().map(|x| (x - max).exp()).collect();
            let sum: f32 = e.iter().sum();
            for d in 0..hs {
                out[i * c + h * hs + d] = (0..visible).map(|j| e[j] * v[j * ckv + kv_col + d]).sum::<f32>() / sum;
            }
        }
    }
}

#[test]
fn causal_mask_off_by_one_is_rejected() {
    fn off_by_one(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], _: Isa) {
        attention_with(d, q, k, v, out, 1, d.scale);
    }
    assert_rejected::<Attention>(wrong::<Attention>(off_by_one), &Attention::sweep(), 1.0);
}

#[test]
fn wrong_attention_scale_is_rejected() {
    fn unscaled_by_root(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], _: Isa) {
        attention_with(d, q, k, v, out, 0, 1.0 / d.head_size as f32);
    }
    assert_rejected::<Attention>(wrong::<Attention>(unscaled_by_root), &Attention::sweep(), 1.0);
    // The knob-free twin passes: the rejection above is the bug's, not the test kernel's.
    fn right(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], _: Isa) {
        attention_with(d, q, k, v, out, 0, d.scale);
    }
    assert_eq!(
        first_failure::<Attention>(&wrong::<Attention>(right), &Attention::sweep(), 1.0),
        None
    );
}

#[test]
fn softmax_without_max_subtraction_is_rejected_at_large_magnitudes() {
    fn no_max(d: &SoftmaxDims, x: &[f32], out: &mut [f32], _: Isa) {
        for (row, o) in x.chunks(d.cols.max(1)).zip(out.chunks_mut(d.cols.max(1))) {
            let sum: f32 = row.iter().map(|v| v.exp()).sum();
            for (o, v) in o.iter_mut().zip(row) {
                *o = v.exp() / sum;
            }
        }
    }
    let shapes = [SoftmaxDims { rows: 3, cols: 65 }];
    assert_eq!(
        first_failure::<Softmax>(&wrong::<Softmax>(no_max), &shapes, 1.0),
        None,
        "equal maths at small inputs"
    );
    assert_rejected::<Softmax>(wrong::<Softmax>(no_max), &shapes, 1e4);
}

#[test]
fn wrong_layernorm_epsilon_is_rejected() {
    fn eps_1e3(d: &LayerNormDims, x: &[f32], g: &[f32], b: &[f32], out: &mut [f32], isa: Isa) {
        let wrong_eps = LayerNormDims { eps: 1e-3, ..*d };
        tkbench_kernels::layernorm::scalar::layernorm(&wrong_eps, x, g, b, out, isa);
    }
    assert_rejected::<LayerNorm>(wrong::<LayerNorm>(eps_1e3), &LayerNorm::sweep(), 1.0);
}

#[test]
fn swapped_layernorm_gain_and_shift_are_rejected() {
    fn swapped(d: &LayerNormDims, x: &[f32], g: &[f32], b: &[f32], out: &mut [f32], isa: Isa) {
        tkbench_kernels::layernorm::scalar::layernorm(d, x, b, g, out, isa);
    }
    assert_rejected::<LayerNorm>(wrong::<LayerNorm>(swapped), &LayerNorm::sweep(), 1.0);
}

#[test]
fn skipped_simd_tail_is_rejected() {
    struct HeadOnly<'a> {
        x: &'a [f32],
        out: &'a mut [f32],
    }
    impl WithSimd for HeadOnly<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            let (x, _) = S::as_simd_f32s(self.x);
            let (out, _) = S::as_mut_simd_f32s(self.out);
            for (o, &v) in out.iter_mut().zip(x) {
                *o = tkbench_kernels::vmath::gelu(s, v);
            }
        }
    }
    fn no_tail(x: &[f32], out: &mut [f32], isa: Isa) {
        isa.run(HeadOnly { x, out });
    }
    let variant = Variant {
        isa: IsaSupport::Dispatch,
        ..wrong::<Gelu>(no_tail)
    };
    let widest = *Isa::available().last().unwrap();
    let failure = (1..=17)
        .find_map(|n| {
            let result = check::<Gelu>(&variant, widest, &GeluShape { n }, 1, 1.0);
            (!result.pass).then(|| result.to_string())
        })
        .expect("an unwritten tail element must fail (the output is poisoned with NaN)");
    assert!(failure.contains("out NaN"), "{failure}");
}

#[test]
fn wrong_position_offset_is_rejected() {
    fn ignores_pos0(d: &EmbeddingDims, ids: &[u32], wte: &[f32], wpe: &[f32], out: &mut [f32], isa: Isa) {
        let at_zero = EmbeddingDims { pos0: 0, ..*d };
        tkbench_kernels::embedding::scalar::embedding(&at_zero, ids, wte, wpe, out, isa);
    }
    assert_rejected::<Embedding>(wrong::<Embedding>(ignores_pos0), &Embedding::sweep(), 1.0);
}

#[test]
fn forgotten_matmul_bias_is_rejected() {
    fn no_bias(d: &MatmulDims, a: &[f32], b: &[f32], _bias: Option<&[f32]>, c: &mut [f32], isa: Isa) {
        tkbench_kernels::matmul::scalar::matmul(d, a, b, None, c, isa);
    }
    assert_rejected::<Matmul>(wrong::<Matmul>(no_bias), &Matmul::sweep(), 1.0);
}

/// A failed check reports its worst element, not the first one out of bound, and a NaN above any
/// finite error.
#[test]
fn the_reported_element_is_the_worst_one() {
    // Two elements out of bound, the later one far worse.
    fn two_errors(x: &[f32], out: &mut [f32], isa: Isa) {
        tkbench_kernels::gelu::scalar::gelu(x, out, isa);
        out[2] += 1e-2;
        out[7] += 1.0;
    }
    // The same, and a NaN after them.
    fn and_nan(x: &[f32], out: &mut [f32], isa: Isa) {
        two_errors(x, out, isa);
        out[9] = f32::NAN;
    }
    let shape = GeluShape { n: 16 };
    for (kernel, index) in [(two_errors as GeluFn, 7), (and_nan, 9)] {
        let result = check::<Gelu>(&wrong::<Gelu>(kernel), Isa::Scalar, &shape, 1, 1.0);
        assert!(!result.pass, "{result}");
        let worst = result.worst.expect("a worst element");
        assert_eq!(worst.index, index, "{result}");
    }
}

/// A kernel whose rows come out one ulp different when it is called on several rows than on one:
/// within every bound of the sweep, so only the split check can see it, and it must.
#[test]
fn rows_that_depend_on_their_block_are_rejected_by_the_split_check() {
    fn by_block(d: &SoftmaxDims, x: &[f32], out: &mut [f32], isa: Isa) {
        tkbench_kernels::softmax::scalar::softmax(d, x, out, isa);
        if d.rows > 1 {
            for o in out.iter_mut() {
                *o = f32::from_bits(o.to_bits() ^ 1);
            }
        }
    }
    let variant = wrong::<Softmax>(by_block);
    assert_eq!(
        first_failure::<Softmax>(&variant, &Softmax::sweep(), 1.0),
        None,
        "one ulp is within the sweep's bound"
    );
    let failures: Vec<String> = Softmax::split_shapes()
        .iter()
        .flat_map(|shape| rows_alone::<Softmax>(&variant, Isa::Scalar, shape, 1))
        .collect();
    assert!(
        !failures.is_empty(),
        "the split check accepted rows that depend on their block"
    );
    assert!(
        failures[0].starts_with("softmax wrong at scalar: shape rows="),
        "{}",
        failures[0]
    );
}
