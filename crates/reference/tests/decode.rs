//! Incremental decoding through the KV cache gives the logits of the full forward pass, and greedy
//! generation is the argmax of the full forward pass step by step.

mod common;

use common::small_checkpoint;
use ndarray::{Array2, Axis, concatenate};
use tkbench_reference::{Gpt2, Real, synthetic};

/// max |a − b| / max |b|.
fn max_rel<F: Real>(a: &Array2<F>, b: &Array2<F>) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.as_f64().abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x.as_f64() - y.as_f64()).abs()));
    diff / scale
}

/// Feeds `tokens` in chunks of the given sizes and stacks the logits.
fn chunked<F: Real>(model: &Gpt2<F>, tokens: &[u32], sizes: &[usize]) -> Array2<F> {
    let mut cache = model.new_cache();
    let mut start = 0;
    let mut parts = Vec::new();
    for &n in sizes {
        parts.push(model.forward_cached(&tokens[start..start + n], &mut cache).unwrap());
        start += n;
    }
    assert_eq!(start, tokens.len());
    assert_eq!(cache.len(), tokens.len());
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    concatenate(Axis(0), &views).unwrap()
}

// Prefill and decode compute the same sums in different matrix shapes, so they may round differently;
// float64 keeps the difference near its unit roundoff, float32 near its own.
const DECODE_F64_MAX_REL: f64 = 1e-13;
const DECODE_F32_MAX_REL: f64 = 1e-5;

#[test]
fn decode_matches_prefill_in_f64_and_f32() {
    let checkpoint = small_checkpoint();
    let tokens = synthetic::tokens(11, 20, checkpoint.config().vocab_size); // fills n_positions
    let one_at_a_time = vec![1; tokens.len()];

    let model = Gpt2::<f64>::from_checkpoint(&checkpoint);
    let prefill = model.forward(&tokens).unwrap();
    for sizes in [one_at_a_time.as_slice(), &[7, 1, 12], &[19, 1]] {
        let err = max_rel(&chunked(&model, &tokens, sizes), &prefill);
        assert!(err <= DECODE_F64_MAX_REL, "f64, chunks {sizes:?}: {err:.3e}");
    }

    let model = Gpt2::<f32>::from_checkpoint(&checkpoint);
    let prefill = model.forward(&tokens).unwrap();
    let err = max_rel(&chunked(&model, &tokens, &one_at_a_time), &prefill);
    assert!(err <= DECODE_F32_MAX_REL, "f32, one at a time: {err:.3e}");
}

#[test]
fn greedy_generation_is_the_stepwise_argmax_of_the_full_forward() {
    let model = Gpt2::<f64>::from_checkpoint(&small_checkpoint());
    let prompt = [3, 14, 15];
    let generated = model.generate(&prompt, 8).unwrap();
    assert_eq!(generated.len(), 8);

    let mut sequence = prompt.to_vec();
    for &next in &generated {
        let logits = model.forward(&sequence).unwrap();
        let last = logits.row(logits.nrows() - 1);
        let best = last.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let argmax = last.iter().position(|&x| x == best).unwrap() as u32;
        assert_eq!(next, argmax, "after {sequence:?}");
        sequence.push(next);
    }
    assert!(model.generate(&prompt, 0).unwrap().is_empty());
}

#[test]
fn hidden_states_follow_the_hf_convention() {
    let checkpoint = small_checkpoint();
    let model = Gpt2::<f64>::from_checkpoint(&checkpoint);
    let tokens = [4, 8, 15, 16];
    let (_, hidden) = model.forward_with_hidden_states(&tokens).unwrap();
    assert_eq!(hidden.len(), checkpoint.config().n_layer + 1);
    // Index 0 is the embedding sum.
    for (t, &id) in tokens.iter().enumerate() {
        let expected = &model.wte.row(id as usize) + &model.wpe.row(t);
        assert_eq!(hidden[0].row(t), expected);
    }
    // Index 1 is the output of block 0 before ln_f: a one-layer model made of block 0 ends with
    // ln_f of it, and index 0 of the full model is not that.
    let mut first_block = model.clone();
    first_block.blocks.truncate(1);
    first_block.config.n_layer = 1;
    let (_, truncated) = first_block.forward_with_hidden_states(&tokens).unwrap();
    assert_eq!(truncated[1], model.ln_f.forward(&hidden[1]));
    assert_ne!(hidden[1], hidden[0]);
}
