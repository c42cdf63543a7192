//! Reports: a saved report loads back equal; an unknown schema, a corrupt file or a missing field is
//! a clear error naming the file; failed rows are shown, never hidden; the plots are well-formed SVG.

use tkbench_harness::measure::probe::{Bandwidth, CurvePoint, FmaPeak, Limits, MeasuredCache, machine};
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
        work: Work {
            flops: 2e6,
            bytes: 1e6,
            written: 5e5,
        },
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
                    read_gb_per_s: None,
                },
                Bandwidth {
                    level: "dram".into(),
                    threads: 1,
                    working_set_bytes: 400_000_000,
                    gb_per_s: 38.0,
                    huge_pages: true,
                    read_gb_per_s: None,
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
        plugins: Vec::new(),
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
fn each_op_gets_one_section_when_its_rows_interleave_with_anothers() {
    let mut report = sample();
    report.rows = vec![
        row("prefill", "tokens=128", "fastest", 1e6, Verdict::Pass),
        row("llama-prefill", "tokens=128", "fastest", 1e6, Verdict::Pass),
        row("prefill", "tokens=512", "fastest", 4e6, Verdict::Pass),
        row("llama-prefill", "tokens=512", "fastest", 4e6, Verdict::Pass),
    ];
    let md = render_markdown(&report);
    assert_eq!(md.matches("\n## prefill\n").count(), 1, "{md}");
    assert_eq!(md.matches("\n## llama-prefill\n").count(), 1, "{md}");
    let section = md
        .split("\n## prefill\n")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    assert!(
        section.contains("tokens=128") && section.contains("tokens=512"),
        "{section}"
    );
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
    let work = Work {
        flops: 0.0,
        bytes,
        written: 0.0,
    };
    // One thread: the curve's 300 GB/s (log-interpolated) at the row's bytes, not the l2 triad's 200.
    let one = report::roofline(&limits, work, 1);
    assert_eq!(one.limit, Limit::L2);
    assert!((one.bound_ns - bytes / 300.0).abs() < 1e-6, "{one:?}");
    // Beyond the caches the bound is DRAM's triad (the better of its pages), not the curve's end.
    let far = Work {
        flops: 0.0,
        bytes: 1e9,
        written: 0.0,
    };
    assert_eq!(report::roofline(&limits, far, 1).bound_ns, 1e9 / 38.0);
    // Without a curve (reports before it), the level's triad.
    limits.curve.clear();
    assert_eq!(report::roofline(&limits, work, 1).bound_ns, bytes / 200.0);
    let big = Work {
        flops: 0.0,
        bytes: 1_200_000.0,
        written: 0.0,
    };
    assert_eq!(report::roofline(&limits, big, 1).limit, Limit::Dram);
}

fn bandwidth(level: &str, threads: usize, working_set_bytes: u64, gb_per_s: f64) -> Bandwidth {
    Bandwidth {
        level: level.into(),
        threads,
        working_set_bytes,
        gb_per_s,
        huge_pages: false,
        read_gb_per_s: None,
    }
}

fn traffic(bytes: f64, written: f64) -> Work {
    Work {
        flops: 0.0,
        bytes,
        written,
    }
}

#[test]
fn reads_and_writes_are_weighed_apart() {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
    // The triad's own mix (8 bytes read, 4 written) takes the triad's time, whatever reads alone do.
    for read_over_triad in [1.0, 1.3, 1.5, 2.0] {
        let ns = report::memory_ns(traffic(12.0, 4.0), 100.0, read_over_triad);
        assert!(close(ns, 0.12), "{read_over_triad}: {ns}");
    }
    // Reads alone run at the read bandwidth; a copy (as much written as read) takes longer than its
    // bytes at the triad's rate.
    assert!(close(report::memory_ns(traffic(8.0, 0.0), 100.0, 1.6), 8.0 / 160.0));
    let copy = report::memory_ns(traffic(8.0, 4.0), 100.0, 1.6);
    assert!(close(copy, 4.0 / 160.0 + 4.0 * (3.0 / 100.0 - 2.0 / 160.0)), "{copy}");
    assert!(copy > 8.0 / 100.0);
    // Reads that ran no faster than the triad (or slower, a noisy reading) make every byte cost the
    // triad's.
    for read_over_triad in [1.0, 0.7] {
        let ns = report::memory_ns(traffic(8.0, 4.0), 100.0, read_over_triad);
        assert!(close(ns, 0.08), "{read_over_triad}: {ns}");
    }
}

#[test]
fn the_roofline_uses_the_read_bandwidth_the_probe_measured() {
    let mut limits = sample().limits;
    limits.bandwidth[1].read_gb_per_s = Some(57.0);
    let reads = traffic(1e9, 0.0);
    assert_eq!(report::roofline(&limits, reads, 1).bound_ns, 1e9 / 57.0);
    let triad_mix = traffic(1.2e9, 0.4e9);
    let bound = report::roofline(&limits, triad_mix, 1).bound_ns;
    assert!((bound - 1.2e9 / 38.0).abs() < 1e-6 * bound, "{bound}");
}

/// Limits with an L3 the probe found at 20 MB of the 32 MiB the CPU reports, measured on one and two
/// threads, and a one-thread curve falling from 60 GB/s at 1 MB to 20 GB/s at 100 MB.
fn shared_l3_limits() -> Limits {
    let found = 20_000_000u64;
    let fill = |threads: u64| (found as f64 * 0.6) as u64 / threads;
    Limits {
        fma: vec![FmaPeak {
            isa: "avx512".into(),
            threads: 2,
            gflops: 400.0,
        }],
        bandwidth: vec![
            bandwidth("l3", 1, fill(1), 60.0),
            bandwidth("dram", 1, 400_000_000, 20.0),
            bandwidth("l3", 2, fill(2), 120.0),
            bandwidth("dram", 2, 200_000_000, 30.0),
        ],
        curve: vec![
            CurvePoint {
                working_set_bytes: 1_000_000,
                gb_per_s: 60.0,
            },
            CurvePoint {
                working_set_bytes: 100_000_000,
                gb_per_s: 20.0,
            },
        ],
        caches: vec![MeasuredCache {
            level: 3,
            bytes: found,
            reported_bytes: Some(32 << 20),
            gb_per_s: 60.0,
        }],
    }
}

#[test]
fn two_threads_past_the_last_cache_keep_the_share_of_it_the_curve_has_left() {
    let limits = shared_l3_limits();
    // At 10 MB the two-thread row fits the L3.
    assert_eq!(report::roofline(&limits, traffic(10e6, 0.0), 2).limit, Limit::L3);
    // At 30 MB (past the 20 MB found) the one-thread curve has made part of its fall from the L3 to
    // DRAM; two threads get DRAM's triad raised by the same share of the L3's lead.
    let bytes = 30e6;
    let one = limits.curve_gb_per_s(bytes).unwrap();
    let share = (one - 20.0) / (60.0 - 20.0);
    assert!(share > 0.0 && share < 1.0, "{share}");
    let two = report::roofline(&limits, traffic(bytes, 0.0), 2);
    assert_eq!(two.limit, Limit::Dram);
    let expected = bytes / (30.0 + share * (120.0 - 30.0));
    assert!(
        (two.bound_ns - expected).abs() < 1e-6 * expected,
        "{two:?} against {expected}"
    );
    assert_eq!(report::partly_cached(&limits, bytes, 2), 30.0 + share * 90.0);
    // Past the curve's end, DRAM's triad alone.
    assert_eq!(report::roofline(&limits, traffic(1e9, 0.0), 2).bound_ns, 1e9 / 30.0);
}

#[test]
fn two_threads_within_the_shared_l3_follow_the_one_thread_curve_from_the_triads_working_set() {
    let limits = shared_l3_limits();
    // The two-thread triad ran on 12 MB in all, where the one-thread curve reads c12; a 2 MB row
    // reads c2 there, so its bound is the triad's 120 GB/s times c2 / c12.
    let (c2, c12) = (
        limits.curve_gb_per_s(2e6).unwrap(),
        limits.curve_gb_per_s(12e6).unwrap(),
    );
    assert!(c2 > c12, "{c2} {c12}");
    assert!((report::shared_level(&limits, 2e6, 2) - c2 / c12).abs() < 1e-12);
    let small = report::roofline(&limits, traffic(2e6, 0.0), 2);
    assert_eq!(small.limit, Limit::L3);
    let expected = 2e6 / (120.0 * c2 / c12);
    assert!(
        (small.bound_ns - expected).abs() < 1e-6 * expected,
        "{small:?} against {expected}"
    );
    // At or past the triad's own working set the triad stands: the curve never lowers it.
    assert_eq!(report::shared_level(&limits, 12e6, 2), 1.0);
    assert_eq!(report::shared_level(&limits, 18e6, 2), 1.0);
    assert_eq!(report::roofline(&limits, traffic(18e6, 0.0), 2).bound_ns, 18e6 / 120.0);
    // Without a curve (reports before it), the triad alone.
    let mut old = limits.clone();
    old.curve.clear();
    assert_eq!(report::shared_level(&old, 2e6, 2), 1.0);
    assert_eq!(report::roofline(&old, traffic(2e6, 0.0), 2).bound_ns, 2e6 / 120.0);
}

#[test]
fn every_row_above_its_roofline_states_a_cause() {
    let mut report = sample();
    report.limits = shared_l3_limits();
    let above = |r: &Row| report.above_roofline(r);
    let base = row("softmax", "rows=64,cols=50257", "simd", 1000.0, Verdict::Pass);
    // Below or at the bound: no cause needed.
    assert_eq!(above(&base), None);
    let at = |bound_ns: f64, limit: Limit, bytes: f64| Row {
        roofline: Roofline { bound_ns, limit },
        work: traffic(bytes, bytes / 2.0),
        ..base.clone()
    };
    assert_eq!(above(&at(1000.0, Limit::Dram, 25e6)), None);
    // Above the median (1000 ns) but within the time's interval (upper end 1020 ns): noise.
    let noise = above(&at(1010.0, Limit::L2, 1e5)).unwrap();
    assert!(noise.starts_with("noise"), "{noise}");
    // Between the L3 found (20 MB) and the one reported (33.6 MB): partly cached.
    let cached = above(&at(1500.0, Limit::Dram, 25e6)).unwrap();
    assert!(
        cached.starts_with("partly cached") && cached.contains("25.0 MB") && cached.contains("33.6 MB"),
        "{cached}"
    );
    // Two threads whose L3 reading (120 GB/s) is 2 × the one-thread 60 would be a fair bound; with a
    // reading that scaled less (70 GB/s) and a row within 2 × 60, the probe is named.
    let two = |bound_ns| Row {
        threads: 2,
        ..at(bound_ns, Limit::L3, 10e6)
    };
    assert!(above(&two(1500.0)).unwrap().starts_with("unexplained"));
    let mut scaled_less = report.clone();
    scaled_less.limits.bandwidth[2].gb_per_s = 70.0;
    let cause = scaled_less.above_roofline(&two(1500.0)).unwrap();
    assert!(
        cause.starts_with("probe scaled less") && cause.contains("1.17 ×") && cause.contains("at 88 %"),
        "{cause}"
    );
    assert!(
        scaled_less
            .above_roofline(&two(2500.0))
            .unwrap()
            .starts_with("unexplained")
    );
    // Beyond what the CPU reports, or above the FMA peak: said to be unexplained, not passed over.
    let far = above(&at(1500.0, Limit::Dram, 50e6)).unwrap();
    assert!(far.starts_with("unexplained"), "{far}");
    let compute = above(&at(1500.0, Limit::Compute, 1e3)).unwrap();
    assert!(
        compute.starts_with("unexplained") && compute.contains("FMA peak"),
        "{compute}"
    );
    // The Markdown marks such rows and lists each with its cause.
    report.rows = vec![at(1500.0, Limit::Dram, 25e6), base.clone()];
    let md = render_markdown(&report);
    assert!(md.contains("150 % (dram) †"), "{md}");
    assert!(md.contains("## Rows above their roofline"), "{md}");
    assert!(md.contains("| partly cached: its 25.0 MB lie between"), "{md}");
    report.rows = vec![base];
    assert!(render_markdown(&report).contains("No row ran faster than its roofline bound."));
}
