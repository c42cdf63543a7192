//! `cargo xtask golden`: check the committed golden cases against the reference model (`--check`), or
//! regenerate them with the oracle (Hugging Face transformers in float64) and replace golden/cases/
//! only once the new cases are complete and reproduced.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tkbench_harness::check::golden::{
    Case, ReferenceCheck, case_dirs, check_reference, workspace_golden_dir, workspace_root,
};
use tkbench_harness::check::verify::{first_out_of_budget, hidden_name};

use crate::Outcome;

/// Arguments of `cargo xtask golden`.
#[derive(clap::Args)]
pub struct Args {
    /// Only check: verify checksums and that the reference model reproduces every case; write nothing.
    #[arg(long)]
    check: bool,
    /// Only this case (repeatable); the default is every case.
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    /// The Python of the oracle's environment [default: $TKBENCH_ORACLE_PYTHON, else
    /// golden/oracle/.venv/bin/python].
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
}

/// The names in golden/oracle/cases.yaml, the list the oracle makes.
pub fn listed_cases(golden: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Listed {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct CaseList {
        cases: Vec<Listed>,
    }
    let path = golden.join("oracle/cases.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let list: CaseList =
        serde_yaml::from_str(&text).with_context(|| format!("{}: malformed case list", path.display()))?;
    Ok(list.cases.into_iter().map(|c| c.name).collect())
}

/// The names of `all` that `wanted` selects (all of them when `wanted` is empty).
pub fn selected(all: Vec<String>, wanted: &[String]) -> Result<Vec<String>> {
    if let Some(unknown) = wanted.iter().find(|w| !all.contains(w)) {
        bail!("no golden case named `{unknown}`; cases are: {}", all.join(", "));
    }
    Ok(all
        .into_iter()
        .filter(|c| wanted.is_empty() || wanted.contains(c))
        .collect())
}

fn print_header() {
    println!(
        "{:<24} {:>4} {:>6}  {:>10} {:>10}  {:>10} {:>10} {:>10}  verdict",
        "case", "T", "V", "f64 logits", "f64 hidden", "f32 logits", "f32 bound", "HF f32 gap"
    );
}

fn print_row(case: &Case, check: &ReferenceCheck, seconds: f64) {
    let hidden = check.f64_hidden.iter().map(|h| h.value).fold(0.0, f64::max);
    let verdict = match (check.f64_pass(), check.f32_pass()) {
        (true, true) => "pass".to_owned(),
        (false, _) => format!("FAIL (float64 above {:.0e})", check.f64_tolerance),
        (true, false) => "FAIL (float32 above bound)".to_owned(),
    };
    println!(
        "{:<24} {:>4} {:>6}  {:>10.2e} {:>10.2e}  {:>10.2e} {:>10.2e} {:>10.2e}  {verdict} ({seconds:.1}s)",
        case.name(),
        case.manifest.tokens.len(),
        case.manifest.config.vocab_size(),
        check.f64_logits.value,
        hidden,
        check.f32_logits.value,
        check.f32_tolerance,
        check.oracle_f32_gap,
    );
    if !check.pass() {
        let errors: Vec<f64> = check.f64_hidden.iter().map(|h| h.value).collect();
        if let Some(index) = first_out_of_budget(&errors, check.f64_tolerance) {
            let name = hidden_name(index, case.manifest.config.n_layer());
            println!("  first hidden state out of bound: {name}");
        }
        println!("  replay: cargo xtask golden --check --case {}", case.name());
    }
}

/// Loads and checks every case directory in `dirs`, printing one row each.
pub fn check_dirs(dirs: &[PathBuf]) -> Result<Outcome> {
    print_header();
    let mut failed = 0;
    for dir in dirs {
        let start = Instant::now();
        let case = Case::load(dir)?;
        let check = check_reference(&case)?;
        print_row(&case, &check, start.elapsed().as_secs_f64());
        if !check.pass() {
            failed += 1;
        }
    }
    println!(
        "{} of {} golden cases reproduced (max |ours - golden| / max |golden| over the logits and every hidden state)",
        dirs.len() - failed,
        dirs.len()
    );
    Ok(if failed == 0 { Outcome::Pass } else { Outcome::Fail })
}

fn oracle_python(args: &Args, golden: &Path) -> PathBuf {
    args.python
        .clone()
        .or_else(|| std::env::var_os("TKBENCH_ORACLE_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| golden.join("oracle/.venv/bin/python"))
}

fn install_hint(python: &Path) -> String {
    format!(
        "the oracle's Python environment is missing or incomplete ({}).\n\
         Install it (about 4 GB: PyPI's torch wheel brings CUDA libraries; it runs on the CPU):\n\n    \
         python3 -m venv golden/oracle/.venv\n    \
         golden/oracle/.venv/bin/pip install -r golden/oracle/requirements.txt\n\n\
         or point --python / TKBENCH_ORACLE_PYTHON at a Python that has them. See golden/oracle/README.md.",
        python.display()
    )
}

/// Regenerates the selected cases through the oracle, then replaces them in golden/cases/.
fn regenerate(args: &Args, golden: &Path, names: &[String]) -> Result<Outcome> {
    let python = oracle_python(args, golden);
    let probe = Command::new(&python)
        .args(["-c", "import torch, transformers, safetensors, numpy, yaml"])
        .output();
    if !matches!(&probe, Ok(out) if out.status.success()) {
        bail!("{}", install_hint(&python));
    }

    let staging = workspace_root().join("target/golden-staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("{}: cannot clear", staging.display()))?;
    }
    let mut oracle = Command::new(&python);
    oracle
        .arg(golden.join("oracle/make_golden.py"))
        .arg("--cases")
        .arg(golden.join("oracle/cases.yaml"))
        .arg("--out")
        .arg(&staging)
        .env("HF_HUB_OFFLINE", "1");
    for name in names {
        oracle.arg("--only").arg(name);
    }
    eprintln!("running the oracle ({}) on {} case(s)", python.display(), names.len());
    let status = oracle
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !status.success() {
        bail!("the oracle failed ({status}); golden/ is unchanged");
    }

    // Check every staged case before touching golden/: a failure leaves the committed cases intact.
    let mut staged = Vec::new();
    for name in names {
        let dir = staging.join(name);
        let case = Case::load(&dir).with_context(|| format!("staged case `{name}`"))?;
        if !case.manifest.checkpoint.committed {
            std::fs::remove_dir_all(dir.join("checkpoint"))?;
        }
        staged.push(dir);
    }
    eprintln!("checking the staged cases against the reference model");
    if let Outcome::Fail = check_dirs(&staged)? {
        bail!(
            "the reference model does not reproduce the new cases; golden/ is unchanged (staged in {})",
            staging.display()
        );
    }
    let cases = golden.join("cases");
    std::fs::create_dir_all(&cases)?;
    for (name, dir) in names.iter().zip(&staged) {
        let target = cases.join(name);
        if target.exists() {
            std::fs::remove_dir_all(&target).with_context(|| format!("{}: cannot replace", target.display()))?;
        }
        std::fs::rename(dir, &target).with_context(|| format!("{}: cannot write", target.display()))?;
        eprintln!("wrote {}", target.display());
    }
    Ok(Outcome::Pass)
}

/// Runs `cargo xtask golden`.
pub fn run(args: Args) -> Result<Outcome> {
    let golden = workspace_golden_dir();
    let listed = listed_cases(&golden)?;
    let names = selected(listed.clone(), &args.cases)?;
    if args.check {
        let committed = case_dirs(&golden.join("cases"))?;
        let committed_names: Vec<String> = committed
            .iter()
            .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        if let Some(missing) = listed.iter().find(|n| !committed_names.contains(n)) {
            bail!(
                "golden/oracle/cases.yaml lists `{missing}`, but golden/cases/{missing} does not exist: run `cargo xtask golden`"
            );
        }
        if let Some(stray) = committed_names.iter().find(|n| !listed.contains(n)) {
            bail!("golden/cases/{stray} is not listed in golden/oracle/cases.yaml");
        }
        let dirs: Vec<PathBuf> = names.iter().map(|n| golden.join("cases").join(n)).collect();
        return check_dirs(&dirs);
    }
    regenerate(&args, &golden, &names)
}
