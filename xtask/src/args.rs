//! Parsers of the options several subcommands share, as clap value parsers: `--op` (an op of the
//! registry), `--isa` (a level this CPU has) and `--kernels` (a kernel set spec). Bad values are
//! usage errors that name what is valid.

use tkbench_harness::ops::{AnyOp, op_named};
use tkbench_harness::registry::KernelSet;
use tkbench_kernels::Isa;

/// `--op`: the op of that name.
pub fn op(name: &str) -> Result<&'static dyn AnyOp, String> {
    op_named(name)
}

/// `--isa`: a level ([`Isa`]'s `FromStr`) that this CPU must have.
pub fn isa(name: &str) -> Result<Isa, String> {
    let isa: Isa = name.parse()?;
    if !isa.is_available() {
        let have: Vec<_> = Isa::available().iter().map(|l| l.name()).collect();
        return Err(format!(
            "{name} is not available on this CPU (it has {})",
            have.join(", ")
        ));
    }
    Ok(isa)
}

/// `--kernels`: a kernel set of this process's registry: `fastest`, `scalar`, or `op=variant,...`.
pub fn kernels(spec: &str) -> Result<KernelSet, String> {
    KernelSet::parse(crate::registry(), spec)
}

/// Parses `--family`: a model family this tkbench implements.
pub fn family(name: &str) -> Result<tkbench_reference::Family, String> {
    tkbench_reference::Family::parse(name).ok_or_else(|| {
        let names: Vec<&str> = tkbench_reference::Family::ALL.iter().map(|f| f.name()).collect();
        format!("no family named `{name}`; families are {}", names.join(", "))
    })
}
