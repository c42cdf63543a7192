//! The op checker: runs any variant, at any ISA level, on seeded random inputs (never zeros) with its
//! output poisoned with NaN and framed by guards, and compares every element with the float64
//! reference of its op's definition under the op's bound rule. The same case also checks what a kernel
//! that games the check would break: a second call into a re-poisoned output gives the same bits,
//! fresh inputs written into the same buffers give fresh results, the guards and the inputs are left
//! untouched; and a case whose bound a trivial output (zeros, a constant, a copy of an input) would
//! also meet is reported as mistrusted, not passed. A failure names op, variant, ISA, shape, seed, the
//! worst element and a command that replays exactly that case.

use std::fmt;

use tkbench_kernels::{Isa, Variant};

use crate::check::metrics::sticky_max;
use crate::check::tolerance::{F32_UNIT_ROUNDOFF, Rule, SUM_NOISE};
use crate::model::threads::{By, Split, call_whole};
use crate::ops::{Buffer, Draw, Op, Profile, Reference, output_len, shape_text};

/// The result of checking one variant at one level on one shape and seed.
#[derive(Debug, Clone)]
pub struct Check {
    /// The op's name.
    pub op: &'static str,
    /// The variant's name.
    pub variant: String,
    /// The level requested.
    pub isa: Isa,
    /// What actually ran.
    pub ran_at: String,
    /// The shape, as `--shape` takes it.
    pub shape: String,
    /// The input seed.
    pub seed: u64,
    /// The input magnitude: values are uniform in (−magnitude, magnitude) under the uniform profile.
    pub magnitude: f32,
    /// How the inputs were drawn.
    pub profile: Profile,
    /// max |out − ref| over the elements.
    pub max_abs_err: f64,
    /// The element with the largest error relative to its bound, its error, its bound, and the
    /// variant's and the reference's values there.
    pub worst: Option<Worst>,
    /// The plain float32 implementation's largest error on the same input.
    pub plain_f32_err: f64,
    /// What the case found besides the values: a second call that differs, stale results on fresh
    /// inputs, a guard or an input written. Empty when the kernel behaved.
    pub integrity: Vec<String>,
    /// The trivial output that would also meet every bound of this case, if one does: the case then
    /// proves nothing and is reported as mistrusted, not passed.
    pub mistrusted: Option<String>,
    /// Whether every element is within its bound and the integrity checks found nothing.
    pub pass: bool,
}

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within bound, nothing found, and no trivial output would have passed.
    Pass,
    /// Within bound and nothing found, but a trivial output would have passed too.
    Mistrusted,
    /// Out of bound, or an integrity check found something.
    Fail,
}

/// The worst element of a check.
#[derive(Debug, Clone, Copy)]
pub struct Worst {
    /// Flat index into the output.
    pub index: usize,
    /// |out − ref| there (NaN if out is NaN).
    pub err: f64,
    /// The bound there.
    pub bound: f64,
    /// The variant's output there.
    pub out: f32,
    /// The float64 reference there.
    pub reference: f64,
}

impl Worst {
    /// err / bound: 0 for an exact zero bound met exactly, infinity for one missed, NaN for NaN.
    pub fn ratio(&self) -> f64 {
        if self.bound > 0.0 || self.err.is_nan() {
            self.err / self.bound
        } else if self.err == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    }
}

impl Check {
    /// The case's verdict.
    pub fn verdict(&self) -> Verdict {
        match (self.pass, &self.mistrusted) {
            (false, _) => Verdict::Fail,
            (true, Some(_)) => Verdict::Mistrusted,
            (true, None) => Verdict::Pass,
        }
    }

    /// The worst element's err / bound ([`Worst::ratio`]); 0 for an empty output.
    pub fn error_ratio(&self) -> f64 {
        self.worst.map_or(0.0, |w| w.ratio())
    }

    /// The command that replays exactly this check.
    pub fn replay(&self) -> String {
        replay(
            self.op,
            &self.variant,
            self.isa,
            &self.shape,
            self.seed,
            self.magnitude,
            self.profile,
        )
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict() {
            Verdict::Pass => "pass",
            Verdict::Mistrusted => "mistrusted",
            Verdict::Fail => "FAIL",
        };
        write!(
            f,
            "{verdict}: {} {} at {} ({}), shape {}, seed {}, magnitude {}, profile {}: max |err| {:.3e}, plain f32 {:.3e}",
            self.op,
            self.variant,
            self.isa,
            self.ran_at,
            self.shape,
            self.seed,
            self.magnitude,
            self.profile,
            self.max_abs_err,
            self.plain_f32_err
        )?;
        if let Some(w) = self.worst {
            write!(
                f,
                "; worst at flat index {}: out {} vs f64 {} (err {:.3e}, bound {:.3e})",
                w.index, w.out, w.reference, w.err, w.bound
            )?;
        }
        for finding in &self.integrity {
            write!(f, "\n  {finding}")?;
        }
        if let Some(trivial) = &self.mistrusted {
            write!(f, "\n  {trivial} would also meet every bound of this case")?;
        }
        if !self.pass {
            write!(f, "\n  replay: {}", self.replay())?;
        }
        Ok(())
    }
}

/// A variant's output on drawn inputs, and the references on the same inputs.
pub struct Run {
    /// The variant's output, flat.
    pub out: Vec<f32>,
    /// The references.
    pub reference: Reference,
}

/// Runs `kernel` at `isa` on the inputs of `shape` drawn by `draw`, with the output poisoned, and the
/// reference ops in f64 and f32 on the same inputs.
pub fn run<O: Op>(kernel: &O::Kernel, isa: Isa, shape: &O::Shape, draw: &Draw) -> Run {
    let x = O::draw(shape, draw);
    let mut out = vec![f32::NAN; output_len::<O>(shape)];
    call_whole::<O>(kernel, isa, shape, O::args(shape, &x), &mut out);
    Run {
        out,
        reference: O::reference(shape, &x),
    }
}

/// Floats of guard before and after the output of every checked call.
const GUARD: usize = 16;

/// The guards' bits: a NaN of its own payload, so that a write of any value, the poison included,
/// shows.
const GUARD_VALUE: f32 = f32::from_bits(0x7fc0_0bad);

/// Salt of the seed of the fresh inputs written over a case's inputs.
const FRESH_SALT: u64 = 0xF2E5_4000_0000_0001;

/// How many times its bound the result on fresh inputs may be off: enough for the rounding of any
/// draw, far below the error of a result that belongs to other inputs.
const FRESH_SLACK: f64 = 16.0;

/// Calls `kernel` on the whole of `shape` into an output poisoned with `poison` and framed by
/// guards. Returns the output and, if a guard was written, where.
pub(crate) fn guarded_call<O: Op>(
    kernel: &O::Kernel,
    isa: Isa,
    shape: &O::Shape,
    args: O::Args<'_>,
    poison: f32,
) -> (Vec<f32>, Option<String>) {
    let len = output_len::<O>(shape);
    let mut buf = vec![GUARD_VALUE; len + 2 * GUARD];
    buf[GUARD..GUARD + len].fill(poison);
    call_whole::<O>(kernel, isa, shape, args, &mut buf[GUARD..GUARD + len]);
    let guard_hit = (0..GUARD)
        .map(|i| (i, -(GUARD as isize) + i as isize))
        .chain((0..GUARD).map(|i| (GUARD + len + i, (len + i) as isize)))
        .find(|&(at, _)| buf[at].to_bits() != GUARD_VALUE.to_bits())
        .map(|(at, offset)| {
            format!(
                "guard: the float at offset {offset} of the {len}-float output was written ({})",
                buf[at]
            )
        });
    (buf[GUARD..GUARD + len].to_vec(), guard_hit)
}

/// The per-element bounds of `O` on `reference`, and the plain float32 code's largest error.
pub(crate) fn element_bounds<O: Op>(reference: &Reference) -> (Vec<f64>, f64) {
    let u = F32_UNIT_ROUNDOFF;
    // Over the finite elements only: the special-value cases plant NaN and infinities, whose
    // outputs the contract holds to their own rule, and which must not widen every other bound.
    let plain_f32_err = reference
        .f32
        .iter()
        .zip(&reference.f64)
        .filter(|(p, r)| p.is_finite() && r.is_finite())
        .fold(0.0f64, |m, (&p, &r)| m.max((f64::from(p) - r).abs()));
    let scale = reference
        .f64
        .iter()
        .filter(|r| r.is_finite())
        .fold(0.0f64, |m, r| m.max(r.abs()));
    let bound = |i: usize| match O::RULE {
        Rule::CorrectlyRounded => u * reference.f64[i].abs(),
        Rule::DotProduct => {
            let n = reference.terms as f64;
            n * u / (1.0 - n * u) * reference.magnitudes[i]
        }
        Rule::PlainF32 { k, ulps } => {
            let noise = SUM_NOISE * (reference.terms as f64).sqrt() * u * scale.max(reference.conditioning);
            k * plain_f32_err.max(noise) + ulps * u * scale
        }
    };
    ((0..reference.f64.len()).map(bound).collect(), plain_f32_err)
}

/// `out` against `reference` under `bounds`: the largest error, the worst element by err / bound
/// (NaN above everything: the worst one, not the first one out of bound), and whether every element
/// is within its bound.
pub(crate) fn compare(out: &[f32], reference: &[f64], bounds: &[f64]) -> (f64, Option<Worst>, bool) {
    let rank = |w: &Worst| {
        let ratio = w.ratio();
        (ratio.is_nan(), if ratio.is_nan() { 0.0 } else { ratio })
    };
    let mut max_abs_err = 0.0f64;
    let mut worst: Option<(Worst, (bool, f64))> = None;
    let mut pass = true;
    for (i, ((&o, &r), &b)) in out.iter().zip(reference).zip(bounds).enumerate() {
        let err = (f64::from(o) - r).abs();
        pass &= err <= b; // false for NaN
        max_abs_err = sticky_max(max_abs_err, err);
        let here = Worst {
            index: i,
            err,
            bound: b,
            out: o,
            reference: r,
        };
        let here_rank = rank(&here);
        if worst.as_ref().is_none_or(|(_, worst_rank)| here_rank > *worst_rank) {
            worst = Some((here, here_rank));
        }
    }
    (max_abs_err, worst.map(|(w, _)| w), pass)
}

/// One draw of a case, for the trivial-output test: the reference, its bounds, and the inputs.
struct Drawn<'a> {
    reference: &'a [f64],
    bounds: &'a [f64],
    inputs: Vec<(&'static str, Buffer<'a>)>,
}

/// The trivial output that meets every bound of a case on both of its draws (the case's inputs and
/// fresh ones), if one does: all zeros, one constant (halfway between the extremes of both
/// references), or a copy of an input as long as the output. A single draw would not do: on a
/// one-element output the right answer is a constant. `None` for an empty output.
fn trivial_pass(draws: &[Drawn<'_>]) -> Option<String> {
    if draws.iter().any(|d| d.reference.is_empty()) {
        return None;
    }
    let meets = |d: &Drawn<'_>, value: &dyn Fn(usize) -> f32| {
        d.reference
            .iter()
            .zip(d.bounds)
            .enumerate()
            .all(|(i, (&r, &b))| (f64::from(value(i)) - r).abs() <= b)
    };
    if draws.iter().all(|d| meets(d, &|_| 0.0)) {
        return Some("an output of zeros".into());
    }
    let finite = draws.iter().flat_map(|d| d.reference).filter(|r| r.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
        (lo.min(r), hi.max(r))
    });
    if lo <= hi {
        let c = (0.5 * (lo + hi)) as f32;
        if draws.iter().all(|d| meets(d, &|_| c)) {
            return Some(format!("the constant output {c}"));
        }
    }
    let names = draws[0].inputs.iter().map(|(name, _)| *name);
    names.enumerate().find_map(|(j, name)| {
        let copies = draws.iter().all(|d| {
            let x = d.inputs[j].1.floats().filter(|x| x.len() == d.reference.len());
            x.is_some_and(|x| meets(d, &|i| x[i]))
        });
        copies.then(|| format!("a copy of the input `{name}`"))
    })
}

/// The first element whose bits differ between `a` and `b`, described.
fn first_difference(a: &[f32], b: &[f32]) -> Option<String> {
    let i = a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits())?;
    Some(format!("element {i}: {} then {}", a[i], b[i]))
}

/// Checks `variant` of `O` at `isa` on `shape` with uniform inputs of `seed` and `magnitude`
/// ([`check_profiled`]).
pub fn check<O: Op>(variant: &Variant<O::Kernel>, isa: Isa, shape: &O::Shape, seed: u64, magnitude: f32) -> Check {
    check_profiled::<O>(variant, isa, shape, seed, magnitude, Profile::Uniform)
}

/// The command that replays one case (the profile left out when uniform).
pub fn replay(op: &str, variant: &str, isa: Isa, shape: &str, seed: u64, magnitude: f32, profile: Profile) -> String {
    let profile = if profile == Profile::Uniform {
        String::new()
    } else {
        format!(" --profile {profile}")
    };
    format!(
        "cargo xtask opcheck --op {op} --variant {variant} --isa {isa} --shape {shape} --seed {seed} --magnitude {magnitude}{profile}"
    )
}

/// Checks `variant` of `O` at `isa` on `shape` with inputs of `seed` and `magnitude` drawn as
/// `profile` says: the values against the reference (exactly, for [`Profile::Exact`]), and the
/// integrity checks of the module's summary.
pub fn check_profiled<O: Op>(
    variant: &Variant<O::Kernel>,
    isa: Isa,
    shape: &O::Shape,
    seed: u64,
    magnitude: f32,
    profile: Profile,
) -> Check {
    let kernel = &variant.kernel;
    let draw = |seed: u64| O::draw(shape, &Draw::profiled(seed, magnitude, profile));
    // On exact inputs every element has one right answer, which any float32 code computes.
    let bounds_of = |reference: &Reference| {
        let (bounds, plain) = element_bounds::<O>(reference);
        if profile == Profile::Exact {
            (vec![0.0; bounds.len()], plain)
        } else {
            (bounds, plain)
        }
    };
    let mut x = draw(seed);
    let before: Vec<Vec<u32>> = O::buffers(&mut x).iter().map(|(_, b)| b.bits()).collect();
    let reference = O::reference(shape, &x);
    let (bounds, plain_f32_err) = bounds_of(&reference);
    let mut integrity = Vec::new();

    let (out, guard_hit) = guarded_call::<O>(kernel, isa, shape, O::args(shape, &x), f32::NAN);
    integrity.extend(guard_hit);
    let (max_abs_err, worst, within) = compare(&out, &reference.f64, &bounds);
    for ((name, buffer), bits) in O::buffers(&mut x).iter().zip(&before) {
        if let Some(i) = buffer.bits().iter().zip(bits).position(|(a, b)| a != b) {
            integrity.push(format!("inputs: the call wrote element {i} of its input `{name}`"));
        }
    }

    let (again, _) = guarded_call::<O>(kernel, isa, shape, O::args(shape, &x), BLOCK_POISON);
    if let Some(difference) = first_difference(&out, &again) {
        integrity.push(format!(
            "repeat: a second call on the same inputs into a re-poisoned output differs at {difference}"
        ));
    }

    // Fresh values written over the case's inputs, at the same addresses, must give the bits that
    // the same values give in buffers of their own: a kernel that keys anything on an address fails.
    // The in-place call comes straight after the calls on the old values, so that a kernel that
    // remembers only its last call is caught.
    let mut fresh = draw(seed ^ FRESH_SALT);
    for ((_, to), (_, from)) in O::buffers(&mut x).iter_mut().zip(O::buffers(&mut fresh).iter()) {
        to.copy_from(from);
    }
    let (in_place, _) = guarded_call::<O>(kernel, isa, shape, O::args(shape, &x), BLOCK_POISON);
    let (fresh_out, _) = guarded_call::<O>(kernel, isa, shape, O::args(shape, &fresh), f32::NAN);
    if let Some(difference) = first_difference(&fresh_out, &in_place) {
        integrity.push(format!(
            "fresh: new inputs written into the case's buffers give other bits than in buffers of their own, at {difference}"
        ));
    }

    // The fresh values' results must also follow them. This tests that results track their inputs
    // (a result kept from another call is off by the size of the values), not accuracy, which is the
    // case's own check at its seed: the bounds are widened by FRESH_SLACK.
    let fresh_reference = O::reference(shape, &fresh);
    let (fresh_bounds, _) = bounds_of(&fresh_reference);
    let slack: Vec<f64> = fresh_bounds.iter().map(|b| FRESH_SLACK * b).collect();
    let (_, fresh_worst, fresh_within) = compare(&fresh_out, &fresh_reference.f64, &slack);
    if !fresh_within && let Some(w) = fresh_worst {
        integrity.push(format!(
            "fresh: the result does not follow new inputs: element {} is {} vs f64 {} ({FRESH_SLACK}x the bound is {:.3e})",
            w.index, w.out, w.reference, w.bound
        ));
    }
    let mut original = draw(seed);
    let mistrusted = trivial_pass(&[
        Drawn {
            reference: &reference.f64,
            bounds: &bounds,
            inputs: O::buffers(&mut original),
        },
        Drawn {
            reference: &fresh_reference.f64,
            bounds: &fresh_bounds,
            inputs: O::buffers(&mut fresh),
        },
    ]);

    Check {
        op: O::NAME,
        variant: variant.name.to_owned(),
        isa,
        ran_at: variant.ran_at(isa),
        shape: shape_text::<O>(shape),
        seed,
        magnitude,
        profile,
        max_abs_err,
        worst,
        plain_f32_err,
        pass: within && integrity.is_empty(),
        integrity,
        mistrusted,
    }
}

/// Checks the variant `entry` of `op` at `isa` on every shape of the op's sweep, shape i with inputs
/// of `seed + i` (uniform).
pub fn check_sweep(
    op: &dyn crate::ops::AnyOp,
    entry: &crate::registry::Entry,
    isa: Isa,
    seed: u64,
    magnitude: f32,
) -> Vec<Check> {
    op.sweep()
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            op.check(entry, isa, shape, seed + i as u64, magnitude, Profile::Uniform)
                .expect("sweep shapes are valid shapes of their op")
        })
        .collect()
}

/// What a block's output holds before its call: a NaN of other bits than the whole call's poison
/// (`f32::NAN`), so that an element neither call writes still differs.
const BLOCK_POISON: f32 = f32::from_bits(f32::NAN.to_bits() ^ 1);

/// `variant` of `O` at `isa` on `shape` (inputs of `seed`): the whole call, then each block of each
/// of `splits` alone through [`Op::call`]. Returns a line for every block whose first element with
/// other bits than the whole call's is found, naming it; empty when every block agrees bit for bit.
pub fn blocks_against_whole<O: Op>(
    variant: &Variant<O::Kernel>,
    isa: Isa,
    shape: &O::Shape,
    seed: u64,
    splits: &[Split],
) -> Vec<String> {
    let x = O::draw(shape, &Draw::new(seed, 1.0));
    let args = O::args(shape, &x);
    let mut whole = vec![f32::NAN; output_len::<O>(shape)];
    call_whole::<O>(&variant.kernel, isa, shape, args, &mut whole);
    let mut failures = Vec::new();
    for split in splits {
        for block in &split.blocks {
            let range = block.start * split.width..block.end * split.width;
            let mut alone = vec![BLOCK_POISON; range.len()];
            O::call(&variant.kernel, isa, shape, args, split.by, block.clone(), &mut alone);
            let differs = alone
                .iter()
                .zip(&whole[range.clone()])
                .position(|(a, b)| a.to_bits() != b.to_bits());
            if let Some(j) = differs {
                failures.push(format!(
                    "{} {} at {}: shape {}, seed {seed}: element {} in block {block:?} ({:?}) alone {} whole {}",
                    O::NAME,
                    variant.name,
                    isa.name(),
                    shape_text::<O>(shape),
                    range.start + j,
                    split.by,
                    alone[j],
                    whole[range.start + j]
                ));
            }
        }
    }
    failures
}

/// Every output row of `shape` alone against the whole call, the blocks threads split it into for 2
/// to 5 threads ([`Op::split`]), and the same call with its inputs in the other layout
/// ([`Op::twin`]): the promises the kernel-driven model's bit-identity rests on.
pub fn rows_alone<O: Op>(variant: &Variant<O::Kernel>, isa: Isa, shape: &O::Shape, seed: u64) -> Vec<String> {
    let (rows, width) = O::output(shape);
    let mut splits = vec![Split {
        blocks: (0..rows).map(|r| r..r + 1).collect(),
        by: By::Rows,
        width,
    }];
    splits.extend((2..=5).map(|threads| O::split(shape, threads)));
    let mut failures = blocks_against_whole::<O>(variant, isa, shape, seed, &splits);
    failures.extend(twin_differs::<O>(variant, isa, shape, seed));
    failures
}

/// The first element whose bits differ between the call on `shape` and on its twin layout
/// ([`Op::twin`]) with the same values (inputs of `seed`), described; `None` when they agree or the
/// shape has no twin.
fn twin_differs<O: Op>(variant: &Variant<O::Kernel>, isa: Isa, shape: &O::Shape, seed: u64) -> Option<String> {
    let twin = O::twin(shape)?;
    let whole = |shape: &O::Shape| {
        let x = O::draw(shape, &Draw::new(seed, 1.0));
        let mut out = vec![f32::NAN; output_len::<O>(shape)];
        call_whole::<O>(&variant.kernel, isa, shape, O::args(shape, &x), &mut out);
        out
    };
    let difference = first_difference(&whole(shape), &whole(&twin))?;
    Some(format!(
        "{} {} at {}: shape {} against {}, seed {seed}: the same values in the other layout give other bits, at {difference}",
        O::NAME,
        variant.name,
        isa.name(),
        shape_text::<O>(shape),
        shape_text::<O>(&twin)
    ))
}
