//! The report plots as SVG text, drawn with plotters' SVG backend: throughput against size per op,
//! the one-thread roofline, and the B-over-A ratios of a comparison.

use std::collections::BTreeMap;
use std::error::Error;
use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::measure::report::{Kind, Report, Row};

const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The font family written into every `<text>`: the viewer picks the face, so no font is needed here.
const FONT: &str = "sans-serif";

const INK: RGBColor = RGBColor(0x44, 0x44, 0x44);
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
const FAINT_GRID: RGBColor = RGBColor(0xf2, 0xf2, 0xf2);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn Error>>;

/// Draws on a white canvas of `size` pixels and returns the SVG document.
fn render(size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Drawn) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let drawn = root.fill(&WHITE).map_err(Into::into).and_then(|()| draw(&root));
        if let Err(e) = drawn {
            // A plot that stopped half-way has to say so, rather than pass for one with little data.
            let _ = root.draw(&Text::new(
                format!("plot incomplete: {e}"),
                (10, size.1 as i32 - 14),
                text(12.0).color(&RED),
            ));
        }
        // Presenting closes the document's open tags; a String target has no I/O that could fail.
        let _ = root.present();
    }
    namespace_first(svg)
}

/// Rewrites the opening tag with the namespace as its first attribute. plotters writes it last,
/// while the report tooling (and its tests) identify an SVG document by how it starts.
fn namespace_first(svg: String) -> String {
    const NS: &str = " xmlns=\"http://www.w3.org/2000/svg\"";
    match (svg.strip_prefix("<svg"), svg.find('>')) {
        (Some(_), Some(end)) => {
            let attrs = svg[4..end].replace(NS, "");
            format!("<svg{NS}{attrs}>{}", &svg[end + 1..])
        }
        _ => svg,
    }
}

/// A left-aligned text style of `size` (plotters writes `size / 1.24` as the SVG font size).
fn text(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
}

/// A text style anchored at `h` horizontally and centred vertically on its position.
fn anchored(size: f64, h: HPos) -> TextStyle<'static> {
    text(size).pos(Pos::new(h, VPos::Center))
}

/// Whether a value can sit on a log axis (NaN, infinities and non-positive values cannot).
fn loggable(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// The whole decades holding every loggable value (1 to 10 when there is none), so that log axes
/// start and end on a labelled power of ten. The ends are widened by a hair because plotters
/// places log ticks by repeated multiplication, which would otherwise round the end ticks away,
/// and kept within 1e±300 so that no end can overflow to infinity.
fn decades(values: impl IntoIterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| loggable(*v))
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (a, b) = if hi > 0.0 {
        let a = lo.log10().floor().clamp(-300.0, 299.0);
        (a, hi.log10().ceil().clamp(a + 1.0, 300.0))
    } else {
        (0.0, 1.0)
    };
    10f64.powf(a) * (1.0 - 1e-9)..10f64.powf(b) * (1.0 + 1e-9)
}

/// How many labels a decade range needs for plotters to put one on every power of ten and none
/// in between (more would make it add 2×, 3×, ... ticks).
fn decade_labels(r: &Range<f64>) -> usize {
    (r.end / r.start).log10().round() as usize + 1
}

fn power_of_ten(v: &f64) -> String {
    format!("{v:.0e}")
}

/// Whether a row's op is measured in FLOPs rather than bytes.
fn counts_flops(r: &Row) -> bool {
    crate::ops::op_named(&r.op).is_ok_and(|op| op.unit() == crate::measure::work::Unit::Flops)
}

/// The throughput figure of a row: GFLOP/s for compute-heavy ops, GB/s otherwise, tokens/s for the model.
fn throughput(r: &Row) -> (f64, &'static str) {
    match r.kind {
        Kind::Model => (r.tokens_per_s().unwrap_or(0.0), "tokens/s"),
        _ if counts_flops(r) => (r.gflops(), "GFLOP/s"),
        _ => (r.gb_per_s(), "GB/s"),
    }
}

/// The size of a row's call, in the unit its throughput counts.
fn size(r: &Row) -> f64 {
    if counts_flops(r) || r.kind == Kind::Model {
        r.work.flops
    } else {
        r.work.bytes
    }
}

/// Throughput against problem size (work in FLOPs or bytes), one panel per op, one line per variant,
/// level and thread count.
pub fn throughput_svg(report: &Report) -> String {
    let mut ops: Vec<&str> = Vec::new();
    for r in &report.rows {
        if !ops.contains(&r.op.as_str()) {
            ops.push(&r.op);
        }
    }
    let (cols, pw, ph) = (3u32, 360u32, 260u32);
    let rows = (ops.len() as u32).div_ceil(cols).max(1);
    let title = format!(
        "Throughput against size: {} ({})",
        report.machine.machine_id, report.machine.commit
    );
    render((cols * pw, rows * ph + 30), |root| {
        let (head, body) = root.split_vertically(30);
        head.draw(&Text::new(
            title,
            ((cols * pw / 2) as i32, 16),
            anchored(17.0, HPos::Center),
        ))?;
        if ops.is_empty() {
            body.draw(&Text::new("no rows to plot", (20, 40), text(14.0)))?;
        }
        let panels = body.split_evenly((rows as usize, cols as usize));
        for (op, panel) in ops.iter().zip(&panels) {
            let op_rows: Vec<&Row> = report.rows.iter().filter(|r| r.op == *op).collect();
            throughput_panel(panel, op, &op_rows)?;
        }
        Ok(())
    })
}

/// One op's panel of [`throughput_svg`]; `rows` are that op's rows, at least one.
fn throughput_panel(area: &Area<'_>, op: &str, rows: &[&Row]) -> Drawn {
    let unit = throughput(rows[0]).1;
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows {
        let point = (size(r), throughput(r).0);
        // Points a log axis cannot place (a zero time or work count) are left out, not clamped.
        if loggable(point.0) && loggable(point.1) {
            let name = format!("{}@{} ×{}", r.variant, r.isa.name(), r.threads);
            series.entry(name).or_default().push(point);
        }
    }
    let x = decades(series.values().flatten().map(|p| p.0));
    let y = decades(series.values().flatten().map(|p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(op, (FONT, 15.0))
        .margin(6)
        .margin_right(16)
        .x_label_area_size(34)
        .y_label_area_size(52)
        .build_cartesian_2d(x.clone().log_scale(), y.clone().log_scale())?;
    chart
        .configure_mesh()
        .x_labels(decade_labels(&x))
        .y_labels(decade_labels(&y))
        .x_label_formatter(&power_of_ten)
        .y_label_formatter(&power_of_ten)
        .x_desc(if unit == "GB/s" {
            "bytes per call"
        } else {
            "FLOPs per call"
        })
        .y_desc(unit)
        .label_style((FONT, 11.0))
        .axis_desc_style((FONT, 11.0))
        .bold_line_style(GRID)
        .light_line_style(FAINT_GRID)
        .draw()?;
    if series.is_empty() {
        return Ok(());
    }
    for points in series.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let corner = emptiest_corner(&series, &x, &y);
    for (k, (name, points)) in series.into_iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        // A filled style fills the point markers; plotters never fills the line itself.
        chart
            .draw_series(LineSeries::new(points, color.filled().stroke_width(2)).point_size(3))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(corner)
        .label_font((FONT, 10.0))
        .margin(4)
        .legend_area_size(18)
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .draw()?;
    Ok(())
}

/// The corner of a throughput panel where the legend hides the fewest points and line midpoints.
/// The legend is sized as plotters draws it: about 140 of the ~290 pixels of plot width and 13 of
/// the ~180 pixels of plot height per series. Ties go to the upper left, where a reader looks first.
fn emptiest_corner(series: &BTreeMap<String, Vec<(f64, f64)>>, x: &Range<f64>, y: &Range<f64>) -> SeriesLabelPosition {
    let at = |v: f64, r: &Range<f64>| (v / r.start).ln() / (r.end / r.start).ln();
    let (w, h) = (0.5, ((series.len() as f64 * 13.0 + 10.0) / 180.0).min(1.0));
    let samples: Vec<(f64, f64)> = series
        .values()
        .flat_map(|p| {
            let mids = p
                .windows(2)
                .map(|s| ((s[0].0 * s[1].0).sqrt(), (s[0].1 * s[1].1).sqrt()));
            p.iter().copied().chain(mids).collect::<Vec<_>>()
        })
        .map(|(a, b)| (at(a, x), at(b, y)))
        .collect();
    let covered = |left: bool, upper: bool| {
        let inside = |&&(u, v): &&(f64, f64)| {
            let across = if left { u < w } else { u > 1.0 - w };
            let down = if upper { v > 1.0 - h } else { v < h };
            across && down
        };
        samples.iter().filter(inside).count()
    };
    [
        (SeriesLabelPosition::UpperLeft, covered(true, true)),
        (SeriesLabelPosition::UpperRight, covered(false, true)),
        (SeriesLabelPosition::LowerRight, covered(false, false)),
        (SeriesLabelPosition::LowerLeft, covered(true, false)),
    ]
    .into_iter()
    .min_by_key(|c| c.1)
    .map_or(SeriesLabelPosition::UpperLeft, |c| c.0)
}

/// The roofline on one thread: min(FMA peak, intensity × bandwidth) for L2 and DRAM (the L1 and L3
/// ceilings are in the report, left out to keep the plot readable), and every
/// one-thread op row as a point (intensity, GFLOP/s).
pub fn roofline_svg(report: &Report) -> String {
    let (width, height) = (720u32, 480u32);
    let title = format!(
        "Roofline, 1 thread: {} ({})",
        report.machine.machine_id, report.machine.commit
    );
    let points: Vec<(&str, (f64, f64))> = report
        .rows
        .iter()
        .filter(|r| r.kind == Kind::Op && r.threads == 1)
        .map(|r| (r.op.as_str(), (r.work.flops / r.work.bytes, r.gflops())))
        .filter(|(_, p)| loggable(p.0) && loggable(p.1))
        .collect();
    let peak = report.limits.peak_gflops(1);
    render((width, height), |root| {
        let (head, body) = root.split_vertically(30);
        head.draw(&Text::new(
            title,
            ((width / 2) as i32, 16),
            anchored(17.0, HPos::Center),
        ))?;
        let (plot, legend) = body.split_horizontally(width - 160);
        let x = decades(points.iter().map(|p| p.1.0).chain([0.01, 100.0]));
        let y = decades(points.iter().map(|p| p.1.1).chain([peak * 1.5, 0.1]));
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(58)
            .build_cartesian_2d(x.clone().log_scale(), y.clone().log_scale())?;
        chart
            .configure_mesh()
            .x_labels(decade_labels(&x))
            .y_labels(decade_labels(&y))
            .x_label_formatter(&power_of_ten)
            .y_label_formatter(&power_of_ten)
            .x_desc("arithmetic intensity (FLOP per byte)")
            .y_desc("GFLOP/s")
            .label_style((FONT, 11.0))
            .axis_desc_style((FONT, 12.0))
            .bold_line_style(GRID)
            .light_line_style(FAINT_GRID)
            .draw()?;
        // Without a measured peak there is no roof to bend the bandwidth lines onto.
        if loggable(peak) {
            for (level, dashed) in [("l2", true), ("dram", false)] {
                let Some(bw) = report.limits.gb_per_s(level, 1).filter(|b| loggable(*b)) else {
                    continue;
                };
                // The slope starts where it enters the plot, so that no line runs below the axis.
                let start = x.start.max(y.start / bw);
                let knee = (peak / bw).clamp(start, x.end);
                let roof: Vec<(f64, f64)> = [start, knee, x.end]
                    .into_iter()
                    .map(|i| (i, peak.min(i * bw)))
                    .collect();
                let style = INK.stroke_width(1);
                if dashed {
                    chart.draw_series(DashedLineSeries::new(roof, 4, 3, style))?;
                } else {
                    chart.draw_series(LineSeries::new(roof, style))?;
                }
                // The label ends three quarters of a decade up the slope, right-aligned above it,
                // so that it sits over the rising line rather than across it.
                let along = (start * 10f64.powf(0.75)).min(knee);
                chart.draw_series([EmptyElement::at((along, peak.min(along * bw)))
                    + Text::new(
                        format!("{level} {bw:.0} GB/s"),
                        (-2, -6),
                        text(11.0).pos(Pos::new(HPos::Right, VPos::Bottom)),
                    )])?;
            }
            chart.draw_series([EmptyElement::at((x.end, peak))
                + Text::new(
                    format!("FMA peak {peak:.0} GFLOP/s"),
                    (-4, -4),
                    text(11.0).pos(Pos::new(HPos::Right, VPos::Bottom)),
                )])?;
        }
        if points.is_empty() {
            plot.draw(&Text::new("no one-thread op rows to plot", (80, 60), text(14.0)))?;
        }
        let mut ops: Vec<&str> = points.iter().map(|p| p.0).collect();
        ops.sort_unstable();
        ops.dedup();
        for (k, op) in ops.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart.draw_series(
                points
                    .iter()
                    .filter(|p| p.0 == *op)
                    .map(|p| Circle::new(p.1, 3, color.filled())),
            )?;
            let row = 30 + 18 * k as i32;
            legend.draw(&Circle::new((12, row), 4, color.filled()))?;
            legend.draw(&Text::new(op.to_string(), (22, row), anchored(13.0, HPos::Left)))?;
        }
        Ok(())
    })
}

/// A tick of the log2 ratio axis: 0.25×, 4× and the like near 1, powers of two written as such
/// farther out, where decimals would be long or round to 0.
fn power_of_two(v: &f64) -> String {
    let k = v.log2().round();
    if k.abs() > 10.0 {
        format!("2^{k}×")
    } else if *v >= 1.0 {
        format!("{v:.0}×")
    } else {
        format!("{}×", (v * 1e4).round() / 1e4)
    }
}

/// Horizontal bars of the speedup of report B over report A per row (log2 scale, 1 in the middle);
/// grey bars, and `~` instead of `×` after the ratio, are within noise.
pub fn compare_svg(title: &str, items: &[(String, f64, bool)]) -> String {
    let captions: Vec<String> = items
        .iter()
        .map(|(label, ratio, noise)| {
            let mark = if *noise { '~' } else { '×' };
            if loggable(*ratio) && (0.01..1e4).contains(ratio) {
                format!("{label} {ratio:.2}{mark}")
            } else if loggable(*ratio) {
                // Far-off ratios in full would be hundreds of digits wide.
                format!("{label} {ratio:.1e}{mark}")
            } else {
                format!("{label} n/a")
            }
        })
        .collect();
    // The label column is as wide as the longest caption needs, at about 5.8 pixels a character
    // in the 9.3-pixel font, so long row keys are not cut off at the left edge.
    let longest = captions.iter().map(|c| c.chars().count()).max().unwrap_or(0);
    let left = ((longest as f64 * 5.8) as u32 + 20).clamp(200, 900);
    let (width, bar) = (left + 480, 16u32);
    let n = items.len().max(1);
    let height = 110 + bar * n as u32;
    let span = items
        .iter()
        .filter(|i| loggable(i.1))
        .map(|i| i.1.log2().abs())
        .fold(1.0f64, f64::max)
        .ceil()
        // Past 2^±64 the axis would say nothing more; the cap keeps its ends finite.
        .min(64.0);
    render((width, height), |root| {
        let (head, body) = root.split_vertically(30);
        head.draw(&Text::new(
            title.to_string(),
            ((width / 2) as i32, 16),
            anchored(17.0, HPos::Center),
        ))?;
        // The ends are widened by a hair so that plotters' ticks, placed by repeated doubling,
        // still land on both of them.
        let x = 2f64.powf(-span) * (1.0 - 1e-9)..2f64.powf(span) * (1.0 + 1e-9);
        let y = 0.0..n as f64;
        let mut chart = ChartBuilder::on(&body)
            .margin_top(24)
            .margin_left(left)
            .margin_right(24)
            .margin_bottom(6)
            .x_label_area_size(44)
            .build_cartesian_2d(x.clone().log_scale().base(2.0), y.clone())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            // One label per power of two while they fit; past that plotters labels every 4th, 8th...
            .x_labels(((2.0 * span) as usize + 1).min(11))
            .x_label_formatter(&power_of_two)
            .x_desc("B over A, log2 scale (grey: within noise)")
            .label_style((FONT, 11.0))
            .axis_desc_style((FONT, 12.0))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()?;
        let (slower, faster) = (
            chart.backend_coord(&(x.start, y.end)),
            chart.backend_coord(&(x.end, y.end)),
        );
        root.draw(&Text::new(
            "← B slower",
            (slower.0, slower.1 - 10),
            anchored(12.0, HPos::Left),
        ))?;
        root.draw(&Text::new(
            "B faster →",
            (faster.0, faster.1 - 10),
            anchored(12.0, HPos::Right),
        ))?;
        chart.draw_series(LineSeries::new([(1.0, 0.0), (1.0, y.end)], INK.stroke_width(1)))?;
        if items.is_empty() {
            root.draw(&Text::new("no rows in common", (20, 70), text(14.0)))?;
        }
        // A bar narrower than about a pixel would vanish; this keeps a ratio of exactly 1 visible.
        let thinnest = span / 400.0;
        for (i, ((_, ratio, noise), caption)) in items.iter().zip(captions).enumerate() {
            let top = (n - i) as f64;
            let at = chart.backend_coord(&(x.start, top - 0.5));
            root.draw(&Text::new(caption, (at.0 - 6, at.1), anchored(11.5, HPos::Right)))?;
            if !loggable(*ratio) {
                continue;
            }
            let log = ratio.log2().clamp(-span, span);
            let log = if log.abs() < thinnest {
                thinnest.copysign(log)
            } else {
                log
            };
            let color = if *noise {
                RGBColor(0xbb, 0xbb, 0xbb)
            } else if *ratio >= 1.0 {
                PALETTE[2]
            } else {
                PALETTE[1]
            };
            chart.draw_series([Rectangle::new(
                [(1.0, top - 0.1), (2f64.powf(log), top - 0.9)],
                color.filled(),
            )])?;
        }
        Ok(())
    })
}
