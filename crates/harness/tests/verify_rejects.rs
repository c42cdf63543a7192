//! The model-level gate rejects a softmax whose probabilities are wrong although every logit and
//! hidden state is right: the next-token distributions are held to a bound of their own, against
//! the exact softmax of the logits the kernel was given.

use tkbench_harness::check::golden::{Case, workspace_golden_dir};
use tkbench_harness::check::verify::{Subject, verify_case};
use tkbench_harness::ops::Softmax;
use tkbench_harness::registry::{KernelSet, Registry};
use tkbench_kernels::softmax::{SoftmaxDims, SoftmaxFn};
use tkbench_kernels::{Isa, IsaSupport, Kind, Variant};

/// A softmax that leaves the last column of each row out of the sum it divides by: every row then
/// sums to a little more than 1, which no logit and no hidden state shows.
fn softmax_short_sum(d: &SoftmaxDims, x: &[f32], out: &mut [f32], _: Isa) {
    for (x, out) in x.chunks_exact(d.cols).zip(out.chunks_exact_mut(d.cols)) {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for (o, &v) in out.iter_mut().zip(x) {
            *o = (v - max).exp();
        }
        let sum: f32 = out[..d.cols - 1].iter().sum();
        out.iter_mut().for_each(|o| *o /= sum);
    }
}

#[test]
fn a_softmax_with_a_short_sum_fails_the_model_level_on_its_probabilities_alone() {
    let variant = Variant {
        name: "short-sum",
        kind: Kind::Scalar,
        isa: IsaSupport::Plain,
        file: "",
        tiles: &[],
        kernel: (softmax_short_sum as SoftmaxFn).into(),
    };
    let registry = Registry::builtin().with::<Softmax>(variant);
    let entry = registry.entries().find(|e| e.name == "short-sum").unwrap();
    let set = KernelSet::fastest(&registry).with(entry);
    let case = Case::load(&workspace_golden_dir().join("cases/tiny")).unwrap();
    let checkpoint = case.any_checkpoint().unwrap();
    let subjects = [Subject::Kernels(set, Isa::Scalar)];
    let rows = verify_case(&case, &checkpoint, &subjects, 1, |_| {}).unwrap();
    let row = &rows[0];
    assert!(
        !row.pass,
        "the model level accepted a softmax whose rows sum past 1: {row:?}"
    );
    assert!(
        row.metrics.max_rel <= row.bound && row.hidden_max_rel.iter().all(|&e| e <= row.bound),
        "only the probabilities are wrong, so only their check may fail: {row:?}"
    );
    let diagnosis = row.diagnosis.as_deref().unwrap();
    assert!(
        diagnosis.contains("probabilities out of budget")
            && diagnosis.contains("softmax variant `short-sum` is at fault"),
        "{diagnosis}"
    );
    assert!(
        row.replay.contains("--case tiny --kernels fastest,softmax=short-sum"),
        "{}",
        row.replay
    );
}
