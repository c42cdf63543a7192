//! The op-level gate: every selected variant at every level it runs at, on its op's sweep under each
//! of its input profiles (the values and the integrity checks of
//! [`crate::check::opcheck::check_profiled`]), on its op's split shapes (each block of rows, columns
//! or heads, and the inputs in another layout, against the whole call, bit for bit), both joined by the shapes that meet the variant's
//! declared tiles at that level, and on its op's special-value cases
//! ([`crate::check::specials`]); summarised per variant and level, with a replay command for every
//! failing case.

use std::time::Instant;

use tkbench_kernels::{Isa, IsaSupport};

use crate::check::metrics::sticky_max;
use crate::check::opcheck::{Verdict, replay};
use crate::check::profiles::Profiles;
use crate::check::specials;
use crate::ops::{AnyOp, Profile};
use crate::registry::{Entry, Registry};

/// Which variants, levels and cases the gate runs.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Only this op.
    pub op: Option<&'static str>,
    /// Only variants of this name.
    pub variant: Option<String>,
    /// Only this level, for variants that dispatch (the others run at their one level).
    pub isa: Option<Isa>,
    /// One shape (canonical text of the selected op) instead of the sweep, the split shapes and the
    /// special-value cases.
    pub shape: Option<String>,
    /// The seed of the first case; case i of a list of shapes takes `seed + i`.
    pub seed: u64,
    /// Inputs are uniform in (−magnitude, magnitude) for the value checks (under the uniform profile).
    pub magnitude: f32,
    /// The input profiles of each op.
    pub profiles: Profiles,
    /// Only this profile (ops that do not take it are left out, and no special-value case runs).
    pub profile: Option<Profile>,
    /// Only this special-value case of the selected op, instead of the sweep and the split shapes.
    pub special: Option<String>,
    /// Leave out the variants whose origin is isolated (the command line runs them in child
    /// processes, each on this selection narrowed to it).
    pub skip_isolated: bool,
}

impl Selection {
    /// Whether `entry` is of the selected op and name (the level and origin aside).
    pub fn selects(&self, entry: &Entry) -> bool {
        self.op.is_none_or(|op| entry.op == op) && self.variant.as_deref().is_none_or(|v| entry.name == v)
    }
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            op: None,
            variant: None,
            isa: None,
            shape: None,
            seed: DEFAULT_SEED,
            magnitude: 1.0,
            profiles: Profiles::every(),
            profile: None,
            special: None,
            skip_isolated: false,
        }
    }
}

/// The seed the gate starts from unless told otherwise.
pub const DEFAULT_SEED: u64 = 0x5EED;

/// One variant at one level, summarised.
///
/// Read back from JSON (a child process's rows), the op and variant are left empty for the reader
/// to set, and a float written as `null` (serde_json's NaN) is NaN.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GateRow {
    /// The op's name.
    #[serde(skip_deserializing)]
    pub op: &'static str,
    /// The variant's name.
    #[serde(skip_deserializing)]
    pub variant: &'static str,
    /// The level, as listings print it (`none` for a plain variant).
    pub isa: String,
    /// Value cases run.
    pub cases: usize,
    /// The largest |out − ref| over them.
    #[serde(deserialize_with = "crate::check::metrics::f64_or_nan")]
    pub max_abs_err: f64,
    /// The largest err / bound over them.
    #[serde(deserialize_with = "crate::check::metrics::f64_or_nan")]
    pub worst_ratio: f64,
    /// Value cases failed (out of bound or an integrity finding).
    pub failed: usize,
    /// Value cases within bound that a trivial output would have passed too.
    pub mistrusted: usize,
    /// Split shapes run.
    pub splits: usize,
    /// Split shapes with a block whose bits differ from the whole call's.
    pub splits_failed: usize,
    /// Special-value cases run.
    pub specials: usize,
    /// Special-value cases with an output that breaks the contract.
    pub specials_failed: usize,
    /// Wall time, in seconds.
    #[serde(deserialize_with = "crate::check::metrics::f64_or_nan")]
    pub seconds: f64,
}

impl GateRow {
    /// Whether nothing failed.
    pub fn pass(&self) -> bool {
        self.failed == 0 && self.splits_failed == 0 && self.specials_failed == 0
    }

    /// The row's verdict column: `pass`, or what failed.
    pub fn verdict(&self) -> String {
        let parts: Vec<String> = [
            (self.failed, "case(s)"),
            (self.splits_failed, "split(s)"),
            (self.specials_failed, "special(s)"),
        ]
        .into_iter()
        .filter(|&(n, _)| n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "pass".into()
        } else {
            format!("FAIL ({})", parts.join(", "))
        }
    }
}

/// What the gate found.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Gate {
    /// One row per variant and level.
    pub rows: Vec<GateRow>,
    /// Every failing case, described, with its replay command.
    pub failures: Vec<String>,
    /// Every mistrusted case, described.
    pub mistrusted: Vec<String>,
}

impl Gate {
    /// Whether every row passes.
    pub fn pass(&self) -> bool {
        self.rows.iter().all(GateRow::pass)
    }
}

/// Runs the gate on the variants of `registry` that `selection` picks, calling `progress` after each
/// row. An error names what in the selection is invalid.
pub fn run_gate(
    registry: &Registry,
    selection: &Selection,
    mut progress: impl FnMut(&GateRow),
) -> Result<Gate, String> {
    let op_of = |entry: &Entry| -> &dyn AnyOp {
        registry
            .ops()
            .iter()
            .copied()
            .find(|op| op.name() == entry.op)
            .expect("every entry's op is an op")
    };
    let profiles_of = |op: &dyn AnyOp| -> Vec<Profile> {
        if selection.special.is_some() {
            return Vec::new();
        }
        let listed = selection.profiles.of(op);
        match selection.profile {
            Some(one) => listed.into_iter().filter(|&p| p == one).collect(),
            None => listed,
        }
    };
    let entries: Vec<&Entry> = registry
        .entries()
        .filter(|e| selection.selects(e))
        .filter(|e| !(selection.skip_isolated && e.origin.isolated()))
        .collect();
    if entries.is_empty() {
        return Err("no registered variant matches (see `cargo xtask list`)".into());
    }
    if let Some(profile) = selection.profile
        && entries.iter().all(|e| profiles_of(op_of(e)).is_empty())
    {
        return Err(format!(
            "no selected op is checked on the profile `{profile}` (`cargo xtask list` shows which ops take it)"
        ));
    }
    let mut gate = Gate::default();
    for entry in entries {
        let op = op_of(entry);
        let profiles = profiles_of(op);
        if profiles.is_empty() && selection.special.is_none() {
            continue;
        }
        let levels = match (selection.isa, entry.isa) {
            (Some(isa), IsaSupport::Dispatch) => vec![isa],
            (_, support) => support.levels(),
        };
        for isa in levels {
            // The op's sweep and split shapes, and the shapes that meet this variant's tiles at
            // this level, which are split-checked too.
            let (sweep, splits) = match (&selection.shape, &selection.special) {
                (_, Some(_)) => (Vec::new(), Vec::new()),
                (Some(shape), None) => (vec![shape.clone()], vec![shape.clone()]),
                (None, None) => {
                    let tiles = op.tile_sweep(entry, isa);
                    let mut sweep = op.sweep();
                    sweep.extend(tiles.iter().filter(|s| !sweep.contains(s)).cloned().collect::<Vec<_>>());
                    let mut splits = op.split_shapes();
                    splits.extend(
                        tiles
                            .iter()
                            .filter(|s| !splits.contains(s))
                            .cloned()
                            .collect::<Vec<_>>(),
                    );
                    (sweep, splits)
                }
            };
            let start = Instant::now();
            let mut row = GateRow {
                op: entry.op,
                variant: entry.name,
                isa: entry.isa.label(isa).to_owned(),
                cases: sweep.len() * profiles.len(),
                max_abs_err: 0.0,
                worst_ratio: 0.0,
                failed: 0,
                mistrusted: 0,
                splits: splits.len(),
                splits_failed: 0,
                specials: 0,
                specials_failed: 0,
                seconds: 0.0,
            };
            let cases = profiles
                .iter()
                .flat_map(|&profile| sweep.iter().enumerate().map(move |(i, shape)| (profile, i, shape)));
            let panicked = |what: &str, shape: &str, seed: u64, profile: Profile, message: String| {
                format!(
                    "FAIL: panic: {} {} at {isa}, {what}, shape {shape}, seed {seed}: the kernel panicked: {message}\n  replay: {}",
                    op.name(),
                    entry.name,
                    replay(op.name(), entry.name, isa, shape, seed, selection.magnitude, profile)
                )
            };
            for (profile, i, shape) in cases {
                let seed = selection.seed + i as u64;
                let check = match unwound(|| op.check(entry, isa, shape, seed, selection.magnitude, profile)) {
                    Ok(check) => check.map_err(|e| format!("{} {shape}: {e}", op.name()))?,
                    Err(message) => {
                        row.failed += 1;
                        gate.failures
                            .push(panicked("value case", shape, seed, profile, message));
                        continue;
                    }
                };
                row.max_abs_err = sticky_max(row.max_abs_err, check.max_abs_err);
                row.worst_ratio = sticky_max(row.worst_ratio, check.error_ratio());
                match check.verdict() {
                    Verdict::Pass => {}
                    Verdict::Mistrusted => {
                        row.mistrusted += 1;
                        gate.mistrusted.push(check.to_string());
                    }
                    Verdict::Fail => {
                        row.failed += 1;
                        gate.failures.push(check.to_string());
                    }
                }
            }
            for (i, shape) in splits.iter().enumerate() {
                let seed = selection.seed + i as u64;
                let differing = match unwound(|| op.rows_alone(entry, isa, shape, seed)) {
                    Ok(differing) => differing.map_err(|e| format!("{} {shape}: {e}", op.name()))?,
                    Err(message) => {
                        row.splits_failed += 1;
                        gate.failures
                            .push(panicked("split shape", shape, seed, Profile::Uniform, message));
                        continue;
                    }
                };
                if let Some(first) = differing.first() {
                    row.splits_failed += 1;
                    gate.failures.push(format!(
                        "FAIL: split: {} call(s) differ in bits from the whole call (blocks alone, or the inputs in another layout); first: {first}\n  replay: {}",
                        differing.len(),
                        replay(
                            op.name(),
                            entry.name,
                            isa,
                            shape,
                            seed,
                            selection.magnitude,
                            Profile::Uniform
                        )
                    ));
                }
            }
            // A replay of one shape or one profile runs those cases alone; otherwise every
            // special-value case runs.
            if selection.shape.is_none() && selection.profile.is_none() {
                let only = selection.special.as_deref();
                let names: Vec<&str> = op
                    .special_names()
                    .into_iter()
                    .filter(|&n| only.is_none_or(|o| o == n))
                    .collect();
                if names.is_empty() {
                    // Names the cases there are.
                    op.check_specials(entry, isa, only)
                        .map_err(|e| format!("--special: {e}"))?;
                }
                for name in names {
                    row.specials += 1;
                    match unwound(|| op.check_specials(entry, isa, Some(name))) {
                        Ok(checks) => {
                            let checks = checks.map_err(|e| format!("--special: {e}"))?;
                            for special in checks.iter().filter(|s| !s.pass()) {
                                row.specials_failed += 1;
                                gate.failures.push(special.to_string());
                            }
                        }
                        Err(message) => {
                            row.specials_failed += 1;
                            gate.failures.push(format!(
                                "FAIL: panic: {} {} at {isa}, special-value case `{name}`: the kernel panicked: {message}\n  replay: {}",
                                op.name(),
                                entry.name,
                                specials::replay(op.name(), entry.name, isa, name)
                            ));
                        }
                    }
                }
            }
            row.seconds = start.elapsed().as_secs_f64();
            progress(&row);
            gate.rows.push(row);
        }
    }
    Ok(gate)
}

/// Runs `f`, turning a panic into its message: a kernel that panics on a valid call fails its case,
/// and the gate goes on with the others. (A kernel that aborts the process or hangs stops it; such
/// kernels belong in a child process.)
fn unwound<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

/// The header line of the gate's table.
pub fn render_header() -> String {
    format!(
        "{:<10} {:<15} {:<8} {:>6} {:>11} {:>9} {:>10} {:>6} {:>8}  verdict",
        "op", "variant", "isa", "cases", "max |err|", "err/bound", "mistrusted", "splits", "specials"
    )
}

/// One row of the gate's table.
pub fn render_row(r: &GateRow) -> String {
    format!(
        "{:<10} {:<15} {:<8} {:>6} {:>11.3e} {:>9.3} {:>10} {:>6} {:>8}  {}",
        r.op,
        r.variant,
        r.isa,
        r.cases,
        r.max_abs_err,
        r.worst_ratio,
        r.mistrusted,
        r.splits,
        r.specials,
        r.verdict()
    )
}
