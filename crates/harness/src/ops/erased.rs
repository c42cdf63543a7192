//! [`AnyOp`]: an op seen without its types, for the code that picks ops by name (the command line,
//! the registry of variants, the reports). Every [`Op`] is one, through the blanket implementation.

use tkbench_kernels::Isa;

use super::{Op, Profile, parse_shape, shape_text, tile_shapes};
use crate::check::opcheck::{Check, check_profiled, rows_alone};
use crate::check::specials::{SpecialCheck, check_special};
use crate::measure::bench::{BenchPlan, ShapeBench, bench_shape};
use crate::measure::work::{Unit, Work};
use crate::registry::{Entry, Registry};

/// The PyTorch code that does one op call: `setup` runs once (with `torch`, `F` for
/// `torch.nn.functional`, a seeded generator `g` and `rand(*shape)`, uniform in (−1, 1) from `g`),
/// and `stmt` is timed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCode {
    /// Python run once before timing.
    pub setup: String,
    /// The Python statement timed.
    pub stmt: String,
}

/// An op, its types erased: shapes are `name=value,...` text, variants are registry entries.
pub trait AnyOp: Send + Sync {
    /// The op's name.
    fn name(&self) -> &'static str;
    /// The field names of its shapes.
    fn fields(&self) -> &'static [&'static str];
    /// Why its error bound is what it is.
    fn rationale(&self) -> &'static str;
    /// The unit of its throughput.
    fn unit(&self) -> Unit;
    /// Whether it should have a cache-blocked variant ([`Op::BLOCKS`]).
    fn blocks(&self) -> bool;
    /// Its fastest registered variant's name.
    fn fastest(&self) -> &'static str;
    /// Its registered variants, as registry entries.
    fn builtin(&self) -> Vec<Entry>;
    /// The shape `text` in its canonical form, or why it is not a valid shape of this op.
    fn parse_shape(&self, text: &str) -> Result<String, String>;
    /// The work of one call on the shape `text`.
    fn work(&self, shape: &str) -> Result<Work, String>;
    /// The sweep's shapes.
    fn sweep(&self) -> Vec<String>;
    /// The bench shapes.
    fn bench_shapes(&self, quick: bool) -> Vec<String>;
    /// The input profiles it takes ([`Op::PROFILES`]).
    fn profiles(&self) -> &'static [Profile];
    /// Checks the variant `entry` (of this op) at `isa` on the shape `text`, inputs drawn as
    /// `profile` says.
    fn check(
        &self,
        entry: &Entry,
        isa: Isa,
        shape: &str,
        seed: u64,
        magnitude: f32,
        profile: Profile,
    ) -> Result<Check, String>;
    /// The shapes that meet the declared tiles of the variant `entry` at `isa` ([`tile_shapes`]).
    fn tile_sweep(&self, entry: &Entry, isa: Isa) -> Vec<String>;
    /// The shapes whose rows are checked alone against the whole call.
    fn split_shapes(&self) -> Vec<String>;
    /// The blocks of `entry` at `isa` on the shape `text` that differ in bits from the whole call
    /// ([`rows_alone`]).
    fn rows_alone(&self, entry: &Entry, isa: Isa, shape: &str, seed: u64) -> Result<Vec<String>, String>;
    /// The names of its special-value cases ([`Op::specials`]).
    fn special_names(&self) -> Vec<&'static str>;
    /// Runs its special-value cases (only the one named `only`, if given) on the variant `entry` at
    /// `isa` ([`check_special`]).
    fn check_specials(&self, entry: &Entry, isa: Isa, only: Option<&str>) -> Result<Vec<SpecialCheck>, String>;
    /// What the PyTorch peer runs for the shape `text`, or why it does not time it.
    fn peer(&self, shape: &str) -> Result<PeerCode, String>;
    /// A random small shape (as text) and input magnitude for the property tests, from `seed`.
    fn random_case(&self, seed: u64) -> (String, f32);
    /// The timed calls of every variant of this op in `registry` on the shape `text`, inputs drawn.
    fn bench(&self, registry: &Registry, shape: &str, plan: &BenchPlan) -> Result<ShapeBench, String>;
}

impl<O: Op> AnyOp for O {
    fn name(&self) -> &'static str {
        O::NAME
    }

    fn fields(&self) -> &'static [&'static str] {
        O::FIELDS
    }

    fn rationale(&self) -> &'static str {
        O::RATIONALE
    }

    fn unit(&self) -> Unit {
        O::UNIT
    }

    fn blocks(&self) -> bool {
        O::BLOCKS
    }

    fn fastest(&self) -> &'static str {
        O::fastest()
    }

    fn builtin(&self) -> Vec<Entry> {
        O::variants().into_iter().map(Entry::new::<O>).collect()
    }

    fn parse_shape(&self, text: &str) -> Result<String, String> {
        parse_shape::<O>(text).map(|s| shape_text::<O>(&s))
    }

    fn work(&self, shape: &str) -> Result<Work, String> {
        parse_shape::<O>(shape).map(|s| O::work(&s))
    }

    fn sweep(&self) -> Vec<String> {
        O::sweep().iter().map(shape_text::<O>).collect()
    }

    fn bench_shapes(&self, quick: bool) -> Vec<String> {
        O::bench_shapes(quick).iter().map(shape_text::<O>).collect()
    }

    fn profiles(&self) -> &'static [Profile] {
        O::PROFILES
    }

    fn check(
        &self,
        entry: &Entry,
        isa: Isa,
        shape: &str,
        seed: u64,
        magnitude: f32,
        profile: Profile,
    ) -> Result<Check, String> {
        let shape = parse_shape::<O>(shape)?;
        let variant = entry
            .typed::<O>()
            .ok_or_else(|| format!("`{}` is not a variant of {}", entry.name, O::NAME))?;
        if !O::PROFILES.contains(&profile) {
            return Err(format!("{} does not take the profile `{profile}`", O::NAME));
        }
        Ok(check_profiled::<O>(variant, isa, &shape, seed, magnitude, profile))
    }

    fn tile_sweep(&self, entry: &Entry, isa: Isa) -> Vec<String> {
        tile_shapes::<O>(entry.tiles, isa).iter().map(shape_text::<O>).collect()
    }

    fn split_shapes(&self) -> Vec<String> {
        O::split_shapes().iter().map(shape_text::<O>).collect()
    }

    fn rows_alone(&self, entry: &Entry, isa: Isa, shape: &str, seed: u64) -> Result<Vec<String>, String> {
        let shape = parse_shape::<O>(shape)?;
        let variant = entry
            .typed::<O>()
            .ok_or_else(|| format!("`{}` is not a variant of {}", entry.name, O::NAME))?;
        Ok(rows_alone::<O>(variant, isa, &shape, seed))
    }

    fn special_names(&self) -> Vec<&'static str> {
        O::specials().iter().map(|s| s.name).collect()
    }

    fn check_specials(&self, entry: &Entry, isa: Isa, only: Option<&str>) -> Result<Vec<SpecialCheck>, String> {
        let variant = entry
            .typed::<O>()
            .ok_or_else(|| format!("`{}` is not a variant of {}", entry.name, O::NAME))?;
        let specials = O::specials();
        if let Some(name) = only
            && !specials.iter().any(|s| s.name == name)
        {
            let names: Vec<_> = specials.iter().map(|s| s.name).collect();
            return Err(format!(
                "{} has no special-value case `{name}`; its cases are {}",
                O::NAME,
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ));
        }
        Ok(specials
            .iter()
            .filter(|s| only.is_none_or(|name| s.name == name))
            .map(|s| check_special::<O>(variant, isa, s))
            .collect())
    }

    fn peer(&self, shape: &str) -> Result<PeerCode, String> {
        O::peer(&parse_shape::<O>(shape)?)
    }

    fn random_case(&self, seed: u64) -> (String, f32) {
        let mut i = 0;
        let mut pick = |n: usize| {
            i += 1;
            (tkbench_reference::synthetic::draw(seed, i) % n.max(1) as u64) as usize
        };
        let (shape, magnitude) = O::random_case(&mut pick);
        (shape_text::<O>(&shape), magnitude)
    }

    fn bench(&self, registry: &Registry, shape: &str, plan: &BenchPlan) -> Result<ShapeBench, String> {
        Ok(bench_shape::<O>(registry, &parse_shape::<O>(shape)?, plan))
    }
}
