//! Fuzz target: a report's JSON, read as `cargo xtask compare` and `bench --render` read it, and,
//! when it is read, rendered as Markdown and as both plots. Any input gives a report or an error,
//! and any report renders, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tkbench_harness::measure::report::{Report, render_markdown};
use tkbench_harness::measure::svg;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(report) = Report::parse(text, Path::new("fuzz/report.json")) {
        let _ = render_markdown(&report);
        let _ = svg::throughput_svg(&report);
        let _ = svg::roofline_svg(&report);
    }
});
