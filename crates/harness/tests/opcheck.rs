//! Op-level verification: every registered variant, at every ISA level this CPU has, against the
//! float64 reference op on the edge-case shapes, with the output poisoned; and proof that the checker
//! rejects deliberately wrong kernels.

use tkbench_harness::check::opcheck::{self, check, check_sweep};
use tkbench_harness::model::threads::{By, Split, attention_blocks, call_whole};
use tkbench_harness::ops::attention::{AttentionInputs, gpt2_scale, keys_as};
use tkbench_harness::ops::gelu::GeluShape;
use tkbench_harness::ops::layernorm::EPS;
use tkbench_harness::ops::matmul::MatmulShape;
use tkbench_harness::ops::{
    Attention, AttentionKernel, Draw, Gelu, LayerNorm, Matmul, OPS, Op, Softmax, output_len, shape_text,
};
use tkbench_harness::registry::Registry;
use tkbench_kernels::attention::{AttentionDims, KeyLayout};
use tkbench_kernels::layernorm::LayerNormDims;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::{Isa, Variant};

/// The seed of the sweep; each shape gets its own stream derived from it.
const SWEEP_SEED: u64 = 0x5EED;

/// What a block's (or a strided call's) output holds before the call: a NaN of other bits than the
/// whole call's poison (`f32::NAN`), so that an element neither call writes still differs.
const BLOCK_POISON: f32 = f32::from_bits(f32::NAN.to_bits() ^ 1);

/// The first element whose bits differ between `got` and `want`.
fn first_difference(got: &[f32], want: &[f32]) -> Option<usize> {
    assert_eq!(got.len(), want.len(), "compared outputs differ in length");
    got.iter().zip(want).position(|(a, b)| a.to_bits() != b.to_bits())
}

/// For every variant of `O` at every level: the whole call against each block of each of `splits`
/// alone ([`opcheck::blocks_against_whole`]).
fn blocks_against_whole<O: Op>(shape: &O::Shape, seed: u64, splits: &[Split]) -> Vec<String> {
    let mut failures = Vec::new();
    for variant in &O::variants() {
        for isa in variant.levels() {
            failures.extend(opcheck::blocks_against_whole::<O>(variant, isa, shape, seed, splits));
        }
    }
    failures
}

/// Fails listing every difference found, with the command that replays `test`.
fn assert_no_differences(failures: &[String], what: &str, test: &str) {
    assert!(
        failures.is_empty(),
        "{} {what} differ (replay: cargo test -p tkbench-harness --test opcheck {test}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every registered variant of every op, at every level this CPU has, on its op's sweep.
#[test]
fn every_variant_passes_its_sweep() {
    let registry = Registry::builtin();
    let mut failures = Vec::new();
    for op in OPS {
        let mut runs = 0;
        for variant in registry.of(op.name()) {
            for isa in variant.isa.levels() {
                for result in check_sweep(*op, variant, isa, SWEEP_SEED, 1.0) {
                    runs += 1;
                    if !result.pass {
                        failures.push(result.to_string());
                    }
                }
            }
        }
        assert!(runs > 0, "no check of {} ran", op.name());
    }
    assert!(
        failures.is_empty(),
        "{} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every variant of `O` at every level on `shapes` with inputs of magnitude 10 and 1e4.
fn large_magnitude_failures<O: Op>(shapes: &[O::Shape]) -> Vec<String> {
    let mut failures = Vec::new();
    for shape in shapes {
        for variant in &O::variants() {
            for isa in variant.levels() {
                for magnitude in [10.0, 1e4] {
                    let result = check::<O>(variant, isa, shape, 7, magnitude);
                    if !result.pass {
                        failures.push(result.to_string());
                    }
                }
            }
        }
    }
    failures
}

#[test]
fn large_magnitudes_stay_stable() {
    // Softmax rows up to ±1e4 overflow exp without the max subtraction; GELU tails saturate.
    let mut failures = Vec::new();
    failures.extend(large_magnitude_failures::<Softmax>(&[
        SoftmaxDims { rows: 3, cols: 65 },
        SoftmaxDims { rows: 1, cols: 1000 },
    ]));
    failures.extend(large_magnitude_failures::<Gelu>(&[GeluShape { n: 129 }]));
    failures.extend(large_magnitude_failures::<LayerNorm>(&[LayerNormDims {
        rows: 3,
        channels: 65,
        eps: EPS,
    }]));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_level_this_cpu_has_is_checked() {
    // Refuse to skip silently an ISA level the machine has: what /proc/cpuinfo reports must be
    // available to the checker.
    let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
        return; // not Linux: nothing to compare with
    };
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags") || l.starts_with("Features"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let has = |f: &str| flags.contains(&f);
    if has("avx2") && has("fma") {
        assert!(
            Isa::Avx2.is_available(),
            "the CPU has AVX2+FMA but the avx2 level is not available"
        );
    }
    if ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
        .iter()
        .all(|f| has(f))
    {
        assert!(
            Isa::Avx512.is_available(),
            "the CPU has AVX-512 but the avx512 level is not available"
        );
    }
    if has("asimd") {
        assert!(
            Isa::Neon.is_available(),
            "the CPU has NEON but the neon level is not available"
        );
    }
}

/// Threads split an op's rows into blocks, and the kernel-driven model promises the same bits for
/// every split: so each variant, at each level, must give a row the same bits whether it is computed
/// with its neighbours, alone, or in the blocks of 2 to 5 threads (a blocked variant may take another
/// path for one row). The shapes are each op's `split_shapes`.
#[test]
fn rows_alone_and_together_are_bit_identical() {
    let registry = Registry::builtin();
    let mut failures = Vec::new();
    for op in OPS {
        let shapes = op.split_shapes();
        assert!(!shapes.is_empty(), "{} has no split shapes", op.name());
        for variant in registry.of(op.name()) {
            for isa in variant.isa.levels() {
                for (i, shape) in shapes.iter().enumerate() {
                    failures.extend(op.rows_alone(variant, isa, shape, SWEEP_SEED + i as u64).unwrap());
                }
            }
        }
    }
    assert_no_differences(&failures, "rows", "rows_alone_and_together");
}

/// Threads split a one-query attention (a decode step) by heads: each variant, at each level, must
/// give every head's outputs the same bits whether the call takes all heads or a block of them, with
/// rows then C floats apart.
#[test]
fn heads_alone_and_together_are_bit_identical() {
    let mut failures = Vec::new();
    for (i, (pos0, heads, head_size)) in [(70, 12, 64), (5, 5, 16), (130, 3, 24), (64, 7, 15)]
        .into_iter()
        .enumerate()
    {
        let shape = AttentionDims::new(1, pos0, heads, head_size, gpt2_scale(head_size));
        // The model's splits, and every head alone.
        let mut splits: Vec<Split> = [2, 3].map(|threads| Attention::split(&shape, threads)).into();
        for split in &splits {
            assert_eq!(
                (split.by, split.width),
                (By::Heads, head_size),
                "the model splits a one-query attention by heads"
            );
        }
        splits.push(Split {
            blocks: (0..heads).map(|h| h..h + 1).collect(),
            by: By::Heads,
            width: head_size,
        });
        failures.extend(blocks_against_whole::<Attention>(
            &shape,
            SWEEP_SEED + i as u64,
            &splits,
        ));
    }
    assert_no_differences(&failures, "blocks", "heads_alone_and_together");
}

/// One variant at one level and its whole call's output: the variant, its kernel, the level, the output.
type WholeCall = (Variant<AttentionKernel>, AttentionKernel, Isa, Vec<f32>);

/// The i-th case of an attention test on (queries, pos0, heads, head_size): the shape, its seed and
/// its inputs; then, for every variant at every level, the variant, its kernel, the level and the
/// whole call's output (keys in rows, poisoned before the call).
fn attention_case(
    i: usize,
    (queries, pos0, heads, head_size): (usize, usize, usize, usize),
) -> (AttentionDims, u64, AttentionInputs, Vec<WholeCall>) {
    let shape = AttentionDims::new(queries, pos0, heads, head_size, gpt2_scale(head_size));
    let seed = SWEEP_SEED + i as u64;
    let x = Attention::draw(&shape, &Draw::new(seed, 1.0));
    let mut runs = Vec::new();
    for variant in Attention::variants() {
        let f = variant.kernel.clone();
        for isa in variant.levels() {
            let mut whole = vec![f32::NAN; output_len::<Attention>(&shape)];
            call_whole::<Attention>(&f, isa, &shape, Attention::args(&shape, &x), &mut whole);
            runs.push((variant.clone(), f.clone(), isa, whole));
        }
    }
    (shape, seed, x, runs)
}

/// Some heads of an attention with several queries, rows C apart (the strided contract of
/// `AttentionDims::heads`): every variant, at every level, gives those heads' outputs the bits of the
/// whole call and writes nothing else.
#[test]
fn some_heads_of_several_queries_are_bit_identical_to_the_whole_call() {
    let mut failures = Vec::new();
    for (i, case) in [(5, 70, 5, 16), (9, 0, 4, 24), (3, 130, 3, 64)].into_iter().enumerate() {
        let (queries, _, heads, _) = case;
        let (whole, seed, inputs, runs) = attention_case(i, case);
        let x = Attention::args(&whole, &inputs);
        let shape = shape_text::<Attention>(&whole);
        let c = whole.channels();
        let (part, col, _) = whole.heads(1..heads - 1);
        let unwritten = -7.25f32;
        for (variant, f, isa, together) in runs {
            let mut alone = vec![unwritten; queries * c];
            f(&part, &x.q[col..], &x.k[col..], &x.v[col..], &mut alone[col..], isa);
            for (e, (&got, &want)) in alone.iter().zip(&together).enumerate() {
                let inside = (col..col + part.channels()).contains(&(e % c));
                let expected = if inside { want } else { unwritten };
                if got.to_bits() != expected.to_bits() {
                    failures.push(format!(
                        "attention {} at {}: shape {shape}, seed {seed}, heads 1..{}: element {e} got {got}, expected {expected}",
                        variant.name,
                        isa.name(),
                        heads - 1
                    ));
                    break;
                }
            }
        }
    }
    assert_no_differences(&failures, "calls", "some_heads_of_several_queries");
}

/// Keys in blocks (a KV cache's layout) are the same keys: every variant, at every level, gives the
/// bits it gives with keys in rows, for the whole call, for blocks of queries as threads split a
/// prefill, and for blocks of heads (as threads split a decode step, and of several queries too,
/// rows C apart); the slots of the last block past the keys hold NaN, which must reach no output.
/// Blocks at NEON (four lanes) run only on an ARM host.
#[test]
fn keys_in_blocks_give_the_bits_of_keys_in_rows() {
    let mut failures = Vec::new();
    // One query against 1, 15, 16, 17, 63, 65 and 513 keys (blocks short, whole and one over; key
    // tiles short and one over), heads of 1 to 64 channels, and prefills across block edges.
    let shapes = [
        (1, 0, 1, 1),
        (1, 14, 2, 16),
        (1, 15, 3, 64),
        (1, 16, 5, 32),
        (1, 62, 4, 17),
        (1, 64, 12, 8),
        (1, 512, 12, 64),
        (5, 70, 5, 16),
        (9, 0, 4, 24),
        (3, 130, 3, 64),
        (17, 47, 1, 7),
        (65, 0, 2, 64),
    ];
    for (i, case) in shapes.into_iter().enumerate() {
        let (queries, pos0, heads, _) = case;
        let (rows, seed, inputs, runs) = attention_case(i, case);
        let x = Attention::args(&rows, &inputs);
        let shape = shape_text::<Attention>(&rows);
        let blocks = rows.with_key_layout(KeyLayout::Blocks);
        let c = blocks.channels();
        let k = keys_as(&blocks, x.k);
        let (v, q) = (x.v, x.q);
        for (variant, f, isa, want) in runs {
            let mut calls = vec![("whole".to_string(), blocks, 0..queries, 0)];
            for part in attention_blocks(queries, pos0, 3) {
                calls.push((format!("queries {part:?}"), blocks.rows(part.clone()), part, 0));
            }
            if heads > 1 {
                for part in [0..heads / 2, heads / 2..heads] {
                    let (dims, col, _) = blocks.heads(part.clone());
                    calls.push((format!("heads {part:?}"), dims, 0..queries, col));
                }
            }
            for (what, dims, part, col) in calls {
                let mut got = vec![BLOCK_POISON; queries * c];
                let out = &mut got[part.start * c + col..part.end * c];
                let keys = &k[dims.key_index(0, col)..][..dims.key_floats()];
                f(
                    &dims,
                    &q[part.start * c + col..part.end * c],
                    keys,
                    &v[col..dims.keys() * c],
                    out,
                    isa,
                );
                let written = |e: usize| (part.contains(&(e / c))) && (col..col + dims.channels()).contains(&(e % c));
                let bad = (0..got.len()).find(|&e| {
                    let expected = if written(e) { want[e] } else { BLOCK_POISON };
                    got[e].to_bits() != expected.to_bits()
                });
                if let Some(e) = bad {
                    failures.push(format!(
                        "attention {} at {}: shape {shape}, seed {seed}, keys in blocks, {what}: element {e} got {}, keys in rows {}",
                        variant.name,
                        isa.name(),
                        got[e],
                        want[e]
                    ));
                }
            }
        }
    }
    assert_no_differences(&failures, "calls", "keys_in_blocks_give_the_bits_of_keys_in_rows");
}

/// Threads split a one-row matmul (a decode step) by columns: each variant, at each level, must give
/// every element the same bits whether its block of columns starts at 0 or elsewhere, with b's rows
/// then N floats apart.
#[test]
fn columns_alone_and_together_are_bit_identical() {
    let mut failures = Vec::new();
    for (i, (k, n)) in [(7, 130), (200, 257), (400, 1000), (33, 64), (1, 130), (0, 130)]
        .into_iter()
        .enumerate()
    {
        let shape = MatmulShape::new(1, k, n, i % 2 == 0);
        // The model's splits (aligned to whole vectors), and one at odd columns, which asks each
        // element's rounding not to depend on its lane either.
        let mut splits: Vec<Split> = [2, 3, 5].map(|threads| Matmul::split(&shape, threads)).into();
        for split in &splits {
            assert_eq!(
                (split.by, split.width),
                (By::Columns, 1),
                "the model splits a one-row matmul by columns"
            );
        }
        splits.push(Split {
            blocks: vec![0..37, 37..n - 3, n - 3..n],
            by: By::Columns,
            width: 1,
        });
        for split in &splits {
            assert_eq!(
                split.blocks.iter().map(|b| b.len()).sum::<usize>(),
                n,
                "blocks cover {n} columns"
            );
        }
        failures.extend(blocks_against_whole::<Matmul>(&shape, SWEEP_SEED + i as u64, &splits));
    }
    assert_no_differences(&failures, "blocks", "columns_alone_and_together");
}

/// Rows of b `ldb` floats apart (ldb > N) give every variant, at every level, the bits it gives for
/// the same b stored whole: the packed and streamed paths of the blocked variant, the strided view of
/// the library one, for one row and for several.
#[test]
fn strided_b_gives_the_bits_of_a_whole_b() {
    let mut failures = Vec::new();
    let mut i = 0;
    for m in [1, 2, 3, 5, 13] {
        for (k, n) in [(0, 40), (1, 40), (9, 1), (9, 40), (200, 33)] {
            let matmul = MatmulShape::new(m, k, n, true);
            let shape = shape_text::<Matmul>(&matmul);
            let seed = SWEEP_SEED + i;
            i += 1;
            let inputs = Matmul::draw(&matmul, &Draw::new(seed, 1.0));
            let x = Matmul::args(&matmul, &inputs);
            let bias = x.bias.expect("the shape has a bias");
            let ldb = n + 7;
            let mut padded = vec![f32::NAN; k * ldb];
            for (row, whole) in padded.chunks_exact_mut(ldb).zip(x.b.chunks_exact(n)) {
                row[..n].copy_from_slice(whole);
            }
            for variant in Matmul::variants() {
                let f = &variant.kernel;
                for isa in variant.levels() {
                    let mut whole = vec![f32::NAN; m * n];
                    f(&MatmulDims::new(m, k, n), x.a, x.b, Some(bias), &mut whole, isa);
                    let mut strided = vec![BLOCK_POISON; m * n];
                    let dims = MatmulDims { m, k, n, ldb };
                    f(&dims, x.a, &padded, Some(bias), &mut strided, isa);
                    if let Some(e) = first_difference(&strided, &whole) {
                        failures.push(format!(
                            "matmul {} at {}: shape {shape} with ldb {ldb}, seed {seed}: element {e} strided {} whole {}",
                            variant.name,
                            isa.name(),
                            strided[e],
                            whole[e]
                        ));
                    }
                }
            }
        }
    }
    assert_no_differences(&failures, "calls", "strided_b");
}
