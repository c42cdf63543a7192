//! `cargo xtask compare A B`: two reports side by side (two CPUs, two commits, or two ISA levels with
//! `--ignore-isa`): the speedup of B over A per row, marked `~` when the 95 % confidence intervals of
//! the two medians overlap (a difference within noise), and an SVG of the ratios.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use tkbench_harness::check::golden::workspace_root;
use tkbench_harness::measure::report::{self, Kind, Report, Row, Verdict};
use tkbench_harness::measure::svg::compare_svg;

use crate::Outcome;

/// Arguments of `cargo xtask compare`.
#[derive(clap::Args)]
pub struct Args {
    /// The baseline report (JSON).
    a: PathBuf,
    /// The report compared with it (JSON).
    b: PathBuf,
    /// Join rows whatever their ISA level (to compare two runs at different levels).
    #[arg(long)]
    ignore_isa: bool,
    /// Where to write the SVG [default: target/tkbench/compare.svg].
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

fn key(r: &Row, ignore_isa: bool) -> String {
    let isa = if ignore_isa { "*" } else { r.isa.name() };
    let kind = match r.kind {
        Kind::Op => "op",
        Kind::Model => "model",
    };
    format!("{kind} {} {} {}@{isa} x{}", r.op, r.shape, r.variant, r.threads)
}

/// Runs `cargo xtask compare`.
pub fn run(args: Args) -> Result<Outcome> {
    let a = Report::load(&args.a)?;
    let b = Report::load(&args.b)?;
    let index = |r: &Report, path: &std::path::Path| -> Result<BTreeMap<String, Row>> {
        let mut rows = BTreeMap::new();
        for row in &r.rows {
            if rows.insert(key(row, args.ignore_isa), row.clone()).is_some() {
                bail!(
                    "{}: several rows of `{} {} {}` once the ISA level is ignored; compare reports made at one level each",
                    path.display(),
                    row.op,
                    row.shape,
                    row.variant
                );
            }
        }
        Ok(rows)
    };
    let (ia, ib) = (index(&a, &args.a)?, index(&b, &args.b)?);
    println!(
        "A: {} {} ({}, {})",
        a.machine.machine_id,
        a.machine.commit,
        a.machine.cpu,
        a.mode_name()
    );
    println!(
        "B: {} {} ({}, {})",
        b.machine.machine_id,
        b.machine.commit,
        b.machine.cpu,
        b.mode_name()
    );
    println!("\n{:<72} {:>11} {:>11} {:>8}", "row", "A", "B", "B vs A");
    let mut items = Vec::new();
    for (k, ra) in &ia {
        let Some(rb) = ib.get(k) else { continue };
        let ratio = ra.time_ns.median / rb.time_ns.median;
        let noise = ra.time_ns.overlaps(&rb.time_ns);
        let flag = |r: &Row| if r.verdict == Verdict::Pass { "" } else { " (FAIL)" };
        println!(
            "{:<72} {:>11} {:>11} {:>7.2}{}{}{}",
            k,
            format!("{:.1} µs", ra.time_ns.median / 1e3),
            format!("{:.1} µs", rb.time_ns.median / 1e3),
            ratio,
            if noise { "~" } else { "×" },
            flag(ra),
            flag(rb)
        );
        items.push((k.clone(), ratio, noise));
    }
    if items.is_empty() {
        bail!("the two reports have no row in common (different shapes, variants or levels; try --ignore-isa)");
    }
    let only = |x: &BTreeMap<String, Row>, y: &BTreeMap<String, Row>| x.keys().filter(|k| !y.contains_key(*k)).count();
    println!(
        "\n{} rows in common ('~': the 95 % confidence intervals overlap, a difference within noise); {} only in A, {} only in B",
        items.len(),
        only(&ia, &ib),
        only(&ib, &ia)
    );
    let svg_path = args
        .svg
        .unwrap_or_else(|| workspace_root().join("target/tkbench/compare.svg"));
    let title = format!(
        "B ({} {}) over A ({} {})",
        b.machine.machine_id, b.machine.commit, a.machine.machine_id, a.machine.commit
    );
    report::write(&svg_path, &compare_svg(&title, &items))?;
    eprintln!("wrote {}", svg_path.display());
    Ok(Outcome::Pass)
}
