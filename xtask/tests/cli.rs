//! The command line as a user meets it: `logits`, `generate`, `golden --check` and `checkpoint` on real
//! checkpoints, and the exit code and message of each kind of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rstest::rstest;
use safetensors::{Dtype, SafeTensors};
use tkbench_harness::check::golden::{Case, workspace_golden_dir};
use tkbench_harness::check::metrics::max_rel;
use tkbench_reference::{Config, synthetic};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn case_dir(name: &str) -> PathBuf {
    workspace_golden_dir().join("cases").join(name)
}

/// Reads the `logits` tensor of a file written by `xtask logits`, as f64, with its dtype and shape.
fn read_logits(path: &Path) -> (Dtype, ndarray::Array2<f64>, std::collections::HashMap<String, String>) {
    let bytes = std::fs::read(path).unwrap();
    let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(file.names(), vec!["logits"], "exactly one tensor");
    let view = file.tensor("logits").unwrap();
    let values: Vec<f64> = match view.dtype() {
        Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
            .collect(),
        Dtype::F64 => view
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        other => panic!("unexpected dtype {other:?}"),
    };
    let shape = (view.shape()[0], view.shape()[1]);
    let meta = metadata.metadata().clone().unwrap_or_default();
    (
        view.dtype(),
        ndarray::Array2::from_shape_vec(shape, values).unwrap(),
        meta,
    )
}

fn tokens_arg(tokens: &[u32]) -> String {
    tokens.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

#[test]
fn logits_reproduce_the_golden_case_in_both_dtypes_and_modes() {
    let case = Case::load(&case_dir("odd-widths")).unwrap();
    let model = case_dir("odd-widths").join("checkpoint");
    let tokens = tokens_arg(&case.manifest.tokens);
    let tmp = tempfile::tempdir().unwrap();
    for (dtype, mode, bound) in [
        ("f64", "prefill", case.manifest.tolerances.f64_max_rel.value),
        ("f64", "decode", case.manifest.tolerances.f64_max_rel.value),
        ("f32", "prefill", case.manifest.tolerances.f32_max_rel.value),
        ("f32", "decode", case.manifest.tolerances.f32_max_rel.value),
    ] {
        let out = tmp.path().join(format!("{dtype}-{mode}.safetensors"));
        let run = xtask(&[
            "logits",
            "--model",
            model.to_str().unwrap(),
            "--tokens",
            &tokens,
            "--out",
            out.to_str().unwrap(),
            "--dtype",
            dtype,
            "--mode",
            mode,
        ]);
        assert!(run.status.success(), "{dtype} {mode}: {}", stderr(&run));
        let (stored, logits, meta) = read_logits(&out);
        assert_eq!(stored, if dtype == "f64" { Dtype::F64 } else { Dtype::F32 });
        assert_eq!(logits.dim(), case.logits.dim());
        assert_eq!(meta.get("mode").map(String::as_str), Some(mode));
        let err = max_rel(&logits.view(), &case.logits.view()).value;
        assert!(err <= bound, "{dtype} {mode}: max rel {err:.3e} above {bound:.3e}");
    }
}

#[test]
fn text_prompts_go_through_the_gpt2_tokenizer() {
    // A one-layer model with the GPT-2 vocabulary, small enough to build on the fly.
    let config = Config {
        n_layer: 1,
        n_head: 2,
        n_embd: 8,
        n_positions: 16,
        vocab_size: 50257,
        n_inner: 16,
        layer_norm_epsilon: 1e-5,
        scale_attn_weights: true,
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    synthetic::checkpoint(&config, 3).save(&model).unwrap();
    let out = tmp.path().join("logits.safetensors");
    let run = xtask(&[
        "logits",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "Hello world",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let (dtype, logits, meta) = read_logits(&out);
    assert_eq!((dtype, logits.dim()), (Dtype::F32, (2, 50257)));
    assert_eq!(meta.get("tokens").map(String::as_str), Some("15496,995"));

    let run = xtask(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "Hello world",
        "-n",
        "3",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("prompt ids:    15496,995"), "{stdout}");
    assert!(stdout.contains("prompt text:    \"Hello world\""), "{stdout}");
    assert!(stdout.contains("generated text:"), "{stdout}");
}

#[test]
fn generate_prints_the_greedy_ids() {
    let model = case_dir("tiny").join("checkpoint");
    let run = xtask(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--tokens",
        "1,2,3",
        "-n",
        "4",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("generated ids:"))
        .expect("a generated ids line");
    assert_eq!(line.split(':').nth(1).unwrap().trim().split(',').count(), 4, "{stdout}");
    assert!(stdout.contains("no text: the model's vocab_size is 64"), "{stdout}");
}

/// Runs xtask expecting exit code 2 and a message containing every one of `words`.
fn assert_input_error(args: &[&str], words: &[&str]) {
    let run = xtask(args);
    let message = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{args:?}: {message}");
    for word in words {
        assert!(message.contains(word), "{args:?}: `{word}` not in: {message}");
    }
}

#[test]
fn bad_input_exits_2_naming_what_is_at_fault() {
    let tiny = case_dir("tiny").join("checkpoint");
    let tiny = tiny.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let out = out.to_str().unwrap();

    assert_input_error(
        &["logits", "--model", "/no/such/model", "--tokens", "1", "--out", out],
        &["/no/such/model"],
    );
    assert_input_error(
        &["logits", "--model", tiny, "--tokens", "1,x", "--out", out],
        &["item 1 `x`"],
    );
    assert_input_error(
        &["logits", "--model", tiny, "--tokens", "1,64", "--out", out],
        &["id 64", "vocab_size is 64"],
    );
    assert_input_error(
        &["logits", "--model", tiny, "--text", "Hello", "--out", out],
        &["id 15496", "vocab_size is 64"],
    );
    assert_input_error(
        &["logits", "--model", tiny, "--tokens", "", "--out", out],
        &["prompt is empty"],
    );
    assert_input_error(
        &[
            "logits",
            "--model",
            tiny,
            "--tokens",
            &tokens_arg(&[1; 17]),
            "--out",
            out,
        ],
        &["n_positions is 16"],
    );
    assert_input_error(
        &["generate", "--model", tiny, "--tokens", "1,2", "-n", "16"],
        &["n_positions is 16"],
    );
    assert_input_error(&["logits", "--model", tiny, "--out", out], &["--tokens"]);

    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::copy(
        case_dir("tiny").join("checkpoint/config.json"),
        broken.join("config.json"),
    )
    .unwrap();
    let weights = std::fs::read(case_dir("tiny").join("checkpoint/model.safetensors")).unwrap();
    std::fs::write(broken.join("model.safetensors"), &weights[..weights.len() - 100]).unwrap();
    assert_input_error(
        &[
            "logits",
            "--model",
            broken.to_str().unwrap(),
            "--tokens",
            "1",
            "--out",
            out,
        ],
        &["model.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn golden_check_passes_and_refuses_unknown_cases() {
    let run = xtask(&["golden", "--check", "--case", "tiny", "--case", "odd-widths"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("2 of 2 golden cases reproduced"), "{stdout}");
    assert_input_error(
        &["golden", "--check", "--case", "nope"],
        &["no golden case named `nope`", "tiny"],
    );
}

#[test]
fn golden_without_the_oracle_says_how_to_install_it() {
    assert_input_error(
        &["golden", "--case", "tiny", "--python", "/no/such/python"],
        &["/no/such/python", "pip install -r golden/oracle/requirements.txt"],
    );
}

#[test]
fn checkpoint_writes_a_loadable_copy_of_a_case() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tiny");
    let run = xtask(&["checkpoint", "tiny", "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    let case = Case::load(&case_dir("tiny")).unwrap();
    let copy = tkbench_reference::Checkpoint::<tkbench_reference::Config>::load(&out).unwrap();
    assert_eq!(copy.digest(), case.manifest.checkpoint.digest);
    assert_input_error(&["checkpoint", "nope"], &["no golden case named `nope`"]);
}

#[test]
fn list_json_names_every_variant_with_op_kind_and_isa() {
    let run = xtask(&["list", "--json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let rows: serde_json::Value = serde_json::from_slice(&run.stdout).expect("list --json prints JSON");
    let rows = rows.as_array().expect("a JSON array");
    assert_eq!(
        rows.len(),
        tkbench_harness::registry::Registry::builtin().entries().count()
    );
    for row in rows {
        for key in ["op", "variant", "kind", "isa"] {
            assert!(
                row.get(key).and_then(|v| v.as_str()).is_some(),
                "{key} missing in {row}"
            );
        }
    }
    assert!(
        rows.iter()
            .any(|r| r["op"] == "attention" && r["variant"] == "blocked" && r["kind"] == "blocked")
    );
}

#[test]
fn opcheck_replays_one_case_and_refuses_bad_arguments() {
    let run = xtask(&[
        "opcheck",
        "--op",
        "softmax",
        "--variant",
        "simd",
        "--isa",
        "scalar",
        "--shape",
        "rows=2,cols=17",
        "--seed",
        "9",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("softmax    simd            scalar        1"),
        "{stdout}"
    );

    assert_input_error(&["opcheck", "--shape", "rows=1,cols=2"], &["--shape needs --op"]);
    assert_input_error(
        &["opcheck", "--op", "softmax", "--shape", "rows=1"],
        &["field `cols` is missing"],
    );
    assert_input_error(
        &["opcheck", "--op", "softmax", "--shape", "rows=1,cols=2,k=3"],
        &["`k` is not a field of softmax"],
    );
    assert_input_error(
        &["opcheck", "--op", "gelu", "--variant", "blocked"],
        &["no registered variant matches"],
    );
}

#[test]
fn verify_filters_and_prints_json() {
    let run = xtask(&["verify", "--case", "tiny", "--op", "softmax", "--json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).expect("verify --json prints JSON");
    assert!(json["ops"].is_null(), "--case runs the model level only: {json}");
    let rows = json["model"].as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let kernels = row["kernels"].as_str().unwrap();
        assert!(
            kernels.starts_with("fastest,softmax=") || kernels == "fastest",
            "{kernels}"
        );
        assert_eq!(row["pass"], true, "{row}");
        for key in ["max_rel", "max_abs", "nmse", "top1", "kl_mean", "kl_max"] {
            assert!(row["metrics"][key].is_number(), "{key} in {row}");
        }
    }
    assert!(
        stderr(&run).contains("verify [1/1] tiny"),
        "a progress line per case: {}",
        stderr(&run)
    );

    let run = xtask(&["verify", "--case", "tiny", "--variant", "reference"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("2 of 2 rows pass"));

    assert_input_error(&["verify", "--case", "missing"], &["no golden case named `missing`"]);
}

/// The options parsed by value parsers refuse bad values before anything runs, exit 2, and name
/// the option, the value and what is valid.
#[rstest]
#[case::verify_op(&["verify", "--op", "convolution"], &["--op", "no op named `convolution`", "softmax"])]
#[case::opcheck_op(&["opcheck", "--op", "nope"], &["--op", "no op named `nope`", "softmax"])]
#[case::verify_isa(&["verify", "--isa", "sse9"], &["--isa", "no level named `sse9`", "avx2"])]
#[case::opcheck_isa(&["opcheck", "--isa", "sse9"], &["--isa", "no level named `sse9`"])]
#[case::bench_isa(&["bench", "--isa", "sse9"], &["--isa", "no level named `sse9`"])]
#[case::verify_kernels(&["verify", "--kernels", "softmax=nope"], &["--kernels", "softmax has no variant `nope`"])]
#[case::verify_kernels_op(&["verify", "--kernels", "conv=simd"], &["--kernels", "no op named `conv`"])]
#[case::verify_kernels_form(&["verify", "--kernels", "simd"], &["--kernels", "`simd` is not op=variant"])]
#[case::logits_kernels(
    &["logits", "--model", "m", "--tokens", "1", "--out", "o", "--kernels", "gelu=blocked"],
    &["--kernels", "gelu has no variant `blocked`", "scalar, simd"]
)]
fn bad_option_values_are_usage_errors(#[case] args: &[&str], #[case] words: &[&str]) {
    assert_input_error(args, words);
}

/// A level this CPU lacks is refused by name, with the levels it has.
#[test]
fn a_level_this_cpu_lacks_is_refused() {
    use tkbench_kernels::Isa;
    if let Some(missing) = [Isa::Avx2, Isa::Avx512, Isa::Neon]
        .into_iter()
        .find(|l| !l.is_available())
    {
        assert_input_error(
            &["opcheck", "--isa", missing.name()],
            &["--isa", "is not available on this CPU (it has"],
        );
    }
}

#[test]
fn logits_with_kernels_are_bit_identical_across_threads() {
    let model = case_dir("full-context").join("checkpoint");
    let tokens = tokens_arg(&Case::load(&case_dir("full-context")).unwrap().manifest.tokens);
    let tmp = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for threads in ["1", "3"] {
        let out = tmp.path().join(format!("t{threads}.safetensors"));
        let run = xtask(&[
            "logits",
            "--model",
            model.to_str().unwrap(),
            "--tokens",
            &tokens,
            "--out",
            out.to_str().unwrap(),
            "--kernels",
            "fastest",
            "--threads",
            threads,
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
        let (dtype, logits, meta) = read_logits(&out);
        assert_eq!(dtype, Dtype::F32);
        assert_eq!(meta.get("kernels").map(String::as_str), Some("fastest"));
        outputs.push(logits);
    }
    assert!(outputs[0] == outputs[1], "logits differ between 1 and 3 threads");
    let golden = Case::load(&case_dir("full-context")).unwrap();
    let err = max_rel(&outputs[0].view(), &golden.logits.view()).value;
    assert!(
        err <= golden.manifest.tolerances.f32_max_rel.value,
        "fastest set: {err:e}"
    );

    let out = tmp.path().join("x.safetensors");
    let out = out.to_str().unwrap();
    let model = model.to_str().unwrap();
    assert_input_error(
        &[
            "logits",
            "--model",
            model,
            "--tokens",
            "1",
            "--out",
            out,
            "--kernels",
            "fastest",
            "--dtype",
            "f64",
        ],
        &["float32"],
    );
    assert_input_error(
        &[
            "logits", "--model", model, "--tokens", "1", "--out", out, "--isa", "avx2",
        ],
        &["--kernels"],
    );
}

/// The first committed report (the repository publishes at least one).
fn committed_report() -> PathBuf {
    let reports = workspace_golden_dir().parent().unwrap().join("reports");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&reports)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    found.sort();
    found.into_iter().next().expect("a committed report under reports/")
}

/// Runs `cargo xtask compare a b --svg svg`, expecting success and an SVG; returns its output and
/// its rows.
fn compare_rows(a: &Path, b: &Path, svg: &Path) -> (String, Vec<String>) {
    let run = xtask(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(std::fs::read_to_string(svg).unwrap().starts_with("<svg"));
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let rows = stdout
        .lines()
        .filter(|l| l.starts_with("op ") || l.starts_with("model "))
        .map(str::to_owned)
        .collect();
    (stdout, rows)
}

#[test]
fn compare_marks_a_report_against_itself_as_noise_and_refuses_bad_files() {
    let report = committed_report();
    let tmp = tempfile::tempdir().unwrap();
    let (stdout, rows) = compare_rows(&report, &report, &tmp.path().join("c.svg"));
    assert!(!rows.is_empty(), "{stdout}");
    assert!(
        rows.iter().all(|l| l.contains("1.00~")),
        "identical rows must read as noise: {stdout}"
    );

    let corrupt = tmp.path().join("corrupt.json");
    std::fs::write(&corrupt, "{\"schema\": 1, \"rows\": [").unwrap();
    assert_input_error(
        &["compare", report.to_str().unwrap(), corrupt.to_str().unwrap()],
        &["corrupt.json", "not valid JSON"],
    );
    let future = tmp.path().join("future.json");
    std::fs::write(&future, "{\"schema\": 99}").unwrap();
    assert_input_error(
        &["compare", future.to_str().unwrap(), report.to_str().unwrap()],
        &["future.json", "schema 99 is not known"],
    );
}

/// A committed schema-1 report compares against the same run written in schema 2, row for row.
#[test]
fn a_schema_1_report_compares_against_a_schema_2_report() {
    use tkbench_harness::measure::report::{Report, SCHEMA};
    let old = committed_report();
    let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&old).unwrap()).unwrap();
    assert_eq!(raw["schema"], 1, "{}", old.display());
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("new.json");
    let report = Report::load(&old).unwrap();
    assert_eq!(report.schema, SCHEMA);
    report.save(&new).unwrap();
    let (stdout, rows) = compare_rows(&old, &new, &tmp.path().join("c.svg"));
    assert_eq!(rows.len(), raw["rows"].as_array().unwrap().len(), "{stdout}");
    assert!(
        rows.iter().all(|l| l.contains("1.00~")),
        "the same run must read as noise: {stdout}"
    );
    assert!(stdout.contains("0 only in A, 0 only in B"), "{stdout}");
}

#[test]
fn a_bad_profiles_manifest_exits_2_before_any_check_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("profiles.yaml");
    std::fs::write(&path, "schema: 1\nprofiles:\n  softmax: [uniform, gaussian]\n").unwrap();
    let path = path.to_str().unwrap();
    let words = [path, "field `profiles.softmax`", "no profile named `gaussian`"];
    assert_input_error(&["verify", "--profiles", path], &words);
    assert_input_error(&["opcheck", "--op", "softmax", "--profiles", path], &words);
    assert_input_error(
        &["opcheck", "--op", "softmax", "--profile", "gaussian"],
        &["--profile", "no profile named `gaussian`"],
    );
    assert_input_error(
        &["opcheck", "--op", "gelu", "--profile", "exact"],
        &["no selected op is checked on the profile `exact`"],
    );

    let run = xtask(&[
        "opcheck",
        "--op",
        "matmul",
        "--variant",
        "simd",
        "--isa",
        "scalar",
        "--profile",
        "exact",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("matmul     simd"), "{stdout}");
}

#[test]
fn verify_runs_the_op_level_of_the_gate_and_refuses_case_with_part_ops() {
    let run = xtask(&["verify", "--part", "ops", "--op", "gelu", "--isa", "scalar"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("mistrusted") && stdout.contains("splits"), "{stdout}");
    assert!(stdout.contains("gelu       simd            scalar"), "{stdout}");
    assert!(
        !stdout.contains("rows pass"),
        "--part ops runs no golden case: {stdout}"
    );

    let run = xtask(&["verify", "--part", "ops", "--op", "softmax", "--json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).expect("verify --json prints JSON");
    assert_eq!(json["model"].as_array().map(Vec::len), Some(0), "{json}");
    let rows = json["ops"]["rows"].as_array().expect("the op level's rows");
    assert!(rows.iter().all(|r| r["op"] == "softmax"), "{json}");
    assert!(
        rows.iter().any(|r| r["mistrusted"].as_u64() > Some(0)),
        "rows=3,cols=1 is mistrusted: {json}"
    );

    assert_input_error(
        &["verify", "--part", "ops", "--case", "tiny"],
        &["--part ops", "--case"],
    );
}

/// A Hugging Face tokenizer.json of four words, enough to encode a prompt.
const WORD_TOKENIZER: &str = r#"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
 "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
 "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "hello": 1, "world": 2, "kernel": 3}, "unk_token": "<unk>"}}"#;

#[test]
fn a_llama_prompt_as_text_needs_the_checkpoints_own_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("llama");
    Case::load(&case_dir("llama-tiny"))
        .unwrap()
        .checkpoint_of::<tkbench_reference::LlamaConfig>()
        .unwrap()
        .save(&model)
        .unwrap();
    let args = [
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "hello world",
        "-n",
        "2",
    ];
    // No tokenizer.json: a usage error that says what is missing.
    let out = xtask(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("has no tokenizer.json"), "{}", stderr(&out));
    // With one, the text is encoded by it and the reference model continues it.
    std::fs::write(model.join("tokenizer.json"), WORD_TOKENIZER).unwrap();
    let out = xtask(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("prompt ids:    1,2"), "{stdout}");
    assert!(stdout.contains("prompt text:    \"hello world\""), "{stdout}");
    // A damaged one is named.
    std::fs::write(model.join("tokenizer.json"), "{\"model\": 3").unwrap();
    let out = xtask(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tokenizer.json: not a tokenizer.json"),
        "{}",
        stderr(&out)
    );
}
