//! Tidy checks on the registry of ops and variants: every variant file is registered, every
//! registered file exists, every op has the variants the design asks for, every op's fastest variant
//! is registered, every op's shapes survive their text form, and every declared tile's dimension
//! gives the gate shapes to meet it with.

use std::collections::BTreeSet;
use std::path::Path;

use tkbench_harness::ops::OPS;
use tkbench_harness::registry::Registry;
use tkbench_kernels::Kind;

fn kernels_src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernels/src")
}

#[test]
fn every_variant_file_is_registered_and_every_entry_has_a_file() {
    let mut on_disk = BTreeSet::new();
    for op in OPS {
        let dir = kernels_src().join(op.name());
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".rs") && name != "mod.rs" {
                on_disk.insert(format!("{}/{name}", op.name()));
            }
        }
    }
    let registered: BTreeSet<String> = Registry::builtin().entries().map(|v| v.file.to_owned()).collect();
    let unregistered: Vec<_> = on_disk.difference(&registered).collect();
    let missing: Vec<_> = registered.difference(&on_disk).collect();
    assert!(
        unregistered.is_empty(),
        "variant files not in their op's VARIANTS (add a line to its mod.rs): {unregistered:?}"
    );
    assert!(missing.is_empty(), "registry entries without a file: {missing:?}");
}

#[test]
fn every_op_folder_is_an_op() {
    let ops: BTreeSet<&str> = OPS.iter().map(|op| op.name()).collect();
    for entry in std::fs::read_dir(kernels_src()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().join("mod.rs").is_file() {
            assert!(ops.contains(name.as_str()), "kernels folder `{name}` is not in OPS");
        }
    }
}

#[test]
fn every_op_has_scalar_and_simd_variants_with_distinct_names() {
    let registry = Registry::builtin();
    for op in OPS {
        let kinds: Vec<Kind> = registry.of(op.name()).map(|v| v.kind).collect();
        assert!(kinds.contains(&Kind::Scalar), "{} has no scalar variant", op.name());
        assert!(kinds.contains(&Kind::Simd), "{} has no simd variant", op.name());
        let names: BTreeSet<&str> = registry.of(op.name()).map(|v| v.name).collect();
        assert_eq!(names.len(), kinds.len(), "{} has two variants with one name", op.name());
    }
    // An elementwise op has nothing to block for; the others do.
    for op in OPS.iter().filter(|op| op.blocks()) {
        assert!(
            registry.of(op.name()).any(|v| v.kind == Kind::Blocked),
            "{} has no blocked variant",
            op.name()
        );
    }
}

#[test]
fn the_fastest_variant_of_every_op_is_registered() {
    let registry = Registry::builtin();
    for op in OPS {
        assert!(
            registry.find(op.name(), op.fastest()).is_some(),
            "{} names `{}` its fastest, which is not registered",
            op.name(),
            op.fastest()
        );
    }
}

#[test]
fn sweep_and_bench_shapes_survive_their_text_form() {
    for op in OPS {
        for shape in op.sweep().iter().chain(&op.bench_shapes(false)) {
            assert_eq!(op.parse_shape(shape).as_ref(), Ok(shape), "{}", op.name());
        }
    }
}

#[test]
fn a_duplicate_variant_name_is_refused() {
    use tkbench_harness::ops::Op;
    use tkbench_harness::ops::Softmax;
    let mut registry = Registry::builtin();
    let err = registry.add::<Softmax>(Softmax::variants().remove(0)).unwrap_err();
    assert!(err.contains("softmax already has a variant named `scalar`"), "{err}");
}

#[test]
fn every_declared_tile_names_a_dimension_its_op_can_straddle() {
    let registry = Registry::builtin();
    let mut declared = 0;
    for entry in registry.entries() {
        let op = OPS.iter().find(|op| op.name() == entry.op).unwrap();
        for tile in entry.tiles {
            declared += 1;
            let mut alone = entry.clone();
            alone.tiles = Box::leak(Box::new([*tile]));
            for isa in entry.isa.levels() {
                let shapes = op.tile_sweep(&alone, isa);
                assert!(
                    !shapes.is_empty(),
                    "{}={} declares a tile along `{}`, which {} cannot straddle",
                    entry.op,
                    entry.name,
                    tile.dim,
                    entry.op
                );
                for shape in &shapes {
                    op.parse_shape(shape)
                        .unwrap_or_else(|e| panic!("{}: {shape}: {e}", entry.op));
                }
            }
        }
    }
    assert!(declared >= 10, "only {declared} tiles declared");
}
