//! The gate's input profiles reject bugs that zero-mean uniform inputs let through: each wrong
//! variant here passes the op level on uniform inputs alone and fails it on one profile, with a
//! replay command that names that profile. The profiles manifest refuses what it cannot mean.

use tkbench_harness::check::gate::{Selection, run_gate};
use tkbench_harness::check::profiles::Profiles;
use tkbench_harness::ops::{LayerNorm, Matmul, Op, Profile, Softmax};
use tkbench_harness::registry::Registry;
use tkbench_kernels::layernorm::LayerNormDims;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::softmax::SoftmaxDims;
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

/// Runs the op level on the variant alone, on uniform inputs only or on every profile of
/// checks/profiles.yaml, and returns its failures.
fn failures<O: Op>(variant: Variant<O::Kernel>, profile: Option<Profile>) -> Vec<String> {
    let name = variant.name;
    let selection = Selection {
        op: Some(O::NAME),
        variant: Some(name.to_owned()),
        profiles: Profiles::load(&tkbench_harness::check::profiles::default_path()).unwrap(),
        profile,
        ..Selection::default()
    };
    run_gate(&Registry::builtin().with::<O>(variant), &selection, |_| {})
        .unwrap()
        .failures
}

/// Asserts that the variant passes on uniform inputs and fails on `profile`, replayably.
fn caught_only_by<O: Op>(variant: Variant<O::Kernel>, profile: Profile) {
    let name = variant.name;
    let uniform = failures::<O>(variant.clone(), Some(Profile::Uniform));
    assert!(
        uniform.is_empty(),
        "{name} was meant to pass on uniform inputs: {uniform:#?}"
    );
    let all = failures::<O>(variant, None);
    assert!(
        all.iter().any(|f| f.contains(&format!("profile {profile}:"))
            && f.contains(&format!("--variant {name}"))
            && f.contains(&format!("--profile {profile}"))),
        "{name} is not rejected on the `{profile}` profile with its replay command: {all:#?}"
    );
}

/// LayerNorm whose path for rows of 16 channels or more reads each row once, with the one-pass
/// variance E[x²] − E[x]², which cancels catastrophically when the mean is large against the spread
/// (narrower rows take two passes).
fn layernorm_one_pass(d: &LayerNormDims, x: &[f32], gamma: &[f32], beta: &[f32], out: &mut [f32], isa: Isa) {
    let c = d.channels;
    if c < 16 {
        return tkbench_kernels::layernorm::scalar::layernorm(d, x, gamma, beta, out, isa);
    }
    for (x, out) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
        let mean = x.iter().sum::<f32>() / c as f32;
        let square = x.iter().map(|v| v * v).sum::<f32>() / c as f32;
        let inv = 1.0 / (square - mean * mean + d.eps).max(0.0).sqrt();
        for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
            *o = (v - mean) * inv * g + b;
        }
    }
}

#[test]
fn a_one_pass_variance_is_rejected_on_the_offset_profile() {
    caught_only_by::<LayerNorm>(wrong::<LayerNorm>("one-pass", layernorm_one_pass), Profile::Offset);
}

/// A softmax that exponentiates its inputs without subtracting the row's maximum: exp overflows
/// past 88.7 and underflows below -103.
fn softmax_unshifted(d: &SoftmaxDims, x: &[f32], out: &mut [f32], _: Isa) {
    if d.cols == 0 {
        return;
    }
    for (x, out) in x.chunks_exact(d.cols).zip(out.chunks_exact_mut(d.cols)) {
        let mut sum = 0.0;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v.exp();
            sum += *o;
        }
        out.iter_mut().for_each(|o| *o /= sum);
    }
}

#[test]
fn a_softmax_without_its_max_subtracted_is_rejected_on_the_extreme_profile() {
    caught_only_by::<Softmax>(wrong::<Softmax>("unshifted", softmax_unshifted), Profile::Extreme);
}

/// A matmul whose outputs of depth 16 or more come out an ulp or two high: well within the
/// dot-product bound of a long sum on uniform inputs, but not the exact answer that small integers
/// have.
fn matmul_two_ulps_high(d: &MatmulDims, a: &[f32], b: &[f32], bias: Option<&[f32]>, out: &mut [f32], isa: Isa) {
    tkbench_kernels::matmul::scalar::matmul(d, a, b, bias, out, isa);
    if d.k >= 16 {
        out.iter_mut().for_each(|o| *o *= 1.0 + f32::EPSILON);
    }
}

#[test]
fn a_matmul_off_by_ulps_is_rejected_on_the_exact_profile() {
    caught_only_by::<Matmul>(wrong::<Matmul>("two-ulps-high", matmul_two_ulps_high), Profile::Exact);
}

#[test]
fn the_profiles_manifest_refuses_what_it_cannot_mean() {
    let error = |text: &str| Profiles::parse(text).unwrap_err();
    let unknown = error("schema: 1\nprofiles:\n  softmax: [uniform, gaussian]\n");
    assert!(
        unknown.contains("field `profiles.softmax`") && unknown.contains("no profile named `gaussian`"),
        "{unknown}"
    );
    let not_taken = error("schema: 1\nprofiles:\n  gelu: [exact]\n");
    assert!(
        not_taken.contains("field `profiles.gelu`") && not_taken.contains("does not take the profile `exact`"),
        "{not_taken}"
    );
    let op = error("schema: 1\nprofiles:\n  conv: [uniform]\n");
    assert!(
        op.contains("field `profiles`") && op.contains("no op named `conv`"),
        "{op}"
    );
    let empty = error("schema: 1\nprofiles:\n  softmax: []\n");
    assert!(empty.contains("no profile listed"), "{empty}");
    let schema = error("schema: 9\nprofiles: {}\n");
    assert!(schema.contains("field `schema`: version 9"), "{schema}");
    let field = error("schema: 1\nprofile: {}\n");
    assert!(field.contains("profile"), "{field}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.yaml");
    std::fs::write(&path, "schema: 1\nprofiles:\n  softmax: [uniform, gaussian]\n").unwrap();
    let error = Profiles::load(&path).unwrap_err();
    assert!(error.starts_with(&path.display().to_string()), "{error}");

    let committed = Profiles::load(&tkbench_harness::check::profiles::default_path()).unwrap();
    for op in tkbench_harness::ops::OPS {
        assert!(!committed.of(*op).is_empty(), "{} has no profile", op.name());
    }
}
