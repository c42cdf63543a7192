//! The NaN and infinity contract (stated in each op's `mod.rs`, its cases in each op's definition) as
//! the gate runs it on any variant: every built-in variant keeps it at every ISA level, and variants
//! that break it the ways kernels do are rejected by the gate, naming the case and replaying it.

use tkbench_harness::check::gate::{Selection, run_gate};
use tkbench_harness::ops::{Attention, Gelu, Op, Softmax};
use tkbench_harness::registry::Registry;
use tkbench_kernels::attention::AttentionDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Isa, IsaSupport, Kind, Variant};

#[test]
fn every_builtin_variant_keeps_the_special_value_contract_at_every_level() {
    let registry = Registry::builtin();
    for op in registry.ops() {
        assert!(
            !op.special_names().is_empty(),
            "{} states no special-value case",
            op.name()
        );
        for entry in registry.entries().filter(|e| e.op == op.name()) {
            for isa in entry.isa.levels() {
                for check in op.check_specials(entry, isa, None).unwrap() {
                    assert!(check.pass(), "{check}");
                }
            }
        }
    }
}

/// The gate's failures for the one variant `kernel` of `O`, added to the built-in registry under
/// `name`: asserts that it fails, that some failure is the special-value case `case`, and that each
/// special-value failure replays its case.
fn special_failures<O: Op>(name: &'static str, kernel: impl Into<O::Kernel>, case: &str) -> Vec<String> {
    let variant = Variant {
        name,
        kind: Kind::Scalar,
        isa: IsaSupport::Plain,
        file: "",
        tiles: &[],
        kernel: kernel.into(),
    };
    let registry = Registry::builtin().with::<O>(variant);
    let selection = Selection {
        op: Some(O::NAME),
        variant: Some(name.to_owned()),
        ..Selection::default()
    };
    let gate = run_gate(&registry, &selection, |_| {}).unwrap();
    assert!(!gate.pass(), "the gate accepted the wrong {} variant `{name}`", O::NAME);
    let specials: Vec<String> = gate.failures.into_iter().filter(|f| f.contains("special:")).collect();
    assert!(
        specials.iter().any(|f| f.contains(&format!("case `{case}`"))),
        "no special-value failure of the case `{case}`: {specials:#?}"
    );
    let replay = format!("--op {} --variant {name} --isa scalar --special {case}", O::NAME);
    assert!(specials.iter().any(|f| f.contains(&replay)), "{specials:#?}");
    specials
}

/// A softmax that reports a NaN row as zeros, as a max that skips NaN with a clamped exp does.
fn softmax_nan_as_zero(d: &SoftmaxDims, x: &[f32], out: &mut [f32], isa: Isa) {
    tkbench_kernels::softmax::scalar::softmax(d, x, out, isa);
    for o in out.iter_mut().filter(|o| o.is_nan()) {
        *o = 0.0;
    }
}

#[test]
fn a_softmax_that_hides_nan_is_rejected() {
    let failures = special_failures::<Softmax>("nan-as-zero", softmax_nan_as_zero, "nan");
    assert!(
        failures.iter().any(|f| f.contains("where the f64 reference is NaN")),
        "{failures:#?}"
    );
}

/// A softmax that leaves a row holding a special value unwritten, as an early exit does.
fn softmax_skips_special_rows(d: &SoftmaxDims, x: &[f32], out: &mut [f32], isa: Isa) {
    let mut all = vec![0.0; out.len()];
    tkbench_kernels::softmax::scalar::softmax(d, x, &mut all, isa);
    let rows = x
        .chunks(d.cols.max(1))
        .zip(out.chunks_mut(d.cols.max(1)))
        .zip(all.chunks(d.cols.max(1)));
    for ((row, o), a) in rows {
        if row.iter().all(|v| v.is_finite()) {
            o.copy_from_slice(a);
        }
    }
}

#[test]
fn a_softmax_that_skips_special_rows_is_rejected_as_unwritten() {
    let failures = special_failures::<Softmax>("skips-special-rows", softmax_skips_special_rows, "inf");
    assert!(failures.iter().any(|f| f.contains("left unwritten")), "{failures:#?}");
}

/// A gelu that gives 0 for −inf, where PyTorch gives NaN (−inf · 0).
fn gelu_zero_at_minus_infinity(x: &[f32], out: &mut [f32], isa: Isa) {
    tkbench_kernels::gelu::scalar::gelu(x, out, isa);
    for (o, &v) in out.iter_mut().zip(x) {
        if v == f32::NEG_INFINITY {
            *o = 0.0;
        }
    }
}

#[test]
fn a_gelu_that_maps_minus_infinity_to_zero_is_rejected() {
    special_failures::<Gelu>("zero-at-minus-inf", gelu_zero_at_minus_infinity, "specials");
}

/// An attention that reads every float of k, the slots of the last block of keys past the keys
/// included: right on keys in rows, and on keys in blocks whenever those slots hold numbers.
fn attention_reads_past_its_keys(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], isa: Isa) {
    tkbench_kernels::attention::scalar::attention(d, q, k, v, out, isa);
    let touched: f32 = k.iter().map(|x| 0.0 * x).sum();
    for o in out.iter_mut() {
        *o += touched;
    }
}

#[test]
fn an_attention_that_reads_past_its_keys_is_rejected_on_keys_in_blocks() {
    let failures = special_failures::<Attention>(
        "reads-past-keys",
        attention_reads_past_its_keys,
        "decode-nan-in-q-key-blocks",
    );
    assert!(
        !failures.iter().any(|f| f.contains("case `decode-nan-in-q`")),
        "with keys in rows there is nothing past the keys: {failures:#?}"
    );
}
