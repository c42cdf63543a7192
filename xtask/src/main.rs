//! The `cargo xtask` binary: the tkbench command line on the built-in registry.

use std::process::ExitCode;

use tkbench_harness::registry::Registry;

fn main() -> ExitCode {
    tkbench_cli::main_with(Registry::builtin())
}
