//! The op checker can fail: deliberately wrong kernels, each a classic bug, are rejected with a
//! message that names the case and replays it.

use pulp::{Simd, WithSimd};
use tkbench_harness::opcheck::{Shape, check, sweep};
use tkbench_kernels::attention::AttentionDims;
use tkbench_kernels::embedding::EmbeddingDims;
use tkbench_kernels::layernorm::LayerNormDims;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Isa, IsaSupport, Kernel, Kind, Op, Variant};

fn wrong(kernel: Kernel) -> Variant {
    Variant {
        name: "wrong",
        kind: Kind::Scalar,
        isa: IsaSupport::Plain,
        file: "",
        kernel,
    }
}

/// Runs `variant` over `shapes` at every level it supports; returns the first failure's text.
fn first_failure(variant: &Variant, shapes: &[Shape], magnitude: f32) -> Option<String> {
    for isa in variant.levels() {
        for (i, shape) in shapes.iter().enumerate() {
            let result = check(variant, isa, shape, 100 + i as u64, magnitude);
            if !result.pass {
                return Some(result.to_string());
            }
        }
    }
    None
}

fn assert_rejected(variant: Variant, shapes: &[Shape], magnitude: f32) {
    let failure = first_failure(&variant, shapes, magnitude).expect("the checker accepted a wrong kernel");
    assert!(failure.contains("replay: cargo xtask opcheck --op"), "{failure}");
    assert!(failure.contains("seed") && failure.contains("shape"), "{failure}");
}

/// Attention with knobs for three classic bugs: keys visible past the diagonal, the scale, and the
/// position of the queries.
fn attention_with(
    dims: &AttentionDims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    extra_visible: usize,
    scale: f32,
) {
    let (t, c, hs) = (dims.queries, dims.channels(), dims.head_size);
    let s = dims.keys();
    for h in 0..dims.heads {
        for i in 0..t {
            let visible = (dims.pos0 + i + 1 + extra_visible).min(s);
            let scores: Vec<f32> = (0..visible)
                .map(|j| {
                    (0..hs)
                        .map(|d| q[i * c + h * hs + d] * k[j * c + h * hs + d])
                        .sum::<f32>()
                        * scale
                })
                .collect();
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = scores.iter().map(|x| (x - max).exp()).collect();
            let sum: f32 = e.iter().sum();
            for d in 0..hs {
                out[i * c + h * hs + d] = (0..visible).map(|j| e[j] * v[j * c + h * hs + d]).sum::<f32>() / sum;
            }
        }
    }
}

#[test]
fn causal_mask_off_by_one_is_rejected() {
    fn off_by_one(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], _: Isa) {
        attention_with(d, q, k, v, out, 1, d.scale);
    }
    assert_rejected(wrong(Kernel::Attention(off_by_one)), &sweep(Op::Attention), 1.0);
}

#[test]
fn wrong_attention_scale_is_rejected() {
    fn unscaled_by_root(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], _: Isa) {
        attention_with(d, q, k, v, out, 0, 1.0 / d.head_size as f32);
    }
    assert_rejected(wrong(Kernel::Attention(unscaled_by_root)), &sweep(Op::Attention), 1.0);
    // The knob-free twin passes: the rejection above is the bug's, not the test kernel's.
    fn right(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], _: Isa) {
        attention_with(d, q, k, v, out, 0, d.scale);
    }
    assert_eq!(
        first_failure(&wrong(Kernel::Attention(right)), &sweep(Op::Attention), 1.0),
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
    let shapes = [Shape::Softmax { rows: 3, cols: 65 }];
    assert_eq!(
        first_failure(&wrong(Kernel::Softmax(no_max)), &shapes, 1.0),
        None,
        "equal maths at small inputs"
    );
    assert_rejected(wrong(Kernel::Softmax(no_max)), &shapes, 1e4);
}

#[test]
fn wrong_layernorm_epsilon_is_rejected() {
    fn eps_1e3(d: &LayerNormDims, x: &[f32], g: &[f32], b: &[f32], out: &mut [f32], isa: Isa) {
        let wrong_eps = LayerNormDims { eps: 1e-3, ..*d };
        tkbench_kernels::layernorm::scalar::layernorm(&wrong_eps, x, g, b, out, isa);
    }
    assert_rejected(wrong(Kernel::LayerNorm(eps_1e3)), &sweep(Op::LayerNorm), 1.0);
}

#[test]
fn swapped_layernorm_gain_and_shift_are_rejected() {
    fn swapped(d: &LayerNormDims, x: &[f32], g: &[f32], b: &[f32], out: &mut [f32], isa: Isa) {
        tkbench_kernels::layernorm::scalar::layernorm(d, x, b, g, out, isa);
    }
    assert_rejected(wrong(Kernel::LayerNorm(swapped)), &sweep(Op::LayerNorm), 1.0);
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
        ..wrong(Kernel::Gelu(no_tail))
    };
    let widest = *Isa::available().last().unwrap();
    let failure = (1..=17)
        .find_map(|n| {
            let result = check(&variant, widest, &Shape::Gelu { n }, 1, 1.0);
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
    assert_rejected(wrong(Kernel::Embedding(ignores_pos0)), &sweep(Op::Embedding), 1.0);
}

#[test]
fn forgotten_matmul_bias_is_rejected() {
    fn no_bias(d: &MatmulDims, a: &[f32], b: &[f32], _bias: Option<&[f32]>, c: &mut [f32], isa: Isa) {
        tkbench_kernels::matmul::scalar::matmul(d, a, b, None, c, isa);
    }
    assert_rejected(wrong(Kernel::Matmul(no_bias)), &sweep(Op::Matmul), 1.0);
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
    let shape = Shape::Gelu { n: 16 };
    for (kernel, index) in [(two_errors as fn(&[f32], &mut [f32], Isa), 7), (and_nan, 9)] {
        let result = check(&wrong(Kernel::Gelu(kernel)), Isa::Scalar, &shape, 1, 1.0);
        assert!(!result.pass, "{result}");
        let worst = result.worst.expect("a worst element");
        assert_eq!(worst.index, index, "{result}");
    }
}
