//! `cargo xtask logits`: the logits [T, V] of every position of a prompt, written to safetensors, from
//! the reference model or from the kernel-driven model with any kernel set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ndarray::{Array2, Axis, concatenate};
use safetensors::Dtype;
use tkbench_harness::check::golden::AnyCheckpoint;
use tkbench_harness::model::AnyWeights;
use tkbench_harness::registry::KernelSet;
use tkbench_kernels::Isa;
use tkbench_reference::{CausalLm, Family, Real};

use crate::Outcome;
use crate::prompt::PromptArgs;

/// Arguments of `cargo xtask logits`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    prompt: PromptArgs,
    /// The safetensors file to write; it holds one tensor, `logits`, of shape [T, V].
    #[arg(long, value_name = "FILE.safetensors")]
    out: PathBuf,
    /// The precision the model runs in and the dtype of the tensor written.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    /// prefill: all tokens in one pass; decode: one token at a time through the KV cache.
    #[arg(long, value_enum, default_value_t = Mode::Prefill)]
    mode: Mode,
    /// Run the kernel-driven model with this kernel set (`fastest`, `scalar`, or op=variant,...)
    /// instead of the reference model; kernels run in float32.
    #[arg(long, value_name = "SPEC", value_parser = crate::args::kernels)]
    kernels: Option<KernelSet>,
    /// The ISA level of the kernel set [default: the widest this CPU has].
    #[arg(long, requires = "kernels", value_parser = crate::args::isa)]
    isa: Option<Isa>,
    /// Threads for the kernel set [default: all cores]; the logits are bit-identical for every count.
    #[arg(long, value_name = "N", requires = "kernels")]
    threads: Option<usize>,
}

/// The precision of the reference model.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Precision {
    /// float32.
    F32,
    /// float64.
    F64,
}

/// How the prompt is fed to the model.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// All tokens at once.
    Prefill,
    /// One token at a time through the KV cache.
    Decode,
}

impl Mode {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Prefill => "prefill",
            Mode::Decode => "decode",
        }
    }
}

/// The logits [T, V] of `tokens` in `mode`.
pub fn logits<F: Real>(model: &(impl CausalLm<F> + ?Sized), tokens: &[u32], mode: Mode) -> Result<Array2<F>> {
    match mode {
        Mode::Prefill => Ok(model.forward_cached(tokens, &mut model.new_cache())?),
        Mode::Decode => {
            model.check_tokens(tokens, 0)?;
            let mut cache = model.new_cache();
            let rows = tokens
                .iter()
                .map(|&t| model.forward_cached(&[t], &mut cache))
                .collect::<Result<Vec<_>, _>>()?;
            let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
            Ok(concatenate(Axis(0), &views).expect("every row is [1, V]"))
        }
    }
}

fn write_logits<F: Real>(
    path: &Path,
    logits: &Array2<F>,
    dtype: Dtype,
    metadata: HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<u8> = match dtype {
        Dtype::F64 => logits.iter().flat_map(|x| x.as_f64().to_le_bytes()).collect(),
        _ => logits.iter().flat_map(|x| (x.as_f64() as f32).to_le_bytes()).collect(),
    };
    let view = safetensors::tensor::TensorView::new(dtype, vec![logits.nrows(), logits.ncols()], &bytes)
        .expect("bytes match the shape");
    let file = safetensors::serialize([("logits", view)], Some(metadata))?;
    // Write beside the target and rename, so that a failed run never leaves half a file behind.
    let partial = path.with_extension("safetensors.partial");
    std::fs::write(&partial, file).with_context(|| format!("{}: cannot write", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("{}: cannot write", path.display()))
}

/// The metadata written beside the logits: the model, its digest, the mode and the tokens.
fn metadata(args: &Args, digest: &str, tokens: &[u32]) -> HashMap<String, String> {
    [
        ("model", args.prompt.model.display().to_string()),
        ("digest", digest.to_owned()),
        ("mode", args.mode.name().to_owned()),
        (
            "tokens",
            tokens.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Runs `cargo xtask logits`.
pub fn run(args: Args) -> Result<Outcome> {
    let family = Family::of_dir(&args.prompt.model)?;
    let tokens = args.prompt.token_ids_for(family)?;
    let checkpoint = AnyCheckpoint::load(&args.prompt.model)?;
    let (vocab_size, n_positions) = (checkpoint.config().vocab_size(), checkpoint.config().n_positions());
    let metadata = metadata(&args, &checkpoint.digest(), &tokens);
    if let Some(set) = args.kernels.clone() {
        if matches!(args.dtype, Precision::F64) {
            anyhow::bail!("--dtype f64: kernel sets run in float32; drop --dtype or --kernels");
        }
        let isa = args.isa.unwrap_or_else(Isa::best);
        let weights = AnyWeights::new(&checkpoint);
        let model = weights.model(&set, isa, args.threads.unwrap_or(0));
        let v = vocab_size;
        let rows: Vec<f32> = match args.mode {
            Mode::Prefill => model.forward_cached(&tokens, &mut model.new_cache())?.logits,
            Mode::Decode => {
                // The whole prompt is checked before the first step, as the reference does.
                tkbench_reference::model::check_token_ids(&tokens, 0, vocab_size, n_positions)?;
                let mut cache = model.new_cache();
                let mut all = Vec::with_capacity(tokens.len() * v);
                for &t in &tokens {
                    all.extend(model.forward_cached(&[t], &mut cache)?.logits);
                }
                all
            }
        };
        let logits = Array2::from_shape_vec((tokens.len(), v), rows).expect("[T, V]");
        let mut metadata = metadata;
        metadata.insert("kernels".into(), set.spec());
        metadata.insert("isa".into(), isa.name().into());
        metadata.insert("threads".into(), model.threads().to_string());
        write_logits(&args.out, &logits, Dtype::F32, metadata)?;
        eprintln!(
            "wrote logits [{}, {v}] of kernel set `{}` at {isa} on {} thread(s) to {}",
            tokens.len(),
            set.spec(),
            model.threads(),
            args.out.display()
        );
        return Ok(Outcome::Pass);
    }
    let (t, v) = match args.dtype {
        Precision::F32 => {
            let l = logits(&*checkpoint.reference::<f32>(), &tokens, args.mode)?;
            write_logits(&args.out, &l, Dtype::F32, metadata)?;
            l.dim()
        }
        Precision::F64 => {
            let l = logits(&*checkpoint.reference::<f64>(), &tokens, args.mode)?;
            write_logits(&args.out, &l, Dtype::F64, metadata)?;
            l.dim()
        }
    };
    eprintln!("wrote logits [{t}, {v}] to {}", args.out.display());
    Ok(Outcome::Pass)
}
