//! The special-value contract as a check any variant gets: each op's [`Special`] cases plant NaN,
//! infinities or degenerate rows in drawn inputs, and every output must then be what the float64
//! reference on the same inputs makes it: NaN where the reference is NaN, the same infinity where it
//! is infinite, and finite and within its bound everywhere else. The output is poisoned twice, with a
//! finite mark and with NaN, so that an element the kernel leaves unwritten shows either way.

use std::fmt;

use tkbench_kernels::{Isa, Variant};

use crate::check::opcheck::{element_bounds, guarded_call};
use crate::ops::{Draw, Op, Special, shape_text};

/// What an output holds before the first call: finite, so that an element whose reference is NaN
/// must be written NaN, and a value no case's reference takes.
const MARK: f32 = -7.25;

/// The outcome of one special-value case for one variant at one level.
#[derive(Debug, Clone)]
pub struct SpecialCheck {
    /// The op's name.
    pub op: &'static str,
    /// The variant's name.
    pub variant: String,
    /// The level requested.
    pub isa: Isa,
    /// The case's name.
    pub name: &'static str,
    /// What the case plants and what the contract then says.
    pub about: &'static str,
    /// The case's shape, as `--shape` takes it.
    pub shape: String,
    /// Outputs that broke the contract.
    pub broken: usize,
    /// The first of them, described.
    pub first: Option<String>,
}

impl SpecialCheck {
    /// Whether every output kept the contract.
    pub fn pass(&self) -> bool {
        self.broken == 0
    }

    /// The command that replays exactly this case.
    pub fn replay(&self) -> String {
        replay(self.op, &self.variant, self.isa, self.name)
    }
}

/// The command that replays the special-value case `name` of `op` for `variant` at `isa`.
pub fn replay(op: &str, variant: &str, isa: Isa, name: &str) -> String {
    format!("cargo xtask opcheck --op {op} --variant {variant} --isa {isa} --special {name}")
}

impl fmt::Display for SpecialCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: special: {} {} at {}, case `{}` ({}), shape {}",
            if self.pass() { "pass" } else { "FAIL" },
            self.op,
            self.variant,
            self.isa,
            self.name,
            self.about,
            self.shape
        )?;
        if let Some(first) = &self.first {
            write!(f, ": {} output(s) break the contract; first: {first}", self.broken)?;
            write!(f, "\n  replay: {}", self.replay())?;
        }
        Ok(())
    }
}

/// What output `i` breaks of the contract, if anything: `first` and `second` are its values after
/// the calls into the marked and the NaN-poisoned output, `reference` and `bound` the float64
/// reference and the bound there.
fn breach(first: f32, second: f32, reference: f64, bound: f64) -> Option<String> {
    let same = first.to_bits() == second.to_bits() || (first.is_nan() && second.is_nan());
    if !same {
        return Some(format!(
            "left unwritten ({first} into a marked output, {second} into a NaN-poisoned one)"
        ));
    }
    if reference.is_nan() {
        return (!first.is_nan()).then(|| format!("{first} where the f64 reference is NaN"));
    }
    if reference.is_infinite() {
        return (f64::from(first) != reference).then(|| format!("{first} where the f64 reference is {reference}"));
    }
    if !first.is_finite() {
        return Some(format!("{first} where the f64 reference is finite ({reference})"));
    }
    let err = (f64::from(first) - reference).abs();
    (bound.is_finite() && err > bound)
        .then(|| format!("{first} where the f64 reference is {reference} (err {err:.3e}, bound {bound:.3e})"))
}

/// Runs the special-value case `special` of `O` on `variant` at `isa`.
pub fn check_special<O: Op>(variant: &Variant<O::Kernel>, isa: Isa, special: &Special<O::Shape>) -> SpecialCheck {
    let shape = &special.shape;
    let mut x = O::draw(shape, &Draw::new(special.seed, 1.0));
    for plant in &special.plants {
        let mut buffers = O::buffers(&mut x);
        let planted = buffers
            .iter_mut()
            .find(|(name, _)| *name == plant.input)
            .is_some_and(|(_, buffer)| buffer.plant(plant.at, plant.value));
        assert!(
            planted,
            "{} special case `{}`: no float {} in an input `{}`",
            O::NAME,
            special.name,
            plant.at,
            plant.input
        );
    }
    let reference = O::reference(shape, &x);
    let (bounds, _) = element_bounds::<O>(&reference);
    let (first, guard_first) = guarded_call::<O>(&variant.kernel, isa, shape, O::args(shape, &x), MARK);
    let (second, guard_second) = guarded_call::<O>(&variant.kernel, isa, shape, O::args(shape, &x), f32::NAN);
    let mut breaches = guard_first.into_iter().chain(guard_second).collect::<Vec<_>>();
    let (_, width) = O::output(shape);
    for (i, (((&a, &b), &r), &bound)) in first.iter().zip(&second).zip(&reference.f64).zip(&bounds).enumerate() {
        if let Some(what) = breach(a, b, r, bound) {
            breaches.push(format!(
                "output {i} (row {}, column {}) is {what}",
                i / width.max(1),
                i % width.max(1)
            ));
        }
    }
    SpecialCheck {
        op: O::NAME,
        variant: variant.name.to_owned(),
        isa,
        name: special.name,
        about: special.about,
        shape: shape_text::<O>(shape),
        broken: breaches.len(),
        first: breaches.into_iter().next(),
    }
}
