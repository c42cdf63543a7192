//! Op definitions: everything the harness knows about an op, written once per op. A definition
//! module names the op's kernels (the entry-point type and the `VARIANTS` table of its kernels
//! folder), its shape vocabulary and how inputs are drawn, how a call (or a thread's block of one)
//! is made, the float64 and plain-float32 reference, the bound rule and its rationale, the work in
//! FLOPs and bytes, the sweep and bench shapes, and what the PyTorch peer runs. The checker, the
//! kernel-driven model, the benches and the reports are generic over [`Op`]; [`OPS`] lists the ops.
//!
//! Adding an op: its kernels folder (`mod.rs` with `VARIANTS`, one file per variant), one definition
//! module here, one line in the `ops!` list below, and its use in the model where the model needs it.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

use tkbench_kernels::{Isa, Tile, Variant};
use tkbench_reference::synthetic;

use crate::check::tolerance::Rule;
use crate::measure::work::{Unit, Work};
use crate::model::threads::{By, Split, row_blocks};

pub use self::erased::{AnyOp, PeerCode};

mod erased;

/// A variant's entry point, shared: `F` is the op's `dyn Fn` type. Each op's definition module names
/// its own (`SoftmaxKernel`, ...) and makes one from any function or closure of that type, so that
/// a variant may be one of `tkbench_kernels`' functions or an outside kernel that holds state (weights
/// packed once, a handle into a library). It is called like the function it holds.
pub struct Kernel<F: ?Sized>(Arc<F>);

impl<F: ?Sized> Kernel<F> {
    /// The kernel `f`.
    pub fn new(f: Arc<F>) -> Self {
        Kernel(f)
    }
}

impl<F: ?Sized> Clone for Kernel<F> {
    fn clone(&self) -> Self {
        Kernel(Arc::clone(&self.0))
    }
}

impl<F: ?Sized> Deref for Kernel<F> {
    type Target = F;

    fn deref(&self) -> &F {
        &self.0
    }
}

impl<F: ?Sized> fmt::Debug for Kernel<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kernel")
    }
}

/// Declares each op's definition module, re-exports its type and its kernel type, and lists it in
/// [`OPS`].
macro_rules! ops {
    ($($module:ident::$op:ident / $kernel:ident),* $(,)?) => {
        $(
            pub mod $module;
            pub use $module::{$op, $kernel};
        )*

        /// Every op, in the order of listings and reports.
        pub static OPS: &[&dyn AnyOp] = &[$(&$op),*];
    };
}

// The registry of ops, one line each, in the order of listings and reports.
ops! {
    embedding::Embedding / EmbeddingKernel,
    layernorm::LayerNorm / LayerNormKernel,
    softmax::Softmax / SoftmaxKernel,
    attention::Attention / AttentionKernel,
    matmul::Matmul / MatmulKernel,
    gelu::Gelu / GeluKernel,
    rmsnorm::RmsNorm / RmsNormKernel,
    rope::Rope / RopeKernel,
    swiglu::Swiglu / SwigluKernel,
}

/// The op named `name`, or an error listing the ops.
pub fn op_named(name: &str) -> Result<&'static dyn AnyOp, String> {
    OPS.iter().copied().find(|op| op.name() == name).ok_or_else(|| {
        format!(
            "no op named `{name}`; ops are {}",
            OPS.iter().map(|op| op.name()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// One op, defined once. Implemented by a unit type per op in this module's children.
pub trait Op: Send + Sync + 'static {
    /// The op's name: its kernels folder, its `--op` value, its rows in reports.
    const NAME: &'static str;
    /// The field names of its shapes, in order (`name=value,...` on the command line).
    const FIELDS: &'static [&'static str];
    /// Fields that may be left out, with the value they then take; a shape's text leaves them out
    /// when they have it.
    const DEFAULTS: &'static [(&'static str, usize)] = &[];
    /// How its error bound is derived.
    const RULE: Rule;
    /// Why that bound.
    const RATIONALE: &'static str;
    /// Whether its throughput is stated in FLOPs (bound by arithmetic) or bytes (bound by memory).
    const UNIT: Unit;
    /// Whether a cache-blocked variant means something for it: an elementwise op has no reuse to
    /// block for, and needs only scalar and simd variants.
    const BLOCKS: bool = true;
    /// The input profiles that mean something for it (its draw passes them on through
    /// [`Draw::signal`]); `Exact` only for an op whose float32 answer on small integers is exact.
    const PROFILES: &'static [Profile] = &[Profile::Uniform];

    /// The entry-point type of its variants: a shared closure over the call's dims, slices and level,
    /// so that a variant may be one of `tkbench_kernels`' functions or an outside kernel with state.
    type Kernel: Clone + Send + Sync + 'static;
    /// One call's sizes.
    type Shape: Copy + PartialEq + fmt::Debug + Send + Sync + 'static;
    /// The input slices of a call, borrowed from drawn inputs or from the model's buffers.
    type Args<'a>: Copy + Send + Sync;
    /// Inputs drawn for a check or a bench, owned.
    type Inputs: Send + Sync + 'static;

    /// The op's registered variants (its kernels folder's `VARIANTS`).
    fn variants() -> Vec<Variant<Self::Kernel>>;
    /// The name of its fastest variant (its kernels folder's `FASTEST`).
    fn fastest() -> &'static str;

    /// The values of a shape's fields, in [`Op::FIELDS`] order.
    fn values(shape: &Self::Shape) -> Vec<usize>;
    /// The shape with these field values, or why it is not a valid call.
    fn shape(values: &[usize]) -> Result<Self::Shape, String>;
    /// The output as (rows, floats per row): what threads split by default.
    fn output(shape: &Self::Shape) -> (usize, usize);

    /// Seeded inputs of `shape`: never all zeros.
    fn draw(shape: &Self::Shape, draw: &Draw) -> Self::Inputs;
    /// The input slices of a whole call on `inputs`.
    fn args<'a>(shape: &Self::Shape, inputs: &'a Self::Inputs) -> Self::Args<'a>;
    /// Every buffer of `inputs`, named, in a fixed order: the checks rewrite inputs in place through
    /// them (fresh values at the same addresses) and compare them before and after a call.
    fn buffers(inputs: &mut Self::Inputs) -> Vec<(&'static str, Buffer<'_>)>;
    /// How `threads` threads split a call: blocks of output rows unless the op says otherwise.
    fn split(shape: &Self::Shape, threads: usize) -> Split {
        let (rows, width) = Self::output(shape);
        Split {
            blocks: row_blocks(rows, threads),
            by: By::Rows,
            width,
        }
    }
    /// Calls `kernel` at `isa` for the block `block` of `shape` (counted as `by` says: all rows for a
    /// whole call), writing `out`, which holds that block's output. The one call path of the checker,
    /// the model and the benches.
    fn call(
        kernel: &Self::Kernel,
        isa: Isa,
        shape: &Self::Shape,
        args: Self::Args<'_>,
        by: By,
        block: Range<usize>,
        out: &mut [f32],
    );

    /// The float64 reference and the plain float32 code (the reference ops in f32) on `inputs`.
    fn reference(shape: &Self::Shape, inputs: &Self::Inputs) -> Reference;
    /// FLOPs and bytes of one call.
    fn work(shape: &Self::Shape) -> Work;
    /// The edge-case shapes every variant is checked on.
    fn sweep() -> Vec<Self::Shape>;
    /// Small shapes whose dimension `dim` is `value` (the others small), for the shapes that meet a
    /// variant's declared [`Tile`]s; empty for a dimension the op does not have.
    fn straddle(dim: &str, value: usize) -> Vec<Self::Shape>;
    /// The shapes whose output rows are computed together and then one at a time, to show that a
    /// row's bits do not depend on the block it is in: by default the sweep's shapes of 2 to 64
    /// output rows; an op whose kernels take other paths at other sizes names its own.
    fn split_shapes() -> Vec<Self::Shape> {
        Self::sweep()
            .into_iter()
            .filter(|shape| (2..=64).contains(&Self::output(shape).0))
            .collect()
    }
    /// The same call with its inputs laid out otherwise, which must give the same bits (attention's
    /// keys in blocks for keys in rows); `None` for a shape or an op with one layout.
    fn twin(_shape: &Self::Shape) -> Option<Self::Shape> {
        None
    }
    /// The cases of its NaN and infinity contract (stated in its kernels folder's `mod.rs`): special
    /// values planted where the contract says what reaches which output.
    fn specials() -> Vec<Special<Self::Shape>> {
        Vec::new()
    }
    /// The shapes the benches time (fewer when `quick`).
    fn bench_shapes(quick: bool) -> Vec<Self::Shape>;
    /// The PyTorch code that does the same call, or why the peer does not time this shape.
    fn peer(shape: &Self::Shape) -> Result<PeerCode, String>;
    /// A random small shape and input magnitude for the property tests; `pick(n)` is below n.
    fn random_case(pick: &mut dyn FnMut(usize) -> usize) -> (Self::Shape, f32);
}

/// Input magnitudes of the property tests: ordinary, large and very large values, or small ones.
pub(crate) fn random_magnitude(pick: &mut dyn FnMut(usize) -> usize, choices: &[f32]) -> f32 {
    match pick(choices.len() + 1) {
        i if i < choices.len() => choices[i],
        _ => 0.01 + 3.0 * pick(1000) as f32 / 1000.0,
    }
}

/// The floats of `O`'s output for `shape`.
pub fn output_len<O: Op>(shape: &O::Shape) -> usize {
    let (rows, width) = O::output(shape);
    rows * width
}

/// A shape as `name=value,...`, the form `--shape` takes and reports print (fields at their
/// default left out).
pub fn shape_text<O: Op>(shape: &O::Shape) -> String {
    O::FIELDS
        .iter()
        .zip(O::values(shape))
        .filter(|(name, v)| !O::DEFAULTS.contains(&(**name, *v)))
        .map(|(name, v)| format!("{name}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The shapes that meet a variant's `tiles` at `isa`: for each tile of size s (at that level), every
/// shape [`Op::straddle`] gives at k·s − 1, k·s and k·s + 1 for k = 1 and 2 (zero left out), without
/// repeats.
pub fn tile_shapes<O: Op>(tiles: &[Tile], isa: Isa) -> Vec<O::Shape> {
    let mut shapes: Vec<O::Shape> = Vec::new();
    for tile in tiles {
        let size = tile.at(isa);
        // Zero is the sweep's business: an empty dimension is an edge case of its own.
        let values = [size - 1, size, size + 1, 2 * size - 1, 2 * size, 2 * size + 1];
        for value in values.into_iter().filter(|&v| v > 0) {
            for shape in O::straddle(tile.dim, value) {
                if !shapes.contains(&shape) {
                    shapes.push(shape);
                }
            }
        }
    }
    shapes
}

/// Parses `name=value,...` (every field of `O`, in any order) into a valid shape.
pub fn parse_shape<O: Op>(text: &str) -> Result<O::Shape, String> {
    let fields = O::FIELDS;
    let mut values = vec![None; fields.len()];
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("`{item}` is not name=value"))?;
        let slot = fields
            .iter()
            .position(|f| *f == name.trim())
            .ok_or_else(|| format!("`{name}` is not a field of {} (fields: {})", O::NAME, fields.join(", ")))?;
        let value: usize = value
            .trim()
            .parse()
            .map_err(|_| format!("{name}: `{value}` is not a size"))?;
        values[slot] = Some(value);
    }
    let default = |f: &str| O::DEFAULTS.iter().find(|(name, _)| *name == f).map(|(_, v)| *v);
    let values: Vec<usize> = fields
        .iter()
        .zip(&values)
        .map(|(f, v)| {
            v.or_else(|| default(f))
                .ok_or_else(|| format!("field `{f}` is missing (fields: {})", fields.join(", ")))
        })
        .collect::<Result<_, _>>()?;
    O::shape(&values)
}

/// A case of an op's special-value contract: the inputs of `shape` drawn uniform in (−1, 1) from
/// `seed`, then `plants` written over them. What the contract asks of each output follows from the
/// float64 reference on those inputs ([`crate::check::opcheck::check_special`]): NaN where it is
/// NaN, the same infinity where it is infinite, and finite everywhere else.
#[derive(Debug, Clone)]
pub struct Special<S> {
    /// Its name, unique within the op: what `--special` takes.
    pub name: &'static str,
    /// What it plants and what the contract then says, for messages.
    pub about: &'static str,
    /// The call's shape.
    pub shape: S,
    /// The seed of the drawn inputs.
    pub seed: u64,
    /// The values written over the drawn inputs.
    pub plants: Vec<Plant>,
}

/// One value written into one input of a [`Special`] case.
#[derive(Debug, Clone, Copy)]
pub struct Plant {
    /// The input's name, as [`Op::buffers`] gives it.
    pub input: &'static str,
    /// The flat index in that buffer.
    pub at: usize,
    /// The value written.
    pub value: f32,
}

impl Plant {
    /// `value` at `at` of `input`.
    pub fn new(input: &'static str, at: usize, value: f32) -> Self {
        Self { input, at, value }
    }

    /// `value` at every index of `range` of `input`.
    pub fn fill(input: &'static str, range: Range<usize>, value: f32) -> Vec<Plant> {
        range.map(|at| Plant::new(input, at, value)).collect()
    }
}

/// One input buffer of a call, writable.
pub enum Buffer<'a> {
    /// Floats.
    F32(&'a mut [f32]),
    /// Token ids.
    Ids(&'a mut [u32]),
}

impl Buffer<'_> {
    /// The buffer's bits, to compare with after a call.
    pub fn bits(&self) -> Vec<u32> {
        match self {
            Buffer::F32(x) => x.iter().map(|v| v.to_bits()).collect(),
            Buffer::Ids(x) => x.to_vec(),
        }
    }

    /// The floats, if the buffer holds floats.
    pub fn floats(&self) -> Option<&[f32]> {
        match self {
            Buffer::F32(x) => Some(x),
            Buffer::Ids(_) => None,
        }
    }

    /// Writes `value` at `at`; false (and nothing written) if the buffer holds ids or is shorter.
    pub fn plant(&mut self, at: usize, value: f32) -> bool {
        match self {
            Buffer::F32(x) if at < x.len() => {
                x[at] = value;
                true
            }
            _ => false,
        }
    }

    /// Overwrites this buffer with `other`'s values (of the same kind and length) in place.
    pub fn copy_from(&mut self, other: &Buffer<'_>) {
        match (self, other) {
            (Buffer::F32(a), Buffer::F32(b)) => a.copy_from_slice(b),
            (Buffer::Ids(a), Buffer::Ids(b)) => a.copy_from_slice(b),
            _ => panic!("buffers of one op's inputs keep their kinds"),
        }
    }
}

/// What a check compares a variant's output with.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    /// The float64 reference, flat.
    pub f64: Vec<f64>,
    /// The plain float32 code on the same inputs, flat.
    pub f32: Vec<f32>,
    /// Per-element bound factors for [`Rule::DotProduct`] (Σ|a||b| + |bias|), else empty.
    pub magnitudes: Vec<f64>,
    /// The length of the longest sum behind an output element: the terms of each dot product (K + 1
    /// with the bias) for [`Rule::DotProduct`], the reduction's length for [`Rule::PlainF32`] (0
    /// for an elementwise op).
    pub terms: usize,
    /// For [`Rule::PlainF32`]: the scale, in output units, of the intermediate values whose rounding
    /// reaches the output when it exceeds the output's own (an op's condition on its inputs: the
    /// largest |x| / σ of a layernorm row times its gain, the largest attention score times the
    /// largest value); 0 for an op whose output's scale is that of its sums.
    pub conditioning: f64,
}

/// How a check's inputs are drawn beyond their magnitude m: each a named profile. An op takes the
/// profiles that mean something for it ([`Op::PROFILES`]); `checks/profiles.yaml` names those the gate
/// runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Uniform in (−m, m).
    Uniform,
    /// A large common offset, [`OFFSET`]·m plus uniform in (−m, m): |mean| ≫ std, which a one-pass
    /// variance or a softmax without its max subtracted does not survive.
    Offset,
    /// Uniform in (−m, m) with a few channels [`OUTLIER`] times larger, as trained GPT-2's residual
    /// stream has.
    Outliers,
    /// Rows alternately all negative, in (−2E, −E)·m, and past exp's overflow, in (E, 2E)·m, for
    /// E = [`EXTREME`].
    Extreme,
    /// Non-zero integers in −4..=4, so that every product and every sum of a call is exact in
    /// float32: the exact answer is representable, and any deviation from it is a bug (bound 0).
    Exact,
}

/// The common offset of [`Profile::Offset`], in units of the magnitude.
pub const OFFSET: f32 = 256.0;
/// How much larger the outlier channels of [`Profile::Outliers`] are.
pub const OUTLIER: f32 = 300.0;
/// The scale of [`Profile::Extreme`]: beyond exp's overflow at about 88.7.
pub const EXTREME: f32 = 100.0;

impl Profile {
    /// Every profile, in the order listings print them.
    pub const ALL: [Profile; 5] = [
        Profile::Uniform,
        Profile::Offset,
        Profile::Outliers,
        Profile::Extreme,
        Profile::Exact,
    ];

    /// Its name in manifests and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Uniform => "uniform",
            Profile::Offset => "offset",
            Profile::Outliers => "outliers",
            Profile::Extreme => "extreme",
            Profile::Exact => "exact",
        }
    }

    /// The profile named `name`, or an error listing the profiles.
    pub fn from_name(name: &str) -> Result<Profile, String> {
        Profile::ALL.into_iter().find(|p| p.name() == name).ok_or_else(|| {
            format!(
                "no profile named `{name}`; profiles are {}",
                Profile::ALL.map(Profile::name).join(", ")
            )
        })
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Seeded inputs: counter-based streams, one per named tensor, never all zeros.
pub struct Draw {
    seed: u64,
    magnitude: f32,
    profile: Profile,
}

impl Draw {
    /// Inputs for `seed` with values in (−magnitude, magnitude).
    pub fn new(seed: u64, magnitude: f32) -> Self {
        Self::profiled(seed, magnitude, Profile::Uniform)
    }

    /// Inputs for `seed` whose signals ([`Draw::signal`]) follow `profile`.
    pub fn profiled(seed: u64, magnitude: f32, profile: Profile) -> Self {
        Self {
            seed,
            magnitude,
            profile,
        }
    }

    /// The profile of the signals.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    fn key(&self, name: &str) -> u64 {
        self.seed ^ synthetic::fnv1a64(name.as_bytes())
    }

    /// `n` values of the stream `name`, uniform in (offset − width, offset + width).
    pub fn values(&self, name: &str, n: usize, offset: f32, width: f32) -> Vec<f32> {
        let key = self.key(name);
        (0..n as u64)
            .map(|i| offset + width * synthetic::symmetric_uniform(key, i) as f32)
            .collect()
    }

    /// `n` values of the stream `name`, uniform in (−magnitude, magnitude).
    pub fn uniform(&self, name: &str, n: usize) -> Vec<f32> {
        self.values(name, n, 0.0, self.magnitude)
    }

    /// `n` values of the stream `name` in rows of `width` channels, drawn as the profile says: the
    /// inputs an op's definition exposes to the profiles.
    pub fn signal(&self, name: &str, n: usize, width: usize) -> Vec<f32> {
        let (key, m, width) = (self.key(name), self.magnitude, width.max(1));
        let u = |i: usize| synthetic::symmetric_uniform(key, i as u64) as f32;
        match self.profile {
            Profile::Uniform => self.uniform(name, n),
            Profile::Offset => self.values(name, n, OFFSET * m, m),
            Profile::Outliers => {
                // One channel in sixteen, and always the seed's own channel, so that a narrow row has
                // one too.
                let outlier_key = key ^ synthetic::fnv1a64(b"outliers");
                let outlier = |c: usize| {
                    c == self.seed as usize % width || synthetic::draw(outlier_key, c as u64).is_multiple_of(16)
                };
                (0..n)
                    .map(|i| m * u(i) * if outlier(i % width) { OUTLIER } else { 1.0 })
                    .collect()
            }
            Profile::Extreme => (0..n)
                .map(|i| {
                    let v = EXTREME * m * (1.5 + 0.5 * u(i));
                    if (i / width).is_multiple_of(2) { -v } else { v }
                })
                .collect(),
            Profile::Exact => (0..n)
                .map(|i| {
                    let d = synthetic::draw(key, i as u64) % 8;
                    if d < 4 { d as f32 + 1.0 } else { 3.0 - d as f32 }
                })
                .collect(),
        }
    }

    /// `n` ids below `bound`.
    pub fn ids(&self, name: &str, n: usize, bound: usize) -> Vec<u32> {
        let key = self.key(name);
        (0..n as u64)
            .map(|i| (synthetic::draw(key, i) % bound as u64) as u32)
            .collect()
    }
}

/// The lengths every sweep runs around: 1..=17, and one below and above 32, 64 and 128, so that
/// every SIMD width (4, 8, 16 lanes), its tails and several whole vectors are met.
pub(crate) fn sweep_widths() -> Vec<usize> {
    let mut widths: Vec<usize> = (1..=17).collect();
    widths.extend([31, 33, 63, 65, 127, 129]);
    widths
}

/// GPT-2 small, whose sizes the bench shapes take.
pub(crate) const GPT2_SMALL: tkbench_reference::Config = tkbench_reference::Config::gpt2_small();

/// SmolLM2-135M, whose sizes the Llama ops' bench shapes take.
pub(crate) const SMOLLM2: tkbench_reference::LlamaConfig = tkbench_reference::LlamaConfig::smollm2_135m();

/// The token counts benched: a decode step (T = 1) and prefills of 128, 512 and 1024.
pub(crate) fn bench_token_counts(quick: bool) -> Vec<usize> {
    if quick { vec![1, 128] } else { vec![1, 128, 512, 1024] }
}

#[cfg(test)]
mod tests {
    use tkbench_kernels::attention::AttentionDims;

    use super::{Attention, Matmul, Op};
    use crate::ops::matmul::MatmulShape;

    #[test]
    fn matmul_768_cubed_is_2_k_m_n() {
        let w = Matmul::work(&MatmulShape::new(768, 768, 768, false));
        assert_eq!(w.flops, 2.0 * 768f64.powi(3));
        assert_eq!(w.bytes, 3.0 * 768.0 * 768.0 * 4.0);
    }

    #[test]
    fn causal_attention_counts_visible_pairs_only() {
        // T = 4 from position 0: 1 + 2 + 3 + 4 = 10 pairs; one decode step after 3: 4 pairs.
        let prefill = Attention::work(&AttentionDims::new(4, 0, 2, 8, 1.0));
        assert_eq!(prefill.flops, 4.0 * 16.0 * 10.0);
        let decode = Attention::work(&AttentionDims::new(1, 3, 2, 8, 1.0));
        assert_eq!(decode.flops, 4.0 * 16.0 * 4.0);
    }

    #[test]
    fn gpt2_small_prefill_is_dominated_by_the_matmuls() {
        let config = tkbench_reference::Config::gpt2_small();
        // About 2 FLOPs per parameter per token: 2 · (85M block weights + 38.6M LM head) ≈ 247 MFLOP.
        let w = crate::model::model_work(&config, 1, 0);
        assert!((w.flops / 1e6 - 247.0).abs() < 3.0, "{}", w.flops / 1e6);
    }
}
