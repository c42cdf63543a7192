//! Plots as plain SVG text: throughput against size per variant, the roofline, and the ratios of a
//! comparison. Hand-written (no font or plotting library): axes, log scales, polylines, points and
//! labels.

use std::fmt::Write;

use tkbench_kernels::Op;

use crate::report::{Report, Row};

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// A log-scaled axis mapping [lo, hi] to pixels [p0, p1].
#[derive(Clone, Copy)]
struct LogAxis {
    lo: f64,
    hi: f64,
    p0: f64,
    p1: f64,
}

impl LogAxis {
    fn new(values: impl Iterator<Item = f64>, p0: f64, p1: f64) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (1.0, 10.0);
        }
        let lo = 10f64.powf(lo.log10().floor());
        let hi = 10f64.powf(hi.log10().ceil().max(lo.log10() + 1.0));
        Self { lo, hi, p0, p1 }
    }

    fn at(&self, v: f64) -> f64 {
        let t = (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10());
        self.p0 + t * (self.p1 - self.p0)
    }

    fn decades(&self) -> Vec<f64> {
        let (a, b) = (self.lo.log10().round() as i32, self.hi.log10().round() as i32);
        (a..=b).map(|e| 10f64.powi(e)).collect()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn header(width: f64, height: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        width / 2.0,
        escape(title)
    )
}

/// Whether a row's op is measured in FLOPs ([`crate::work::measured_in_flops`]) rather than bytes.
fn counts_flops(r: &Row) -> bool {
    Op::from_name(&r.op).is_some_and(crate::work::measured_in_flops)
}

/// The throughput figure of a row: GFLOP/s for compute-heavy ops, GB/s otherwise, tokens/s for the model.
fn throughput(r: &Row) -> (f64, &'static str) {
    match (r.kind.as_str(), r.op.as_str()) {
        ("model", _) => (r.tokens_per_s.unwrap_or(0.0), "tokens/s"),
        _ if counts_flops(r) => (r.gflops, "GFLOP/s"),
        _ => (r.gb_per_s, "GB/s"),
    }
}

/// Throughput against problem size (work in FLOPs or bytes), one panel per op, one line per variant,
/// level and thread count.
pub fn throughput_svg(report: &Report) -> String {
    let mut ops: Vec<&str> = report.rows.iter().map(|r| r.op.as_str()).collect();
    ops.dedup();
    let (cols, pw, ph) = (3usize, 360.0, 260.0);
    let rows = ops.len().div_ceil(cols).max(1);
    let (width, height) = (cols as f64 * pw, rows as f64 * ph + 30.0);
    let mut svg = header(
        width,
        height,
        &format!(
            "Throughput against size: {} ({})",
            report.machine.machine_id, report.machine.commit
        ),
    );
    for (i, op) in ops.iter().enumerate() {
        let (ox, oy) = ((i % cols) as f64 * pw, 30.0 + (i / cols) as f64 * ph);
        let op_rows: Vec<&Row> = report.rows.iter().filter(|r| r.op == *op).collect();
        let size = |r: &Row| {
            if counts_flops(r) || r.kind == "model" {
                r.flops
            } else {
                r.bytes
            }
        };
        let unit = throughput(op_rows[0]).1;
        let x = LogAxis::new(op_rows.iter().map(|r| size(r)), ox + 55.0, ox + pw - 15.0);
        let y = LogAxis::new(op_rows.iter().map(|r| throughput(r).0), oy + ph - 45.0, oy + 25.0);
        draw_axes(
            &mut svg,
            &x,
            &y,
            op,
            unit,
            if unit == "GFLOP/s" || unit == "tokens/s" {
                "FLOPs per call"
            } else {
                "bytes per call"
            },
        );
        let mut series: Vec<String> = op_rows
            .iter()
            .map(|r| format!("{}@{} ×{}", r.variant, r.isa, r.threads))
            .collect();
        series.dedup();
        series.sort();
        series.dedup();
        for (k, name) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let mut pts: Vec<(f64, f64)> = op_rows
                .iter()
                .filter(|r| &format!("{}@{} ×{}", r.variant, r.isa, r.threads) == name)
                .map(|r| (x.at(size(r)), y.at(throughput(r).0)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let line: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
                line.join(" ")
            );
            for (a, b) in &pts {
                let _ = writeln!(svg, "<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"2.5\" fill=\"{color}\"/>");
            }
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\" font-size=\"9\">{}</text>",
                ox + 60.0,
                oy + 36.0 + 11.0 * k as f64,
                escape(name)
            );
        }
    }
    svg + "</svg>\n"
}

fn draw_axes(svg: &mut String, x: &LogAxis, y: &LogAxis, title: &str, y_unit: &str, x_unit: &str) {
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
        (x.p0 + x.p1) / 2.0,
        y.p1 - 8.0,
        escape(title)
    );
    let _ = writeln!(
        svg,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#888\"/>",
        x.p0,
        y.p1,
        x.p1 - x.p0,
        y.p0 - y.p1
    );
    for v in x.decades() {
        let px = x.at(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\">{v:.0e}</text>",
            y.p1,
            y.p0,
            y.p0 + 12.0
        );
    }
    for v in y.decades() {
        let py = y.at(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#eee\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"9\">{v:.0e}</text>",
            x.p0,
            x.p1,
            x.p0 - 3.0,
            py + 3.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\">{}</text>",
        (x.p0 + x.p1) / 2.0,
        y.p0 + 24.0,
        escape(x_unit)
    );
    let _ = writeln!(
        svg,
        "<text transform=\"translate({:.1},{:.1}) rotate(-90)\" text-anchor=\"middle\" font-size=\"9\">{}</text>",
        x.p0 - 38.0,
        (y.p0 + y.p1) / 2.0,
        escape(y_unit)
    );
}

/// The roofline on one thread: min(FMA peak, intensity × bandwidth) for L2 and DRAM (the L1 and L3
/// ceilings are in the report, left out to keep the plot readable), and every
/// one-thread op row as a point (intensity, GFLOP/s).
pub fn roofline_svg(report: &Report) -> String {
    let (width, height) = (720.0, 480.0);
    let mut svg = header(
        width,
        height,
        &format!(
            "Roofline, 1 thread: {} ({})",
            report.machine.machine_id, report.machine.commit
        ),
    );
    let rows: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| r.kind == "op" && r.threads == 1)
        .collect();
    let peak = report.limits.peak_gflops(1);
    let x = LogAxis::new(
        rows.iter().map(|r| r.flops / r.bytes).chain([0.01, 100.0]),
        70.0,
        width - 180.0,
    );
    let y = LogAxis::new(
        rows.iter().map(|r| r.gflops).chain([peak * 1.5, 0.1]),
        height - 50.0,
        40.0,
    );
    draw_axes(&mut svg, &x, &y, "", "GFLOP/s", "arithmetic intensity (FLOP per byte)");
    for (k, level) in ["l2", "dram"].iter().enumerate() {
        if let Some(bw) = report.limits.gb_per_s(level, 1) {
            let knee = peak / bw;
            let pts = [(x.lo, x.lo * bw), (knee, peak), (x.hi, peak)];
            let line: Vec<String> = pts
                .iter()
                .map(|(a, b)| format!("{:.1},{:.1}", x.at(*a), y.at(*b)))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"#444\" stroke-dasharray=\"{}\" points=\"{}\"/>",
                if k == 0 { "4 2" } else { "1 0" },
                line.join(" ")
            );
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\">{level} {bw:.0} GB/s</text>",
                x.at(x.lo) + 4.0,
                y.at(x.lo * bw) - 4.0
            );
        }
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\">FMA peak {peak:.0} GFLOP/s</text>",
        x.p1 - 120.0,
        y.at(peak) - 4.0
    );
    let mut ops: Vec<&str> = rows.iter().map(|r| r.op.as_str()).collect();
    ops.sort();
    ops.dedup();
    for (k, op) in ops.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        for r in rows.iter().filter(|r| r.op == *op) {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{} {} {} {}</title></circle>",
                x.at(r.flops / r.bytes),
                y.at(r.gflops),
                escape(&r.op),
                escape(&r.shape),
                escape(&r.variant),
                escape(&r.isa)
            );
        }
        let _ = writeln!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\">{op}</text>",
            width - 160.0,
            60.0 + 16.0 * k as f64,
            width - 150.0,
            64.0 + 16.0 * k as f64
        );
    }
    svg + "</svg>\n"
}

/// Horizontal bars of the speedup of report B over report A per row (log scale, 1 in the middle);
/// grey bars are within noise.
pub fn compare_svg(title: &str, items: &[(String, f64, bool)]) -> String {
    let (width, bar) = (900.0, 14.0);
    let height = 60.0 + bar * items.len() as f64;
    let mut svg = header(width, height, title);
    let (x0, x1) = (420.0, width - 20.0);
    let mid = (x0 + x1) / 2.0;
    let span = items
        .iter()
        .map(|(_, r, _)| r.log2().abs())
        .fold(1.0f64, f64::max)
        .ceil();
    let at = |r: f64| mid + (r.log2() / span).clamp(-1.0, 1.0) * (x1 - x0) / 2.0;
    let _ = writeln!(
        svg,
        "<line x1=\"{mid}\" y1=\"30\" x2=\"{mid}\" y2=\"{:.1}\" stroke=\"#444\"/>",
        height - 20.0
    );
    let _ = writeln!(
        svg,
        "<text x=\"{x0}\" y=\"{:.1}\" font-size=\"9\">{:.2}× (B slower)</text><text x=\"{x1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"9\">{:.2}× (B faster)</text>",
        height - 6.0,
        2f64.powf(-span),
        height - 6.0,
        2f64.powf(span)
    );
    for (i, (label, ratio, noise)) in items.iter().enumerate() {
        let yy = 34.0 + bar * i as f64;
        let (a, b) = (mid.min(at(*ratio)), mid.max(at(*ratio)));
        let color = if *noise {
            "#bbb"
        } else if *ratio >= 1.0 {
            "#2ca02c"
        } else {
            "#d62728"
        };
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"9\">{} {ratio:.2}×</text>",
            x0 - 6.0,
            yy + 10.0,
            escape(label)
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{a:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"/>",
            (b - a).max(1.0),
            bar - 3.0
        );
    }
    svg + "</svg>\n"
}
