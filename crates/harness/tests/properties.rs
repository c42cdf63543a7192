//! Properties over shapes, values and seeds: every variant, at the scalar level and the widest level,
//! matches float64 within its op's bound. The default run draws a few dozen cases per property;
//! `PROPTEST_CASES=2000 cargo test -p tkbench-harness --test properties` runs the long search.

use proptest::prelude::*;
use tkbench_harness::opcheck::{Shape, check};
use tkbench_kernels::{Isa, Op, variants_of};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(24);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Checks every variant of the shape's op at the scalar and the widest level.
fn all_variants_pass(shape: Shape, seed: u64, magnitude: f32) -> Result<(), TestCaseError> {
    let widest = Isa::best();
    for variant in variants_of(shape.op()) {
        let mut levels = variant.levels();
        levels.retain(|&l| l == Isa::Scalar || l == widest);
        for isa in levels {
            let result = check(variant, isa, &shape, seed, magnitude);
            prop_assert!(result.pass, "{}", result);
        }
    }
    Ok(())
}

fn magnitude() -> impl Strategy<Value = f32> {
    prop_oneof![Just(1.0f32), Just(30.0), Just(1e4), 0.01f32..3.0]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn softmax_matches_f64(rows in 1usize..4, cols in 1usize..400, seed: u64, magnitude in magnitude()) {
        all_variants_pass(Shape::Softmax { rows, cols }, seed, magnitude)?;
    }

    #[test]
    fn layernorm_matches_f64(rows in 1usize..6, channels in 1usize..300, seed: u64, magnitude in magnitude()) {
        all_variants_pass(Shape::LayerNorm { rows, channels }, seed, magnitude)?;
    }

    #[test]
    fn gelu_matches_f64(n in 0usize..300, seed: u64, magnitude in prop_oneof![Just(1.0f32), Just(8.0), Just(1e4)]) {
        all_variants_pass(Shape::Gelu { n }, seed, magnitude)?;
    }

    #[test]
    fn attention_matches_f64(
        queries in 1usize..40, pos0 in 0usize..80, heads in 1usize..4, head_size in 1usize..70,
        seed: u64, magnitude in prop_oneof![Just(1.0f32), 0.1f32..3.0],
    ) {
        all_variants_pass(Shape::Attention { queries, pos0, heads, head_size }, seed, magnitude)?;
    }

    #[test]
    fn matmul_matches_f64(m in 1usize..40, k in 1usize..300, n in 1usize..80, bias: bool, seed: u64, magnitude in magnitude()) {
        all_variants_pass(Shape::Matmul { m, k, n, bias }, seed, magnitude)?;
    }

    #[test]
    fn embedding_matches_f64(tokens in 0usize..20, channels in 1usize..200, pos0 in 0usize..10, seed: u64, magnitude in magnitude()) {
        all_variants_pass(Shape::Embedding { tokens, channels, vocab: 31, positions: 30, pos0 }, seed, magnitude)?;
    }
}

/// The property of each op; the match has no wildcard, so a new op does not compile without one.
fn property_of(op: Op) -> &'static str {
    match op {
        Op::Embedding => "embedding_matches_f64",
        Op::LayerNorm => "layernorm_matches_f64",
        Op::Softmax => "softmax_matches_f64",
        Op::Attention => "attention_matches_f64",
        Op::Matmul => "matmul_matches_f64",
        Op::Gelu => "gelu_matches_f64",
    }
}

#[test]
fn every_op_has_a_property() {
    let source = include_str!("properties.rs");
    for op in Op::ALL {
        let name = property_of(op);
        assert!(
            source.contains(&format!("fn {name}(")),
            "{}: no property `{name}` in this file",
            op.name()
        );
    }
}
