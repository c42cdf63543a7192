//! The kernel-driven model: bit-identical for every thread count and on huge or small pages, decode
//! equal to prefill, the same errors as the reference model for bad tokens, and a verification gate
//! that fails when a wrong variant is registered.

use tkbench_harness::check::golden::{Case, workspace_golden_dir};
use tkbench_harness::check::verify::{Filter, plan, verify_case};
use tkbench_harness::model::{KernelModel, Weights};
use tkbench_harness::ops::Attention;
use tkbench_harness::registry::KernelSet;
use tkbench_harness::registry::Registry;
use tkbench_kernels::attention::{AttentionDims, AttentionFn};
use tkbench_kernels::{Isa, IsaSupport, Kind, Variant};

fn case(name: &str) -> Case {
    Case::load(&workspace_golden_dir().join("cases").join(name)).unwrap()
}

#[test]
fn output_is_bit_identical_for_every_thread_count() {
    // odd-widths has T = 13: 4 threads split rows 4 + 4 + 4 + 1 and 5 threads 3 + 3 + 3 + 3 + 1, so
    // the blocked matmul runs both its packed path and its few-rows path on one input. One token
    // makes every matmul a single row, which threads split by columns (n = 135 of odd-widths' c_attn
    // is two blocks on 2 threads, 64 + 64 + 7 on 3).
    for name in ["full-context", "odd-widths"] {
        let case = case(name);
        let checkpoint = case.checkpoint().unwrap();
        let weights = Weights::new(&checkpoint);
        let tokens = &case.manifest.tokens;
        for spec in [
            "scalar",
            "fastest",
            "matmul=matrixmultiply",
            "attention=simd,layernorm=blocked,softmax=blocked",
        ] {
            let set = KernelSet::parse(&Registry::builtin(), spec).unwrap();
            for isa in Isa::available() {
                // All tokens (rows split), and one token (one-row matmuls split by columns).
                for tokens in [&tokens[..], &tokens[..1]] {
                    let one = KernelModel::new(&weights, &set, isa, 1).forward(tokens).unwrap();
                    for threads in [2, 3, 4, 5] {
                        let many = KernelModel::new(&weights, &set, isa, threads).forward(tokens).unwrap();
                        let label = format!("{name}, {} tokens: {spec} at {isa} on {threads} threads", tokens.len());
                        assert!(one.logits == many.logits, "{label}: logits differ");
                        assert!(one.probs == many.probs, "{label}: probabilities differ");
                        assert!(one.hidden == many.hidden, "{label}: hidden states differ");
                    }
                }
            }
        }
    }
}

/// Decode steps after a cached prefix (one-row matmuls split by columns, one query against the
/// cache) give the same bits on every thread count.
#[test]
fn decode_steps_are_bit_identical_for_every_thread_count() {
    let case = case("odd-widths");
    let checkpoint = case.checkpoint().unwrap();
    let weights = Weights::new(&checkpoint);
    let tokens = &case.manifest.tokens;
    let steps = |threads: usize| {
        let model = KernelModel::new(
            &weights,
            &KernelSet::fastest(&Registry::builtin()),
            Isa::best(),
            threads,
        );
        let mut cache = model.new_cache();
        model.forward_cached(&tokens[..5], &mut cache).unwrap();
        (5..8)
            .map(|t| model.forward_cached(&tokens[t..t + 1], &mut cache).unwrap())
            .collect::<Vec<_>>()
    };
    let one = steps(1);
    for threads in [2, 3, 4] {
        for (step, (a, b)) in one.iter().zip(steps(threads)).enumerate() {
            let label = format!("decode step {step} after 5 tokens on {threads} threads");
            assert!(a.logits == b.logits, "{label}: logits differ");
            assert!(a.hidden == b.hidden, "{label}: hidden states differ");
        }
    }
}

#[test]
fn decode_through_the_kv_cache_matches_prefill() {
    let case = case("full-context");
    let checkpoint = case.checkpoint().unwrap();
    let weights = Weights::new(&checkpoint);
    let tokens = &case.manifest.tokens;
    let model = KernelModel::new(&weights, &KernelSet::fastest(&Registry::builtin()), Isa::best(), 2);
    let prefill = model.forward(tokens).unwrap().logits;
    let mut cache = model.new_cache();
    let mut decoded = Vec::new();
    for chunk in tokens.chunks(5) {
        decoded.extend(model.forward_cached(chunk, &mut cache).unwrap().logits);
    }
    assert_eq!(cache.len(), tokens.len());
    // Every kernel computes a row the same way in a chunk of 5 as among all 32 rows (the rows test of
    // the op checker holds each variant to that), so the logits are the same bits; NaN would differ.
    assert!(prefill == decoded, "decoding in chunks of 5 differs from the prefill");
    let error = model.forward_cached(&[1], &mut cache).unwrap_err();
    assert!(error.to_string().contains("n_positions is 32"), "{error}");
}

#[test]
fn chosen_logit_rows_are_those_rows_of_the_whole_call() {
    let case = case("full-context");
    let checkpoint = case.checkpoint().unwrap();
    let weights = Weights::new(&checkpoint);
    let tokens = &case.manifest.tokens;
    let v = checkpoint.config().vocab_size;
    let model = KernelModel::new(&weights, &KernelSet::fastest(&Registry::builtin()), Isa::best(), 2);
    let whole = model.forward(&tokens[..20]).unwrap();
    let rows = [19, 0, 7];
    let chosen = model
        .forward_cached_rows(&tokens[..20], &mut model.new_cache(), &rows)
        .unwrap();
    assert_eq!(chosen.logits.len(), rows.len() * v);
    for (i, &r) in rows.iter().enumerate() {
        assert!(
            chosen.logits[i * v..][..v] == whole.logits[r * v..][..v],
            "logits of row {r}"
        );
        assert!(
            chosen.probs[i * v..][..v] == whole.probs[r * v..][..v],
            "probabilities of row {r}"
        );
    }
    assert!(chosen.hidden == whole.hidden, "the hidden states are every row's");
    let none = model
        .forward_cached_rows(&tokens[..20], &mut model.new_cache(), &[])
        .unwrap();
    assert!(none.logits.is_empty() && none.probs.is_empty());
    let error = model
        .forward_cached_rows(&tokens[..20], &mut model.new_cache(), &[3, 20])
        .unwrap_err();
    assert!(error.to_string().contains("row 20"), "{error}");
}

#[test]
fn bad_tokens_get_the_reference_errors() {
    let case = case("tiny");
    let checkpoint = case.checkpoint().unwrap();
    let weights = Weights::new(&checkpoint);
    let model = KernelModel::new(&weights, &KernelSet::fastest(&Registry::builtin()), Isa::best(), 1);
    assert!(model.forward(&[]).unwrap_err().to_string().contains("empty"));
    assert!(
        model
            .forward(&[1, 64])
            .unwrap_err()
            .to_string()
            .contains("token 1 has id 64")
    );
    assert!(
        model
            .forward(&[1; 17])
            .unwrap_err()
            .to_string()
            .contains("n_positions is 16")
    );
}

/// Attention whose causal mask is off by one for the first query: it also sees the second key.
fn peeking_attention(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], isa: Isa) {
    let scalar = tkbench_kernels::attention::scalar::attention;
    scalar(d, q, k, v, out, isa);
    let c = d.channels();
    if d.keys() > d.pos0 + 1 {
        // Query 0 treated as if it sat one position later: keys 0 ..= pos0 + 1.
        let peek = AttentionDims {
            queries: 1,
            pos0: d.pos0 + 1,
            ..*d
        };
        let values = (d.pos0 + 2) * c;
        scalar(
            &peek,
            &q[..c],
            &k[..peek.key_floats()],
            &v[..values],
            &mut out[..c],
            isa,
        );
    }
}

#[test]
fn the_gate_fails_when_a_wrong_variant_is_registered() {
    let wrong = Variant {
        name: "peeking",
        kind: Kind::Simd,
        isa: IsaSupport::Plain,
        file: "attention/peeking.rs",
        tiles: &[],
        kernel: (peeking_attention as AttentionFn).into(),
    };
    let registry = Registry::builtin().with::<Attention>(wrong);
    let subjects = plan(
        &registry,
        &Filter {
            variant: Some("peeking".into()),
            ..Filter::default()
        },
        tkbench_reference::Family::Gpt2,
    );
    // It runs in the fastest set, at every level that set dispatches to.
    assert_eq!(subjects.len(), Isa::available().len());
    let case = case("odd-widths");
    let checkpoint = case.any_checkpoint().unwrap();
    let rows = verify_case(&case, &checkpoint, &subjects[..1], 1, |_| {}).unwrap();
    let row = &rows[0];
    assert!(!row.pass, "a variant that breaks the causal mask passed: {row:?}");
    let diagnosis = row.diagnosis.as_deref().unwrap();
    assert!(diagnosis.contains("hidden state 1 (output of block 0)"), "{diagnosis}");
    assert!(
        diagnosis.contains("attention variant `peeking` is at fault"),
        "{diagnosis}"
    );
    assert!(
        row.replay
            .starts_with("cargo xtask verify --case odd-widths --kernels fastest,attention=peeking"),
        "{}",
        row.replay
    );
}

/// Weights and caches on huge pages give the bits of the same model on small pages: the copy of the
/// checkpoint finds every tensor where it put it.
#[test]
fn huge_and_small_pages_give_the_same_bits() {
    use tkbench_harness::aligned::Pages;
    use tkbench_reference::{Config, synthetic};
    // wte, wte transposed, wpe and each layer's KV cache are 2 MiB or more: on huge pages if granted.
    let config = Config {
        n_layer: 2,
        n_head: 4,
        n_embd: 128,
        n_positions: 4096,
        vocab_size: 5000,
        n_inner: 512,
        ..Config::gpt2_small()
    };
    let checkpoint = synthetic::checkpoint(&config, 7);
    let tokens = synthetic::tokens(3, 40, config.vocab_size);
    let huge = Weights::on_pages(&checkpoint, Pages::Huge);
    let small = Weights::on_pages(&checkpoint, Pages::Small);
    assert_eq!(small.pages(), Pages::Small);
    if cfg!(target_os = "linux") {
        assert_eq!(huge.pages(), Pages::Huge, "this system refused a huge-page mapping");
    }
    let run = |weights: &Weights| {
        let model = KernelModel::new(weights, &KernelSet::fastest(&Registry::builtin()), Isa::best(), 1);
        let mut cache = model.new_cache();
        let prefill = model.forward_cached(&tokens[..39], &mut cache).unwrap();
        let step = model.forward_cached(&tokens[39..], &mut cache).unwrap();
        (prefill.logits, prefill.hidden, step.logits)
    };
    assert!(run(&huge) == run(&small), "outputs differ between huge and small pages");
}
