//! Tidy checks, run as ordinary tests: every Rust file opens with a `//!` line saying what it is,
//! README.md's command table matches the CLI, and every committed report is cited.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    rust_files(root, &mut files);
    assert!(
        files.len() > 10,
        "found only {} Rust files under {}",
        files.len(),
        root.display()
    );
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//! "))
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "files that do not open with a `//! ` line: {offenders:?}"
    );
}

/// The subcommands `cargo xtask --help` lists (without `help`).
fn cli_subcommands() -> Vec<String> {
    let help = xtask_help(&[]);
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

fn xtask_help(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .arg("--help")
        .output()
        .expect("xtask runs");
    assert!(out.status.success(), "xtask {args:?} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// README.md's command table: (subcommand, the options its first cell shows).
fn readme_commands() -> Vec<(String, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("\n## Commands\n")
        .nth(1)
        .expect("README.md has a `## Commands` section");
    section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| l.strip_prefix("| `cargo xtask "))
        .map(|rest| {
            let cell = rest.split("` |").next().unwrap_or(rest);
            let name = cell.split_whitespace().next().unwrap_or_default().to_owned();
            let options = cell
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .filter(|w| w.starts_with("--") && w.len() > 2)
                .map(str::to_owned)
                .collect();
            (name, options)
        })
        .collect()
}

#[test]
fn readme_command_table_matches_the_cli() {
    let readme = readme_commands();
    let mut listed: Vec<String> = readme.iter().map(|(name, _)| name.clone()).collect();
    listed.sort();
    listed.dedup();
    let mut subcommands = cli_subcommands();
    subcommands.sort();
    assert!(
        subcommands.len() >= 5,
        "found only {subcommands:?} in `cargo xtask --help`"
    );
    assert_eq!(
        listed, subcommands,
        "README.md's command table against `cargo xtask --help`"
    );
    for (name, options) in &readme {
        let help = xtask_help(&[name]);
        for option in options {
            assert!(
                help.contains(&format!("{option} "))
                    || help.contains(&format!("{option}\n"))
                    || help.contains(&format!("{option}=")),
                "README.md shows `cargo xtask {name} {option}`, which `cargo xtask {name} --help` does not list"
            );
        }
    }
}

/// The report id of a file under `reports/`: the 12 hex digits of `<date>-<id>[-<chart>].<ext>`.
fn report_id(name: &str) -> Option<&str> {
    let stem = name.split('.').next()?;
    let id = stem
        .split('-')
        .find(|part| part.len() == 12 && part.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))?;
    Some(id)
}

#[test]
fn every_committed_report_is_cited_by_the_docs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = ["README.md", "PERFORMANCE.md"]
        .map(|doc| std::fs::read_to_string(root.join(doc)).unwrap())
        .join("\n");
    let mut uncited = Vec::new();
    let mut seen = 0;
    for cpu in std::fs::read_dir(root.join("reports")).unwrap() {
        let cpu = cpu.unwrap().path();
        if !cpu.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&cpu).unwrap() {
            let file = file.unwrap().path();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let Some(id) = report_id(&name) else {
                continue;
            };
            seen += 1;
            if !docs.contains(id) {
                uncited.push(file.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    assert!(seen > 0, "no reports found under reports/");
    assert!(
        uncited.is_empty(),
        "reports/ keeps only the reports README.md or PERFORMANCE.md cite; uncited: {uncited:#?}"
    );
}
