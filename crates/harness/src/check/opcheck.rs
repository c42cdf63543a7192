//! The op checker: runs any variant, at any ISA level, on seeded random inputs (never zeros) with its
//! output poisoned with NaN, and compares every element with the float64 reference of its op's
//! definition under the op's bound rule. A failure names op, variant, ISA, shape, seed, the worst
//! element and a command that replays exactly that case.

use std::fmt;

use tkbench_kernels::{Isa, Variant};

use crate::check::metrics::sticky_max;
use crate::check::tolerance::{F32_UNIT_ROUNDOFF, Rule};
use crate::model::threads::{By, Split, call_whole};
use crate::ops::{Draw, Op, Reference, output_len, shape_text};

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
    /// The input magnitude: values are uniform in (−magnitude, magnitude).
    pub magnitude: f32,
    /// max |out − ref| over the elements.
    pub max_abs_err: f64,
    /// The element with the largest error relative to its bound, its error, its bound, and the
    /// variant's and the reference's values there.
    pub worst: Option<Worst>,
    /// The plain float32 implementation's largest error on the same input.
    pub plain_f32_err: f64,
    /// Whether every element is within its bound.
    pub pass: bool,
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
    /// The worst element's err / bound ([`Worst::ratio`]); 0 for an empty output.
    pub fn error_ratio(&self) -> f64 {
        self.worst.map_or(0.0, |w| w.ratio())
    }

    /// The command that replays exactly this check.
    pub fn replay(&self) -> String {
        format!(
            "cargo xtask opcheck --op {} --variant {} --isa {} --shape {} --seed {} --magnitude {}",
            self.op, self.variant, self.isa, self.shape, self.seed, self.magnitude
        )
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.pass { "pass" } else { "FAIL" };
        write!(
            f,
            "{verdict}: {} {} at {} ({}), shape {}, seed {}, magnitude {}: max |err| {:.3e}, plain f32 {:.3e}",
            self.op,
            self.variant,
            self.isa,
            self.ran_at,
            self.shape,
            self.seed,
            self.magnitude,
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
pub fn run<O: Op>(kernel: O::Kernel, isa: Isa, shape: &O::Shape, draw: &Draw) -> Run {
    let x = O::draw(shape, draw);
    let mut out = vec![f32::NAN; output_len::<O>(shape)];
    call_whole::<O>(kernel, isa, shape, O::args(shape, &x), &mut out);
    Run {
        out,
        reference: O::reference(shape, &x),
    }
}

/// Checks `variant` of `O` at `isa` on `shape` with inputs of `seed` and `magnitude`.
pub fn check<O: Op>(variant: &Variant<O::Kernel>, isa: Isa, shape: &O::Shape, seed: u64, magnitude: f32) -> Check {
    let Run { out, reference } = run::<O>(variant.kernel, isa, shape, &Draw::new(seed, magnitude));
    let u = F32_UNIT_ROUNDOFF;
    let plain_f32_err = reference
        .f32
        .iter()
        .zip(&reference.f64)
        .fold(0.0f64, |m, (&p, &r)| m.max((f64::from(p) - r).abs()));
    let scale = reference.f64.iter().fold(0.0f64, |m, r| m.max(r.abs()));
    let bound = |i: usize| match O::RULE {
        Rule::CorrectlyRounded => u * reference.f64[i].abs(),
        Rule::DotProduct => {
            let n = reference.terms as f64;
            n * u / (1.0 - n * u) * reference.magnitudes[i]
        }
        Rule::PlainF32 { k, ulps } => k * plain_f32_err + ulps * u * scale,
    };
    // Elements ranked by err / bound, NaN above everything: the reported element is the worst one,
    // not the first one out of bound.
    let rank = |w: &Worst| {
        let ratio = w.ratio();
        (ratio.is_nan(), if ratio.is_nan() { 0.0 } else { ratio })
    };
    let mut max_abs_err = 0.0f64;
    // The worst element so far, and its rank.
    let mut worst: Option<(Worst, (bool, f64))> = None;
    let mut pass = true;
    for (i, (&o, &r)) in out.iter().zip(&reference.f64).enumerate() {
        let err = (f64::from(o) - r).abs();
        let b = bound(i);
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
    Check {
        op: O::NAME,
        variant: variant.name.to_owned(),
        isa,
        ran_at: variant.ran_at(isa),
        shape: shape_text::<O>(shape),
        seed,
        magnitude,
        max_abs_err,
        worst: worst.map(|(w, _)| w),
        plain_f32_err,
        pass,
    }
}

/// Checks the variant `entry` of `op` at `isa` on every shape of the op's sweep, shape i with inputs
/// of `seed + i`.
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
            op.check(entry, isa, shape, seed + i as u64, magnitude)
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
    call_whole::<O>(variant.kernel, isa, shape, args, &mut whole);
    let mut failures = Vec::new();
    for split in splits {
        for block in &split.blocks {
            let range = block.start * split.width..block.end * split.width;
            let mut alone = vec![BLOCK_POISON; range.len()];
            O::call(variant.kernel, isa, shape, args, split.by, block.clone(), &mut alone);
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

/// Every output row of `shape` alone against the whole call, and the blocks threads split it into
/// for 2 to 5 threads ([`Op::split`]): the promise the kernel-driven model's bit-identity rests on.
pub fn rows_alone<O: Op>(variant: &Variant<O::Kernel>, isa: Isa, shape: &O::Shape, seed: u64) -> Vec<String> {
    let (rows, width) = O::output(shape);
    let mut splits = vec![Split {
        blocks: (0..rows).map(|r| r..r + 1).collect(),
        by: By::Rows,
        width,
    }];
    splits.extend((2..=5).map(|threads| O::split(shape, threads)));
    blocks_against_whole::<O>(variant, isa, shape, seed, &splits)
}
