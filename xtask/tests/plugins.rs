//! C plugins through the command line: the example plugin's right softmax passes the gate and its
//! wrong one fails it; a kernel that crashes or hangs fails in its child process and the run goes
//! on; a library that breaks the ABI is refused with exit 2, naming what is wrong. The plugins are
//! compiled here with the `cc` crate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Compiles `source` (relative to the root) with `defines` into the shared library `name` in `dir`.
fn compile(dir: &Path, source: &str, defines: &[&str], name: &str) -> PathBuf {
    let target = env!("TKBENCH_BUILD_TARGET");
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .target(target)
        .host(target)
        .opt_level(2)
        .pic(true)
        .warnings(true)
        .include(root().join("include"))
        .try_get_compiler()
        .expect("a C compiler");
    let out = dir.join(name);
    let mut cmd = compiler.to_command();
    for define in defines {
        cmd.arg(format!("-D{define}"));
    }
    cmd.arg("-shared")
        .arg(root().join(source))
        .arg("-o")
        .arg(&out)
        .arg("-lm");
    let status = cmd.status().expect("the C compiler runs");
    assert!(status.success(), "compiling {source} {defines:?} failed");
    out
}

/// Runs the command line with `args`.
fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("the command line runs")
}

/// The output's stdout and stderr, as text.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_example_plugin_passes_its_right_softmax_and_fails_its_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let lib = compile(dir.path(), "examples/c-plugin/softmax.c", &[], "libsoftmax_plugin.so");
    let lib = lib.to_str().unwrap();

    let right = xtask(&["--plugin", lib, "opcheck", "--op", "softmax", "--variant", "c-two-pass"]);
    assert_eq!(right.status.code(), Some(0), "{}", text(&right));
    assert!(text(&right).contains("c-two-pass"), "{}", text(&right));

    let wrong = xtask(&[
        "--plugin",
        lib,
        "opcheck",
        "--op",
        "softmax",
        "--variant",
        "c-unshifted",
    ]);
    let said = text(&wrong);
    assert_eq!(wrong.status.code(), Some(1), "{said}");
    assert!(said.contains("FAIL"), "{said}");
    // Its replay command loads the plugin again.
    assert!(said.contains(&format!("cargo xtask --plugin {lib} opcheck")), "{said}");

    // `list` shows the plugin's variants beside the built-in ones.
    let list = xtask(&["--plugin", lib, "list"]);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    assert!(text(&list).contains("c-unshifted"), "{}", text(&list));
}

#[test]
fn a_crashing_and_a_hanging_kernel_fail_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let lib = compile(dir.path(), "xtask/tests/plugins/faulty.c", &[], "libfaulty.so");
    let lib = lib.to_str().unwrap();

    let crash = xtask(&["--plugin", lib, "opcheck", "--op", "softmax"]);
    let said = text(&crash);
    assert_eq!(crash.status.code(), Some(1), "{said}");
    assert!(
        said.contains("softmax=crashes (plugin libfaulty.so): its child process was killed by signal 11 (SIGSEGV)"),
        "{said}"
    );
    // The built-in variants after it were still checked, and pass.
    assert!(
        said.lines()
            .any(|l| l.starts_with("softmax    blocked") && l.ends_with("pass")),
        "{said}"
    );

    // At the model level too: each of its kernel sets fails, in its child, and the row says why.
    let model = xtask(&[
        "--plugin",
        lib,
        "verify",
        "--op",
        "softmax",
        "--variant",
        "crashes",
        "--case",
        "tiny",
    ]);
    let said = text(&model);
    assert_eq!(model.status.code(), Some(1), "{said}");
    assert!(
        said.contains("softmax=crashes (plugin libfaulty.so) was killed by signal 11 (SIGSEGV)"),
        "{said}"
    );
    assert!(
        said.lines().any(|l| l.starts_with("tiny") && l.ends_with("FAIL")),
        "{said}"
    );

    let hang = xtask(&["--plugin", lib, "--variant-timeout", "3", "opcheck", "--op", "gelu"]);
    let said = text(&hang);
    assert_eq!(hang.status.code(), Some(1), "{said}");
    assert!(
        said.contains("gelu=hangs (plugin libfaulty.so): its child process did not finish within 3 s"),
        "{said}"
    );
    // The plugin's wrong but well-behaved kernel is failed by the gate itself, in its own child.
    assert!(
        said.lines()
            .any(|l| l.starts_with("gelu       copies") && l.contains("FAIL")),
        "{said}"
    );
    assert!(
        said.lines()
            .any(|l| l.starts_with("gelu       scalar") && l.ends_with("pass")),
        "{said}"
    );
}

#[test]
fn a_library_that_breaks_the_abi_is_refused_with_exit_2_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    for (fault, expected) in [
        ("FAULT_NO_SYMBOL", "does not export `tkbench_plugin_v1`"),
        (
            "FAULT_ABI_VERSION",
            "its table is of ABI version 99; this tkbench reads version 1",
        ),
        ("FAULT_NULL_FUNCTION", "variant 0 (softmax=null): its function is NULL"),
        (
            "FAULT_UNKNOWN_OP",
            "variant 0 (convolution=direct): no op named `convolution`",
        ),
        (
            "FAULT_DUPLICATE",
            "variant 1 (gelu=copies): gelu already has a variant named `copies`",
        ),
        (
            "FAULT_BUILTIN_NAME",
            "variant 0 (gelu=scalar): gelu already has a variant named `scalar`",
        ),
        ("FAULT_UNKNOWN_ISA", "variant 0 (gelu=copies): no ISA named `sse9`"),
    ] {
        let lib = compile(
            dir.path(),
            "xtask/tests/plugins/faulty.c",
            &[fault],
            &format!("lib{fault}.so"),
        );
        let out = xtask(&["--plugin", lib.to_str().unwrap(), "list"]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{fault}: {said}");
        assert!(said.contains(&format!("plugin {}", lib.display())), "{fault}: {said}");
        assert!(said.contains(expected), "{fault}: {said}");
    }
    let missing = xtask(&["--plugin", "/nonexistent/libnone.so", "list"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("plugin /nonexistent/libnone.so: cannot read the file"),
        "{}",
        text(&missing)
    );
}
