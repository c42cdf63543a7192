//! Tidy checks on the registry: every variant file is registered, every registered file exists, and
//! every op has the variants the design asks for.

use std::collections::BTreeSet;
use std::path::Path;

use tkbench_kernels::registry::FASTEST;
use tkbench_kernels::{Kind, Op, find, variants, variants_of};

#[test]
fn every_variant_file_is_registered_and_every_entry_has_a_file() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut on_disk = BTreeSet::new();
    for op in Op::ALL {
        let dir = src.join(op.name());
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".rs") && name != "mod.rs" {
                on_disk.insert(format!("{}/{name}", op.name()));
            }
        }
    }
    let registered: BTreeSet<String> = variants().iter().map(|v| v.file.to_owned()).collect();
    let unregistered: Vec<_> = on_disk.difference(&registered).collect();
    let missing: Vec<_> = registered.difference(&on_disk).collect();
    assert!(
        unregistered.is_empty(),
        "variant files not in the registry (add a line to registry.rs): {unregistered:?}"
    );
    assert!(missing.is_empty(), "registry entries without a file: {missing:?}");
}

#[test]
fn every_op_has_scalar_simd_and_blocked_variants() {
    for op in Op::ALL {
        let kinds: Vec<Kind> = variants_of(op).map(|v| v.kind).collect();
        assert!(kinds.contains(&Kind::Scalar), "{} has no scalar variant", op.name());
        assert!(kinds.contains(&Kind::Simd), "{} has no simd variant", op.name());
        if op != Op::Gelu {
            assert!(kinds.contains(&Kind::Blocked), "{} has no blocked variant", op.name());
        }
        let names: BTreeSet<&str> = variants_of(op).map(|v| v.name).collect();
        assert_eq!(names.len(), kinds.len(), "{} has two variants with one name", op.name());
    }
}

#[test]
fn the_fastest_set_names_a_registered_variant_of_every_op() {
    for op in Op::ALL {
        let names: Vec<&str> = FASTEST.iter().filter(|(o, _)| *o == op).map(|(_, n)| *n).collect();
        assert_eq!(names.len(), 1, "{} has {} entries in FASTEST", op.name(), names.len());
        assert!(
            find(op, names[0]).is_some(),
            "FASTEST names {} for {}, which is not registered",
            names[0],
            op.name()
        );
    }
}
