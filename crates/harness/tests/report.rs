//! Reports: a saved report loads back equal; an unknown schema, a corrupt file or a missing field is
//! a clear error naming the file; failed rows are shown, never hidden; the plots are well-formed SVG.

use tkbench_harness::probe::{Bandwidth, FmaPeak, Limits, machine};
use tkbench_harness::report::{self, PeerInfo, Report, Roofline, Row, Time, VerifySummary, render_markdown};
use tkbench_harness::svg::{compare_svg, roofline_svg, throughput_svg};

fn row(op: &str, shape: &str, variant: &str, median: f64, verdict: &str) -> Row {
    Row {
        kind: "op".into(),
        op: op.into(),
        shape: shape.into(),
        variant: variant.into(),
        isa: "avx512".into(),
        threads: 1,
        time_ns: Time {
            median,
            lower: median * 0.98,
            upper: median * 1.02,
        },
        flops: 2e6,
        bytes: 1e6,
        gflops: 2e6 / median,
        gb_per_s: 1e6 / median,
        tokens_per_s: None,
        speedup_vs_scalar: Some(3.0),
        roofline: Roofline {
            bound_ns: median / 2.0,
            limit: "l2".into(),
            percent: 50.0,
        },
        verdict: verdict.into(),
        max_error_ratio: Some(0.25),
        peer: None,
    }
}

fn sample() -> Report {
    Report {
        schema: report::SCHEMA,
        units: report::units(),
        mode: "quick".into(),
        machine: machine(),
        limits: Limits {
            fma: vec![FmaPeak {
                isa: "avx512".into(),
                threads: 1,
                gflops: 250.0,
            }],
            bandwidth: vec![
                Bandwidth {
                    level: "l2".into(),
                    threads: 1,
                    working_set_bytes: 600_000,
                    gb_per_s: 200.0,
                    huge_pages: false,
                },
                Bandwidth {
                    level: "dram".into(),
                    threads: 1,
                    working_set_bytes: 400_000_000,
                    gb_per_s: 38.0,
                    huge_pages: true,
                },
            ],
        },
        verify: VerifySummary {
            rows: 3,
            failed: vec!["tiny softmax=simd avx512".into()],
        },
        peer: PeerInfo {
            available: false,
            note: "not measured".into(),
        },
        rows: vec![
            row("softmax", "rows=1,cols=64", "simd", 1000.0, "pass"),
            row("softmax", "rows=4,cols=64", "simd", 3000.0, "fail"),
            row("matmul", "m=8,k=8,n=8,bias=0", "blocked", 500.0, "pass"),
        ],
    }
}

#[test]
fn a_saved_report_loads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    let report = sample();
    report.save(&path).unwrap();
    assert_eq!(Report::load(&path).unwrap(), report);
}

#[test]
fn bad_reports_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    let mut value = serde_json::to_value(sample()).unwrap();
    value["schema"] = 99.into();
    std::fs::write(&path, value.to_string()).unwrap();
    let error = Report::load(&path).unwrap_err().to_string();
    assert!(
        error.contains("r.json") && error.contains("schema 99 is not known"),
        "{error}"
    );

    std::fs::write(&path, "{\"schema\": 1, \"rows\": [").unwrap();
    let error = Report::load(&path).unwrap_err().to_string();
    assert!(error.contains("not valid JSON"), "{error}");

    let mut value = serde_json::to_value(sample()).unwrap();
    value.as_object_mut().unwrap().remove("limits");
    std::fs::write(&path, value.to_string()).unwrap();
    let error = Report::load(&path).unwrap_err().to_string();
    assert!(
        error.contains("malformed report") && error.contains("limits"),
        "{error}"
    );

    std::fs::write(&path, "[1, 2]").unwrap();
    assert!(
        Report::load(&path)
            .unwrap_err()
            .to_string()
            .contains("not a tkbench report")
    );
}

#[test]
fn failed_rows_are_shown_not_hidden() {
    let md = render_markdown(&sample());
    assert!(md.contains("| rows=4,cols=64 | simd | avx512 | 1 |"), "{md}");
    assert!(md.contains("| fail (err/bound 0.25) |"), "{md}");
    assert!(md.contains("verify: 3 rows, 1 failed"), "{md}");
}

#[test]
fn plots_are_well_formed_svg() {
    let report = sample();
    for svg in [
        throughput_svg(&report),
        roofline_svg(&report),
        compare_svg("B over A", &[("x".into(), 1.5, false), ("y".into(), 0.8, true)]),
    ] {
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }
    assert!(throughput_svg(&report).contains("<polyline"));
}
