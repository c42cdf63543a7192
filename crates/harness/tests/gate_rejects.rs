//! The op-level gate rejects kernels that game a check: each wrong variant here is registered only in
//! this test, run through the same gate `cargo xtask verify` runs, and must fail with a message that
//! names the op, the check at fault and a replay command.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tkbench_harness::check::gate::{Selection, run_gate};
use tkbench_harness::check::opcheck::{Verdict, check};
use tkbench_harness::ops::{Gelu, Op, Softmax};
use tkbench_harness::registry::Registry;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Isa, IsaSupport, Kind, Tile, Variant};

/// `kernel` as a plain variant of `O` named `name`, from outside the registry.
fn wrong<O: Op>(name: &'static str, kernel: impl Into<O::Kernel>) -> Variant<O::Kernel> {
    Variant {
        name,
        kind: Kind::Scalar,
        isa: IsaSupport::Plain,
        file: "",
        tiles: &[],
        kernel: kernel.into(),
    }
}

/// Runs the gate on the one variant `name` of `O` added to the built-in registry, and returns its
/// failures, asserting that it failed.
fn gate_failures<O: Op>(variant: Variant<O::Kernel>) -> Vec<String> {
    let name = variant.name;
    let registry = Registry::builtin().with::<O>(variant);
    let selection = Selection {
        op: Some(O::NAME),
        variant: Some(name.to_owned()),
        ..Selection::default()
    };
    let gate = run_gate(&registry, &selection, |_| {}).expect("a valid selection");
    assert!(!gate.pass(), "the gate accepted the wrong {} variant `{name}`", O::NAME);
    assert!(!gate.failures.is_empty());
    for failure in &gate.failures {
        assert!(
            failure.contains(&format!(
                "replay: cargo xtask opcheck --op {} --variant {name}",
                O::NAME
            )),
            "{failure}"
        );
    }
    gate.failures
}

/// Asserts that some failure names the check `check` (its findings start with `check:`).
fn names_check(failures: &[String], check: &str) {
    assert!(
        failures.iter().any(|f| f.contains(&format!("{check}:"))),
        "no failure names the `{check}` check: {failures:#?}"
    );
}

/// The last output of a gelu that remembers it by the address of its input.
static BY_ADDRESS: Mutex<Option<(usize, Vec<f32>)>> = Mutex::new(None);

/// A gelu that returns its last result again when called on the same input address: right on every
/// fresh allocation, stale when new values arrive in the same buffer.
fn gelu_cached_by_address(x: &[f32], out: &mut [f32], isa: Isa) {
    let mut cache = BY_ADDRESS.lock().unwrap();
    if let Some((address, last)) = cache.as_ref()
        && *address == x.as_ptr() as usize
        && last.len() == out.len()
    {
        out.copy_from_slice(last);
        return;
    }
    tkbench_kernels::gelu::scalar::gelu(x, out, isa);
    *cache = Some((x.as_ptr() as usize, out.to_vec()));
}

#[test]
fn a_result_kept_by_input_address_is_rejected_by_the_fresh_check() {
    names_check(
        &gate_failures::<Gelu>(wrong::<Gelu>("by-address", gelu_cached_by_address)),
        "fresh",
    );
}

/// The last output of a gelu that remembers it by the length of its input.
static BY_LENGTH: Mutex<Option<Vec<f32>>> = Mutex::new(None);

/// A gelu that returns its last result again for an input of the same length.
fn gelu_cached_by_length(x: &[f32], out: &mut [f32], isa: Isa) {
    let mut cache = BY_LENGTH.lock().unwrap();
    if let Some(last) = cache.as_ref().filter(|last| last.len() == out.len()) {
        out.copy_from_slice(last);
        return;
    }
    tkbench_kernels::gelu::scalar::gelu(x, out, isa);
    *cache = Some(out.to_vec());
}

#[test]
fn a_result_kept_by_input_length_is_rejected_by_the_fresh_check() {
    names_check(
        &gate_failures::<Gelu>(wrong::<Gelu>("by-length", gelu_cached_by_length)),
        "fresh",
    );
}

/// Calls of the drifting gelu so far.
static CALLS: AtomicUsize = AtomicUsize::new(0);

/// A gelu with state: every other call moves its first element by one ulp, within every bound.
fn gelu_drifting(x: &[f32], out: &mut [f32], isa: Isa) {
    tkbench_kernels::gelu::scalar::gelu(x, out, isa);
    if CALLS.fetch_add(1, Ordering::Relaxed) % 2 == 1
        && let Some(first) = out.first_mut()
    {
        *first = f32::from_bits(first.to_bits() ^ 1);
    }
}

#[test]
fn a_kernel_whose_result_depends_on_its_call_count_is_rejected_by_the_repeat_check() {
    names_check(
        &gate_failures::<Gelu>(wrong::<Gelu>("drifting", gelu_drifting)),
        "repeat",
    );
}

/// A softmax whose rows come out one ulp different when it is called on several rows than on one.
fn softmax_by_block(d: &SoftmaxDims, x: &[f32], out: &mut [f32], isa: Isa) {
    tkbench_kernels::softmax::scalar::softmax(d, x, out, isa);
    if d.rows > 1 {
        for o in out.iter_mut() {
            *o = f32::from_bits(o.to_bits() ^ 1);
        }
    }
}

#[test]
fn rows_that_depend_on_their_block_are_rejected_by_the_gate_split_check() {
    names_check(
        &gate_failures::<Softmax>(wrong::<Softmax>("by-block", softmax_by_block)),
        "split",
    );
}

/// A "softmax" that writes 1 everywhere: right only when each row has one element.
fn softmax_of_ones(_: &SoftmaxDims, _: &[f32], out: &mut [f32], _: Isa) {
    out.fill(1.0);
}

#[test]
fn a_case_a_trivial_output_passes_is_mistrusted_and_the_trivial_kernel_fails_the_gate() {
    let variant = wrong::<Softmax>("ones", softmax_of_ones);
    let one_column = Softmax::shape(&[3, 1]).unwrap();
    let result = check::<Softmax>(&variant, Isa::Scalar, &one_column, 7, 1.0);
    assert_eq!(result.verdict(), Verdict::Mistrusted, "{result}");
    assert!(result.to_string().contains("would also meet every bound"), "{result}");

    let scalar = &Softmax::variants()[0];
    let two_columns = Softmax::shape(&[3, 2]).unwrap();
    let result = check::<Softmax>(scalar, Isa::Scalar, &two_columns, 7, 1.0);
    assert_eq!(result.verdict(), Verdict::Pass, "{result}");

    gate_failures::<Softmax>(variant);
}

#[test]
fn a_correct_variant_passes_every_check_of_the_gate() {
    let registry = Registry::builtin();
    let selection = Selection {
        op: Some(Softmax::NAME),
        variant: Some("scalar".into()),
        ..Selection::default()
    };
    let gate = run_gate(&registry, &selection, |_| {}).unwrap();
    assert!(gate.pass(), "{:#?}", gate.failures);
}

/// Calls of the tiring gelu so far.
static TIRING_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A gelu that is right for its first calls, as many as a check makes, and then writes zeros: only
/// a re-check of what the timed calls left can see it.
fn gelu_tiring(x: &[f32], out: &mut [f32], isa: Isa) {
    if TIRING_CALLS.fetch_add(1, Ordering::Relaxed) < 8 {
        tkbench_kernels::gelu::scalar::gelu(x, out, isa);
    } else {
        out.fill(0.0);
    }
}

#[test]
fn a_kernel_that_goes_wrong_in_the_timing_loop_fails_the_bench_re_check() {
    use tkbench_harness::measure::bench::{BenchPlan, bench_shape};
    use tkbench_harness::model::threads::Workers;

    let registry = Registry::builtin().with::<Gelu>(wrong::<Gelu>("tiring", gelu_tiring));
    let plan = BenchPlan {
        levels: vec![Isa::Scalar],
        workers: std::sync::Arc::new(Workers::new(1)),
    };
    let shape = Gelu::shape(&[3072]).unwrap();
    let mut bench = bench_shape::<Gelu>(&registry, &shape, &plan);
    for call in &mut bench.calls {
        assert!(
            call.recheck().is_err(),
            "{}: a call never timed cannot pass",
            call.function
        );
        for _ in 0..20 {
            (call.run)();
        }
    }
    let recheck = |name: &str| {
        let call = bench.calls.iter().find(|c| c.function == name).expect(name);
        call.recheck()
    };
    assert_eq!(recheck("scalar"), Ok(()));
    let why = recheck("tiring").expect_err("the re-check accepted zeros");
    assert!(why.contains("after timing, element"), "{why}");
}

/// The chunk a chunked softmax below works in.
const CHUNK: usize = 128;

/// A softmax that leaves the last element out of the sum when a row ends one past its second chunk:
/// a tail bug of a later tile, on a length no hand-written sweep lists, which the variant's declared
/// tile makes the gate meet.
fn softmax_with_a_second_chunk_tail_bug(d: &SoftmaxDims, x: &[f32], out: &mut [f32], isa: Isa) {
    tkbench_kernels::softmax::scalar::softmax(d, x, out, isa);
    if d.cols == 2 * CHUNK + 1 {
        for row in out.chunks_exact_mut(d.cols) {
            let dropped = row[d.cols - 1];
            for o in row.iter_mut() {
                *o /= 1.0 - dropped;
            }
            row[d.cols - 1] = 0.0;
        }
    }
}

#[test]
fn a_bug_at_a_declared_tile_edge_is_met_by_the_shapes_the_tile_gives() {
    static TILES: &[Tile] = &[Tile::elements("cols", CHUNK)];
    let mut variant = wrong::<Softmax>("chunk-tail", softmax_with_a_second_chunk_tail_bug);
    let untiled = Registry::builtin().with::<Softmax>(variant.clone());
    let selection = Selection {
        op: Some(Softmax::NAME),
        variant: Some("chunk-tail".into()),
        ..Selection::default()
    };
    let gate = run_gate(&untiled, &selection, |_| {}).unwrap();
    assert!(
        gate.pass(),
        "the op's own sweep has no row of 2 * 128 + 1: {:#?}",
        gate.failures
    );

    variant.tiles = TILES;
    let failures = gate_failures::<Softmax>(variant);
    assert!(failures.iter().any(|f| f.contains("cols=257")), "{failures:#?}");
}
