//! Loading a Hugging Face checkpoint directory (`config.json` + `model.safetensors`) of any family
//! into validated float32 tensors, writing one back, and a content digest that names a checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{ArrayView1, ArrayView2};
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::family::Architecture;

/// A dense float32 tensor in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The dimensions, outermost first.
    pub shape: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<f32>,
}

/// A checkpoint of family `A` (GPT-2 unless said otherwise): its config and every tensor the model
/// needs, by canonical name (for GPT-2, without the `transformer.` prefix), each checked against
/// the shape the config implies.
#[derive(Debug, Clone)]
pub struct Checkpoint<A: Architecture = Config> {
    config: A,
    tensors: BTreeMap<String, Tensor>,
    origin: PathBuf,
}

/// The tensors of one GPT-2 block, by suffix after `h.<l>.`, with their shapes for width C and MLP
/// width I.
fn block_tensors(c: usize, i: usize) -> [(&'static str, Vec<usize>); 12] {
    [
        ("ln_1.weight", vec![c]),
        ("ln_1.bias", vec![c]),
        ("attn.c_attn.weight", vec![c, 3 * c]),
        ("attn.c_attn.bias", vec![3 * c]),
        ("attn.c_proj.weight", vec![c, c]),
        ("attn.c_proj.bias", vec![c]),
        ("ln_2.weight", vec![c]),
        ("ln_2.bias", vec![c]),
        ("mlp.c_fc.weight", vec![c, i]),
        ("mlp.c_fc.bias", vec![i]),
        ("mlp.c_proj.weight", vec![i, c]),
        ("mlp.c_proj.bias", vec![c]),
    ]
}

/// The canonical names and shapes of every tensor a GPT-2 model with `config` needs, in a fixed
/// order. Linear (Conv1D) weights are stored `[in, out]`: `y = x · W + b`.
pub fn gpt2_tensors(config: &Config) -> impl Iterator<Item = (String, Vec<usize>)> + '_ {
    let (c, i, v, p) = (config.n_embd, config.n_inner, config.vocab_size, config.n_positions);
    let embeddings = [
        ("wte.weight".to_owned(), vec![v, c]),
        ("wpe.weight".to_owned(), vec![p, c]),
    ];
    let blocks = (0..config.n_layer).flat_map(move |l| {
        block_tensors(c, i)
            .into_iter()
            .map(move |(suffix, shape)| (format!("h.{l}.{suffix}"), shape))
    });
    let ln_f = [("ln_f.weight".to_owned(), vec![c]), ("ln_f.bias".to_owned(), vec![c])];
    embeddings.into_iter().chain(blocks).chain(ln_f)
}

/// Whether `name` (canonical) is one of the tensors of a GPT-2 with `config`.
pub fn is_gpt2_tensor(name: &str, config: &Config) -> bool {
    if matches!(name, "wte.weight" | "wpe.weight" | "ln_f.weight" | "ln_f.bias") {
        return true;
    }
    block_suffix(name, "h.", config.n_layer).is_some_and(|suffix| block_tensors(0, 0).iter().any(|(s, _)| *s == suffix))
}

/// The suffix of `name` after `<prefix><l>.` for a layer l below `layers` written without leading
/// zeros, if it has one.
pub(crate) fn block_suffix<'a>(name: &'a str, prefix: &str, layers: usize) -> Option<&'a str> {
    let (layer, suffix) = name.strip_prefix(prefix)?.split_once('.')?;
    let in_range = layer
        .parse::<usize>()
        .is_ok_and(|l| l < layers && layer == l.to_string());
    in_range.then_some(suffix)
}

impl<A: Architecture> Checkpoint<A> {
    /// Loads `dir/config.json` and `dir/model.safetensors`.
    ///
    /// Tensor names are accepted with or without the family's prefix (GPT-2's `transformer.`);
    /// tensors the family may store but not use (such as a tied `lm_head.weight`) are ignored.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Io {
                path: dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a checkpoint directory (expected config.json and model.safetensors in it)",
                ),
            });
        }
        let config = A::from_file(&dir.join("config.json"))?;
        let path = dir.join("model.safetensors");
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_safetensors_bytes(config, &bytes, &path)
    }

    /// Reads the tensors of `config` from the bytes of a safetensors file; `path` names it in errors.
    ///
    /// Tensors are read in F32 or in BF16 (widened exactly). Refused: a tensor missing, misshaped,
    /// of another dtype or holding NaN or infinity; a tensor stored both
    /// with and without the prefix; and any tensor the model does not use (other than those
    /// [`Architecture::ignorable`] allows, such as GPT-2's tied `lm_head.weight` and causal-mask
    /// buffers), since extra tensors mean the config does not describe the file (a 12-layer file
    /// read as 2 layers).
    pub fn from_safetensors_bytes(config: A, bytes: &[u8], path: &Path) -> Result<Self> {
        let bad_file = |message: String| Error::Safetensors {
            path: path.to_owned(),
            message,
        };
        let file = SafeTensors::deserialize(bytes).map_err(|e| bad_file(e.to_string()))?;
        for stored in file.names() {
            let name = A::PREFIX.and_then(|p| stored.strip_prefix(p)).unwrap_or(stored);
            if !config.is_model_tensor(name) && !config.ignorable(name) {
                return Err(Error::UnexpectedTensor {
                    path: path.to_owned(),
                    name: stored.to_owned(),
                });
            }
        }
        let mut tensors = BTreeMap::new();
        for (name, expected) in config.expected_tensors() {
            let prefixed = A::PREFIX.map(|p| format!("{p}{name}"));
            let with_prefix = prefixed.as_deref().map(|p| (p, file.tensor(p)));
            let (stored_name, view) = match (file.tensor(&name), with_prefix) {
                (Ok(view), None | Some((_, Err(_)))) => (name.clone(), view),
                (Err(_), Some((prefixed, Ok(view)))) => (prefixed.to_owned(), view),
                (Ok(_), Some((prefixed, Ok(_)))) => {
                    return Err(bad_file(format!(
                        "tensor `{name}` is stored twice, as `{name}` and `{prefixed}`"
                    )));
                }
                (Err(_), None | Some((_, Err(_)))) => {
                    let looked_for = match &prefixed {
                        Some(prefixed) => format!("`{name}` and `{prefixed}`"),
                        None => format!("`{name}`"),
                    };
                    return Err(Error::MissingTensor {
                        path: path.to_owned(),
                        name,
                        looked_for,
                    });
                }
            };
            // bfloat16, the dtype most Llama-family checkpoints ship in, widens to float32 exactly.
            let widen: fn(&[u8]) -> f32 = match view.dtype() {
                Dtype::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                Dtype::BF16 => |b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16),
                other => {
                    return Err(Error::TensorDtype {
                        path: path.to_owned(),
                        name: stored_name,
                        dtype: format!("{other:?}"),
                    });
                }
            };
            if view.shape() != expected.as_slice() {
                return Err(Error::TensorShape {
                    path: path.to_owned(),
                    name: stored_name,
                    expected,
                    found: view.shape().to_vec(),
                });
            }
            let width = view.dtype().bitsize() / 8;
            let data: Vec<f32> = view.data().chunks_exact(width).map(widen).collect();
            if let Some(index) = data.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFinite {
                    path: path.to_owned(),
                    name: stored_name,
                    index,
                    value: data[index],
                });
            }
            tensors.insert(name, Tensor { shape: expected, data });
        }
        Ok(Self {
            config,
            tensors,
            origin: path.to_owned(),
        })
    }

    /// Builds a checkpoint from tensors made in memory; every tensor of `config` must be present with
    /// its expected shape. `origin` describes where the tensors came from, for error messages.
    pub fn from_tensors(config: A, mut tensors: BTreeMap<String, Tensor>, origin: &Path) -> Result<Self> {
        let mut checked = BTreeMap::new();
        for (name, expected) in config.expected_tensors() {
            let Some(tensor) = tensors.remove(&name) else {
                return Err(Error::MissingTensor {
                    path: origin.to_owned(),
                    looked_for: format!("`{name}`"),
                    name,
                });
            };
            let elements: usize = tensor.shape.iter().product();
            if tensor.shape != expected || tensor.data.len() != elements {
                return Err(Error::TensorShape {
                    path: origin.to_owned(),
                    name,
                    expected,
                    found: tensor.shape,
                });
            }
            checked.insert(name, tensor);
        }
        Ok(Self {
            config,
            tensors: checked,
            origin: origin.to_owned(),
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &A {
        &self.config
    }

    /// Where the tensors were read from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The tensors by canonical name.
    pub fn tensors(&self) -> &BTreeMap<String, Tensor> {
        &self.tensors
    }

    /// A 1-D tensor by canonical name. Panics if `name` is not one of [`Architecture::expected_tensors`], which the
    /// constructors have already checked.
    pub fn vector(&self, name: &str) -> ArrayView1<'_, f32> {
        let t = &self.tensors[name];
        ArrayView1::from_shape(t.shape[0], &t.data).expect("shape checked at load")
    }

    /// A 2-D tensor by canonical name. Panics if `name` is not one of [`Architecture::expected_tensors`], which the
    /// constructors have already checked.
    pub fn matrix(&self, name: &str) -> ArrayView2<'_, f32> {
        let t = &self.tensors[name];
        ArrayView2::from_shape((t.shape[0], t.shape[1]), &t.data).expect("shape checked at load")
    }

    /// The content digest of the checkpoint: SHA-256 over every tensor in name order, each as
    /// `name\n[d0,d1,...]\n` followed by its little-endian float32 bytes. It names the weights
    /// whatever the file layout, prefix or metadata; `golden/oracle/make_golden.py` computes the same.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for (name, tensor) in &self.tensors {
            let dims: Vec<String> = tensor.shape.iter().map(usize::to_string).collect();
            hasher.update(format!("{name}\n[{}]\n", dims.join(",")).as_bytes());
            for x in &tensor.data {
                hasher.update(x.to_le_bytes());
            }
        }
        hex(&hasher.finalize())
    }

    /// Writes `dir/config.json` and `dir/model.safetensors` (names with the family's prefix, as
    /// `save_pretrained` writes them), creating `dir` if needed.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let config_path = dir.join("config.json");
        let config_text = serde_json::to_string_pretty(&self.config.to_hf_json()).expect("a JSON value serialises");
        std::fs::write(&config_path, config_text + "\n").map_err(io(&config_path))?;

        let bytes: Vec<(String, Vec<u8>, &Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let raw = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
                (format!("{}{name}", A::PREFIX.unwrap_or_default()), raw, &t.shape)
            })
            .collect();
        let views = bytes.iter().map(|(name, raw, shape)| {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, (*shape).clone(), raw)
                .expect("tensor bytes match their shape");
            (name.as_str(), view)
        });
        let model_path = dir.join("model.safetensors");
        let metadata = [("format".to_owned(), "pt".to_owned())].into_iter().collect();
        let file = safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Safetensors {
            path: model_path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&model_path, file).map_err(io(&model_path))
    }
}

/// Lower-case hexadecimal of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
