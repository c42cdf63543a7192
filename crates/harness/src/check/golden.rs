//! Golden cases: the YAML manifest (provenance, config, tokens, checksums, tolerances), the oracle's
//! float64 tensors beside it, the checkpoint each case was made from, and the check that the
//! reference model reproduces them.
//!
//! Layout of one case, `golden/cases/<name>/`: `manifest.yaml`, `outputs.safetensors` and, when
//! committed, `checkpoint/`. A case's tokens are fed in the calls its `steps` list (a prefill, then
//! chunks or decode steps through the KV cache); the oracle runs the whole sequence at once, which
//! under causal attention gives the same values. The outputs hold the rows of chosen positions only,
//! so that a long case stays small: `logits` [R, V] f64 and `logits_f32` [R, V] f32 at the
//! `logit_positions`, `hidden_states.<i>` [H, C] f64 at the `hidden_positions`, for i = 0..=L.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tkbench_reference::{
    Architecture, CausalLm, Checkpoint, Config, Family, Gpt2, Llama, LlamaConfig, Real, synthetic,
};

use crate::check::metrics::{MaxRel, max_rel};

/// The manifest schema this crate reads and the oracle script writes.
pub const SCHEMA: u32 = 2;

/// Everything that can be wrong with a golden case; each names the file, tensor or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The manifest is not valid YAML or lacks a field.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong, with the field and line when known.
        message: String,
    },
    /// A file's checksum differs from the one its manifest records.
    #[error("{path}: sha256 is {found}, but the manifest records {expected} (the file was changed or damaged)")]
    Checksum {
        /// The file at fault.
        path: PathBuf,
        /// The checksum in the manifest.
        expected: String,
        /// The checksum of the file.
        found: String,
    },
    /// A tensor of the outputs file is missing or has the wrong dtype or shape.
    #[error("{path}: tensor `{name}`: {message}")]
    Tensor {
        /// The outputs file.
        path: PathBuf,
        /// The tensor at fault.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint's weights are not the ones the case was made from.
    #[error("{path}: checkpoint digest is {found}, but the manifest records {expected}")]
    Digest {
        /// The checkpoint (or generator) at fault.
        path: PathBuf,
        /// The digest in the manifest.
        expected: String,
        /// The digest of the weights.
        found: String,
    },
    /// The checkpoint could not be loaded.
    #[error(transparent)]
    Checkpoint(#[from] tkbench_reference::Error),
    /// There is no case to check.
    #[error("{path}: no golden case found (expected <name>/manifest.yaml directories)")]
    NoCases {
        /// The directory searched.
        path: PathBuf,
    },
}

type Result<T, E = GoldenError> = std::result::Result<T, E>;

/// The provenance of a case: which oracle, at which versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oracle {
    /// The model class and how it was run.
    pub name: String,
    /// Python version.
    pub python: String,
    /// PyTorch version.
    pub torch: String,
    /// transformers version.
    pub transformers: String,
    /// safetensors version.
    pub safetensors: String,
    /// numpy version.
    pub numpy: String,
}

/// Where the case's weights come from and how to recognise them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointInfo {
    /// Whether `checkpoint/` is committed beside the manifest; when not, it is rebuilt from the seed.
    pub committed: bool,
    /// The synthetic-weight scheme ([`synthetic::SCHEME`]).
    pub scheme: String,
    /// The generator seed.
    pub seed: u64,
    /// The content digest of the weights ([`Checkpoint::digest`]).
    pub digest: String,
    /// SHA-256 of each committed file of `checkpoint/`.
    pub files: BTreeMap<String, String>,
}

/// A file and its checksum.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// Path relative to the case directory.
    pub file: String,
    /// SHA-256 of the file.
    pub sha256: String,
}

/// A tolerance and why it is what it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// The bound on max |ours − golden| / max |golden|.
    pub value: f64,
    /// Where the bound comes from.
    pub rationale: String,
}

/// The tolerances of a case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// For a float64 implementation.
    pub f64_max_rel: Tolerance,
    /// For a float32 implementation.
    pub f32_max_rel: Tolerance,
}

/// The hyper-parameters of a case's model, by family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelConfig {
    /// A Llama-architecture model, under transformers' `LlamaConfig` field names.
    Llama(LlamaConfig),
    /// A GPT-2 model.
    Gpt2(Config),
}

impl ModelConfig {
    /// The family the config belongs to.
    pub fn family(&self) -> Family {
        match self {
            ModelConfig::Gpt2(_) => Family::Gpt2,
            ModelConfig::Llama(_) => Family::Llama,
        }
    }

    /// V: the vocabulary size.
    pub fn vocab_size(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.vocab_size,
            ModelConfig::Llama(c) => c.vocab_size,
        }
    }

    /// C: the width of every hidden state.
    pub fn width(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_embd,
            ModelConfig::Llama(c) => c.hidden_size,
        }
    }

    /// L: the number of blocks; the outputs hold L + 1 hidden states.
    pub fn n_layer(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_layer,
            ModelConfig::Llama(c) => c.num_hidden_layers,
        }
    }

    /// P: the longest sequence the model takes.
    pub fn n_positions(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_positions,
            ModelConfig::Llama(c) => c.max_position_embeddings,
        }
    }

    fn validate(&self, path: &Path) -> tkbench_reference::Result<()> {
        match self {
            ModelConfig::Gpt2(c) => c.validate(path),
            ModelConfig::Llama(c) => c.validate(path),
        }
    }
}

/// An architecture a golden case may hold: the family's config found in a [`ModelConfig`].
pub trait CaseArchitecture: Architecture {
    /// The config of this family in `config`, or None if `config` is of another family.
    fn of(config: &ModelConfig) -> Option<&Self>;
}

impl CaseArchitecture for Config {
    fn of(config: &ModelConfig) -> Option<&Self> {
        match config {
            ModelConfig::Gpt2(c) => Some(c),
            ModelConfig::Llama(_) => None,
        }
    }
}

impl CaseArchitecture for LlamaConfig {
    fn of(config: &ModelConfig) -> Option<&Self> {
        match config {
            ModelConfig::Llama(c) => Some(c),
            ModelConfig::Gpt2(_) => None,
        }
    }
}

/// `manifest.yaml` of a golden case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// The case name, also its directory name.
    pub name: String,
    /// The model family; GPT-2 when absent (the cases made before there was a second family).
    #[serde(default, skip_serializing_if = "is_gpt2")]
    pub family: Family,
    /// What the case covers.
    pub description: String,
    /// Who made the golden tensors.
    pub oracle: Oracle,
    /// The weights.
    pub checkpoint: CheckpointInfo,
    /// The model's hyper-parameters, of the case's family.
    pub config: ModelConfig,
    /// The input token ids.
    pub tokens: Vec<u32>,
    /// The lengths of the calls that feed the tokens, in order, each after the ones before it in
    /// the KV cache; they sum to the number of tokens.
    pub steps: Vec<usize>,
    /// The positions whose logits the outputs hold, ascending.
    pub logit_positions: Vec<usize>,
    /// The positions whose hidden states the outputs hold, ascending.
    pub hidden_positions: Vec<usize>,
    /// The dtype of the golden tensors.
    pub dtype: String,
    /// The golden tensors.
    pub outputs: FileRef,
    /// The oracle's own float32 error: max |HF f32 − HF f64| / max |HF f64| over the logits.
    pub oracle_f32_gap: f64,
    /// Pass bounds.
    pub tolerances: Tolerances,
}

/// A loaded golden case: its manifest and the oracle's tensors, checksums verified.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case directory.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// [R, V] the oracle's float64 logits at the manifest's `logit_positions`.
    pub logits: Array2<f64>,
    /// [R, V] the oracle's own float32 logits there.
    pub logits_f32: Array2<f32>,
    /// L + 1 arrays [H, C]: the oracle's float64 hidden states at the `hidden_positions`.
    pub hidden_states: Vec<Array2<f64>>,
}

/// The root of this workspace.
pub fn workspace_root() -> PathBuf {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    harness
        .ancestors()
        .nth(2)
        .expect("the harness crate lives at crates/harness")
        .to_owned()
}

/// The `golden/` directory of this workspace.
pub fn workspace_golden_dir() -> PathBuf {
    workspace_root().join("golden")
}

/// The case directories under `cases_dir` (each holding a `manifest.yaml`), sorted by name.
pub fn case_dirs(cases_dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(cases_dir).map_err(|source| GoldenError::Io {
        path: cases_dir.to_owned(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.yaml").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(GoldenError::NoCases {
            path: cases_dir.to_owned(),
        });
    }
    Ok(dirs)
}

fn is_gpt2(family: &Family) -> bool {
    *family == Family::Gpt2
}

fn sha256_hex(bytes: &[u8]) -> String {
    tkbench_reference::checkpoint::hex(&Sha256::digest(bytes))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| GoldenError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The bytes of `path`, read once and checked against their recorded SHA-256.
fn read_verified(path: &Path, expected: &str) -> Result<Vec<u8>> {
    let bytes = read(path)?;
    let found = sha256_hex(&bytes);
    if found != expected {
        return Err(GoldenError::Checksum {
            path: path.to_owned(),
            expected: expected.to_owned(),
            found,
        });
    }
    Ok(bytes)
}

impl Manifest {
    /// Reads and checks a manifest: known schema, fields complete and of the right type.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| GoldenError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Checks the text of a manifest read from `path` (named in errors), as [`Manifest::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |message: String| GoldenError::Manifest {
            path: path.to_owned(),
            message,
        };
        // The schema is read first so that a future manifest gets a clear error rather than a
        // complaint about some field it renamed.
        #[derive(Deserialize)]
        struct Versioned {
            schema: Option<u32>,
            #[serde(default)]
            family: Family,
            config: Option<serde_yaml::Value>,
        }
        let versioned: Versioned = serde_yaml::from_str(text).map_err(|e| bad(e.to_string()))?;
        match versioned.schema {
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(bad(format!(
                    "field `schema`: version {other} is not known; this tkbench reads {SCHEMA}"
                )));
            }
            None => return Err(bad("field `schema`: missing".into())),
        }
        // The config is read as its family's before the whole, so that a wrong or missing field of
        // it is named, where an untagged enum would only say that no family matched.
        let config = versioned.config.ok_or_else(|| bad("field `config`: missing".into()))?;
        let typed = match versioned.family {
            Family::Gpt2 => serde_yaml::from_value::<Config>(config).map(|_| ()),
            Family::Llama => serde_yaml::from_value::<LlamaConfig>(config).map(|_| ()),
        };
        typed.map_err(|e| bad(format!("field `config` (family {}): {e}", versioned.family)))?;
        let manifest: Manifest = serde_yaml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if manifest.config.family() != manifest.family {
            return Err(bad(format!(
                "field `config` is a {} config, but field `family` is {}",
                manifest.config.family(),
                manifest.family
            )));
        }
        manifest.config.validate(path)?;
        manifest.validate_positions().map_err(bad)?;
        Ok(manifest)
    }

    /// The steps cover the tokens, and the positions are ascending, distinct and within them.
    fn validate_positions(&self) -> Result<(), String> {
        let t = self.tokens.len();
        if self.steps.contains(&0) || self.steps.iter().sum::<usize>() != t {
            return Err(format!(
                "field `steps`: {:?} must be non-zero lengths that sum to the {t} tokens",
                self.steps
            ));
        }
        for (field, positions) in [
            ("logit_positions", &self.logit_positions),
            ("hidden_positions", &self.hidden_positions),
        ] {
            if positions.is_empty() || positions.windows(2).any(|w| w[0] >= w[1]) || positions[positions.len() - 1] >= t
            {
                return Err(format!(
                    "field `{field}`: must be ascending, distinct positions below the {t} tokens"
                ));
            }
        }
        Ok(())
    }

    /// The calls that feed the tokens: for each step, its first position and its length.
    pub fn calls(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.steps.iter().scan(0, |p0, &len| {
            let call = (*p0, len);
            *p0 += len;
            Some(call)
        })
    }
}

/// The rows of `positions` that fall in the call of `len` tokens from `p0`, as rows of that call.
pub fn rows_in_call(positions: &[usize], p0: usize, len: usize) -> Vec<usize> {
    positions
        .iter()
        .filter(|&&p| (p0..p0 + len).contains(&p))
        .map(|&p| p - p0)
        .collect()
}

fn read_array<T: Copy>(
    file: &SafeTensors<'_>,
    path: &Path,
    name: &str,
    dtype: Dtype,
    shape: [usize; 2],
    decode: impl Fn(&[u8]) -> T,
) -> Result<Array2<T>> {
    let bad = |message: String| GoldenError::Tensor {
        path: path.to_owned(),
        name: name.to_owned(),
        message,
    };
    let view = file.tensor(name).map_err(|_| bad("missing".into()))?;
    if view.dtype() != dtype {
        return Err(bad(format!("dtype is {:?}, expected {dtype:?}", view.dtype())));
    }
    if view.shape() != shape {
        return Err(bad(format!("shape is {:?}, expected {shape:?}", view.shape())));
    }
    let width = dtype.bitsize() / 8;
    let data = view.data().chunks_exact(width).map(decode).collect();
    Ok(Array2::from_shape_vec(shape, data).expect("length checked against shape"))
}

impl Case {
    /// Loads the case in `dir`, verifying the outputs file against its recorded checksum.
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest = Manifest::load(&dir.join("manifest.yaml"))?;
        let path = dir.join(&manifest.outputs.file);
        let bytes = read_verified(&path, &manifest.outputs.sha256)?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| GoldenError::Tensor {
            path: path.clone(),
            name: "<file>".into(),
            message: format!("not a valid safetensors file: {e}"),
        })?;
        let (r, h, v, c) = (
            manifest.logit_positions.len(),
            manifest.hidden_positions.len(),
            manifest.config.vocab_size(),
            manifest.config.width(),
        );
        let f64_le = |b: &[u8]| f64::from_le_bytes(b.try_into().expect("8-byte chunk"));
        let f32_le = |b: &[u8]| f32::from_le_bytes(b.try_into().expect("4-byte chunk"));
        let logits = read_array(&file, &path, "logits", Dtype::F64, [r, v], f64_le)?;
        let logits_f32 = read_array(&file, &path, "logits_f32", Dtype::F32, [r, v], f32_le)?;
        let hidden_states = (0..=manifest.config.n_layer())
            .map(|i| read_array(&file, &path, &format!("hidden_states.{i}"), Dtype::F64, [h, c], f64_le))
            .collect::<Result<_>>()?;
        // The recorded gap sets the float32 bound: it must be the gap of the checksummed tensors.
        let scale = logits.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let gap = logits_f32
            .iter()
            .zip(&logits)
            .fold(0.0f64, |m, (&a, &b)| m.max((f64::from(a) - b).abs()))
            / scale;
        if (gap - manifest.oracle_f32_gap).abs() > 1e-9 * gap {
            return Err(GoldenError::Manifest {
                path: dir.join("manifest.yaml"),
                message: format!(
                    "field `oracle_f32_gap` is {}, but the outputs give {gap}",
                    manifest.oracle_f32_gap
                ),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            manifest,
            logits,
            logits_f32,
            hidden_states,
        })
    }

    /// The case's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The weights the case was made from, of its family.
    pub fn any_checkpoint(&self) -> Result<AnyCheckpoint> {
        Ok(match self.manifest.family {
            Family::Gpt2 => AnyCheckpoint::Gpt2(self.checkpoint_of::<Config>()?),
            Family::Llama => AnyCheckpoint::Llama(self.checkpoint_of::<LlamaConfig>()?),
        })
    }

    /// The weights of a GPT-2 case: [`Case::checkpoint_of`] for the GPT-2 family.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        self.checkpoint_of::<Config>()
    }

    /// The weights the case was made from, of family `A`: the committed checkpoint (file checksums
    /// verified) or the synthetic one rebuilt from its seed; either way its digest must match the
    /// manifest's. A case of another family is an error that names both.
    pub fn checkpoint_of<A: CaseArchitecture>(&self) -> Result<Checkpoint<A>> {
        let Some(config) = A::of(&self.manifest.config) else {
            return Err(GoldenError::Manifest {
                path: self.dir.join("manifest.yaml"),
                message: format!(
                    "the case is of family {}, but a {} checkpoint was asked for",
                    self.manifest.family,
                    A::FAMILY
                ),
            });
        };
        let info = &self.manifest.checkpoint;
        let (checkpoint, origin) = if info.committed {
            let dir = self.dir.join("checkpoint");
            for (file, sha) in &info.files {
                read_verified(&dir.join(file), sha)?;
            }
            (Checkpoint::<A>::load(&dir)?, dir)
        } else {
            if info.scheme != synthetic::SCHEME {
                return Err(GoldenError::Manifest {
                    path: self.dir.join("manifest.yaml"),
                    message: format!(
                        "field `checkpoint.scheme`: `{}` is not known; this tkbench rebuilds `{}`",
                        info.scheme,
                        synthetic::SCHEME
                    ),
                });
            }
            let origin = self.dir.join(format!("<{} seed {}>", info.scheme, info.seed));
            (synthetic::checkpoint(config, info.seed), origin)
        };
        let found = checkpoint.digest();
        if found != info.digest {
            return Err(GoldenError::Digest {
                path: origin,
                expected: info.digest.clone(),
                found,
            });
        }
        if checkpoint.config() != config {
            return Err(GoldenError::Manifest {
                path: self.dir.join("manifest.yaml"),
                message: format!(
                    "field `config` differs from the checkpoint's config.json: manifest {config:?}, checkpoint {:?}",
                    checkpoint.config()
                ),
            });
        }
        Ok(checkpoint)
    }
}

/// A checkpoint of either family.
#[derive(Debug, Clone)]
pub enum AnyCheckpoint {
    /// A GPT-2 checkpoint.
    Gpt2(Checkpoint),
    /// A Llama checkpoint.
    Llama(Checkpoint<LlamaConfig>),
}

impl AnyCheckpoint {
    /// Loads the checkpoint directory `dir` as the family its `config.json` names.
    pub fn load(dir: &Path) -> tkbench_reference::Result<Self> {
        Ok(match Family::of_dir(dir)? {
            Family::Gpt2 => AnyCheckpoint::Gpt2(Checkpoint::load(dir)?),
            Family::Llama => AnyCheckpoint::Llama(Checkpoint::load(dir)?),
        })
    }

    /// The checkpoint's family.
    pub fn family(&self) -> Family {
        match self {
            AnyCheckpoint::Gpt2(_) => Family::Gpt2,
            AnyCheckpoint::Llama(_) => Family::Llama,
        }
    }

    /// The content digest of the weights ([`Checkpoint::digest`]).
    pub fn digest(&self) -> String {
        match self {
            AnyCheckpoint::Gpt2(c) => c.digest(),
            AnyCheckpoint::Llama(c) => c.digest(),
        }
    }

    /// The model's hyper-parameters, by family.
    pub fn config(&self) -> ModelConfig {
        match self {
            AnyCheckpoint::Gpt2(c) => ModelConfig::Gpt2(c.config().clone()),
            AnyCheckpoint::Llama(c) => ModelConfig::Llama(c.config().clone()),
        }
    }

    /// The reference model of the checkpoint's family, in precision `F`.
    pub fn reference<F: Real>(&self) -> Box<dyn CausalLm<F>> {
        match self {
            AnyCheckpoint::Gpt2(c) => Box::new(Gpt2::<F>::from_checkpoint(c)),
            AnyCheckpoint::Llama(c) => Box::new(Llama::<F>::from_checkpoint(c)),
        }
    }

    /// The reference model of the checkpoint's family in precision `F`, fed the case's tokens in
    /// its steps: [`run_model`]'s logits and hidden states.
    pub fn run_reference<F: Real>(&self, case: &Case) -> Result<(Array2<f64>, Vec<Array2<f64>>)> {
        run_model(case, &*self.reference::<F>())
    }
}

/// How closely the reference model reproduces one golden case.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceCheck {
    /// Case name.
    pub case: String,
    /// Float64 reference logits against golden.
    pub f64_logits: MaxRel,
    /// Float64 reference hidden states against golden, per HF hidden-state index.
    pub f64_hidden: Vec<MaxRel>,
    /// Float32 reference logits against golden.
    pub f32_logits: MaxRel,
    /// The oracle's own float32 logits against its float64 ones.
    pub oracle_f32_gap: f64,
    /// Bound for float64.
    pub f64_tolerance: f64,
    /// Bound for float32.
    pub f32_tolerance: f64,
}

impl ReferenceCheck {
    /// Whether the float64 logits and every hidden state are within the float64 bound.
    pub fn f64_pass(&self) -> bool {
        self.f64_logits.value <= self.f64_tolerance && self.f64_hidden.iter().all(|h| h.value <= self.f64_tolerance)
    }

    /// Whether the float32 logits are within the float32 bound.
    pub fn f32_pass(&self) -> bool {
        self.f32_logits.value <= self.f32_tolerance
    }

    /// Whether both pass.
    pub fn pass(&self) -> bool {
        self.f64_pass() && self.f32_pass()
    }
}

/// `model` fed the case's tokens in its steps: the logits [R, V] at the logit positions and the
/// L + 1 hidden states [H, C] at the hidden positions, in float64.
pub fn run_model<F: Real>(case: &Case, model: &(impl CausalLm<F> + ?Sized)) -> Result<(Array2<f64>, Vec<Array2<f64>>)> {
    let m = &case.manifest;
    let mut cache = model.new_cache();
    let (v, c) = (m.config.vocab_size(), m.config.width());
    let mut logits = Array2::zeros((0, v));
    let mut hidden = vec![Array2::zeros((0, c)); m.config.n_layer() + 1];
    for (p0, len) in m.calls() {
        let logit_rows = rows_in_call(&m.logit_positions, p0, len);
        let hidden_rows = rows_in_call(&m.hidden_positions, p0, len);
        let (l, h) = model.forward_cached_rows(&m.tokens[p0..p0 + len], &mut cache, &logit_rows)?;
        let to_f64 = |a: ndarray::ArrayView2<F>| a.mapv(Real::as_f64);
        logits
            .append(ndarray::Axis(0), to_f64(l.view()).view())
            .expect("widths agree");
        for (all, state) in hidden.iter_mut().zip(&h) {
            let rows = state.select(ndarray::Axis(0), &hidden_rows);
            all.append(ndarray::Axis(0), to_f64(rows.view()).view())
                .expect("widths agree");
        }
    }
    Ok((logits, hidden))
}

/// Runs the reference model of the case's family, in float64 and float32, on `case` with the
/// checkpoint it was made from.
pub fn check_reference(case: &Case) -> Result<ReferenceCheck> {
    let checkpoint = case.any_checkpoint()?;
    let (logits64, hidden64) = checkpoint.run_reference::<f64>(case)?;
    let (logits32, _) = checkpoint.run_reference::<f32>(case)?;
    Ok(ReferenceCheck {
        case: case.name().to_owned(),
        f64_logits: max_rel(&logits64.view(), &case.logits.view()),
        f64_hidden: hidden64
            .iter()
            .zip(&case.hidden_states)
            .map(|(ours, golden)| max_rel(&ours.view(), &golden.view()))
            .collect(),
        f32_logits: max_rel(&logits32.view(), &case.logits.view()),
        oracle_f32_gap: case.manifest.oracle_f32_gap,
        f64_tolerance: case.manifest.tolerances.f64_max_rel.value,
        f32_tolerance: case.manifest.tolerances.f32_max_rel.value,
    })
}
