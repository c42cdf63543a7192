//! What a registered variant is: its name, technique, ISA support, source file and entry point. Each
//! op's `mod.rs` lists its variants in a `VARIANTS` table, one [`variant!`](crate::variant) line per
//! variant file, and names its fastest variant in `FASTEST`; the harness knows variants only through
//! those tables.

use crate::Isa;

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

    /// The levels to run a variant of this support at on this CPU: every available level for pulp
    /// code, one run otherwise.
    pub fn levels(self) -> Vec<Isa> {
        match self {
            IsaSupport::Dispatch => Isa::available(),
            IsaSupport::Plain | IsaSupport::Library => vec![Isa::Scalar],
        }
    }

    /// The level column of reports and tables for a call at `isa`: the level for a dispatching
    /// variant, `none` or `library` for the others (which ignore `isa`).
    pub fn label(self, isa: Isa) -> &'static str {
        match self {
            IsaSupport::Dispatch => isa.name(),
            other => other.name(),
        }
    }

    /// What actually ran when a variant of this support was called with `isa`, for reports.
    pub fn ran_at(self, isa: Isa) -> String {
        match self {
            IsaSupport::Dispatch => isa.name().to_owned(),
            IsaSupport::Plain => "none (plain Rust)".to_owned(),
            IsaSupport::Library => format!("library's choice (best available: {})", Isa::best()),
        }
    }
}

/// What a [`Tile`]'s size is.
#[derive(Debug, Clone, Copy)]
pub enum TileSize {
    /// A number of elements (floats, rows, keys, heads: whatever the dimension counts).
    Elements(usize),
    /// A number of vectors of the level's width: that many × the level's lanes elements.
    Vectors(usize),
    /// A number of elements chosen per machine (a cache block the tuner picks), read when the gate
    /// draws its shapes, so that the shapes meet the size this process runs with.
    Configured(fn() -> usize),
}

/// A size a variant's code branches on, along one dimension of its op's calls: a tile, a cache block,
/// a group or an unrolled run of vectors. The gate meets each at k·size − 1, k·size and k·size + 1,
/// for k = 1 and 2, at every level, so that the shapes follow the code rather than a hand list.
#[derive(Debug, Clone, Copy)]
pub struct Tile {
    /// The dimension: a field of the op's shapes, or a name its definition gives (attention's `keys`).
    pub dim: &'static str,
    /// The size.
    pub size: TileSize,
}

impl Tile {
    /// A tile of `size` elements along `dim`.
    pub const fn elements(dim: &'static str, size: usize) -> Self {
        Tile {
            dim,
            size: TileSize::Elements(size),
        }
    }

    /// A tile of `size` vectors along `dim`.
    pub const fn vectors(dim: &'static str, size: usize) -> Self {
        Tile {
            dim,
            size: TileSize::Vectors(size),
        }
    }

    /// A tile along `dim` whose size in elements `size` gives when asked: a parameter chosen per
    /// machine.
    pub const fn configured(dim: &'static str, size: fn() -> usize) -> Self {
        Tile {
            dim,
            size: TileSize::Configured(size),
        }
    }

    /// The tile's size in elements at `isa`.
    pub fn at(&self, isa: Isa) -> usize {
        match self.size {
            TileSize::Elements(size) => size,
            TileSize::Vectors(size) => size * isa.lanes(),
            TileSize::Configured(size) => size(),
        }
    }
}

/// One registered variant of an op whose entry points have the type `K` (the op's `Kernel`).
#[derive(Debug, Clone, Copy)]
pub struct Variant<K> {
    /// The variant's name within its op (`scalar`, `simd`, `blocked`, ...).
    pub name: &'static str,
    /// Its technique.
    pub kind: Kind,
    /// The levels it can run at.
    pub isa: IsaSupport,
    /// Its source file, relative to `crates/kernels/src` (empty for a variant from outside).
    pub file: &'static str,
    /// The sizes its code branches on (its file's `TILES`, empty for code that branches only on the
    /// vector width).
    pub tiles: &'static [Tile],
    /// Its entry point.
    pub kernel: K,
}

impl<K> Variant<K> {
    /// A variant from outside this crate, with no source file here and no declared tiles.
    pub const fn outside(name: &'static str, kind: Kind, isa: IsaSupport, kernel: K) -> Self {
        Variant {
            name,
            kind,
            isa,
            file: "",
            tiles: &[],
            kernel,
        }
    }

    /// The same variant with its entry point passed through `f` (to another type of entry point).
    pub fn map<L>(&self, f: impl FnOnce(&K) -> L) -> Variant<L> {
        Variant {
            name: self.name,
            kind: self.kind,
            isa: self.isa,
            file: self.file,
            tiles: self.tiles,
            kernel: f(&self.kernel),
        }
    }

    /// The levels to run it at on this CPU ([`IsaSupport::levels`]).
    pub fn levels(&self) -> Vec<Isa> {
        self.isa.levels()
    }

    /// The level column for a call at `isa` ([`IsaSupport::label`]).
    pub fn label(&self, isa: Isa) -> &'static str {
        self.isa.label(isa)
    }

    /// What actually ran at `isa` ([`IsaSupport::ran_at`]).
    pub fn ran_at(&self, isa: Isa) -> String {
        self.isa.ran_at(isa)
    }
}

/// One line of an op's `VARIANTS` table: `variant!(op_module, variant_file, Kind, IsaSupport)`, with
/// `, tiles` at the end when the variant's file declares the sizes its code branches on in `TILES`;
/// the entry point is the function named like the op in the variant's file.
#[macro_export]
macro_rules! variant {
    ($module:ident, $name:ident, $kind:ident, $isa:ident) => {
        $crate::variant!(@ $module, $name, $kind, $isa, &[])
    };
    ($module:ident, $name:ident, $kind:ident, $isa:ident, tiles) => {
        $crate::variant!(@ $module, $name, $kind, $isa, self::$name::TILES)
    };
    (@ $module:ident, $name:ident, $kind:ident, $isa:ident, $tiles:expr) => {
        $crate::registry::Variant {
            name: stringify!($name),
            kind: $crate::registry::Kind::$kind,
            isa: $crate::registry::IsaSupport::$isa,
            file: concat!(stringify!($module), "/", stringify!($name), ".rs"),
            tiles: $tiles,
            kernel: self::$name::$module,
        }
    };
}
