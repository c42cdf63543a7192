//! Shared pieces of the criterion benches: which variants and levels to time, their labels, and
//! seeded inputs. The FLOP and byte count of each op lives with its bench.
//!
//! By default every variant runs at the widest ISA level the CPU has (plain and library variants
//! once). `TKBENCH_ISA=all` times every level, `TKBENCH_ISA=avx2` (or another level) one level.

use tkbench_kernels::{Isa, IsaSupport, Op, Variant, variants_of};

pub use tkbench_harness::opcheck::Draw;

/// The (variant, level, label) triples to time for `op`; the label is `variant@level`.
pub fn targets(op: Op) -> Vec<(&'static Variant, Isa, String)> {
    let wanted = std::env::var("TKBENCH_ISA").ok();
    let levels = |v: &Variant| -> Vec<Isa> {
        match (v.isa, wanted.as_deref()) {
            (IsaSupport::Dispatch, Some("all")) => Isa::available(),
            (IsaSupport::Dispatch, Some(name)) => match Isa::from_name(name) {
                Some(isa) if isa.is_available() => vec![isa],
                _ => panic!("TKBENCH_ISA={name}: not a level this CPU has ({:?})", Isa::available()),
            },
            (IsaSupport::Dispatch, None) => vec![Isa::best()],
            _ => vec![Isa::Scalar],
        }
    };
    variants_of(op)
        .flat_map(|v| {
            levels(v).into_iter().map(move |isa| {
                let label = match v.isa {
                    IsaSupport::Dispatch => format!("{}@{}", v.name, isa.name()),
                    _ => v.name.to_owned(),
                };
                (v, isa, label)
            })
        })
        .collect()
}
