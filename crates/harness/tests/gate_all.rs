//! The op level of the gate on every built-in variant at every level, under the committed input
//! profiles: what `cargo xtask verify --part ops` runs, as a test for mutation runs to call
//! (`cargo mutants` with `-- --ignored`, see README.md). Ignored by default: `cargo xtask verify`
//! already runs it in CI.

use tkbench_harness::check::gate::{Selection, render_row, run_gate};
use tkbench_harness::check::profiles::{Profiles, default_path};
use tkbench_harness::registry::Registry;

#[test]
#[ignore = "the op level of the gate; `cargo xtask verify` runs it"]
fn every_builtin_variant_passes_the_op_level_of_the_gate() {
    let selection = Selection {
        profiles: Profiles::load(&default_path()).unwrap(),
        ..Selection::default()
    };
    let gate = run_gate(&Registry::builtin(), &selection, |row| println!("{}", render_row(row))).unwrap();
    assert!(gate.pass(), "{}", gate.failures.join("\n"));
}
