//! The reference model reproduces every committed golden case (float64 within the manifest's bound,
//! float32 within a bound derived from the oracle's own float32 gap), and a damaged golden case is
//! refused with an error naming the file or field at fault.

use std::path::{Path, PathBuf};

use tkbench_harness::check::golden::{
    Case, CaseArchitecture, GoldenError, case_dirs, check_reference, workspace_golden_dir,
};
use tkbench_harness::registry::Registry;
use tkbench_kernels::Isa;
use tkbench_reference::{Config, LlamaConfig};

/// The case's GPT-2 config, if it is a GPT-2 case.
fn gpt2(c: &Case) -> Option<&Config> {
    Config::of(&c.manifest.config)
}

/// The case's Llama config, if it is a Llama case.
fn llama(c: &Case) -> Option<&LlamaConfig> {
    LlamaConfig::of(&c.manifest.config)
}

fn committed_cases() -> Vec<PathBuf> {
    case_dirs(&workspace_golden_dir().join("cases")).expect("golden cases are committed")
}

#[test]
fn reference_reproduces_every_golden_case() {
    let dirs = committed_cases();
    assert!(
        dirs.len() >= 4,
        "expected at least four golden cases, found {}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let case = Case::load(dir).unwrap();
        let check = check_reference(&case).unwrap();
        let hidden = check.f64_hidden.iter().map(|h| h.value).fold(0.0, f64::max);
        println!(
            "{:<16} f64 logits {:.2e} hidden {:.2e} (bound {:.0e}); f32 logits {:.2e} (bound {:.2e}, oracle gap {:.2e})",
            check.case,
            check.f64_logits.value,
            hidden,
            check.f64_tolerance,
            check.f32_logits.value,
            check.f32_tolerance,
            check.oracle_f32_gap
        );
        if !check.pass() {
            failures.push(format!(
                "{}: {check:?}\n  replay: cargo xtask golden --check --case {}",
                dir.display(),
                check.case
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_cases_cover_what_the_golden_set_promises() {
    let cases: Vec<Case> = committed_cases().iter().map(|d| Case::load(d).unwrap()).collect();
    let has = |f: &dyn Fn(&Case) -> bool| cases.iter().filter(|c| gpt2(c).is_some()).any(f);
    assert!(has(&|c| c.manifest.tokens.len() == 1), "a case with T = 1");
    assert!(
        has(&|c| c.manifest.tokens.len() == c.manifest.config.n_positions()),
        "a case filling n_positions"
    );
    assert!(
        has(&|c| gpt2(c)
            .is_some_and(|cfg| cfg.n_embd % 16 != 0 && cfg.head_size() % 16 != 0 && cfg.vocab_size % 2 == 1)),
        "a case with width and head size not multiples of 16 and an odd vocab"
    );
    let small_dims = |c: &Case| gpt2(c).is_some_and(|cfg| (cfg.n_embd, cfg.n_head, cfg.vocab_size) == (768, 12, 50257));
    assert!(
        has(&|c| small_dims(c) && !c.manifest.checkpoint.committed),
        "a GPT-2-small-sized case rebuilt from its seed"
    );
    assert!(
        has(&|c| small_dims(c) && c.manifest.steps.first() == Some(&c.manifest.config.n_positions())),
        "a prefill of the full context at GPT-2-small dimensions"
    );
    assert!(
        has(&|c| small_dims(c) && c.manifest.config.n_layer() == 12 && c.manifest.steps.len() > 1),
        "GPT-2-small's 12 layers, with a decode step after the prefill"
    );
    assert!(
        has(&|c| small_dims(c) && c.manifest.calls().any(|(p0, len)| p0 > 0 && len > 1)),
        "a prefill in chunks after a cache"
    );
    assert!(
        has(&|c| small_dims(c)
            && c.manifest
                .calls()
                .last()
                .is_some_and(|(p0, len)| p0 + len == c.manifest.config.n_positions() && len == 1)),
        "a decode step that fills the context"
    );

    // Every size a fast variant branches on along the tokens is reached at GPT-2-small dimensions:
    // decode steps over k·tile − 1, k·tile and k·tile + 1 keys for a key tile, and a prefill over
    // more than two tiles for every other tile along the tokens.
    let decode_keys: Vec<usize> = cases
        .iter()
        .filter(|c| small_dims(c))
        .flat_map(|c| {
            c.manifest
                .calls()
                .filter(|&(_, len)| len == 1)
                .map(|(p0, _)| p0 + 1)
                .collect::<Vec<_>>()
        })
        .collect();
    let longest_prefill = cases
        .iter()
        .filter(|c| small_dims(c))
        .flat_map(|c| c.manifest.steps.first().copied())
        .max()
        .unwrap_or(0);
    let registry = Registry::builtin();
    for entry in registry.entries() {
        for tile in entry.tiles {
            for isa in Isa::ALL {
                let size = tile.at(isa);
                let straddled = |n: usize| decode_keys.contains(&n);
                match tile.dim {
                    "keys" => assert!(
                        (1..=1024 / size).any(|k| [k * size - 1, k * size, k * size + 1].into_iter().all(straddled)),
                        "{}={}: no decode steps over k·{size} − 1, k·{size} and k·{size} + 1 keys (decode keys {decode_keys:?})",
                        entry.op,
                        entry.name
                    ),
                    "queries" | "m" | "rows" | "tokens" => assert!(
                        longest_prefill > 2 * size,
                        "{}={}: no prefill beyond two tiles of {size} {}",
                        entry.op,
                        entry.name,
                        tile.dim
                    ),
                    _ => {}
                }
            }
        }
    }

    for case in &cases {
        assert_eq!(case.manifest.dtype, "float64", "{}", case.name());
        assert!(case.manifest.tolerances.f64_max_rel.value <= 1e-9, "{}", case.name());
        assert!(
            !case.manifest.tolerances.f32_max_rel.rationale.is_empty(),
            "{}",
            case.name()
        );
    }
}

/// A copy of the committed case `name` in a temporary directory, for a test to damage.
fn copy_case(name: &str) -> (tempfile::TempDir, PathBuf) {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(&workspace_golden_dir().join("cases").join(name), &dir);
    (tmp, dir)
}

fn edit_manifest(dir: &Path, from: &str, to: &str) {
    let path = dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "manifest has no `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn damaged_outputs_file_fails_its_checksum() {
    let (_tmp, dir) = copy_case("tiny");
    let path = dir.join("outputs.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let error = Case::load(&dir).unwrap_err();
    assert!(
        matches!(&error, GoldenError::Checksum { path, .. } if path.ends_with("outputs.safetensors")),
        "{error:?}"
    );
}

#[test]
fn damaged_committed_checkpoint_fails_its_checksum() {
    let (_tmp, dir) = copy_case("odd-widths");
    let path = dir.join("checkpoint/model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let error = Case::load(&dir).unwrap().checkpoint().unwrap_err();
    assert!(
        matches!(&error, GoldenError::Checksum { path, .. } if path.ends_with("model.safetensors")),
        "{error:?}"
    );
}

#[test]
fn wrong_seed_fails_the_digest() {
    let (_tmp, dir) = copy_case("gpt2-small-dims");
    edit_manifest(&dir, "seed: 5", "seed: 6");
    let error = Case::load(&dir).unwrap().checkpoint().unwrap_err();
    assert!(matches!(error, GoldenError::Digest { .. }), "{error:?}");
}

#[test]
fn unknown_schema_is_refused_by_field() {
    let (_tmp, dir) = copy_case("tiny");
    edit_manifest(&dir, "schema: 2", "schema: 7");
    let error = Case::load(&dir).unwrap_err().to_string();
    assert!(
        error.contains("manifest.yaml") && error.contains("field `schema`: version 7"),
        "{error}"
    );
}

#[test]
fn missing_manifest_field_is_named() {
    let (_tmp, dir) = copy_case("tiny");
    edit_manifest(&dir, "oracle_f32_gap:", "oracle_gap:");
    let error = Case::load(&dir).unwrap_err().to_string();
    assert!(
        error.contains("manifest.yaml") && error.contains("oracle_gap"),
        "{error}"
    );
}

#[test]
fn malformed_manifest_is_refused() {
    let (_tmp, dir) = copy_case("tiny");
    std::fs::write(dir.join("manifest.yaml"), "schema: 2\nname: [unclosed\n").unwrap();
    let error = Case::load(&dir).unwrap_err();
    assert!(matches!(error, GoldenError::Manifest { .. }), "{error:?}");
}

#[test]
fn tampered_gap_is_refused() {
    let (_tmp, dir) = copy_case("tiny");
    let text = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
    let line = text.lines().find(|l| l.starts_with("oracle_f32_gap:")).unwrap();
    std::fs::write(dir.join("manifest.yaml"), text.replace(line, "oracle_f32_gap: 0.001")).unwrap();
    let error = Case::load(&dir).unwrap_err().to_string();
    assert!(error.contains("field `oracle_f32_gap`"), "{error}");
}

#[test]
fn invalid_manifest_config_is_refused_not_panicked_on() {
    let (_tmp, dir) = copy_case("gpt2-small-dims");
    edit_manifest(&dir, "n_head: 12", "n_head: 0");
    let error = Case::load(&dir).unwrap_err().to_string();
    assert!(error.contains("manifest.yaml") && error.contains("n_head"), "{error}");
}

#[test]
fn the_llama_cases_cover_what_the_family_promises() {
    let cases: Vec<Case> = committed_cases().iter().map(|d| Case::load(d).unwrap()).collect();
    let llamas: Vec<(&Case, &LlamaConfig)> = cases.iter().filter_map(|c| llama(c).map(|cfg| (c, cfg))).collect();
    let has = |f: &dyn Fn(&Case, &LlamaConfig) -> bool| llamas.iter().any(|(c, cfg)| f(c, cfg));
    let groups: Vec<usize> = llamas
        .iter()
        .map(|(_, cfg)| cfg.num_attention_heads / cfg.num_key_value_heads)
        .collect();
    for group in [1, 2, 3] {
        assert!(
            groups.contains(&group),
            "a case with query groups of {group} (groups {groups:?})"
        );
    }
    assert!(
        has(&|_, cfg| cfg.num_key_value_heads == 1 && cfg.num_attention_heads > 1),
        "a multi-query case"
    );
    assert!(has(&|_, cfg| cfg.tie_word_embeddings), "a case with tied embeddings");
    assert!(
        has(&|_, cfg| !cfg.tie_word_embeddings),
        "a case with an LM head of its own"
    );
    assert!(
        has(&|_, cfg| cfg.q_width() != cfg.hidden_size && cfg.hidden_size % 16 != 0 && cfg.vocab_size % 2 == 1),
        "a case whose queries are not the residual's width, at odd widths"
    );
    let smollm2 = |cfg: &LlamaConfig| {
        let real = LlamaConfig::smollm2_135m();
        LlamaConfig {
            num_hidden_layers: real.num_hidden_layers,
            max_position_embeddings: real.max_position_embeddings,
            ..cfg.clone()
        } == real
    };
    assert!(
        has(&|c, cfg| smollm2(cfg) && !c.manifest.checkpoint.committed),
        "a case at SmolLM2-135M's dimensions, rebuilt from its seed"
    );
    assert!(
        has(&|c, cfg| smollm2(cfg) && c.manifest.steps.first() >= Some(&1024)),
        "a long prefill at SmolLM2's dimensions"
    );
    assert!(
        has(&|c, cfg| smollm2(cfg) && c.manifest.calls().any(|(p0, len)| p0 > 0 && len > 1)),
        "chunked prefill after a cache at SmolLM2's dimensions"
    );
    assert!(
        has(&|c, cfg| smollm2(cfg) && c.manifest.calls().any(|(p0, len)| p0 > 0 && len == 1)),
        "decode steps after a cache at SmolLM2's dimensions"
    );
}
