//! C plugins: a shared library that exports `tkbench_plugin_v1` (declared in `include/tkbench.h` at
//! the repository root) is loaded, its table of variants read and checked, and each variant added to
//! a [`Registry`] as a variant of its op whose entry point calls the C function. The only module of
//! the workspace that holds `unsafe` code: loading a library, reading its table and calling its
//! functions, each use with the reason it is sound.
//!
//! What the C side may get wrong is refused here with an error naming the library and the entry: a
//! missing symbol, a null table, an ABI version other than [`ABI_VERSION`], a null or non-UTF-8
//! string, an op this tkbench does not have, a duplicate variant name, a null function, an ISA name
//! it does not know. What it may do wrong once called (crash, hang, write out of bounds) cannot be
//! refused in-process; the gate runs plugin variants in child processes for that (see `isolated`).
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tkbench_kernels::attention::{AttentionDims, KeyLayout};
use tkbench_kernels::embedding::EmbeddingDims;
use tkbench_kernels::layernorm::LayerNormDims;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::rmsnorm::RmsNormDims;
use tkbench_kernels::rope::RopeDims;
use tkbench_kernels::softmax::SoftmaxDims;
use tkbench_kernels::swiglu::SwigluDims;
use tkbench_kernels::{Isa, IsaSupport, Kind, Variant};

use crate::ops::{
    Attention, AttentionKernel, Embedding, EmbeddingKernel, Gelu, GeluKernel, LayerNorm, LayerNormKernel, Matmul,
    MatmulKernel, OPS, Op, RmsNorm, RmsNormKernel, Rope, RopeKernel, Softmax, SoftmaxKernel, Swiglu, SwigluKernel,
};
use crate::registry::{Origin, Registry};

/// The ABI version this tkbench reads (`TKBENCH_ABI_VERSION` in the header).
pub const ABI_VERSION: u32 = 1;

/// The symbol a plugin exports.
pub const SYMBOL: &str = "tkbench_plugin_v1";

/// More entries than this in one table is taken for a corrupt table, not read.
const MAX_VARIANTS: usize = 4096;

/// What a report records of a loaded plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// The library's file name.
    pub name: String,
    /// The path it was loaded from, as given.
    pub path: PathBuf,
    /// The SHA-256 of the file, in hex.
    pub sha256: String,
    /// Its variants added to the registry, as `op=name`.
    pub variants: Vec<String>,
    /// Its variants not added because this CPU lacks the ISA they need, as `op=name (isa)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// Why a plugin was refused.
#[derive(Debug)]
pub struct PluginError {
    /// The library's path.
    pub path: PathBuf,
    /// What is wrong.
    pub why: String,
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin {}: {}", self.path.display(), self.why)
    }
}

impl std::error::Error for PluginError {}

/// The libraries loaded by this process. They are never unloaded: the registry's entries call into
/// them for as long as the process runs.
static LOADED: Mutex<Vec<libloading::Library>> = Mutex::new(Vec::new());

/// `tkbench_variant` of the header.
#[repr(C)]
struct CVariant {
    op: *const c_char,
    name: *const c_char,
    /// The `tkbench_kernel` union: every member is a function pointer, so it has the layout of one.
    kernel: Option<unsafe extern "C" fn()>,
    isa: *const c_char,
}

/// `tkbench_plugin` of the header.
#[repr(C)]
struct CPlugin {
    abi_version: u32,
    count: usize,
    variants: *const CVariant,
}

#[repr(C)]
struct CEmbeddingDims {
    tokens: usize,
    channels: usize,
    vocab: usize,
    positions: usize,
    pos0: usize,
}

#[repr(C)]
struct CNormDims {
    rows: usize,
    channels: usize,
    eps: f32,
}

#[repr(C)]
struct CRowsDims {
    rows: usize,
    cols: usize,
}

#[repr(C)]
struct CAttentionDims {
    queries: usize,
    pos0: usize,
    heads: usize,
    kv_heads: usize,
    head_size: usize,
    scale: f32,
    stride: usize,
    kv_stride: usize,
    key_layout: u32,
}

#[repr(C)]
struct CMatmulDims {
    m: usize,
    k: usize,
    n: usize,
    ldb: usize,
}

#[repr(C)]
struct CGeluDims {
    len: usize,
}

#[repr(C)]
struct CRopeDims {
    rows: usize,
    pos0: usize,
    heads: usize,
    head_size: usize,
    positions: usize,
}

type CEmbeddingFn = unsafe extern "C" fn(*const CEmbeddingDims, *const u32, *const f32, *const f32, *mut f32);
type CLayerNormFn = unsafe extern "C" fn(*const CNormDims, *const f32, *const f32, *const f32, *mut f32);
type CRowsFn<D> = unsafe extern "C" fn(*const D, *const f32, *mut f32);
type CAttentionFn = unsafe extern "C" fn(*const CAttentionDims, *const f32, *const f32, *const f32, *mut f32);
type CMatmulFn = unsafe extern "C" fn(*const CMatmulDims, *const f32, *const f32, *const f32, *mut f32);
type CRmsNormFn = unsafe extern "C" fn(*const CNormDims, *const f32, *const f32, *mut f32);
type CRopeFn = unsafe extern "C" fn(*const CRopeDims, *const f32, *const f32, *const f32, *mut f32);

/// The SHA-256 of `bytes` in hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of the C string at `ptr` (without its NUL), or `None` for NULL.
///
/// # Safety
/// `ptr` is null or points at a NUL-terminated string that outlives the call.
unsafe fn c_bytes(ptr: *const c_char) -> Option<Vec<u8>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller guarantees it is a NUL-terminated string still alive.
    Some(unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec())
}

/// One entry of a plugin's table as read from the library, before it is checked: its strings'
/// bytes (`None` for NULL) and whether its function is non-NULL.
#[derive(Debug, Clone, Default)]
pub struct RawEntry {
    /// The op's name.
    pub op: Option<Vec<u8>>,
    /// The variant's name.
    pub name: Option<Vec<u8>>,
    /// Whether the function pointer is non-NULL.
    pub has_function: bool,
    /// The ISA it needs, if it names one.
    pub isa: Option<Vec<u8>>,
}

/// An entry that passed [`check_entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedEntry {
    /// Its op, one of [`OPS`].
    pub op: &'static str,
    /// Its name, new to the op.
    pub name: String,
    /// The ISA it needs.
    pub isa: Option<Isa>,
}

/// Checks every entry of a table against the ABI and against `registry` (whose names it must not
/// repeat): strings present and UTF-8, an op of [`OPS`], a name of ASCII letters, digits, '-' and
/// '_' that neither the op nor an earlier entry has, a function, a known ISA. The first entry at
/// fault is named, with its index.
pub fn check_entries(entries: &[RawEntry], registry: &Registry) -> Result<Vec<CheckedEntry>, String> {
    let text = |bytes: &Option<Vec<u8>>, what: &str| -> Result<String, String> {
        let bytes = bytes.as_ref().ok_or_else(|| format!("{what} is NULL"))?;
        String::from_utf8(bytes.clone()).map_err(|_| format!("{what} is not UTF-8"))
    };
    let mut checked: Vec<CheckedEntry> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let at = |why: String| format!("variant {i}: {why}");
        let op = text(&entry.op, "op").map_err(at)?;
        let name = text(&entry.name, "name").map_err(at)?;
        let at = |why: String| format!("variant {i} ({op}={name}): {why}");
        let Some(op_def) = OPS.iter().find(|o| o.name() == op) else {
            let ops: Vec<_> = OPS.iter().map(|o| o.name()).collect();
            return Err(at(format!("no op named `{op}`; ops are {}", ops.join(", "))));
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(at("a name is ASCII letters, digits, '-' and '_'".into()));
        }
        if !entry.has_function {
            return Err(at("its function is NULL".into()));
        }
        let isa = match &entry.isa {
            None => None,
            Some(_) => {
                let named = text(&entry.isa, "isa").map_err(at)?;
                Some(
                    isa_named(&named)
                        .ok_or_else(|| at(format!("no ISA named `{named}`; ISAs are avx2, avx512, neon")))?,
                )
            }
        };
        if checked.iter().any(|c| c.op == op_def.name() && c.name == name)
            || registry.find(op_def.name(), &name).is_some()
        {
            return Err(at(format!("{op} already has a variant named `{name}`")));
        }
        checked.push(CheckedEntry {
            op: op_def.name(),
            name,
            isa,
        });
    }
    Ok(checked)
}

/// The level an ISA name of the table means; `None` means the name is unknown.
fn isa_named(name: &str) -> Option<Isa> {
    Isa::from_name(name).filter(|isa| *isa != Isa::Scalar)
}

/// Loads the shared library at `path` and adds its variants to `registry`, each as a variant of its
/// op (kind `library`, run once: the library picks its own instructions). A variant that needs an ISA
/// this CPU lacks is not added and is listed in the record's `skipped`.
pub fn load(path: &Path, registry: &mut Registry) -> Result<PluginRecord, PluginError> {
    let fail = |why: String| PluginError {
        path: path.to_owned(),
        why,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read the file: {e}")))?;
    let sha256 = sha256_hex(&bytes);
    // SAFETY: loading a library runs its initialisers; the user named this library to be run, and
    // what it may do is what the gate's child processes exist to contain.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| fail(format!("cannot load it: {e}")))?;
    // SAFETY: the header declares the symbol as `const tkbench_plugin *tkbench_plugin_v1(void)`; the
    // type given here is that signature.
    let entry: libloading::Symbol<'_, unsafe extern "C" fn() -> *const CPlugin> =
        unsafe { library.get(SYMBOL.as_bytes()) }.map_err(|e| fail(format!("it does not export `{SYMBOL}`: {e}")))?;
    // SAFETY: a call of the plugin's entry point with the signature the header gives it.
    let table = unsafe { entry() };
    if table.is_null() {
        return Err(fail(format!("`{SYMBOL}` returned NULL")));
    }
    // SAFETY: non-null; the header requires the table to stay valid while the library is loaded,
    // and the library is never unloaded.
    let table = unsafe { &*table };
    if table.abi_version != ABI_VERSION {
        return Err(fail(format!(
            "its table is of ABI version {}; this tkbench reads version {ABI_VERSION}",
            table.abi_version
        )));
    }
    if table.count > MAX_VARIANTS {
        return Err(fail(format!(
            "its table claims {} variants (more than {MAX_VARIANTS}): not a valid table",
            table.count
        )));
    }
    if table.count > 0 && table.variants.is_null() {
        return Err(fail(format!("its table holds {} variants at NULL", table.count)));
    }
    let entries: &[CVariant] = if table.count == 0 {
        &[]
    } else {
        // SAFETY: non-null, `count` entries as the header's `tkbench_plugin` says, alive while the
        // library is loaded.
        unsafe { std::slice::from_raw_parts(table.variants, table.count) }
    };
    // Every entry is read, then all are checked before any is added, so that a bad table adds
    // nothing.
    let raw: Vec<RawEntry> = entries
        .iter()
        .map(|entry| RawEntry {
            // SAFETY: the header's strings are NUL-terminated and static while the library is
            // loaded (or NULL, which `c_bytes` reads as absent).
            op: unsafe { c_bytes(entry.op) },
            // SAFETY: as above.
            name: unsafe { c_bytes(entry.name) },
            has_function: entry.kernel.is_some(),
            // SAFETY: as above.
            isa: unsafe { c_bytes(entry.isa) },
        })
        .collect();
    let checked = check_entries(&raw, registry).map_err(fail)?;
    let parsed: Vec<_> = checked
        .into_iter()
        .zip(entries)
        .map(|(c, entry)| (c.op, c.name, entry.kernel.expect("checked: not NULL"), c.isa))
        .collect();
    let file_name = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut record = PluginRecord {
        name: file_name,
        path: path.to_owned(),
        sha256,
        variants: Vec::new(),
        skipped: Vec::new(),
    };
    let plugin: &'static str = Box::leak(record.name.clone().into_boxed_str());
    for (op, name, kernel, isa) in parsed {
        if let Some(isa) = isa.filter(|isa| !isa.is_available()) {
            record.skipped.push(format!("{op}={name} ({isa})"));
            continue;
        }
        let item = format!("{op}={name}");
        // A registered name lives as long as the process, as the library does.
        let name: &'static str = Box::leak(name.into_boxed_str());
        // SAFETY (of each `add`): `kernel` is the member of the header's union for `op`, so it has the
        // type of that op's function pointer; each function pointer type has the same size and ABI.
        unsafe { add(registry, plugin, op, name, kernel) }.map_err(|why| fail(format!("{item}: {why}")))?;
        record.variants.push(item);
    }
    LOADED.lock().unwrap_or_else(|e| e.into_inner()).push(library);
    Ok(record)
}

/// A plugin variant: kind `library`, run once at the library's own choice of instructions.
fn plugin_variant<K>(name: &'static str, kernel: K) -> Variant<K> {
    Variant::outside(name, Kind::Library, IsaSupport::Library, kernel)
}

/// Adds the C function `kernel` of the library `plugin` (its file name) to `registry` as the variant
/// `name` of the op named `op`. Its entry
/// point checks the dims against the slices (the op's contract, as tkbench's own kernels do), passes
/// the header's dims struct and the slices' pointers, and calls it.
///
/// # Safety
/// `kernel` is a function of the header's type for `op`, callable for as long as the process runs.
unsafe fn add(
    registry: &mut Registry,
    plugin: &'static str,
    op: &str,
    name: &'static str,
    kernel: unsafe extern "C" fn(),
) -> Result<(), String> {
    /// `kernel` as the function pointer type `T`.
    ///
    /// # Safety
    /// `kernel` is in fact of type `T`, a function pointer type.
    unsafe fn as_fn<T: Copy>(kernel: unsafe extern "C" fn()) -> T {
        assert_eq!(size_of::<T>(), size_of::<unsafe extern "C" fn()>());
        // SAFETY: same size (asserted), and the caller guarantees the pointer's real type is `T`.
        unsafe { std::mem::transmute_copy(&kernel) }
    }
    match op {
        Embedding::NAME => {
            // SAFETY: the caller guarantees `kernel` is a `tkbench_embedding_fn`.
            let f: CEmbeddingFn = unsafe { as_fn(kernel) };
            let call = move |d: &EmbeddingDims, ids: &[u32], wte: &[f32], wpe: &[f32], out: &mut [f32], _: Isa| {
                d.check(ids, wte, wpe, out);
                let c = CEmbeddingDims {
                    tokens: d.tokens,
                    channels: d.channels,
                    vocab: d.vocab,
                    positions: d.positions,
                    pos0: d.pos0,
                };
                // SAFETY: the slices hold what the dims say (checked above), so a kernel that keeps
                // to the header's contract reads and writes only them.
                unsafe { f(&c, ids.as_ptr(), wte.as_ptr(), wpe.as_ptr(), out.as_mut_ptr()) }
            };
            registry.add_from::<Embedding>(
                plugin_variant(name, EmbeddingKernel::from(call)),
                Origin::Plugin(plugin),
            )
        }
        LayerNorm::NAME => {
            // SAFETY: the caller guarantees `kernel` is a `tkbench_layernorm_fn`.
            let f: CLayerNormFn = unsafe { as_fn(kernel) };
            let call = move |d: &LayerNormDims, x: &[f32], gamma: &[f32], beta: &[f32], out: &mut [f32], _: Isa| {
                d.check(x, gamma, beta, out);
                let c = CNormDims {
                    rows: d.rows,
                    channels: d.channels,
                    eps: d.eps,
                };
                // SAFETY: as for embedding: the slices match the dims (checked).
                unsafe { f(&c, x.as_ptr(), gamma.as_ptr(), beta.as_ptr(), out.as_mut_ptr()) }
            };
            registry.add_from::<LayerNorm>(
                plugin_variant(name, LayerNormKernel::from(call)),
                Origin::Plugin(plugin),
            )
        }
        Softmax::NAME => {
            // SAFETY: the caller guarantees `kernel` is a `tkbench_softmax_fn`.
            let f: CRowsFn<CRowsDims> = unsafe { as_fn(kernel) };
            let call = move |d: &SoftmaxDims, x: &[f32], out: &mut [f32], _: Isa| {
                d.check(x, out);
                let c = CRowsDims {
                    rows: d.rows,
                    cols: d.cols,
                };
                // SAFETY: as for embedding: the slices match the dims (checked).
                unsafe { f(&c, x.as_ptr(), out.as_mut_ptr()) }
            };
            registry.add_from::<Softmax>(plugin_variant(name, SoftmaxKernel::from(call)), Origin::Plugin(plugin))
        }
        Attention::NAME => {
            // SAFETY: the caller guarantees `kernel` is a `tkbench_attention_fn`.
            let f: CAttentionFn = unsafe { as_fn(kernel) };
            let call = move |d: &AttentionDims, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32], _: Isa| {
                d.check(q, k, v, out);
                let c = CAttentionDims {
                    queries: d.queries,
                    pos0: d.pos0,
                    heads: d.heads,
                    kv_heads: d.kv_heads,
                    head_size: d.head_size,
                    scale: d.scale,
                    stride: d.stride,
                    kv_stride: d.kv_stride,
                    key_layout: match d.key_layout {
                        KeyLayout::Rows => 0,
                        KeyLayout::Blocks => 1,
                    },
                };
                // SAFETY: as for embedding: the slices match the dims and strides (checked).
                unsafe { f(&c, q.as_ptr(), k.as_ptr(), v.as_ptr(), out.as_mut_ptr()) }
            };
            registry.add_from::<Attention>(
                plugin_variant(name, AttentionKernel::from(call)),
                Origin::Plugin(plugin),
            )
        }
        Matmul::NAME => {
            // SAFETY: the caller guarantees `kernel` is a `tkbench_matmul_fn`.
            let f: CMatmulFn = unsafe { as_fn(kernel) };
            let call = move |d: &MatmulDims, a: &[f32], b: &[f32], bias: Option<&[f32]>, out: &mut [f32], _: Isa| {
                d.check(a, b, bias, out);
                let c = CMatmulDims {
                    m: d.m,
                    k: d.k,
                    n: d.n,
                    ldb: d.ldb,
                };
                let bias = bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
                // SAFETY: as for embedding: the slices match the dims (checked); a missing bias is
                // NULL, as the header says.
                unsafe { f(&c, a.as_ptr(), b.as_ptr(), bias, out.as_mut_ptr()) }
            };
            registry.add_from::<Matmul>(plugin_variant(name, MatmulKernel::from(call)), Origin::Plugin(plugin))
        }
        Gelu::NAME => {
            // SAFETY: the caller guarantees `kernel` is a `tkbench_gelu_fn`.
            let f: CRowsFn<CGeluDims> = unsafe { as_fn(kernel) };
            let call = move |x: &[f32], out: &mut [f32], _: Isa| {
                assert_eq!(x.len(), out.len(), "gelu: x and out differ in length");
                let c = CGeluDims { len: x.len() };
                // SAFETY: both slices hold `len` floats (checked).
                unsafe { f(&c, x.as_ptr(), out.as_mut_ptr()) }
            };
            registry.add_from::<Gelu>(plugin_variant(name, GeluKernel::from(call)), Origin::Plugin(plugin))
        }
        RmsNorm::NAME => {
            // SAFETY: the caller guarantees `kernel` is a `tkbench_rmsnorm_fn`.
            let f: CRmsNormFn = unsafe { as_fn(kernel) };
            let call = move |d: &RmsNormDims, x: &[f32], gamma: &[f32], out: &mut [f32], _: Isa| {
                d.check(x, gamma, out);
                let c = CNormDims {
                    rows: d.rows,
                    channels: d.channels,
                    eps: d.eps,
                };
                // SAFETY: as for embedding: the slices match the dims (checked).
                unsafe { f(&c, x.as_ptr(), gamma.as_ptr(), out.as_mut_ptr()) }
            };
            registry.add_from::<RmsNorm>(plugin_variant(name, RmsNormKernel::from(call)), Origin::Plugin(plugin))
        }
        Rope::NAME => {
            // SAFETY: the caller guarantees `kernel` is a `tkbench_rope_fn`.
            let f: CRopeFn = unsafe { as_fn(kernel) };
            let call = move |d: &RopeDims, x: &[f32], cos: &[f32], sin: &[f32], out: &mut [f32], _: Isa| {
                d.check(x, cos, sin, out);
                let half = d.head_size / 2;
                let c = CRopeDims {
                    rows: d.rows,
                    pos0: d.pos0,
                    heads: d.heads,
                    head_size: d.head_size,
                    positions: cos.len().checked_div(half).unwrap_or(0),
                };
                // SAFETY: as for embedding: the slices match the dims, and the tables hold
                // `positions` rows of HS/2 (checked).
                unsafe { f(&c, x.as_ptr(), cos.as_ptr(), sin.as_ptr(), out.as_mut_ptr()) }
            };
            registry.add_from::<Rope>(plugin_variant(name, RopeKernel::from(call)), Origin::Plugin(plugin))
        }
        Swiglu::NAME => {
            // SAFETY: the caller guarantees `kernel` is a `tkbench_swiglu_fn`.
            let f: CRowsFn<CRowsDims> = unsafe { as_fn(kernel) };
            let call = move |d: &SwigluDims, x: &[f32], out: &mut [f32], _: Isa| {
                d.check(x, out);
                let c = CRowsDims {
                    rows: d.rows,
                    cols: d.width,
                };
                // SAFETY: as for embedding: the slices match the dims (checked).
                unsafe { f(&c, x.as_ptr(), out.as_mut_ptr()) }
            };
            registry.add_from::<Swiglu>(plugin_variant(name, SwigluKernel::from(call)), Origin::Plugin(plugin))
        }
        other => Err(format!("no op named `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_has_a_function_type_in_the_header() {
        let header = std::fs::read_to_string(crate::check::golden::workspace_root().join("include/tkbench.h"))
            .expect("include/tkbench.h");
        assert!(header.contains(&format!("#define TKBENCH_ABI_VERSION {ABI_VERSION}u")));
        assert!(header.contains(&format!("{SYMBOL}(void)")));
        for op in OPS {
            let name = op.name();
            for needle in [
                format!("typedef struct tkbench_{name}_dims"),
                format!("(*tkbench_{name}_fn)"),
                format!("tkbench_{name}_fn {name};"),
            ] {
                assert!(header.contains(&needle), "include/tkbench.h lacks `{needle}`");
            }
        }
    }

    #[test]
    fn a_missing_file_is_refused_by_name() {
        let err = load(Path::new("/nonexistent/libnothing.so"), &mut Registry::builtin()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/libnothing.so"), "{err}");
        assert!(err.to_string().contains("cannot read"), "{err}");
    }
}
