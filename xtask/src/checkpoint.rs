//! `cargo xtask checkpoint`: writes the checkpoint of a golden case to a directory, rebuilding it
//! from its seed when it is too large to commit, so that any command taking `--model` can use it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tkbench_harness::check::golden::{Case, workspace_golden_dir, workspace_root};
use tkbench_reference::{Family, LlamaConfig};

use crate::Outcome;

/// Arguments of `cargo xtask checkpoint`.
#[derive(clap::Args)]
pub struct Args {
    /// The golden case (a directory name under golden/cases/).
    case: String,
    /// Where to write config.json and model.safetensors [default: target/tkbench/checkpoints/CASE].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Runs `cargo xtask checkpoint`.
pub fn run(args: Args) -> Result<Outcome> {
    let case_dir = workspace_golden_dir().join("cases").join(&args.case);
    if !case_dir.join("manifest.yaml").is_file() {
        anyhow::bail!(
            "{}: no golden case named `{}` (see golden/cases/)",
            case_dir.display(),
            args.case
        );
    }
    let case = Case::load(&case_dir)?;
    let out = args
        .out
        .unwrap_or_else(|| workspace_root().join("target/tkbench/checkpoints").join(&args.case));
    let saved = match case.manifest.family {
        Family::Gpt2 => case.checkpoint()?.save(&out),
        Family::Llama => case.checkpoint_of::<LlamaConfig>()?.save(&out),
    };
    saved.with_context(|| format!("writing the checkpoint of `{}`", args.case))?;
    println!("{}", out.display());
    eprintln!(
        "wrote the checkpoint of `{}` (digest {}) to {}",
        args.case,
        case.manifest.checkpoint.digest,
        out.display()
    );
    Ok(Outcome::Pass)
}
