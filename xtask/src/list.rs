//! `cargo xtask list`: the kernel registry, as a table or as JSON.

use anyhow::Result;
use serde_json::json;
use tkbench_harness::registry::{Entry, Origin};
use tkbench_kernels::Isa;

use crate::Outcome;

/// Arguments of `cargo xtask list`.
#[derive(clap::Args)]
pub struct Args {
    /// Print a JSON array of {op, variant, kind, isa, levels, file} instead of a table.
    #[arg(long)]
    json: bool,
}

/// Where a variant's code is: its file in this repository, or where it came from.
fn source(entry: &Entry) -> String {
    match entry.origin {
        Origin::Builtin => format!("crates/kernels/src/{}", entry.file),
        Origin::Outside => "(outside: added to the registry by this program)".to_owned(),
        Origin::Plugin(name) => format!("(plugin {name})"),
    }
}

/// Runs `cargo xtask list`.
pub fn run(args: Args) -> Result<Outcome> {
    let level_names = |levels: Vec<Isa>| levels.iter().map(|l| l.name()).collect::<Vec<_>>();
    let registry = crate::registry();
    if args.json {
        let rows: Vec<_> = registry
            .entries()
            .map(|v| {
                json!({
                    "op": v.op,
                    "variant": v.name,
                    "kind": v.kind.name(),
                    "isa": v.isa.name(),
                    "levels": level_names(v.isa.levels()),
                    "file": source(v),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Outcome::Pass);
    }
    println!(
        "{:<10} {:<15} {:<8} {:<9} {:<22} file",
        "op", "variant", "kind", "isa", "levels on this CPU"
    );
    for v in registry.entries() {
        println!(
            "{:<10} {:<15} {:<8} {:<9} {:<22} {}",
            v.op,
            v.name,
            v.kind.name(),
            v.isa.name(),
            level_names(v.isa.levels()).join(","),
            source(v)
        );
    }
    println!(
        "\nisa: none = plain Rust, run once; dispatch = pulp code, run at every level; library = the library picks.\n\
         This CPU: {}",
        level_names(Isa::available()).join(", ")
    );
    println!(
        "\nThe input profiles each op takes (checks/profiles.yaml picks those the gate runs):\n{}",
        tkbench_harness::check::profiles::listing()
    );
    println!("\nThe special-value cases of each op (`opcheck --op OP --special NAME` runs one):");
    for op in registry.ops() {
        println!("{:<10} {}", op.name(), op.special_names().join(", "));
    }
    Ok(Outcome::Pass)
}
