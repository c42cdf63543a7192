//! The registry of variants the harness runs: every op's registered variants, and any variant added
//! from outside (a test's deliberately wrong kernel, an outside crate's own); and kernel sets, one
//! variant per op, as the kernel-driven model takes them (`fastest`, `scalar`, or `op=variant,...`
//! on the command line).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use tkbench_kernels::{IsaSupport, Kind, Tile, Variant};

use crate::ops::{AnyOp, OPS, Op, op_named};

/// One variant of one op, its entry point's type erased.
#[derive(Clone)]
pub struct Entry {
    /// The op's name.
    pub op: &'static str,
    /// The variant's name.
    pub name: &'static str,
    /// Its technique.
    pub kind: Kind,
    /// The levels it can run at.
    pub isa: IsaSupport,
    /// Its source file under `crates/kernels/src`, empty for one from outside.
    pub file: &'static str,
    /// The sizes its code branches on.
    pub tiles: &'static [Tile],
    /// Where it comes from.
    pub origin: Origin,
    /// The typed `Variant<O::Kernel>`.
    variant: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.op, self.name)
    }
}

/// Where a variant comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// This repository's `crates/kernels`.
    Builtin,
    /// Added from outside with [`Registry::add`]: an outside crate's, or a test's.
    Outside,
    /// A C plugin's: the library's file name.
    Plugin(&'static str),
}

impl Origin {
    /// Whether the command line runs it in a child process: every variant not of this repository,
    /// since it may crash, hang or write out of bounds.
    pub fn isolated(&self) -> bool {
        *self != Origin::Builtin
    }
}

impl Entry {
    /// The entry of `variant`, a built-in variant of `O`.
    pub fn new<O: Op>(variant: Variant<O::Kernel>) -> Self {
        Self::with_origin::<O>(variant, Origin::Builtin)
    }

    /// The entry of `variant`, a variant of `O` from `origin`.
    pub fn with_origin<O: Op>(variant: Variant<O::Kernel>, origin: Origin) -> Self {
        Entry {
            op: O::NAME,
            name: variant.name,
            kind: variant.kind,
            isa: variant.isa,
            file: variant.file,
            tiles: variant.tiles,
            origin,
            variant: Arc::new(variant),
        }
    }

    /// The typed variant, when this entry is one of `O`'s.
    pub fn typed<O: Op>(&self) -> Option<&Variant<O::Kernel>> {
        if self.op != O::NAME {
            return None;
        }
        self.variant.downcast_ref()
    }

    /// The ops' entry is the same variant: same op, same name.
    pub fn same(&self, other: &Entry) -> bool {
        self.op == other.op && self.name == other.name
    }
}

/// The ops and the variants to run.
#[derive(Clone)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// Every registered variant of every op in [`OPS`].
    pub fn builtin() -> Self {
        Registry {
            entries: OPS.iter().flat_map(|op| op.builtin()).collect(),
        }
    }

    /// Adds `variant` of `O` from outside this repository; refuses a name the op already has.
    pub fn add<O: Op>(&mut self, variant: Variant<O::Kernel>) -> Result<(), String> {
        self.add_from::<O>(variant, Origin::Outside)
    }

    /// Adds `variant` of `O` from `origin`; refuses a name the op already has.
    pub fn add_from<O: Op>(&mut self, variant: Variant<O::Kernel>, origin: Origin) -> Result<(), String> {
        let entry = Entry::with_origin::<O>(variant, origin);
        if self.entries.iter().any(|e| e.same(&entry)) {
            return Err(format!("{} already has a variant named `{}`", O::NAME, entry.name));
        }
        self.entries.push(entry);
        Ok(())
    }

    /// This registry with `variant` of `O` added ([`Registry::add`]); panics on a duplicate name.
    pub fn with<O: Op>(mut self, variant: Variant<O::Kernel>) -> Self {
        self.add::<O>(variant).unwrap_or_else(|e| panic!("{e}"));
        self
    }

    /// This registry without the entries `drop` is true of.
    pub fn without(mut self, drop: impl Fn(&Entry) -> bool) -> Self {
        self.entries.retain(|e| !drop(e));
        self
    }

    /// The ops.
    pub fn ops(&self) -> &'static [&'static dyn AnyOp] {
        OPS
    }

    /// Every entry, ops in [`OPS`] order, each op's variants in registration order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        OPS.iter()
            .flat_map(move |op| self.entries.iter().filter(move |e| e.op == op.name()))
    }

    /// The entries of the op named `op`.
    pub fn of(&self, op: &str) -> impl Iterator<Item = &Entry> {
        let op = op.to_owned();
        self.entries.iter().filter(move |e| e.op == op)
    }

    /// The typed variants of `O`.
    pub fn variants<O: Op>(&self) -> impl Iterator<Item = &Variant<O::Kernel>> {
        self.of(O::NAME).filter_map(Entry::typed::<O>)
    }

    /// The variant `name` of the op named `op`.
    pub fn find(&self, op: &str, name: &str) -> Option<&Entry> {
        self.of(op).find(|e| e.name == name)
    }

    /// The scalar variant of the op named `op`.
    fn scalar_of(&self, op: &str) -> &Entry {
        self.of(op)
            .find(|e| e.kind == Kind::Scalar)
            .unwrap_or_else(|| panic!("{op} has no scalar variant"))
    }
}

/// One variant per op.
#[derive(Debug, Clone)]
pub struct KernelSet {
    /// One entry per op of [`OPS`], in order.
    chosen: Vec<Entry>,
}

impl KernelSet {
    /// Every op scalar: the readable baseline.
    pub fn scalar(registry: &Registry) -> Self {
        KernelSet {
            chosen: OPS.iter().map(|op| registry.scalar_of(op.name()).clone()).collect(),
        }
    }

    /// The fastest variant of every op.
    pub fn fastest(registry: &Registry) -> Self {
        KernelSet {
            chosen: OPS
                .iter()
                .map(|op| {
                    registry
                        .find(op.name(), op.fastest())
                        .unwrap_or_else(|| {
                            panic!(
                                "{} names {} its fastest, which is not registered",
                                op.name(),
                                op.fastest()
                            )
                        })
                        .clone()
                })
                .collect(),
        }
    }

    /// This set with `entry` in place of its op's variant.
    pub fn with(mut self, entry: &Entry) -> Self {
        let slot = self
            .chosen
            .iter()
            .position(|e| e.op == entry.op)
            .expect("every op has a slot");
        self.chosen[slot] = entry.clone();
        self
    }

    /// The chosen entries, one per op.
    pub fn entries(&self) -> &[Entry] {
        &self.chosen
    }

    /// The entry of the op named `op`.
    pub fn get(&self, op: &str) -> &Entry {
        self.chosen
            .iter()
            .find(|e| e.op == op)
            .unwrap_or_else(|| panic!("no op named {op}"))
    }

    /// The variant of `O`.
    pub fn kernel<O: Op>(&self) -> &Variant<O::Kernel> {
        self.get(O::NAME)
            .typed::<O>()
            .expect("the entry of an op is its variant")
    }

    /// Whether every op is scalar.
    pub fn is_scalar(&self) -> bool {
        self.chosen.iter().all(|e| e.kind == Kind::Scalar)
    }

    /// Whether any variant dispatches on the ISA level (so the set is worth running at each level).
    pub fn dispatches(&self) -> bool {
        self.chosen.iter().any(|e| e.isa == IsaSupport::Dispatch)
    }

    /// Whether any variant is a library's, which picks its own level.
    pub fn has_library(&self) -> bool {
        self.chosen.iter().any(|e| e.isa == IsaSupport::Library)
    }

    /// The shortest spec that parses back to this set: `scalar`, `fastest`, the non-scalar ops, or
    /// `fastest,` and the ops that differ from the fastest set.
    pub fn spec(&self) -> String {
        let item = |e: &Entry| format!("{}={}", e.op, e.name);
        let is_fastest = |e: &Entry| e.name == op_named(e.op).map_or("", |op| op.fastest());
        let from_scalar: Vec<String> = self
            .chosen
            .iter()
            .filter(|e| e.kind != Kind::Scalar)
            .map(item)
            .collect();
        let from_fastest: Vec<String> = self.chosen.iter().filter(|e| !is_fastest(e)).map(item).collect();
        match (from_scalar.is_empty(), from_fastest.is_empty()) {
            (true, _) => "scalar".into(),
            (false, true) => "fastest".into(),
            _ if from_fastest.len() < from_scalar.len() => format!("fastest,{}", from_fastest.join(",")),
            _ => from_scalar.join(","),
        }
    }

    /// Parses a spec: `scalar`, `fastest`, `op=variant,...`, or `fastest,op=variant,...`.
    pub fn parse(registry: &Registry, spec: &str) -> Result<Self, String> {
        let mut set = Self::scalar(registry);
        for (i, item) in spec.split(',').map(str::trim).enumerate() {
            match item {
                "scalar" if i == 0 => {}
                "fastest" if i == 0 => set = Self::fastest(registry),
                _ => {
                    let (op_name, variant_name) = item
                        .split_once('=')
                        .ok_or_else(|| format!("`{item}` is not op=variant (or a leading `fastest` / `scalar`)"))?;
                    let op = op_named(op_name.trim())?;
                    let entry = registry.find(op.name(), variant_name.trim()).ok_or_else(|| {
                        let names: Vec<_> = registry.of(op.name()).map(|e| e.name).collect();
                        format!(
                            "{} has no variant `{variant_name}`; it has {}",
                            op.name(),
                            names.join(", ")
                        )
                    })?;
                    set = set.with(entry);
                }
            }
        }
        Ok(set)
    }
}
