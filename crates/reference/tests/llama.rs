//! The Llama reference: its config refuses by field what the model does not implement, its
//! checkpoints load tied or untied and are refused when damaged, the KV cache gives the logits of
//! the full pass, and the ops it is built from behave as their contracts say.

mod common;

use std::path::Path;

use common::write_safetensors;
use ndarray::{Array2, Axis, array, concatenate};
use tkbench_reference::{Checkpoint, Error, Family, Llama, LlamaConfig, ops, synthetic};

/// A small Llama whose sizes all differ: 6 query heads of 8 over 2 key/value heads (queries 48 wide
/// on a residual of 40), so that a transposed or misgrouped tensor cannot pass.
fn small_llama(tied: bool) -> LlamaConfig {
    LlamaConfig {
        num_hidden_layers: 2,
        hidden_size: 40,
        intermediate_size: 56,
        num_attention_heads: 6,
        num_key_value_heads: 2,
        head_dim: 8,
        vocab_size: 50,
        max_position_embeddings: 24,
        rms_norm_eps: 1e-6,
        rope_theta: 10_000.0,
        tie_word_embeddings: tied,
    }
}

fn config_error(json: serde_json::Value) -> Error {
    LlamaConfig::from_json_str(&json.to_string(), Path::new("config.json")).expect_err("the config must be refused")
}

fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut json = small_llama(false).to_hf_json();
    json[field] = value;
    json
}

#[test]
fn a_written_config_reads_back_the_same() {
    for tied in [false, true] {
        let config = small_llama(tied);
        let text = config.to_hf_json().to_string();
        assert_eq!(LlamaConfig::from_json_str(&text, Path::new("c.json")).unwrap(), config);
        assert_eq!(Family::of_json_str(&text, Path::new("c.json")).unwrap(), Family::Llama);
    }
}

#[test]
fn what_the_model_does_not_implement_is_refused_by_field() {
    let cases = [
        (
            "rope_parameters",
            serde_json::json!({"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}),
        ),
        ("rope_scaling", serde_json::json!({"type": "linear", "factor": 2.0})),
        ("attention_bias", serde_json::json!(true)),
        ("mlp_bias", serde_json::json!(true)),
        ("hidden_act", serde_json::json!("gelu")),
        ("sliding_window", serde_json::json!(4096)),
        (
            "layer_types",
            serde_json::json!(["full_attention", "sliding_attention"]),
        ),
        ("model_type", serde_json::json!("mistral")),
    ];
    for (field, value) in cases {
        match config_error(with(field, value.clone())) {
            Error::Unsupported { field: f, .. } => assert_eq!(f, field, "{field} = {value}"),
            other => panic!("{field} = {value}: expected Unsupported, got {other}"),
        }
    }
}

#[test]
fn implausible_sizes_are_refused_by_field() {
    let cases = [
        ("num_key_value_heads", serde_json::json!(4)),
        ("head_dim", serde_json::json!(7)),
        ("hidden_size", serde_json::json!(0)),
        ("rms_norm_eps", serde_json::json!(-1.0)),
        ("vocab_size", serde_json::json!("many")),
    ];
    for (field, value) in cases {
        match config_error(with(field, value.clone())) {
            Error::Config { field: f, .. } => assert_eq!(f, field, "{field} = {value}"),
            other => panic!("{field} = {value}: expected Config, got {other}"),
        }
    }
    let error = config_error(with(
        "rope_parameters",
        serde_json::json!({"rope_type": "default", "rope_theta": 0.5}),
    ));
    assert!(
        matches!(&error, Error::Config { field, .. } if field == "rope_theta"),
        "{error}"
    );
}

#[test]
fn older_configs_give_theta_at_the_top_level_and_defaults_apply() {
    let mut json = small_llama(false).to_hf_json();
    let object = json.as_object_mut().unwrap();
    object.remove("rope_parameters");
    object.remove("head_dim");
    object.remove("num_key_value_heads");
    object.insert("rope_theta".into(), serde_json::json!(500_000.0));
    object.insert("hidden_size".into(), serde_json::json!(48));
    let config = LlamaConfig::from_json_str(&json.to_string(), Path::new("c.json")).unwrap();
    assert_eq!(config.rope_theta, 500_000.0);
    assert_eq!(
        config.head_dim, 8,
        "head_dim defaults to hidden_size / num_attention_heads"
    );
    assert_eq!(
        config.num_key_value_heads, 6,
        "num_key_value_heads defaults to num_attention_heads"
    );
}

#[test]
fn checkpoints_load_tied_and_untied_and_refuse_what_is_missing_or_extra() {
    for tied in [false, true] {
        let checkpoint = synthetic::checkpoint(&small_llama(tied), 3);
        let dir = tempfile::tempdir().unwrap();
        checkpoint.save(dir.path()).unwrap();
        let loaded = Checkpoint::<LlamaConfig>::load(dir.path()).unwrap();
        assert_eq!(loaded.digest(), checkpoint.digest());
        assert_eq!(loaded.tensors().contains_key("lm_head.weight"), !tied);
        assert_eq!(Family::of_dir(dir.path()).unwrap(), Family::Llama);
    }
    // An untied checkpoint without its head is refused, naming the tensor.
    let untied = synthetic::checkpoint(&small_llama(false), 3);
    let dir = tempfile::tempdir().unwrap();
    untied.save(dir.path()).unwrap();
    let tensors: Vec<_> = common::tensor_list(&untied, "")
        .into_iter()
        .filter(|(name, _, _)| name != "lm_head.weight")
        .collect();
    write_safetensors(&dir.path().join("model.safetensors"), &tensors);
    let error = Checkpoint::<LlamaConfig>::load(dir.path()).unwrap_err();
    assert!(
        matches!(&error, Error::MissingTensor { name, .. } if name == "lm_head.weight"),
        "{error}"
    );
    // A third layer the config does not have is refused: the config does not describe the file.
    let mut extra = common::tensor_list(&untied, "");
    extra.push(("model.layers.2.input_layernorm.weight".into(), vec![40], vec![1.0; 40]));
    write_safetensors(&dir.path().join("model.safetensors"), &extra);
    let error = Checkpoint::<LlamaConfig>::load(dir.path()).unwrap_err();
    assert!(matches!(&error, Error::UnexpectedTensor { .. }), "{error}");
    // A config of implausibly many layers is refused at its first missing tensor, not after
    // listing every one.
    untied.save(dir.path()).unwrap();
    let mut json = small_llama(false).to_hf_json();
    json["num_hidden_layers"] = serde_json::json!(1u64 << 40);
    std::fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
    let error = Checkpoint::<LlamaConfig>::load(dir.path()).unwrap_err();
    assert!(
        matches!(&error, Error::MissingTensor { name, .. } if name == "model.layers.2.input_layernorm.weight"),
        "{error}"
    );
    // A GPT-2 directory read as Llama is refused at its model_type.
    let gpt2 = tempfile::tempdir().unwrap();
    common::small_checkpoint().save(gpt2.path()).unwrap();
    let error = Checkpoint::<LlamaConfig>::load(gpt2.path()).unwrap_err();
    assert!(
        matches!(&error, Error::Unsupported { field, .. } if field == "model_type"),
        "{error}"
    );
}

/// max |a − b| / max |b|.
fn max_rel(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn the_kv_cache_gives_the_logits_of_the_full_pass() {
    let model = Llama::<f64>::from_checkpoint(&synthetic::checkpoint(&small_llama(false), 5));
    let tokens = synthetic::tokens(5, 20, 50);
    let whole = model.forward(&tokens).unwrap();
    for sizes in [vec![20], vec![1; 20], vec![7, 1, 1, 11], vec![13, 7]] {
        let mut cache = model.new_cache();
        let mut start = 0;
        let mut parts = Vec::new();
        for n in sizes.iter().copied() {
            parts.push(model.forward_cached(&tokens[start..start + n], &mut cache).unwrap());
            start += n;
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let chunked = concatenate(Axis(0), &views).unwrap();
        assert!(max_rel(&chunked, &whole) < 1e-13, "steps {sizes:?}");
    }
    // Greedy generation is the argmax of the full pass, step by step.
    let generated = model.generate(&tokens[..5], 6).unwrap();
    let mut sequence = tokens[..5].to_vec();
    for &next in &generated {
        let logits = model.forward(&sequence).unwrap();
        assert_eq!(ops::argmax(&logits.row(sequence.len() - 1).to_owned()) as u32, next);
        sequence.push(next);
    }
    let overflow = model.generate(&tokens[..20], 6).unwrap_err();
    assert!(matches!(overflow, Error::GenerationOverflow { .. }), "{overflow}");
    let error = model.forward(&[50]).unwrap_err();
    assert!(matches!(error, Error::TokenOutOfRange { id: 50, .. }), "{error}");
}

#[test]
fn a_cache_from_another_model_is_refused() {
    let model = Llama::<f64>::from_checkpoint(&synthetic::checkpoint(&small_llama(false), 5));
    let mut other = Llama::<f64>::from_checkpoint(&synthetic::checkpoint(
        &LlamaConfig {
            num_key_value_heads: 6,
            ..small_llama(false)
        },
        5,
    ))
    .new_cache();
    let error = model.forward_cached(&[1, 2], &mut other).unwrap_err();
    assert!(
        matches!(
            error,
            Error::CacheMismatch {
                width: 16,
                cache_width: 48,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn rope_rotates_halves_and_keeps_lengths() {
    // One head of 4 at position 1 with θ = 10000: pairs (0, 2) at angle 1 and (1, 3) at 1/100.
    let (cos, sin) = ops::rope_table::<f64>(4, 4, 10_000.0);
    let x = array![[1.0, 2.0, 3.0, 4.0]];
    let y = ops::rope(&x.view(), 1, &cos.view(), &sin.view(), 1);
    let (a0, a1) = (1.0f64, 0.01f64);
    let expected = [
        a0.cos() - 3.0 * a0.sin(),
        2.0 * a1.cos() - 4.0 * a1.sin(),
        3.0 * a0.cos() + a0.sin(),
        4.0 * a1.cos() + 2.0 * a1.sin(),
    ];
    for (got, want) in y.iter().zip(expected) {
        assert!((got - want).abs() < 1e-15, "{y:?} against {expected:?}");
    }
    // Position 0 is the identity.
    assert_eq!(ops::rope(&x.view(), 1, &cos.view(), &sin.view(), 0), x);
}

#[test]
fn rmsnorm_subtracts_no_mean_and_grouped_attention_reads_its_group() {
    let x = array![[3.0, 4.0]];
    let y = ops::rmsnorm(&x.view(), &array![1.0, 2.0].view(), 0.0);
    let rms = (12.5f64).sqrt();
    assert!(
        (y[[0, 0]] - 3.0 / rms).abs() < 1e-15 && (y[[0, 1]] - 8.0 / rms).abs() < 1e-15,
        "{y:?}"
    );

    // Four query heads of 1 over two key/value heads: heads 0 and 1 read kv head 0, 2 and 3 kv head 1.
    let q = array![[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]];
    let k = array![[1.0, 1.0], [1.0, 1.0]];
    let v = array![[10.0, 20.0], [30.0, 40.0]];
    let y = ops::grouped_causal_attention(&q.view(), &k.view(), &v.view(), 4, 2, 1.0);
    assert_eq!(y.row(0).to_vec(), vec![10.0, 10.0, 20.0, 20.0]);
    assert_eq!(y.row(1).to_vec(), vec![20.0, 20.0, 30.0, 30.0]);
}

#[test]
fn a_bfloat16_checkpoint_loads_widened_exactly() {
    // The file holds each weight cut to bfloat16's top 16 bits; loading must give exactly those.
    let truncated = |x: f32| f32::from_bits(x.to_bits() & 0xFFFF_0000);
    let checkpoint = synthetic::checkpoint(&small_llama(true), 9);
    let dir = tempfile::tempdir().unwrap();
    checkpoint.save(dir.path()).unwrap();
    let tensors = common::tensor_list(&checkpoint, "");
    let raw: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, data)| {
            data.iter()
                .flat_map(|&x| ((x.to_bits() >> 16) as u16).to_le_bytes())
                .collect()
        })
        .collect();
    let views = tensors.iter().zip(&raw).map(|((name, shape, _), bytes)| {
        (
            name.clone(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, shape.clone(), bytes).unwrap(),
        )
    });
    std::fs::write(
        dir.path().join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    let loaded = Checkpoint::<LlamaConfig>::load(dir.path()).unwrap();
    for (name, tensor) in checkpoint.tensors() {
        let widened = &loaded.tensors()[name].data;
        assert!(
            tensor.data.iter().zip(widened).all(|(&a, &b)| truncated(a) == b),
            "{name}: the bfloat16 values were not widened exactly"
        );
    }
}
