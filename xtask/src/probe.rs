//! `cargo xtask probe`: what this machine is and what it can do (FMA peak per ISA level, L1, L2, L3 and DRAM
//! bandwidth, on one thread and on all), the numbers every report's roofline uses.

use anyhow::Result;
use tkbench_harness::measure::probe::{WORKING_SET_FRACTION, machine, measure_limits};

use crate::Outcome;

/// Arguments of `cargo xtask probe`.
#[derive(clap::Args)]
pub struct Args {
    /// Shorter measurements.
    #[arg(long)]
    quick: bool,
    /// Also print the one-thread bandwidth curve the caches are found from.
    #[arg(long)]
    curve: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `cargo xtask probe`.
pub fn run(args: Args) -> Result<Outcome> {
    let machine = machine();
    eprintln!(
        "probe: measuring FMA peaks and bandwidths on 1 and {} threads",
        machine.logical_cpus
    );
    let limits = measure_limits(machine.logical_cpus, args.quick);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "machine": machine, "limits": limits }))?
        );
        return Ok(Outcome::Pass);
    }
    println!("machine   {} ({})", machine.machine_id, machine.cpu);
    let under = match machine.hypervisor.as_str() {
        "" => "no hypervisor reported".to_owned(),
        h => format!("a {h} guest"),
    };
    println!(
        "vendor    {}, family {:x}h model {:x}h; {under}",
        if machine.vendor.is_empty() {
            "unknown"
        } else {
            &machine.vendor
        },
        machine.cpu_family,
        machine.cpu_model
    );
    println!(
        "cpus      {} logical; ISA levels {}",
        machine.logical_cpus,
        machine.isa_levels.join(", ")
    );
    println!("flags     {}", machine.cpu_flags.join(" "));
    let caches: Vec<String> = machine
        .caches
        .iter()
        .map(|c| format!("L{} {} {} KiB", c.level, c.kind, c.bytes / 1024))
        .collect();
    println!("caches    {} (what the CPU reports)", caches.join(", "));
    let found: Vec<String> = limits
        .caches
        .iter()
        .map(|c| format!("L{} {} KiB at {:.0} GB/s", c.level, c.bytes / 1024, c.gb_per_s))
        .collect();
    println!(
        "found     {} (where one thread's bandwidth falls; the triads below fill {:.0} % of these)",
        if found.is_empty() {
            "no cache".to_owned()
        } else {
            found.join(", ")
        },
        100.0 * WORKING_SET_FRACTION
    );
    if !machine.transparent_huge_pages.is_empty() {
        println!("thp       {}", machine.transparent_huge_pages);
    }
    println!("params    {}", crate::tune::establish(&machine)?.summary());
    println!(
        "build     {}; target features {}; commit {}",
        machine.rustc,
        machine.target_features.join(","),
        machine.commit
    );
    for p in &limits.fma {
        println!(
            "fma       {:<7} {} thread(s): {:>8.1} GFLOP/s",
            p.isa, p.threads, p.gflops
        );
    }
    for b in &limits.bandwidth {
        println!(
            "bandwidth {:<7} {} thread(s): {:>8.1} GB/s (triad, {} KiB per thread{})",
            b.level,
            b.threads,
            b.gb_per_s,
            b.working_set_bytes / 1024,
            if b.huge_pages { ", huge pages" } else { "" }
        );
        if let Some(read) = b.read_gb_per_s {
            println!(
                "bandwidth {:<7} {} thread(s): {:>8.1} GB/s (reads alone, {:.2} × the triad)",
                b.level,
                b.threads,
                read,
                read / b.gb_per_s
            );
        }
    }
    if args.curve {
        for p in &limits.curve {
            println!(
                "curve     {:>10} KiB: {:>8.1} GB/s",
                p.working_set_bytes / 1024,
                p.gb_per_s
            );
        }
    }
    Ok(Outcome::Pass)
}
