//! Properties over shapes, values and seeds: every variant of every op, at the scalar level and the
//! widest level, matches float64 within its op's bound on random small shapes that its definition
//! draws, with inputs under a random one of the profiles the op takes. The default run draws a few dozen cases per op; `PROPTEST_CASES=2000 cargo test -p
//! tkbench-harness --test properties` runs the long search.

use proptest::prelude::*;
use tkbench_harness::ops::OPS;
use tkbench_harness::registry::Registry;
use tkbench_kernels::Isa;

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

/// Checks every variant of every op at the scalar and the widest level on the random case of
/// `shape_seed`, with inputs of `seed` (which also picks the profile).
fn all_variants_pass(shape_seed: u64, seed: u64) -> Result<(), TestCaseError> {
    let registry = Registry::builtin();
    let widest = Isa::best();
    for op in OPS {
        let (shape, magnitude) = op.random_case(shape_seed);
        let profile = op.profiles()[(seed % op.profiles().len() as u64) as usize];
        for variant in registry.of(op.name()) {
            let mut levels = variant.isa.levels();
            levels.retain(|&l| l == Isa::Scalar || l == widest);
            for isa in levels {
                let result = op
                    .check(variant, isa, &shape, seed, magnitude, profile)
                    .map_err(TestCaseError::fail)?;
                prop_assert!(result.pass, "{} (shape seed {shape_seed})", result);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_op_matches_f64(shape_seed: u64, seed: u64) {
        all_variants_pass(shape_seed, seed)?;
    }
}

#[test]
fn random_cases_are_valid_and_vary() {
    for op in OPS {
        let shapes: std::collections::BTreeSet<String> = (0..50).map(|s| op.random_case(s).0).collect();
        assert!(
            shapes.len() > 20,
            "{}: only {} distinct random shapes",
            op.name(),
            shapes.len()
        );
        for shape in &shapes {
            assert_eq!(op.parse_shape(shape).as_ref(), Ok(shape), "{}", op.name());
        }
    }
}
