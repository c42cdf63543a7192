//! The registry: every variant of every op, listed once. The harness and the command line know
//! variants only through this list; adding a variant is one file and one line here.

use crate::attention::AttentionDims;
use crate::embedding::EmbeddingDims;
use crate::layernorm::LayerNormDims;
use crate::matmul::MatmulDims;
use crate::softmax::SoftmaxDims;
use crate::{Isa, attention, embedding, gelu, layernorm, matmul, softmax};

/// The ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Token plus position embedding.
    Embedding,
    /// LayerNorm over rows.
    LayerNorm,
    /// Softmax over rows.
    Softmax,
    /// Causal multi-head attention.
    Attention,
    /// Matrix multiply with bias.
    Matmul,
    /// GELU, tanh approximation.
    Gelu,
}

impl Op {
    /// Every op.
    pub const ALL: [Op; 6] = [
        Op::Embedding,
        Op::LayerNorm,
        Op::Softmax,
        Op::Attention,
        Op::Matmul,
        Op::Gelu,
    ];

    /// The op's name, also its module and directory name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Embedding => "embedding",
            Op::LayerNorm => "layernorm",
            Op::Softmax => "softmax",
            Op::Attention => "attention",
            Op::Matmul => "matmul",
            Op::Gelu => "gelu",
        }
    }

    /// The op called `name`, if any.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// The technique of a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Plain loops, the readable twin.
    Scalar,
    /// pulp vector code.
    Simd,
    /// Cache-blocked (tiled, packed, or online), with pulp vector code inside.
    Blocked,
    /// An outside library.
    Library,
}

impl Kind {
    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Scalar => "scalar",
            Kind::Simd => "simd",
            Kind::Blocked => "blocked",
            Kind::Library => "library",
        }
    }
}

/// Which instruction-set levels a variant can be run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsaSupport {
    /// Plain Rust with no SIMD of its own: the level does not apply; it is run once, as `scalar`.
    Plain,
    /// pulp code: runs at every level the CPU has, each of which can be forced.
    Dispatch,
    /// The library picks its own level at run time; it cannot be forced.
    Library,
}

impl IsaSupport {
    /// The name used in listings.
    pub fn name(self) -> &'static str {
        match self {
            IsaSupport::Plain => "none",
            IsaSupport::Dispatch => "dispatch",
            IsaSupport::Library => "library",
        }
    }
}

/// embedding(dims, ids [T], wte [V, C], wpe [P, C], out [T, C], isa).
pub type EmbeddingFn = fn(&EmbeddingDims, &[u32], &[f32], &[f32], &mut [f32], Isa);
/// layernorm(dims, x [R, C], gamma [C], beta [C], out [R, C], isa).
pub type LayerNormFn = fn(&LayerNormDims, &[f32], &[f32], &[f32], &mut [f32], Isa);
/// softmax(dims, x [R, N], out [R, N], isa).
pub type SoftmaxFn = fn(&SoftmaxDims, &[f32], &mut [f32], Isa);
/// attention(dims, q [Tq, C], k [S, C], v [S, C], out [Tq, C], isa).
pub type AttentionFn = fn(&AttentionDims, &[f32], &[f32], &[f32], &mut [f32], Isa);
/// matmul(dims, a [M, K], b [K, N], bias [N], c [M, N], isa).
pub type MatmulFn = fn(&MatmulDims, &[f32], &[f32], Option<&[f32]>, &mut [f32], Isa);
/// gelu(x [N], out [N], isa).
pub type GeluFn = fn(&[f32], &mut [f32], Isa);

/// A variant's entry point, typed by op.
#[derive(Debug, Clone, Copy)]
pub enum Kernel {
    /// An embedding variant.
    Embedding(EmbeddingFn),
    /// A layernorm variant.
    LayerNorm(LayerNormFn),
    /// A softmax variant.
    Softmax(SoftmaxFn),
    /// An attention variant.
    Attention(AttentionFn),
    /// A matmul variant.
    Matmul(MatmulFn),
    /// A gelu variant.
    Gelu(GeluFn),
}

impl Kernel {
    /// The op this kernel implements.
    pub fn op(&self) -> Op {
        match self {
            Kernel::Embedding(_) => Op::Embedding,
            Kernel::LayerNorm(_) => Op::LayerNorm,
            Kernel::Softmax(_) => Op::Softmax,
            Kernel::Attention(_) => Op::Attention,
            Kernel::Matmul(_) => Op::Matmul,
            Kernel::Gelu(_) => Op::Gelu,
        }
    }
}

/// One registered variant.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// The variant's name within its op (`scalar`, `simd`, `blocked`, ...).
    pub name: &'static str,
    /// Its technique.
    pub kind: Kind,
    /// The levels it can run at.
    pub isa: IsaSupport,
    /// Its source file, relative to `crates/kernels/src`.
    pub file: &'static str,
    /// Its entry point.
    pub kernel: Kernel,
}

impl Variant {
    /// The op.
    pub fn op(&self) -> Op {
        self.kernel.op()
    }

    /// The levels to run it at on this CPU: every available level for pulp code, one run otherwise.
    pub fn levels(&self) -> Vec<Isa> {
        match self.isa {
            IsaSupport::Dispatch => Isa::available(),
            IsaSupport::Plain | IsaSupport::Library => vec![Isa::Scalar],
        }
    }

    /// The level column of reports and tables for a call at `isa`: the level for a dispatching
    /// variant, `none` or `library` for the others (which ignore `isa`).
    pub fn label(&self, isa: Isa) -> &'static str {
        match self.isa {
            IsaSupport::Dispatch => isa.name(),
            other => other.name(),
        }
    }

    /// What actually ran when this variant was called with `isa`, for reports.
    pub fn ran_at(&self, isa: Isa) -> String {
        match self.isa {
            IsaSupport::Dispatch => isa.name().to_owned(),
            IsaSupport::Plain => "none (plain Rust)".to_owned(),
            IsaSupport::Library => format!("library's choice (best available: {})", Isa::best()),
        }
    }
}

macro_rules! variant {
    ($op:ident, $module:ident, $name:ident, $kind:ident, $isa:ident) => {
        Variant {
            name: stringify!($name),
            kind: Kind::$kind,
            isa: IsaSupport::$isa,
            file: concat!(stringify!($module), "/", stringify!($name), ".rs"),
            kernel: Kernel::$op($module::$name::$module),
        }
    };
}

/// Every variant, by op.
pub static VARIANTS: &[Variant] = &[
    variant!(Embedding, embedding, scalar, Scalar, Plain),
    variant!(Embedding, embedding, simd, Simd, Dispatch),
    variant!(Embedding, embedding, blocked, Blocked, Dispatch),
    variant!(LayerNorm, layernorm, scalar, Scalar, Plain),
    variant!(LayerNorm, layernorm, simd, Simd, Dispatch),
    variant!(LayerNorm, layernorm, blocked, Blocked, Dispatch),
    variant!(Softmax, softmax, scalar, Scalar, Plain),
    variant!(Softmax, softmax, simd, Simd, Dispatch),
    variant!(Softmax, softmax, blocked, Blocked, Dispatch),
    variant!(Attention, attention, scalar, Scalar, Plain),
    variant!(Attention, attention, simd, Simd, Dispatch),
    variant!(Attention, attention, blocked, Blocked, Dispatch),
    variant!(Matmul, matmul, scalar, Scalar, Plain),
    variant!(Matmul, matmul, simd, Simd, Dispatch),
    variant!(Matmul, matmul, blocked, Blocked, Dispatch),
    variant!(Matmul, matmul, matrixmultiply, Library, Library),
    variant!(Gelu, gelu, scalar, Scalar, Plain),
    variant!(Gelu, gelu, simd, Simd, Dispatch),
];

/// The fastest variant of each op on long inputs, as measured by the benches (PERFORMANCE.md): the
/// set that `fastest` names on the command line.
pub static FASTEST: [(Op, &str); 6] = [
    (Op::Embedding, "simd"),
    (Op::LayerNorm, "simd"),
    (Op::Softmax, "simd"),
    (Op::Attention, "blocked"),
    (Op::Matmul, "blocked"),
    (Op::Gelu, "simd"),
];

/// The fastest variant of `op` ([`FASTEST`]).
pub fn fastest(op: Op) -> &'static Variant {
    let name = FASTEST
        .iter()
        .find(|(o, _)| *o == op)
        .map(|(_, name)| *name)
        .expect("every op is in FASTEST");
    find(op, name).expect("FASTEST names registered variants")
}

/// Every variant.
pub fn variants() -> &'static [Variant] {
    VARIANTS
}

/// The variants of `op`.
pub fn variants_of(op: Op) -> impl Iterator<Item = &'static Variant> {
    VARIANTS.iter().filter(move |v| v.op() == op)
}

/// The variant `name` of `op`.
pub fn find(op: Op, name: &str) -> Option<&'static Variant> {
    variants_of(op).find(|v| v.name == name)
}
