//! Reports: a saved report loads back equal; an unknown schema, a corrupt file or a missing field is
//! a clear error naming the file; failed rows are shown, never hidden; the plots are well-formed SVG.

use tkbench_harness::measure::probe::{Bandwidth, CurvePoint, FmaPeak, Limits, machine};
use tkbench_harness::measure::report::{
    self, Kind, Level, Limit, Mode, PeerInfo, Report, Roofline, Row, Time, Verdict, VerifySummary, render_markdown,
};
use tkbench_harness::measure::svg::{compare_svg, roofline_svg, throughput_svg};
use tkbench_harness::measure::work::Work;

fn row(op: &str, shape: &str, variant: &str, median: f64, verdict: Verdict) -> Row {
    Row {
        kind: Kind::Op,
        op: op.into(),
        shape: shape.into(),
        variant: variant.into(),
        isa: Level::Avx512,
        threads: 1,
        time_ns: Time {
            median,
            lower: median * 0.98,
            upper: median * 1.02,
        },
        work: Work { flops: 2e6, bytes: 1e6 },
        tokens: None,
        roofline: Roofline {
            bound_ns: median / 2.0,
            limit: Limit::L2,
        },
        verdict,
        max_error_ratio: Some(0.25),
        peer: None,
    }
}

fn sample() -> Report {
    Report {
        schema: report::SCHEMA,
        units: report::units(),
        mode: Mode::Quick,
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
            curve: vec![],
            caches: vec![],
        },
        verify: VerifySummary {
            rows: 3,
            failed: vec!["tiny softmax=simd avx512".into()],
        },
        peer: PeerInfo {
            available: false,
            note: "not measured".into(),
        },
        parameters: Some(tkbench_harness::measure::tune::Parameters::defaults(
            "test-machine-2cpu",
            0x19,
            0x11,
        )),
        rows: vec![
            row("softmax", "rows=1,cols=64", "simd", 1000.0, Verdict::Pass),
            row("softmax", "rows=1,cols=64", "scalar", 3000.0, Verdict::Pass),
            row("softmax", "rows=4,cols=64", "simd", 3000.0, Verdict::Fail),
            row("matmul", "m=8,k=8,n=8,bias=0", "blocked", 500.0, Verdict::Pass),
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

    std::fs::write(&path, "{\"schema\": 2, \"rows\": [").unwrap();
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
fn derived_figures_are_computed_not_stored() {
    let report = sample();
    let r = &report.rows[0];
    assert_eq!(r.gflops(), 2e6 / 1000.0);
    assert_eq!(r.gb_per_s(), 1e6 / 1000.0);
    assert_eq!(r.percent(), 50.0);
    assert_eq!(report.speedup_vs_scalar(r), Some(3.0));
    assert_eq!(
        report.speedup_vs_scalar(&report.rows[3]),
        None,
        "no scalar row of that shape"
    );
    // The probe's peaks and bandwidths are measurements; the rows' rates are not stored.
    let json = serde_json::to_string(&report.rows).unwrap();
    for derived in ["gflops", "gb_per_s", "percent", "speedup", "tokens_per_s"] {
        assert!(!json.contains(&format!("\"{derived}\"")), "{derived} is stored");
    }
}

/// A committed schema-1 report loads as schema 2 with the figures it stored: its derived values
/// agree with what schema 2 computes, and it compares against a schema-2 report.
#[test]
fn a_committed_schema_1_report_loads_and_keeps_its_figures() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../reports/amd-epyc-2cpu/2026-11-28-444462113e0e.json");
    let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(raw["schema"], 1, "the committed report is schema 1");
    let report = Report::load(&path).unwrap();
    assert_eq!(report.schema, report::SCHEMA);
    assert_eq!(report.rows.len(), raw["rows"].as_array().unwrap().len());
    for (row, old) in report.rows.iter().zip(raw["rows"].as_array().unwrap()) {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(close(row.gflops(), old["gflops"].as_f64().unwrap()), "{old}");
        assert!(
            close(row.percent(), old["roofline"]["percent"].as_f64().unwrap()),
            "{old}"
        );
        assert_eq!(row.isa.name(), old["isa"].as_str().unwrap());
        assert_eq!(row.verdict.name(), old["verdict"].as_str().unwrap());
        if let Some(speedup) = old["speedup_vs_scalar"].as_f64() {
            assert!(close(report.speedup_vs_scalar(row).unwrap(), speedup), "{old}");
        }
        if let Some(peer) = old["peer"]["speedup"].as_f64() {
            assert!(close(row.peer_speedup().unwrap(), peer), "{old}");
        }
        if let Some(rate) = old["tokens_per_s"].as_f64() {
            assert!((row.tokens_per_s().unwrap() - rate).abs() <= 1e-6 * rate, "{old}");
        }
    }
    // It saves as schema 2 and loads back equal, as a new report does.
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.json");
    report.save(&new).unwrap();
    assert_eq!(Report::load(&new).unwrap(), report);
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

#[test]
fn one_thread_bounds_read_the_curve_at_the_rows_own_working_set() {
    let mut limits = sample().limits;
    limits.curve = vec![
        CurvePoint {
            working_set_bytes: 100_000,
            gb_per_s: 900.0,
        },
        CurvePoint {
            working_set_bytes: 1_000_000,
            gb_per_s: 100.0,
        },
    ];
    let bytes = 100_000.0 * 10f64.sqrt();
    let work = Work { flops: 0.0, bytes };
    // One thread: the curve's 300 GB/s (log-interpolated) at the row's bytes, not the l2 triad's 200.
    let one = report::roofline(&limits, work, 1);
    assert_eq!(one.limit, Limit::L2);
    assert!((one.bound_ns - bytes / 300.0).abs() < 1e-6, "{one:?}");
    // Beyond the caches the bound is DRAM's triad (the better of its pages), not the curve's end.
    let far = Work { flops: 0.0, bytes: 1e9 };
    assert_eq!(report::roofline(&limits, far, 1).bound_ns, 1e9 / 38.0);
    // Without a curve (reports before it), the level's triad.
    limits.curve.clear();
    assert_eq!(report::roofline(&limits, work, 1).bound_ns, bytes / 200.0);
    let big = Work {
        flops: 0.0,
        bytes: 1_200_000.0,
    };
    assert_eq!(report::roofline(&limits, big, 1).limit, Limit::Dram);
}
