//! One deliberately wrong variant for each class of bug the gate is built to reach through its shapes
//! and levels (the classes of `gate_rejects.rs`, `profile_rejects.rs`, `special_values.rs` and
//! `verify_rejects.rs` aside): keys in blocks, bits that depend on the keys' layout, a decode step at
//! a key-tile edge, a chunked prefill after a cache, a cache-block edge of depth, and a bug at one
//! ISA level only. Each is registered
//! only here, run through the gate `cargo xtask verify` runs, and must fail naming its op and case
//! with a replay command; those whose bug sits at a declared tile are first shown to pass without it.

use tkbench_harness::check::gate::{Gate, Selection, run_gate};
use tkbench_harness::ops::{Attention, Matmul, Op, Softmax};
use tkbench_harness::registry::Registry;
use tkbench_kernels::attention::{AttentionDims, KEY_BLOCK, KeyLayout};
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Isa, IsaSupport, Kind, Tile, Variant};

/// `kernel` as a variant of `O` named `name` at `isa`, declaring `tiles`.
fn variant<O: Op>(
    name: &'static str,
    isa: IsaSupport,
    tiles: &'static [Tile],
    kernel: impl Into<O::Kernel>,
) -> Variant<O::Kernel> {
    Variant {
        name,
        kind: Kind::Scalar,
        isa,
        file: "",
        tiles,
        kernel: kernel.into(),
    }
}

/// The gate on `variant` alone, added to the built-in registry.
fn gate<O: Op>(variant: Variant<O::Kernel>) -> Gate {
    let name = variant.name;
    let registry = Registry::builtin().with::<O>(variant);
    let selection = Selection {
        op: Some(O::NAME),
        variant: Some(name.to_owned()),
        ..Selection::default()
    };
    run_gate(&registry, &selection, |_| {}).expect("a valid selection")
}

/// Asserts that the gate rejects `variant`, that every failure replays its case, and that some
/// failure's shape holds `shape_part`; returns the failures.
fn rejected<O: Op>(variant: Variant<O::Kernel>, shape_part: &str) -> Vec<String> {
    let name = variant.name;
    let gate = gate::<O>(variant);
    assert!(!gate.pass(), "the gate accepted the wrong {} variant `{name}`", O::NAME);
    for failure in &gate.failures {
        let replay = format!("replay: cargo xtask opcheck --op {} --variant {name}", O::NAME);
        assert!(failure.contains(&replay), "{failure}");
    }
    assert!(
        gate.failures.iter().any(|f| f.contains(shape_part)),
        "no failure on a shape with `{shape_part}`: {:#?}",
        gate.failures
    );
    gate.failures
}

/// An attention that reads the last key of a short last block of keys from the slot before it:
/// right with keys in rows and whenever the keys fill their blocks.
fn attention_last_block_misread(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], isa: Isa) {
    let keys = d.keys();
    if d.key_layout == KeyLayout::Blocks && keys > 1 && !keys.is_multiple_of(KEY_BLOCK) {
        let mut misread = k.to_vec();
        for c in 0..d.kv_channels() {
            misread[d.key_index(keys - 1, c)] = k[d.key_index(keys - 2, c)];
        }
        tkbench_kernels::attention::scalar::attention(d, q, &misread, v, out, isa);
    } else {
        tkbench_kernels::attention::scalar::attention(d, q, k, v, out, isa);
    }
}

#[test]
fn a_bug_in_keys_held_in_blocks_is_rejected() {
    let failures = rejected::<Attention>(
        variant::<Attention>(
            "last-block-misread",
            IsaSupport::Plain,
            &[],
            attention_last_block_misread,
        ),
        "key_blocks=1",
    );
    assert!(
        failures.iter().all(|f| f.contains("key_blocks=1")),
        "a failure with keys in rows: {failures:#?}"
    );
}

/// An attention whose outputs with keys in blocks are an ulp off those with keys in rows: within
/// every bound, but the model, whose cache holds keys in blocks, would no longer match the checks.
fn attention_layout_ulp(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], isa: Isa) {
    tkbench_kernels::attention::scalar::attention(d, q, k, v, out, isa);
    if d.key_layout == KeyLayout::Blocks {
        for o in out.iter_mut() {
            *o = f32::from_bits(o.to_bits() ^ 1);
        }
    }
}

#[test]
fn bits_that_depend_on_the_key_layout_are_rejected_by_the_split_check() {
    let failures = rejected::<Attention>(
        variant::<Attention>("layout-ulp", IsaSupport::Plain, &[], attention_layout_ulp),
        "key_blocks",
    );
    assert!(
        failures
            .iter()
            .all(|f| f.starts_with("FAIL: split:") && f.contains("in the other layout")),
        "{failures:#?}"
    );
}

/// The key tile of the decode bug below.
const DECODE_TILE: usize = 48;

/// A decode step (one query) that ignores its last key when the keys fill whole tiles.
fn attention_decode_drops_last_key(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], isa: Isa) {
    let short = AttentionDims {
        pos0: d.pos0.saturating_sub(1),
        ..*d
    };
    let tiled = d.queries == 1 && d.pos0 > 0 && d.keys().is_multiple_of(DECODE_TILE);
    tkbench_kernels::attention::scalar::attention(if tiled { &short } else { d }, q, k, v, out, isa);
}

#[test]
fn a_decode_bug_at_a_key_tile_edge_is_met_by_the_shapes_the_tile_gives() {
    static TILES: &[Tile] = &[Tile::elements("keys", DECODE_TILE)];
    let kernel = attention_decode_drops_last_key;
    let untiled = gate::<Attention>(variant::<Attention>("decode-tile", IsaSupport::Plain, &[], kernel));
    assert!(
        untiled.pass(),
        "the op's own sweep has no decode step after 47 or 95 keys: {:#?}",
        untiled.failures
    );
    rejected::<Attention>(
        variant::<Attention>("decode-tile", IsaSupport::Plain, TILES, kernel),
        "queries=1,pos0=47",
    );
}

/// A prefill that forgets the cache when it comes in chunks: queries after pos0 > 0 see only the
/// keys of their own chunk (keys in rows; in blocks it is right).
fn attention_chunk_forgets_cache(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], isa: Isa) {
    if d.queries > 1 && d.pos0 > 0 && d.key_layout == KeyLayout::Rows {
        let fresh = AttentionDims { pos0: 0, ..*d };
        let skip = d.pos0 * d.stride;
        tkbench_kernels::attention::scalar::attention(&fresh, q, &k[skip..], &v[skip..], out, isa);
    } else {
        tkbench_kernels::attention::scalar::attention(d, q, k, v, out, isa);
    }
}

#[test]
fn a_chunked_prefill_that_forgets_the_cache_is_rejected() {
    rejected::<Attention>(
        variant::<Attention>("chunk-forgets", IsaSupport::Plain, &[], attention_chunk_forgets_cache),
        "queries=33,pos0=31",
    );
}

/// The depth block of the matmul bug below.
const DEPTH_BLOCK: usize = 96;

/// A matmul that drops the last term of every dot product when the depth is one past a whole number
/// of blocks (more than one).
fn matmul_drops_depth_tail(d: &MatmulDims, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32], isa: Isa) {
    tkbench_kernels::matmul::scalar::matmul(d, a, b, bias, c, isa);
    if d.k > DEPTH_BLOCK && d.k % DEPTH_BLOCK == 1 {
        let last = d.k - 1;
        for i in 0..d.m {
            for j in 0..d.n {
                c[i * d.n + j] -= a[i * d.k + last] * b[last * d.ldb + j];
            }
        }
    }
}

#[test]
fn a_bug_at_a_depth_block_edge_is_met_by_the_shapes_the_block_gives() {
    static TILES: &[Tile] = &[Tile::elements("k", DEPTH_BLOCK)];
    let kernel = matmul_drops_depth_tail;
    let untiled = gate::<Matmul>(variant::<Matmul>("depth-tail", IsaSupport::Plain, &[], kernel));
    assert!(
        untiled.pass(),
        "the op's own sweep has no depth of 97 or 193: {:#?}",
        untiled.failures
    );
    rejected::<Matmul>(
        variant::<Matmul>("depth-tail", IsaSupport::Plain, TILES, kernel),
        "k=193",
    );
}

/// The best level this CPU has: the one-level bug below sits there.
fn best_level() -> Isa {
    *Isa::available().last().expect("scalar is always available")
}

/// A softmax that is right at every level but the best one this CPU has, where its last column is
/// off by a part in a thousand (a wrong constant in one level's tail code).
fn softmax_wrong_at_one_level(d: &SoftmaxDims, x: &[f32], out: &mut [f32], isa: Isa) {
    tkbench_kernels::softmax::simd::softmax(d, x, out, isa);
    if isa == best_level() && d.cols > 0 {
        for row in out.chunks_exact_mut(d.cols) {
            row[d.cols - 1] *= 1.001;
        }
    }
}

#[test]
fn a_bug_at_one_isa_level_is_rejected_at_that_level_only() {
    let best = best_level();
    let failures = rejected::<Softmax>(
        variant::<Softmax>("one-level", IsaSupport::Dispatch, &[], softmax_wrong_at_one_level),
        "cols=",
    );
    for failure in &failures {
        assert!(
            failure.contains(&format!("--isa {best}")),
            "a failure at another level than {best}: {failure}"
        );
    }
}
