//! Snapshot tests pinning the verification table and its JSON: the format users read and scripts
//! parse. The rows are fixed here, so the snapshots do not depend on the machine.

use tkbench_harness::check::metrics::{LogitMetrics, ProbsCheck};
use tkbench_harness::check::verify::{Row, render_json, render_table};

fn rows() -> Vec<Row> {
    let metrics = |max_rel: f64| LogitMetrics {
        max_abs: max_rel * 4.9,
        max_rel,
        nmse: max_rel * max_rel,
        top1: 1.0,
        kl_mean: 2.5e-9,
        kl_max: 1.25e-7,
    };
    let probs = |worst: f64| ProbsCheck {
        worst,
        err: worst * 2.0e-9,
        bound: 2.0e-9,
        at: (3, 17),
    };
    let row = |kernels: &str, isa: &str, max_rel: f64, pass: bool, diagnosis: Option<&str>| Row {
        case: "tiny".into(),
        kernels: kernels.into(),
        isa: isa.into(),
        metrics: metrics(max_rel),
        probs: (kernels != "reference-f64").then(|| probs(if pass { 0.25 } else { 40.0 })),
        hidden_max_rel: vec![0.0, max_rel / 2.0, max_rel],
        bound: 3.95e-6,
        rationale: "8 x the oracle's own float32-vs-float64 gap".into(),
        pass,
        diagnosis: diagnosis.map(str::to_owned),
        replay: if kernels.starts_with("reference") {
            "cargo xtask verify --case tiny --variant reference".into()
        } else {
            format!("cargo xtask verify --case tiny --kernels {kernels} --isa {isa}").replace(" --isa none", "")
        },
        seconds: 0.0,
    };
    vec![
        row("reference-f64", "none", 1.2e-15, true, None),
        row("scalar", "none", 4.6e-7, true, None),
        row("fastest,softmax=simd", "avx512", 4.5e-7, true, None),
        row(
            "fastest,attention=blocked",
            "avx2",
            2.5e-2,
            false,
            Some(
                "probabilities out of budget: at position 3 token 17 they are 8.000e-8 from the exact softmax of the logits the softmax was given, bound 2.000e-9: the softmax variant `simd` is at fault; first out of budget: hidden state 1 (output of block 0) at 1.000e-2; with attention back to scalar it is 4.000e-7: the attention variant `blocked` is at fault",
            ),
        ),
    ]
}

#[test]
fn table() {
    insta::assert_snapshot!(render_table(&rows()));
}

#[test]
fn json() {
    insta::assert_snapshot!(render_json(&rows()));
}
