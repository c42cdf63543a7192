//! The gate rejects the classic bugs of the Llama family's ops: each wrong variant is registered only
//! in this test, run through the gate `cargo xtask verify` runs, and must fail with the op and a
//! replay command, while the op's registered variants pass the same selection.

use tkbench_harness::check::gate::{Selection, run_gate};
use tkbench_harness::ops::{Attention, Op, RmsNorm, Rope, Swiglu};
use tkbench_harness::registry::Registry;
use tkbench_kernels::attention::AttentionDims;
use tkbench_kernels::rmsnorm::RmsNormDims;
use tkbench_kernels::rope::RopeDims;
use tkbench_kernels::swiglu::SwigluDims;
use tkbench_kernels::{Isa, IsaSupport, Kind, Variant};

/// `kernel` as a plain variant of `O` named `name`, from outside the registry.
fn wrong<O: Op>(name: &'static str, kernel: impl Into<O::Kernel>) -> Variant<O::Kernel> {
    Variant {
        name,
        kind: Kind::Scalar,
        isa: IsaSupport::Plain,
        file: "",
        tiles: &[],
        kernel: kernel.into(),
    }
}

/// Asserts that the gate fails the one variant, each failure with its replay command.
fn rejected<O: Op>(variant: Variant<O::Kernel>) {
    let name = variant.name;
    let selection = Selection {
        op: Some(O::NAME),
        variant: Some(name.to_owned()),
        ..Selection::default()
    };
    let gate = run_gate(&Registry::builtin().with::<O>(variant), &selection, |_| {}).unwrap();
    assert!(!gate.pass(), "the gate accepted the wrong {} variant `{name}`", O::NAME);
    for failure in &gate.failures {
        assert!(
            failure.contains(&format!(
                "replay: cargo xtask opcheck --op {} --variant {name}",
                O::NAME
            )),
            "{failure}"
        );
    }
}

/// RMSNorm that subtracts the row's mean first: LayerNorm without its shift.
fn rmsnorm_mean_subtracted(d: &RmsNormDims, x: &[f32], gamma: &[f32], out: &mut [f32], _: Isa) {
    let c = d.channels;
    for (x, out) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
        let mean = x.iter().sum::<f32>() / c as f32;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / c as f32;
        let rstd = 1.0 / (var + d.eps).sqrt();
        for ((o, &v), &g) in out.iter_mut().zip(x).zip(gamma) {
            *o = (v - mean) * rstd * g;
        }
    }
}

/// The rotary embedding with GPT-NeoX's other convention, interleaved pairs (2i, 2i + 1), where
/// Hugging Face's Llama pairs i with i + HS/2.
fn rope_interleaved(d: &RopeDims, x: &[f32], cos: &[f32], sin: &[f32], out: &mut [f32], _: Isa) {
    let (w, hs) = (d.width(), d.head_size);
    let half = hs / 2;
    for (t, (row, out_row)) in x.chunks_exact(w).zip(out.chunks_exact_mut(w)).enumerate() {
        let p = d.pos0 + t;
        for (head, out_head) in row.chunks_exact(hs).zip(out_row.chunks_exact_mut(hs)) {
            for i in 0..half {
                let (c, s) = (cos[p * half + i], sin[p * half + i]);
                let (a, b) = (head[2 * i], head[2 * i + 1]);
                out_head[2 * i] = a * c - b * s;
                out_head[2 * i + 1] = b * c + a * s;
            }
        }
    }
}

/// The rotary embedding one position off: the table row of the previous position.
fn rope_position_off_by_one(d: &RopeDims, x: &[f32], cos: &[f32], sin: &[f32], out: &mut [f32], isa: Isa) {
    let shifted = RopeDims {
        pos0: d.pos0.saturating_sub(1),
        ..*d
    };
    tkbench_kernels::rope::scalar::rope(&shifted, x, cos, sin, out, isa)
}

/// SwiGLU with the gate and up halves swapped: silu(up) · gate.
fn swiglu_swapped(d: &SwigluDims, x: &[f32], out: &mut [f32], _: Isa) {
    let i = d.width;
    for (row, out_row) in x.chunks_exact(2 * i).zip(out.chunks_exact_mut(i)) {
        let (gate, up) = row.split_at(i);
        for ((o, &g), &u) in out_row.iter_mut().zip(gate).zip(up) {
            *o = u / (1.0 + (-u).exp()) * g;
        }
    }
}

/// Grouped-query attention that maps query head h to key/value head h mod NKV (the heads of a group
/// interleaved), where Hugging Face's `repeat_kv` gives h / (NH / NKV).
fn attention_groups_interleaved(d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], _: Isa) {
    let (hs, ld, kv_ld) = (d.head_size, d.stride, d.kv_stride);
    for h in 0..d.heads {
        let (col, kv_col) = (h * hs, (h % d.kv_heads) * hs);
        for i in 0..d.queries {
            let visible = d.pos0 + i + 1;
            let scores: Vec<f32> = (0..visible)
                .map(|j| {
                    (0..hs)
                        .map(|c| q[i * ld + col + c] * k[d.key_index(j, kv_col + c)])
                        .sum::<f32>()
                        * d.scale
                })
                .collect();
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let p: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f32 = p.iter().sum();
            for c in 0..hs {
                let acc: f32 = p.iter().enumerate().map(|(j, &p)| p * v[j * kv_ld + kv_col + c]).sum();
                out[i * ld + col + c] = acc / sum;
            }
        }
    }
}

#[test]
fn grouped_attention_with_interleaved_groups_is_rejected() {
    rejected::<Attention>(wrong::<Attention>("groups-interleaved", attention_groups_interleaved));
}

#[test]
fn an_rmsnorm_that_subtracts_the_mean_is_rejected() {
    rejected::<RmsNorm>(wrong::<RmsNorm>("mean-subtracted", rmsnorm_mean_subtracted));
}

#[test]
fn a_rope_with_interleaved_pairs_is_rejected() {
    rejected::<Rope>(wrong::<Rope>("interleaved", rope_interleaved));
}

#[test]
fn a_rope_one_position_off_is_rejected() {
    rejected::<Rope>(wrong::<Rope>("position-off-by-one", rope_position_off_by_one));
}

#[test]
fn a_swiglu_with_gate_and_up_swapped_is_rejected() {
    rejected::<Swiglu>(wrong::<Swiglu>("swapped", swiglu_swapped));
}

#[test]
fn the_registered_variants_pass_the_same_selection() {
    for op in [RmsNorm::NAME, Rope::NAME, Swiglu::NAME, Attention::NAME] {
        let selection = Selection {
            op: Some(op),
            ..Selection::default()
        };
        let gate = run_gate(&Registry::builtin(), &selection, |_| {}).unwrap();
        assert!(gate.pass(), "{op}: {:#?}", gate.failures);
    }
}
