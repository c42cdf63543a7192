//! Every class of bad input gets an error that names the file, tensor or field at fault: one test per
//! class, each asserting the error variant and the words of its message.

mod common;

use std::path::Path;

use common::{small_checkpoint, small_config, tensor_list, write_safetensors};
use tkbench_reference::{Checkpoint, Config, Error, Gpt2};

/// A checkpoint directory holding the small checkpoint, for tests to damage.
fn saved() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    small_checkpoint().save(dir.path()).unwrap();
    dir
}

fn load_err(dir: &Path) -> Error {
    Checkpoint::<Config>::load(dir).expect_err("a damaged checkpoint must not load")
}

fn set_config_field(dir: &Path, field: &str, value: serde_json::Value) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    if value.is_null() && field != "n_inner" {
        json.as_object_mut().unwrap().remove(field);
    } else {
        json[field] = value;
    }
    std::fs::write(&path, json.to_string()).unwrap();
}

#[test]
fn saved_checkpoint_loads_back_identical() {
    let dir = saved();
    let loaded = Checkpoint::<Config>::load(dir.path()).unwrap();
    assert_eq!(loaded.digest(), small_checkpoint().digest());
    assert_eq!(loaded.config(), &small_config());
}

#[test]
fn names_with_and_without_the_transformer_prefix_load_the_same() {
    let dir = saved();
    let bare = tensor_list(&small_checkpoint(), "");
    write_safetensors(&dir.path().join("model.safetensors"), &bare);
    assert_eq!(
        Checkpoint::<Config>::load(dir.path()).unwrap().digest(),
        small_checkpoint().digest()
    );
}

#[test]
fn missing_tensor_is_named() {
    let dir = saved();
    let mut tensors = tensor_list(&small_checkpoint(), "transformer.");
    tensors.retain(|(name, _, _)| name != "transformer.h.1.mlp.c_fc.bias");
    write_safetensors(&dir.path().join("model.safetensors"), &tensors);
    let error = load_err(dir.path());
    assert!(
        matches!(&error, Error::MissingTensor { name, .. } if name == "h.1.mlp.c_fc.bias"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("model.safetensors") && message.contains("h.1.mlp.c_fc.bias"),
        "{message}"
    );
}

#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let dir = saved();
    let mut tensors = tensor_list(&small_checkpoint(), "transformer.");
    let c_attn = tensors
        .iter_mut()
        .find(|(n, _, _)| n == "transformer.h.0.attn.c_attn.weight")
        .unwrap();
    c_attn.1 = vec![72, 24]; // transposed: [3C, C] instead of [C, 3C]
    write_safetensors(&dir.path().join("model.safetensors"), &tensors);
    let error = load_err(dir.path());
    assert!(
        matches!(&error, Error::TensorShape { name, expected, found, .. }
            if name == "transformer.h.0.attn.c_attn.weight" && expected == &[24, 72] && found == &[72, 24]),
        "{error:?}"
    );
    assert!(error.to_string().contains("[72, 24], expected [24, 72]"), "{error}");
}

#[test]
fn non_f32_tensor_is_named() {
    let dir = saved();
    let mut tensors = tensor_list(&small_checkpoint(), "");
    let ln_f = tensors.iter().position(|(n, _, _)| n == "ln_f.bias").unwrap();
    tensors.remove(ln_f);
    write_safetensors(&dir.path().join("model.safetensors"), &tensors);
    // Append ln_f.bias as F16 by writing the file again with a half-precision view.
    let raw: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let half = vec![0u8; 2 * 24];
    let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&raw)
        .map(|((n, s, _), r)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), r).unwrap(),
            )
        })
        .collect();
    views.push((
        "ln_f.bias".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![24], &half).unwrap(),
    ));
    std::fs::write(
        dir.path().join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    let error = load_err(dir.path());
    assert!(
        matches!(&error, Error::TensorDtype { name, dtype, .. } if name == "ln_f.bias" && dtype == "F16"),
        "{error:?}"
    );
}

#[test]
fn truncated_safetensors_is_refused() {
    let dir = saved();
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let error = load_err(dir.path());
    assert!(matches!(error, Error::Safetensors { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("model.safetensors: not a valid safetensors file"),
        "{error}"
    );
}

#[test]
fn corrupt_safetensors_header_is_refused() {
    let dir = saved();
    let path = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..16].copy_from_slice(b"{garbage"); // the JSON header starts at byte 8
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(load_err(dir.path()), Error::Safetensors { .. }));

    std::fs::write(&path, b"short").unwrap();
    assert!(matches!(load_err(dir.path()), Error::Safetensors { .. }));
}

#[test]
fn missing_files_are_named() {
    let dir = saved();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let error = load_err(dir.path());
    assert!(
        matches!(&error, Error::Io { path, .. } if path.ends_with("model.safetensors")),
        "{error:?}"
    );

    let error = load_err(&dir.path().join("no-such-dir"));
    assert!(error.to_string().contains("not a checkpoint directory"), "{error}");

    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let error = load_err(dir.path());
    assert!(
        matches!(&error, Error::Io { path, .. } if path.ends_with("config.json")),
        "{error:?}"
    );
}

#[test]
fn malformed_config_json_is_refused() {
    let dir = saved();
    std::fs::write(dir.path().join("config.json"), "{\"n_layer\": 2,").unwrap();
    let error = load_err(dir.path());
    assert!(
        matches!(&error, Error::Config { field, .. } if field == "<root>"),
        "{error:?}"
    );
    assert!(error.to_string().contains("config.json"), "{error}");

    std::fs::write(dir.path().join("config.json"), "[1, 2]").unwrap();
    assert!(matches!(load_err(dir.path()), Error::Config { .. }));
}

#[test]
fn incomplete_config_names_the_missing_field() {
    for field in ["n_layer", "n_head", "n_embd", "n_positions", "vocab_size"] {
        let dir = saved();
        set_config_field(dir.path(), field, serde_json::Value::Null);
        let error = load_err(dir.path());
        assert!(
            matches!(&error, Error::Config { field: f, .. } if f == field),
            "{field}: {error:?}"
        );
        assert!(error.to_string().contains(&format!("`{field}`: missing")), "{error}");
    }
}

#[test]
fn mistyped_config_field_is_named() {
    for (field, value) in [
        ("n_head", serde_json::json!("twelve")),
        ("n_embd", serde_json::json!(0)),
        ("n_inner", serde_json::json!(-3)),
        ("layer_norm_epsilon", serde_json::json!("small")),
        ("scale_attn_weights", serde_json::json!(1)),
    ] {
        let dir = saved();
        set_config_field(dir.path(), field, value.clone());
        let error = load_err(dir.path());
        assert!(
            matches!(&error, Error::Config { field: f, .. } if f == field),
            "{field} = {value}: {error:?}"
        );
    }
}

#[test]
fn head_count_must_divide_the_width() {
    let dir = saved();
    set_config_field(dir.path(), "n_head", serde_json::json!(5));
    let error = load_err(dir.path());
    assert!(
        error
            .to_string()
            .contains("n_embd = 24 is not a multiple of n_head = 5"),
        "{error}"
    );
}

#[test]
fn unsupported_config_is_refused_by_field() {
    for (field, value) in [
        ("activation_function", serde_json::json!("relu")),
        ("scale_attn_by_inverse_layer_idx", serde_json::json!(true)),
        ("reorder_and_upcast_attn", serde_json::json!(true)),
        ("model_type", serde_json::json!("llama")),
        ("tie_word_embeddings", serde_json::json!(false)),
    ] {
        let dir = saved();
        set_config_field(dir.path(), field, value.clone());
        let error = load_err(dir.path());
        assert!(
            matches!(&error, Error::Unsupported { field: f, .. } if f == field),
            "{field} = {value}: {error:?}"
        );
        assert!(
            error.to_string().contains(&format!("field `{field}` = {value}")),
            "{error}"
        );
    }
}

#[test]
fn null_n_inner_means_four_times_the_width() {
    let dir = saved();
    set_config_field(dir.path(), "n_inner", serde_json::Value::Null);
    // The tensors are [C, 40] but a null n_inner means [C, 96]: the loader must say so.
    let error = load_err(dir.path());
    assert!(
        matches!(&error, Error::TensorShape { name, expected, .. } if name.ends_with("h.0.mlp.c_fc.weight") && expected == &[24, 96]),
        "{error:?}"
    );
}

#[test]
fn scale_attn_weights_false_is_honoured() {
    let dir = saved();
    set_config_field(dir.path(), "scale_attn_weights", serde_json::json!(false));
    let unscaled = Gpt2::<f64>::from_checkpoint(&Checkpoint::<Config>::load(dir.path()).unwrap());
    let scaled = Gpt2::<f64>::from_checkpoint(&small_checkpoint());
    let tokens = [1, 2, 3];
    let diff = (&unscaled.forward(&tokens).unwrap() - &scaled.forward(&tokens).unwrap())
        .iter()
        .fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(diff > 1e-6, "scale_attn_weights = false changed nothing ({diff})");
}

#[test]
fn token_id_out_of_range_is_refused() {
    let model = Gpt2::<f64>::from_checkpoint(&small_checkpoint());
    let error = model.forward(&[1, 2, 50, 3]).unwrap_err();
    assert!(
        matches!(
            error,
            Error::TokenOutOfRange {
                index: 2,
                id: 50,
                vocab_size: 50
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("token 2 has id 50, but vocab_size is 50"),
        "{error}"
    );
}

#[test]
fn too_many_tokens_are_refused() {
    let model = Gpt2::<f32>::from_checkpoint(&small_checkpoint());
    let error = model.forward(&[1; 21]).unwrap_err();
    assert!(
        matches!(
            error,
            Error::ContextOverflow {
                total: 21,
                n_positions: 20,
                ..
            }
        ),
        "{error:?}"
    );

    // The same bound holds across calls through the KV cache, and a refused call leaves it unchanged.
    let mut cache = model.new_cache();
    model.forward_cached(&[1; 15], &mut cache).unwrap();
    let error = model.forward_cached(&[1; 6], &mut cache).unwrap_err();
    assert!(
        matches!(error, Error::ContextOverflow { cached: 15, new: 6, .. }),
        "{error:?}"
    );
    assert_eq!(cache.len(), 15);
    model.forward_cached(&[1; 5], &mut cache).unwrap();

    // Generating n tokens feeds prompt + n − 1 positions: 10 + 11 fits 20 exactly, 10 + 12 does not.
    assert_eq!(model.generate(&[1; 10], 11).unwrap().len(), 11);
    let error = model.generate(&[1; 10], 12).unwrap_err();
    assert!(
        matches!(
            error,
            Error::GenerationOverflow {
                prompt: 10,
                n: 12,
                n_positions: 20
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("at most 11 new tokens fit"), "{error}");
}

#[test]
fn empty_prompt_is_refused() {
    let model = Gpt2::<f64>::from_checkpoint(&small_checkpoint());
    assert!(matches!(model.forward(&[]).unwrap_err(), Error::EmptyPrompt));
    assert!(matches!(model.generate(&[], 3).unwrap_err(), Error::EmptyPrompt));
}

#[test]
fn tensors_the_config_does_not_describe_are_refused() {
    // A 2-layer file read with a 1-layer config must not silently use the first layer only.
    let dir = saved();
    set_config_field(dir.path(), "n_layer", serde_json::json!(1));
    let error = load_err(dir.path());
    assert!(
        matches!(&error, Error::UnexpectedTensor { name, .. } if name.starts_with("transformer.h.1.")),
        "{error:?}"
    );

    // The tied LM head and the causal-mask buffers are known and ignored.
    let dir = saved();
    let mut tensors = tensor_list(&small_checkpoint(), "transformer.");
    let wte = tensors[tensors
        .iter()
        .position(|(n, _, _)| n == "transformer.wte.weight")
        .unwrap()]
    .clone();
    tensors.push(("lm_head.weight".into(), wte.1, wte.2));
    tensors.push(("transformer.h.0.attn.bias".into(), vec![1, 1, 20, 20], vec![1.0; 400]));
    write_safetensors(&dir.path().join("model.safetensors"), &tensors);
    assert_eq!(
        Checkpoint::<Config>::load(dir.path()).unwrap().digest(),
        small_checkpoint().digest()
    );

    // A tensor stored both with and without the prefix is ambiguous.
    let mut tensors = tensor_list(&small_checkpoint(), "transformer.");
    tensors.push(("ln_f.bias".into(), vec![24], vec![0.0; 24]));
    write_safetensors(&dir.path().join("model.safetensors"), &tensors);
    assert!(load_err(dir.path()).to_string().contains("stored twice"));
}

#[test]
fn non_finite_weights_are_named() {
    let dir = saved();
    let mut tensors = tensor_list(&small_checkpoint(), "transformer.");
    let wpe = tensors
        .iter_mut()
        .find(|(n, _, _)| n == "transformer.wpe.weight")
        .unwrap();
    wpe.2[37] = f32::NAN;
    write_safetensors(&dir.path().join("model.safetensors"), &tensors);
    let error = load_err(dir.path());
    assert!(
        matches!(&error, Error::NonFinite { name, index: 37, .. } if name == "transformer.wpe.weight"),
        "{error:?}"
    );
}

#[test]
fn implausible_sizes_are_refused_before_allocating() {
    let dir = saved();
    set_config_field(dir.path(), "n_layer", serde_json::json!(1u64 << 40));
    let error = load_err(dir.path());
    assert!(
        matches!(&error, Error::MissingTensor { name, .. } if name == "h.2.ln_1.weight"),
        "{error:?}"
    );

    let dir = saved();
    set_config_field(dir.path(), "n_embd", serde_json::json!(u64::MAX / 2));
    set_config_field(dir.path(), "n_head", serde_json::json!(1));
    let error = load_err(dir.path());
    assert!(error.to_string().contains("the parameter count overflows"), "{error}");
}

#[test]
fn a_cache_from_another_model_is_refused() {
    let model = Gpt2::<f64>::from_checkpoint(&small_checkpoint());
    let mut config = small_config();
    config.n_layer = 1;
    let mut other = tkbench_reference::KvCache::<f64>::new(&config);
    let error = model.forward_cached(&[1], &mut other).unwrap_err();
    assert!(
        matches!(
            error,
            Error::CacheMismatch {
                cache_layers: 1,
                n_layer: 2,
                ..
            }
        ),
        "{error:?}"
    );
}
