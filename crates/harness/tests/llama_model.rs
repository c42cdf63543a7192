//! The kernel-driven Llama: bit-identical for every thread count, in a prefill and in decode steps
//! through the cache (whose one query splits by whole groups of heads), the reference model's errors
//! for bad tokens, and a model-level gate that names the op of a wrong variant.

use tkbench_harness::check::golden::{Case, workspace_golden_dir};
use tkbench_harness::check::verify::{Subject, verify_case};
use tkbench_harness::model::llama::{LlamaKernelModel, LlamaWeights};
use tkbench_harness::ops::Rope;
use tkbench_harness::registry::{KernelSet, Registry};
use tkbench_kernels::rope::RopeDims;
use tkbench_kernels::{Isa, IsaSupport, Kind, Variant};
use tkbench_reference::LlamaConfig;

fn case(name: &str) -> Case {
    Case::load(&workspace_golden_dir().join("cases").join(name)).unwrap()
}

#[test]
fn output_is_bit_identical_for_every_thread_count() {
    // llama-group-3 has 6 query heads over 2 key/value heads: a decode step splits into 1 or 2
    // groups of 3 heads; llama-odd-widths has queries narrower than the residual.
    for name in ["llama-group-3", "llama-odd-widths", "llama-multi-query"] {
        let case = case(name);
        let checkpoint = case.checkpoint_of::<LlamaConfig>().unwrap();
        let weights = LlamaWeights::new(&checkpoint);
        let tokens = &case.manifest.tokens;
        for spec in ["scalar", "fastest", "attention=simd,rmsnorm=blocked,softmax=blocked"] {
            let set = KernelSet::parse(&Registry::builtin(), spec).unwrap();
            for isa in Isa::available() {
                let one = LlamaKernelModel::new(&weights, &set, isa, 1);
                let prefill = one.forward(tokens).unwrap();
                let mut cache = one.new_cache();
                one.forward_cached(&tokens[..tokens.len() - 1], &mut cache).unwrap();
                let decode = one.forward_cached(&tokens[tokens.len() - 1..], &mut cache).unwrap();
                for threads in [2, 3, 4] {
                    let label = format!("{name}: {spec} at {isa} on {threads} threads");
                    let many = LlamaKernelModel::new(&weights, &set, isa, threads);
                    let other = many.forward(tokens).unwrap();
                    assert!(prefill.logits == other.logits, "{label}: prefill logits differ");
                    assert!(prefill.hidden == other.hidden, "{label}: prefill hidden states differ");
                    let mut cache = many.new_cache();
                    many.forward_cached(&tokens[..tokens.len() - 1], &mut cache).unwrap();
                    let other = many.forward_cached(&tokens[tokens.len() - 1..], &mut cache).unwrap();
                    assert!(decode.logits == other.logits, "{label}: decode logits differ");
                    assert!(decode.probs == other.probs, "{label}: decode probabilities differ");
                }
            }
        }
    }
}

#[test]
fn bad_tokens_get_the_reference_errors() {
    let case = case("llama-tiny");
    let checkpoint = case.checkpoint_of::<LlamaConfig>().unwrap();
    let weights = LlamaWeights::new(&checkpoint);
    let model = LlamaKernelModel::new(&weights, &KernelSet::fastest(&Registry::builtin()), Isa::Scalar, 1);
    let error = model.forward(&[1, 64]).unwrap_err();
    assert!(
        matches!(error, tkbench_reference::Error::TokenOutOfRange { id: 64, .. }),
        "{error}"
    );
    let error = model.forward(&[1; 33]).unwrap_err();
    assert!(
        matches!(error, tkbench_reference::Error::ContextOverflow { .. }),
        "{error}"
    );
    let error = model.forward(&[]).unwrap_err();
    assert!(matches!(error, tkbench_reference::Error::EmptyPrompt), "{error}");
}

/// A rope that rotates every row at position 0's angles past the first decode step: right for a
/// prefill from the start, wrong for a chunk or a decode step after a cache.
fn rope_ignores_pos0(d: &RopeDims, x: &[f32], cos: &[f32], sin: &[f32], out: &mut [f32], isa: Isa) {
    tkbench_kernels::rope::scalar::rope(&RopeDims { pos0: 0, ..*d }, x, cos, sin, out, isa)
}

#[test]
fn a_rope_that_ignores_the_cache_offset_fails_the_model_level_and_is_named() {
    let variant = Variant {
        name: "ignores-pos0",
        // Not scalar: the diagnosis returns the set's non-scalar variants to scalar one at a time.
        kind: Kind::Simd,
        isa: IsaSupport::Plain,
        file: "",
        tiles: &[],
        kernel: (rope_ignores_pos0 as tkbench_kernels::rope::RopeFn).into(),
    };
    let registry = Registry::builtin().with::<Rope>(variant);
    let entry = registry.entries().find(|e| e.name == "ignores-pos0").unwrap();
    let set = KernelSet::fastest(&registry).with(entry);
    let case = case("llama-multi-query");
    let checkpoint = case.any_checkpoint().unwrap();
    let rows = verify_case(&case, &checkpoint, &[Subject::Kernels(set, Isa::Scalar)], 1, |_| {}).unwrap();
    let row = &rows[0];
    assert!(!row.pass, "a rope that ignores pos0 passed the decode steps: {row:?}");
    let diagnosis = row.diagnosis.as_deref().unwrap();
    assert!(
        diagnosis.contains("rope variant `ignores-pos0` is at fault"),
        "{diagnosis}"
    );
}
