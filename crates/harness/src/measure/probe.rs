//! The machine probe: what this CPU is (brand, ISA flags, caches, cores), what built the code
//! (rustc, target features, commit), and what it can do, measured: the FMA peak at every ISA level
//! and the memory bandwidth of L1-, L2- and L3-resident and DRAM-sized working sets, on one thread and on
//! all of them. The measurements time themselves (best of several runs), since they are properties
//! of the machine rather than benchmarks of our code.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pulp::{Simd, WithSimd};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tkbench_kernels::Isa;

use crate::aligned::{AlignedVec, Pages};

/// One cache level.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cache {
    /// 1, 2, 3.
    pub level: u32,
    /// Data, Instruction or Unified.
    pub kind: String,
    /// Size in bytes (per core for L1 and L2 on most CPUs).
    pub bytes: u64,
}

/// What the machine and the build are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// A stable name for the reports folder: CPU brand and logical CPU count.
    pub machine_id: String,
    /// The CPU brand string.
    pub cpu: String,
    /// The CPU vendor (`GenuineIntel`, `AuthenticAMD`, ...); empty where unknown.
    #[serde(default)]
    pub vendor: String,
    /// The CPU family CPUID reports (extended family folded in); 0 where unknown.
    #[serde(default)]
    pub cpu_family: u32,
    /// The CPU model CPUID reports (extended model folded in); 0 where unknown.
    #[serde(default)]
    pub cpu_model: u32,
    /// The hypervisor the CPU reports running under (`KVM`, ...); empty on bare metal or where
    /// unknown. A guest's caches and bandwidths are what the host gives it.
    #[serde(default)]
    pub hypervisor: String,
    /// Logical CPUs available to this process.
    pub logical_cpus: usize,
    /// ISA levels tkbench can run here.
    pub isa_levels: Vec<String>,
    /// The SIMD-related flags the CPU reports.
    pub cpu_flags: Vec<String>,
    /// The cache hierarchy.
    pub caches: Vec<Cache>,
    /// `rustc --version`.
    pub rustc: String,
    /// Target features enabled at compile time (runtime dispatch adds the wider levels).
    pub target_features: Vec<String>,
    /// The git commit of the code measured, with `-dirty` when the work tree had changes.
    pub commit: String,
    /// When the probe ran, UTC, RFC 3339.
    pub date: String,
    /// Linux's transparent huge page mode (`always`, `madvise` or `never`), which decides whether
    /// the model's weights and KV cache get huge pages; empty where unknown.
    #[serde(default)]
    pub transparent_huge_pages: String,
}

/// A measured FMA peak.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FmaPeak {
    /// The ISA level.
    pub isa: String,
    /// Threads used.
    pub threads: usize,
    /// Billions of FLOPs per second (an FMA is 2 FLOPs).
    pub gflops: f64,
}

/// A measured bandwidth.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bandwidth {
    /// `l1`, `l2`, `l3` (working set within that cache) or `dram` (far beyond the last-level cache).
    pub level: String,
    /// Threads used.
    pub threads: usize,
    /// Bytes per thread's working set.
    pub working_set_bytes: u64,
    /// Billions of bytes per second (GB = 1e9 bytes), STREAM triad convention (3 arrays × 4 bytes
    /// per element, no write-allocate traffic counted).
    pub gb_per_s: f64,
    /// Whether the arrays were on 2 MiB huge pages. A DRAM-sized working set is measured on small
    /// and on huge pages (the model's weights and caches use huge pages where the system grants
    /// them) and the higher bandwidth is kept.
    #[serde(default)]
    pub huge_pages: bool,
    /// The bandwidth of reads alone on the triad's two input arrays (8 bytes per element), in the
    /// same pages; `None` in reports from before it was measured. Above `gb_per_s` where writing a
    /// line costs more than reading one, as it does wherever a line written is first read.
    #[serde(default)]
    pub read_gb_per_s: Option<f64>,
}

/// One point of the probe's bandwidth curve: a one-thread triad on one working set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CurvePoint {
    /// Bytes of the triad's three arrays.
    pub working_set_bytes: u64,
    /// Billions of bytes per second, as in [`Bandwidth`].
    pub gb_per_s: f64,
}

/// A cache level as the probe finds it: where the one-thread bandwidth curve falls from it to the
/// next level.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct MeasuredCache {
    /// 1, 2, 3.
    pub level: u32,
    /// The working set (one thread's, in bytes) at which the bandwidth has fallen halfway (on a log
    /// scale) through its fall to the next level: the capacity one thread sees. For a cache that
    /// its cores share, it is the whole cache's; for one exclusive of the level below, it includes
    /// that.
    pub bytes: u64,
    /// The size the CPU reports for this level, when it reports one.
    #[serde(default)]
    pub reported_bytes: Option<u64>,
    /// The one-thread bandwidth an octave below the capacity.
    pub gb_per_s: f64,
}

/// The measured limits of the machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Limits {
    /// FMA peaks per level and thread count.
    pub fma: Vec<FmaPeak>,
    /// Bandwidths per working set and thread count.
    pub bandwidth: Vec<Bandwidth>,
    /// The one-thread bandwidth curve the caches were found from, by growing working set.
    #[serde(default)]
    pub curve: Vec<CurvePoint>,
    /// The cache levels found on the curve; the level triads in `bandwidth` fill a share of these.
    #[serde(default)]
    pub caches: Vec<MeasuredCache>,
}

impl Limits {
    /// The highest FMA peak measured on `threads` threads, of any level (0 if none was).
    pub fn peak_gflops(&self, threads: usize) -> f64 {
        self.fma
            .iter()
            .filter(|p| p.threads == threads)
            .map(|p| p.gflops)
            .fold(0.0, f64::max)
    }

    /// The one-thread bandwidth at a working set of `bytes`, read off the probe's curve: the highest
    /// bandwidth measured at this working set or any larger one (a larger working set never runs
    /// faster, so a lower reading is noise), interpolated on log scales between points and held
    /// flat past the ends. `None` for limits without a curve.
    pub fn curve_gb_per_s(&self, bytes: f64) -> Option<f64> {
        let envelope = envelope(&self.curve);
        let (first, last) = (envelope.first()?, envelope.last()?);
        if bytes <= first.0 {
            return Some(first.1);
        }
        if bytes >= last.0 {
            return Some(last.1);
        }
        let i = envelope.partition_point(|p| p.0 <= bytes);
        let ((x0, y0), (x1, y1)) = (envelope[i - 1], envelope[i]);
        let t = (bytes.ln() - x0.ln()) / (x1.ln() - x0.ln());
        Some((y0.ln() + t * (y1.ln() - y0.ln())).exp())
    }

    /// How much faster reads alone ran than the triad at `level` on `threads` threads: 1 where the
    /// probe did not measure reads (reports from before it did) or they ran no faster.
    pub fn read_over_triad(&self, level: &str, threads: usize) -> f64 {
        self.bandwidth
            .iter()
            .find(|b| b.level == level && b.threads == threads)
            .and_then(|b| b.read_gb_per_s.map(|read| read / b.gb_per_s))
            .unwrap_or(1.0)
            .max(1.0)
    }

    /// The bandwidth of `level` on `threads` threads, if measured.
    pub fn gb_per_s(&self, level: &str, threads: usize) -> Option<f64> {
        self.bandwidth
            .iter()
            .find(|b| b.level == level && b.threads == threads)
            .map(|b| b.gb_per_s)
    }
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The civil date (y, m, d) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for ch in text.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// The CPU's name as a slug, as its maker would say it: the brand string without trademark marks,
/// core counts, clock speeds and the words "CPU" and "Processor", which name nothing. "Intel(R)
/// Xeon(R) Processor" is `intel-xeon`, "AMD EPYC 9B14 96-Core Processor" `amd-epyc-9b14`.
fn cpu_name(brand: &str) -> String {
    let brand = brand.split('@').next().unwrap_or_default();
    let mut words = Vec::new();
    for word in brand.split_whitespace() {
        let mut word = word.to_owned();
        for mark in ["(R)", "(r)", "(TM)", "(tm)", "®", "™"] {
            word = word.replace(mark, "");
        }
        let lower = word.to_ascii_lowercase();
        let core_count = lower
            .strip_suffix("-core")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if word.is_empty() || core_count || lower == "cpu" || lower == "processor" {
            continue;
        }
        words.push(word);
    }
    match slug(&words.join(" ")) {
        name if name.is_empty() => "unknown-cpu".to_owned(),
        name => name,
    }
}

/// The microarchitecture of an x86 server CPU's family and model, for the ones this project has
/// met or is likely to: a guest's brand string may name only the line ("AMD EPYC"), and two
/// generations with different caches and FMA widths must not share a reports folder.
fn microarchitecture(vendor: &str, family: u32, model: u32) -> Option<&'static str> {
    Some(match (vendor, family, model) {
        ("AuthenticAMD", 0x17, 0x00..=0x0f) => "zen1",
        ("AuthenticAMD", 0x17, 0x30..=0x3f) => "zen2",
        ("AuthenticAMD", 0x19, 0x00..=0x0f) => "zen3",
        ("AuthenticAMD", 0x19, 0x10..=0x1f | 0xa0..=0xaf) => "zen4",
        ("AuthenticAMD", 0x1a, 0x00..=0x1f) => "zen5",
        ("GenuineIntel", 6, 0x55) => "skylake-sp",
        ("GenuineIntel", 6, 0x6a | 0x6c) => "ice-lake-sp",
        ("GenuineIntel", 6, 0x8f) => "sapphire-rapids",
        ("GenuineIntel", 6, 0xcf) => "emerald-rapids",
        ("GenuineIntel", 6, 0xad | 0xae) => "granite-rapids",
        _ => return None,
    })
}

/// The machine id: the CPU's name and, when the name carries no model number, its
/// microarchitecture (or CPUID family and model in hex), then the logical CPU count.
fn machine_id(brand: &str, vendor: &str, family: u32, model: u32, logical_cpus: usize) -> String {
    let name = cpu_name(brand);
    let generation = match microarchitecture(vendor, family, model) {
        _ if name.chars().any(|c| c.is_ascii_digit()) => String::new(),
        Some(arch) => format!("-{arch}"),
        None if family > 0 => format!("-{family:x}h-{model:x}h"),
        None => String::new(),
    };
    format!("{name}{generation}-{logical_cpus}cpu")
}

/// What the CPUID instruction says of this CPU.
#[derive(Debug, Default)]
struct Cpuid {
    brand: Option<String>,
    vendor: String,
    hypervisor: String,
    /// SIMD flags under the names Linux's /proc/cpuinfo gives them.
    flags: Vec<String>,
    caches: Vec<Cache>,
    /// The family and model CPUID gives, with their extended fields folded in.
    family: u32,
    model: u32,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn cpuid() -> Cpuid {
    use raw_cpuid::{CacheType, CpuId, Hypervisor};
    let id = CpuId::new();
    let mut flags = Vec::new();
    let mut flag = |has: bool, name: &str| {
        if has {
            flags.push(name.to_owned());
        }
    };
    let (mut family, mut model) = (0, 0);
    if let Some(f) = id.get_feature_info() {
        (family, model) = (u32::from(f.family_id()), u32::from(f.model_id()));
        flag(f.has_sse42(), "sse4_2");
        flag(f.has_avx(), "avx");
        flag(f.has_fma(), "fma");
    }
    if let Some(f) = id.get_extended_feature_info() {
        flag(f.has_avx2(), "avx2");
        flag(f.has_avx512f(), "avx512f");
        flag(f.has_avx512bw(), "avx512bw");
        flag(f.has_avx512cd(), "avx512cd");
        flag(f.has_avx512dq(), "avx512dq");
        flag(f.has_avx512vl(), "avx512vl");
    }
    let caches = id
        .get_cache_parameters()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let kind = match c.cache_type() {
                CacheType::Data => "Data",
                CacheType::Instruction => "Instruction",
                CacheType::Unified => "Unified",
                _ => return None,
            };
            let bytes = c.associativity() * c.physical_line_partitions() * c.coherency_line_size() * c.sets();
            Some(Cache {
                level: u32::from(c.level()),
                kind: kind.to_owned(),
                bytes: bytes as u64,
            })
        })
        .collect();
    let hypervisor = id.get_hypervisor_info().map(|h| match h.identify() {
        Hypervisor::KVM => "KVM".to_owned(),
        Hypervisor::Xen => "Xen".to_owned(),
        Hypervisor::VMware => "VMware".to_owned(),
        Hypervisor::HyperV => "Hyper-V".to_owned(),
        Hypervisor::QEMU => "QEMU".to_owned(),
        other => format!("{other:?}"),
    });
    Cpuid {
        brand: id.get_processor_brand_string().map(|b| b.as_str().trim().to_owned()),
        vendor: id.get_vendor_info().map(|v| v.as_str().to_owned()).unwrap_or_default(),
        hypervisor: hypervisor.unwrap_or_default(),
        flags,
        caches,
        family,
        model,
    }
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn cpuid() -> Cpuid {
    Cpuid::default()
}

/// The cache hierarchy: CPUID's, or where it gives none, what Linux's sysfs lists for CPU 0.
fn caches() -> Vec<Cache> {
    let from_cpuid = cpuid().caches;
    if from_cpuid.is_empty() {
        sysfs_caches()
    } else {
        from_cpuid
    }
}

/// The caches Linux's sysfs lists for CPU 0.
fn sysfs_caches() -> Vec<Cache> {
    let mut caches = Vec::new();
    for index in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
        let read = |f: &str| {
            std::fs::read_to_string(format!("{dir}/{f}"))
                .ok()
                .map(|s| s.trim().to_owned())
        };
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size")) else {
            break;
        };
        let bytes = match size.strip_suffix('K') {
            Some(k) => k.parse::<u64>().unwrap_or(0) * 1024,
            None => size
                .strip_suffix('M')
                .and_then(|m| m.parse::<u64>().ok())
                .map_or(0, |m| m << 20),
        };
        caches.push(Cache {
            level: level.parse().unwrap_or(0),
            kind,
            bytes,
        });
    }
    caches
}

/// What this machine and build are.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    let id = cpuid();
    let cpu = id
        .brand
        .clone()
        .filter(|b| !b.is_empty())
        .or_else(|| field("model name"))
        .or_else(|| command_output("sysctl", &["-n", "machdep.cpu.brand_string"]))
        .unwrap_or_else(|| "unknown CPU".into());
    let simd_flags = [
        "sse4_2",
        "avx",
        "avx2",
        "fma",
        "avx512f",
        "avx512bw",
        "avx512cd",
        "avx512dq",
        "avx512vl",
        "avx512_bf16",
        "asimd",
        "sve",
    ];
    // CPUID's flags where it has them; the kernel's list adds what it knows beyond (bf16, and the
    // flags of other architectures).
    let flags = field("flags").or_else(|| field("Features")).unwrap_or_default();
    let mut cpu_flags = id.flags.clone();
    for f in flags.split_whitespace().filter(|f| simd_flags.contains(f)) {
        if !cpu_flags.iter().any(|have| have == f) {
            cpu_flags.push(f.to_owned());
        }
    }
    let logical_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut target_features = Vec::new();
    macro_rules! feature {
        ($($f:tt),*) => {$(if cfg!(target_feature = $f) { target_features.push($f.to_owned()); })*};
    }
    feature!("sse2", "sse4.2", "avx", "avx2", "fma", "avx512f", "neon");
    let commit = command_output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        command_output("git", &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Machine {
        machine_id: machine_id(&cpu, &id.vendor, id.family, id.model, logical_cpus),
        cpu_family: id.family,
        cpu_model: id.model,
        cpu,
        vendor: id.vendor,
        hypervisor: id.hypervisor,
        logical_cpus,
        isa_levels: Isa::available().iter().map(|l| l.name().to_owned()).collect(),
        cpu_flags,
        caches: caches(),
        rustc: command_output(
            &std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()),
            &["--version"],
        )
        .unwrap_or_else(|| "unknown".into()),
        target_features,
        commit: if dirty { format!("{commit}-dirty") } else { commit },
        date: utc_now(),
        transparent_huge_pages: transparent_huge_pages(),
    }
}

/// The bracketed choice of `/sys/kernel/mm/transparent_hugepage/enabled`, e.g. `madvise` from
/// `always [madvise] never`; empty where the file is missing or unreadable.
fn transparent_huge_pages() -> String {
    let modes = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    chosen(&modes).to_owned()
}

/// The bracketed word of a sysfs choice list, or "" when none is.
fn chosen(modes: &str) -> &str {
    modes
        .split_whitespace()
        .find_map(|m| m.strip_prefix('[')?.strip_suffix(']'))
        .unwrap_or_default()
}

/// Independent FMA chains: enough to cover the latency of two FMA units, few enough for 16 registers.
const CHAINS: usize = 12;

struct FmaLoop {
    iterations: usize,
}

impl WithSimd for FmaLoop {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        let mut acc = [s.splat_f32s(1.0); CHAINS];
        let (a, b) = (s.splat_f32s(0.999_999), s.splat_f32s(1e-7));
        for _ in 0..self.iterations {
            for x in acc.iter_mut() {
                *x = s.mul_add_e_f32s(*x, a, b);
            }
        }
        let mut total = s.splat_f32s(0.0);
        for x in acc {
            total = s.add_f32s(total, x);
        }
        s.reduce_sum_f32s(total)
    }
}

/// Best-of-`runs` seconds of `f`.
fn best_of(runs: usize, mut f: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn fma_peak(isa: Isa, threads: usize, budget: Duration) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    // Size the loop to about a tenth of the budget on one thread.
    let mut iterations = 1 << 14;
    loop {
        let start = Instant::now();
        black_box(isa.run(FmaLoop { iterations }));
        if start.elapsed() > budget / 10 || iterations > 1 << 30 {
            break;
        }
        iterations *= 2;
    }
    let seconds = best_of(5, || {
        pool.install(|| {
            (0..threads).into_par_iter().for_each(|_| {
                black_box(isa.run(FmaLoop { iterations }));
            })
        });
    });
    let flops = 2.0 * (isa.lanes() * CHAINS * iterations * threads) as f64;
    flops / seconds / 1e9
}

struct Triad<'a> {
    a: &'a mut [f32],
    b: &'a [f32],
    c: &'a [f32],
}

impl WithSimd for Triad<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let k = s.splat_f32s(3.0);
        let (a, a_tail) = S::as_mut_simd_f32s(self.a);
        let (b, b_tail) = S::as_simd_f32s(self.b);
        let (c, c_tail) = S::as_simd_f32s(self.c);
        for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
            *a = s.mul_add_e_f32s(k, c, b);
        }
        for ((a, &b), &c) in a_tail.iter_mut().zip(b_tail).zip(c_tail) {
            *a = b + 3.0 * c;
        }
    }
}

/// A sum over the triad's two input arrays: the bandwidth of reads alone. Eight accumulators, so that
/// the adds' latency does not bound an L1-sized working set.
struct ReadSum<'a> {
    b: &'a [f32],
    c: &'a [f32],
}

impl WithSimd for ReadSum<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        const LANES: usize = 4;
        let mut acc = [s.splat_f32s(0.0); 2 * LANES];
        let (b, b_tail) = S::as_simd_f32s(self.b);
        let (c, c_tail) = S::as_simd_f32s(self.c);
        let (b_blocks, b_rest) = b.split_at(b.len() / LANES * LANES);
        let (c_blocks, c_rest) = c.split_at(c.len() / LANES * LANES);
        for (b, c) in b_blocks.chunks_exact(LANES).zip(c_blocks.chunks_exact(LANES)) {
            for i in 0..LANES {
                acc[i] = s.add_f32s(acc[i], b[i]);
                acc[LANES + i] = s.add_f32s(acc[LANES + i], c[i]);
            }
        }
        for (&b, &c) in b_rest.iter().zip(c_rest) {
            acc[0] = s.add_f32s(acc[0], b);
            acc[LANES] = s.add_f32s(acc[LANES], c);
        }
        let total = acc.into_iter().reduce(|x, y| s.add_f32s(x, y)).expect("accumulators");
        s.reduce_sum_f32s(total) + b_tail.iter().chain(c_tail).sum::<f32>()
    }
}

/// What a bandwidth measurement streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// a = b + 3c: two arrays read, one written, 12 bytes per element.
    Triad,
    /// A sum over b and c: two arrays read, 8 bytes per element.
    Read,
}

impl Stream {
    /// Bytes moved per element of the arrays.
    fn bytes_per_element(self) -> usize {
        match self {
            Stream::Triad => 12,
            Stream::Read => 8,
        }
    }
}

/// The share of a cache level the probe's triad fills: enough to measure the level, with room left for
/// the stack and the code. The roofline takes a row to fit a level when its bytes fit the cache.
pub const WORKING_SET_FRACTION: f64 = 0.6;

/// Floats between the starts of a triad's arrays modulo 4 KiB: arrays that start on the same offset
/// of a page (as huge-page buffers all do) make each store look like a conflict to the loads of the
/// same element (4K aliasing), which cuts a triad's bandwidth (PERFORMANCE.md).
const TRIAD_SKEW: usize = 1024 / 4;

/// The triad bandwidth of `threads` threads on arrays of `elements` floats asked for on `pages`, and
/// the pages they got (small where the system refused huge ones).
fn triad_bandwidth(elements: usize, threads: usize, passes: usize, pages: Pages, runs: usize) -> (f64, Pages) {
    stream_bandwidth(Stream::Triad, elements, threads, passes, pages, runs)
}

/// The bandwidth of `stream` on `threads` threads, as [`triad_bandwidth`] measures it.
fn stream_bandwidth(
    stream: Stream,
    elements: usize,
    threads: usize,
    passes: usize,
    pages: Pages,
    runs: usize,
) -> (f64, Pages) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let isa = Isa::best();
    // Each thread owns its arrays (so an L2-sized working set stays in that core's L2) and runs every
    // pass itself: one dispatch per measurement, not per pass, so small working sets measure the
    // cache rather than the thread pool.
    let array = |value| AlignedVec::filled_on(elements + 2 * TRIAD_SKEW, value, pages);
    let mut arrays: Vec<_> = (0..threads).map(|_| (array(0.0), array(1.0), array(2.0))).collect();
    let got = if arrays
        .iter()
        .flat_map(|(a, b, c)| [a, b, c])
        .all(|x| x.pages() == Pages::Huge)
    {
        Pages::Huge
    } else {
        Pages::Small
    };
    let seconds = best_of(runs, || {
        pool.install(|| {
            arrays.par_iter_mut().for_each(|(a, b, c)| {
                let a = &mut a[..elements];
                let b = &b[TRIAD_SKEW..][..elements];
                let c = &c[2 * TRIAD_SKEW..][..elements];
                for _ in 0..passes {
                    match stream {
                        Stream::Triad => {
                            isa.run(Triad { a, b, c });
                            black_box(&mut *a);
                        }
                        Stream::Read => {
                            black_box(isa.run(ReadSum { b, c }));
                        }
                    }
                }
            });
        });
    });
    (
        (stream.bytes_per_element() * elements * threads * passes) as f64 / seconds / 1e9,
        got,
    )
}

/// The curve as (working set, bandwidth), each bandwidth the median of three neighbouring readings
/// and then raised to the highest at any larger working set: non-increasing, so that one slow
/// reading (an interrupt, a neighbour) is no knee.
fn envelope(curve: &[CurvePoint]) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = curve
        .iter()
        .map(|p| (p.working_set_bytes as f64, p.gb_per_s))
        .filter(|p| p.0 > 0.0 && p.1 > 0.0 && p.1.is_finite())
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    // A median of each point and its two neighbours first: one fast reading is as much noise as one
    // slow one, and the envelope below would carry it back over the working sets before it.
    let raw: Vec<f64> = points.iter().map(|p| p.1).collect();
    for i in 1..raw.len().saturating_sub(1) {
        let mut three = [raw[i - 1], raw[i], raw[i + 1]];
        three.sort_by(f64::total_cmp);
        points[i].1 = three[1];
    }
    for i in (0..points.len().saturating_sub(1)).rev() {
        points[i].1 = points[i].1.max(points[i + 1].1);
    }
    points
}

/// A cache the CPU reports is confirmed when the curve falls by at least this factor over the
/// octave around some working set within an octave of the reported size.
const REPORTED_FALL: f64 = 1.1;
/// A last-level cache the curve does not confirm where it is reported (a guest may be told of one
/// far larger than its share) is looked for anywhere past the level below it, by a steeper fall.
const UNREPORTED_FALL: f64 = 1.15;
/// A working set runs from memory when its bandwidth is within this factor of DRAM's.
const MEMORY_FACTOR: f64 = 1.3;

/// The cache levels on a one-thread bandwidth curve. `reported` holds the data cache sizes the CPU
/// reports, by level; each is a hypothesis the curve must confirm: the steepest fall of bandwidth
/// over an octave, among working sets within an octave of the reported size, must reach
/// [`REPORTED_FALL`]. The last level, when not confirmed there, is looked for between the level
/// below and memory; with no reports at all, every level is. A level the curve does not show is
/// left out. The capacity is where the curve crosses the geometric mean of the bandwidths an
/// octave below and above the fall.
pub fn find_caches(curve: &[CurvePoint], reported: &[u64], dram_gb_per_s: f64) -> Vec<MeasuredCache> {
    let env = envelope(curve);
    let n = env.len();
    let half = CURVE_STEPS_PER_OCTAVE as usize / 2;
    if n < 2 * half + 1 {
        return Vec::new();
    }
    let memory_start = env
        .iter()
        .position(|p| p.1 <= dram_gb_per_s * MEMORY_FACTOR)
        .unwrap_or(n);
    let fall = |i: usize| env[i - half].1 / env[i + half].1;
    // The steepest fall centred in `range`, if it reaches `at_least`.
    let steepest = |range: std::ops::Range<usize>, at_least: f64| {
        range
            .filter(|&i| i >= half && i + half < n)
            .max_by(|&a, &b| fall(a).total_cmp(&fall(b)))
            .filter(|&i| fall(i) >= at_least)
    };
    let hypotheses: Vec<Option<u64>> = if reported.is_empty() {
        vec![None; 3]
    } else {
        reported.iter().copied().map(Some).collect()
    };
    let mut caches = Vec::new();
    let mut from = 0;
    for (k, &size) in hypotheses.iter().enumerate() {
        let last = k + 1 == hypotheses.len();
        let region = from..memory_start;
        let near: Vec<usize> = region
            .clone()
            .filter(|&i| size.is_some_and(|s| (env[i].0 / s as f64).log2().abs() <= 1.0))
            .collect();
        let anchored = match (near.first(), near.last()) {
            (Some(&first), Some(&end)) => steepest(first..end + 1, REPORTED_FALL),
            _ => None,
        };
        // Unanchored, the first fall that is steep enough (then its steepest point), so that a
        // steeper fall further on does not hide the level before it.
        let first_fall = || {
            // The octave a fall is measured over lies wholly past the level below.
            let start = region
                .clone()
                .find(|&i| i >= from + half && i + half < n && fall(i) >= UNREPORTED_FALL)?;
            steepest(start..(start + 2 * half).min(region.end), UNREPORTED_FALL)
        };
        let Some(i) = anchored.or_else(|| (last || size.is_none()).then(first_fall).flatten()) else {
            continue;
        };
        let (above, below) = (env[i - half].1, env[i + half].1);
        let mid = (above * below).sqrt();
        let a = (i - half + env[i - half..=i + half].partition_point(|p| p.1 >= mid)).clamp(i - half + 1, i + half);
        let ((x0, y0), (x1, y1)) = (env[a - 1], env[a]);
        let t = if y0 > y1 {
            ((y0.ln() - mid.ln()) / (y0.ln() - y1.ln())).clamp(0.0, 1.0)
        } else {
            0.0
        };
        caches.push(MeasuredCache {
            level: k as u32 + 1,
            bytes: (x0.ln() + t * (x1.ln() - x0.ln())).exp() as u64,
            reported_bytes: size,
            gb_per_s: env[i.saturating_sub(2 * half).max(from)].1,
        });
        // The next level's fall starts an octave on: a fall takes about that long to end.
        from = i + 2 * half;
    }
    caches
}

/// Working sets of the curve per doubling.
const CURVE_STEPS_PER_OCTAVE: u32 = 4;
/// The curve starts here (well inside any L1) and never goes past the end.
const CURVE_START_BYTES: f64 = 4096.0;
const CURVE_END_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;

/// The one-thread triad bandwidth on working sets growing by a quarter octave from 4 KiB, until a
/// whole octave has run at DRAM's bandwidth (within 15 %) or at 1 GiB. Each point moves about
/// `traffic` bytes per run.
fn bandwidth_curve(dram_gb_per_s: f64, traffic: f64) -> Vec<CurvePoint> {
    let mut curve = Vec::new();
    let mut at_dram = 0;
    for step in 0.. {
        let bytes = CURVE_START_BYTES * 2f64.powf(f64::from(step) / f64::from(CURVE_STEPS_PER_OCTAVE));
        if bytes > CURVE_END_BYTES || at_dram > CURVE_STEPS_PER_OCTAVE {
            break;
        }
        let elements = (bytes as usize / 12).max(16);
        let passes = ((traffic / (12.0 * elements as f64)) as usize).max(2);
        // Best of five: the falls the caches are found by are a few per cent deep, within the
        // spread of three runs on a shared host.
        let (gb_per_s, _) = triad_bandwidth(elements, 1, passes, Pages::Small, 5);
        if gb_per_s <= dram_gb_per_s * 1.15 {
            at_dram += 1;
        }
        curve.push(CurvePoint {
            working_set_bytes: (12 * elements) as u64,
            gb_per_s,
        });
    }
    curve
}

/// Measures the FMA peak at every level and the bandwidths, on 1 thread and on `all_threads`.
/// `quick` shortens every measurement (for `bench --quick`).
pub fn measure_limits(all_threads: usize, quick: bool) -> Limits {
    let budget = Duration::from_millis(if quick { 100 } else { 400 });
    let mut thread_counts = vec![1];
    if all_threads > 1 {
        thread_counts.push(all_threads);
    }
    let mut fma = Vec::new();
    for isa in Isa::available() {
        for &threads in &thread_counts {
            fma.push(FmaPeak {
                isa: isa.name().into(),
                threads,
                gflops: fma_peak(isa, threads, budget),
            });
        }
    }
    // DRAM first, on three arrays of 128 MiB in all (beyond any last-level cache), so that the curve
    // knows where to stop; then the curve, and from it the caches. Each level's triad then fills
    // WORKING_SET_FRACTION of the cache the curve found (a shared last level split between the
    // threads), not of what CPUID reports: a guest may be told of a cache it does not have.
    let traffic = if quick { 30e6 } else { 150e6 };
    let dram_total = 32 << 20;
    let dram_one = triad_bandwidth(dram_total, 1, 2, Pages::Small, 3).0;
    // The curve runs the full traffic even when quick: its falls are a few per cent wide.
    let curve = bandwidth_curve(dram_one, 40e6);
    let mut reported: Vec<(u32, u64)> = caches()
        .iter()
        .filter(|c| c.kind != "Instruction" && c.bytes > 0)
        .map(|c| (c.level, c.bytes))
        .collect();
    reported.sort_unstable();
    let reported: Vec<u64> = reported.into_iter().map(|(_, bytes)| bytes).collect();
    let caches = find_caches(&curve, &reported, dram_one);
    let working_set = |bytes: u64| (bytes as f64 * WORKING_SET_FRACTION) as usize / 12;
    let shared_levels = 3;
    let mut bandwidth = Vec::new();
    for &threads in &thread_counts {
        let levels = caches
            .iter()
            .filter(|c| c.level <= 3)
            .map(|c| {
                let per_thread = if c.level >= shared_levels {
                    working_set(c.bytes) / threads
                } else {
                    working_set(c.bytes)
                };
                (["l1", "l2", "l3"][c.level as usize - 1], per_thread)
            })
            .chain([("dram", dram_total / threads)]);
        for (level, elements) in levels {
            let passes = ((traffic / (12.0 * elements as f64)) as usize).max(2);
            let measure = |stream| {
                let (small, _) = stream_bandwidth(stream, elements, threads, passes, Pages::Small, 3);
                // Only a working set far beyond the caches can tell the pages apart; arrays the
                // system kept on small pages measure nothing new.
                let huge = match level {
                    "dram" => match stream_bandwidth(stream, elements, threads, passes, Pages::Huge, 3) {
                        (gb_per_s, Pages::Huge) => gb_per_s,
                        (_, Pages::Small) => 0.0,
                    },
                    _ => 0.0,
                };
                (small.max(huge), huge > small)
            };
            let (gb_per_s, huge_pages) = measure(Stream::Triad);
            let (read, _) = measure(Stream::Read);
            bandwidth.push(Bandwidth {
                level: level.into(),
                threads,
                working_set_bytes: (12 * elements) as u64,
                gb_per_s,
                huge_pages,
                read_gb_per_s: Some(read),
            });
        }
    }
    Limits {
        fma,
        bandwidth,
        curve,
        caches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_785), (2026, 11, 28));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn the_chosen_mode_is_the_bracketed_one() {
        assert_eq!(chosen("always [madvise] never\n"), "madvise");
        assert_eq!(chosen("[always] madvise never"), "always");
        assert_eq!(chosen("always madvise never"), "");
        assert_eq!(chosen(""), "");
    }

    #[test]
    fn machine_ids_are_slugs() {
        assert_eq!(
            slug("AMD EPYC 9B14 96-Core Processor"),
            "amd-epyc-9b14-96-core-processor"
        );
        assert_eq!(slug("--a  b--"), "a-b");
    }

    /// A curve with a smooth fall (over about an octave) at each capacity from one plateau to the
    /// next, at quarter octaves from 4 KiB to `end`.
    fn synthetic(levels: &[(f64, f64)], memory: f64, end: f64) -> Vec<CurvePoint> {
        let mut points = Vec::new();
        let mut bytes = 4096.0;
        while bytes <= end {
            // Each capacity contributes a logistic step on log2(bytes).
            let mut log_bw = levels[0].1.ln();
            for (k, &(capacity, bw)) in levels.iter().enumerate() {
                let next = levels.get(k + 1).map_or(memory, |l| l.1);
                let x = (bytes / capacity).log2() * 4.0;
                log_bw += (next.ln() - bw.ln()) / (1.0 + (-x).exp());
            }
            points.push(CurvePoint {
                working_set_bytes: bytes as u64,
                gb_per_s: log_bw.exp(),
            });
            bytes *= 2f64.powf(0.25);
        }
        points
    }

    fn within_a_quarter_octave(found: u64, capacity: f64) -> bool {
        (found as f64 / capacity).log2().abs() <= 0.25
    }

    const KIB: f64 = 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;

    #[test]
    fn three_caches_are_found_at_their_capacities() {
        let (l1, l2, l3) = (32.0 * KIB, MIB, 32.0 * MIB);
        let curve = synthetic(&[(l1, 290.0), (l2, 110.0), (l3, 70.0)], 27.0, 1024.0 * MIB);
        for reported in [vec![l1 as u64, l2 as u64, l3 as u64], vec![]] {
            let caches = find_caches(&curve, &reported, 27.0);
            assert_eq!(caches.len(), 3, "{reported:?}: {caches:?}");
            for (cache, capacity) in caches.iter().zip([l1, l2, l3]) {
                assert!(
                    within_a_quarter_octave(cache.bytes, capacity),
                    "{cache:?} against {capacity}"
                );
            }
            assert!((caches[0].gb_per_s / 290.0 - 1.0).abs() < 0.05, "{caches:?}");
        }
    }

    #[test]
    fn a_last_level_reported_far_too_large_is_found_where_the_curve_falls() {
        // A guest told of 480 MiB of L3 whose share falls to memory at 24 MiB.
        let reported = [48 * 1024, 2048 * 1024, 480 << 20];
        let curve = synthetic(
            &[(48.0 * KIB, 390.0), (2.0 * MIB, 100.0), (24.0 * MIB, 30.0)],
            17.0,
            512.0 * MIB,
        );
        let caches = find_caches(&curve, &reported, 17.0);
        assert_eq!(caches.len(), 3, "{caches:?}");
        assert!(within_a_quarter_octave(caches[2].bytes, 24.0 * MIB), "{caches:?}");
        assert_eq!(caches[2].reported_bytes, Some(480 << 20));
        // And one with no L3 at all: L2, then memory.
        let curve = synthetic(&[(48.0 * KIB, 390.0), (2.0 * MIB, 100.0)], 17.0, 512.0 * MIB);
        let caches = find_caches(&curve, &reported, 17.0);
        assert_eq!(caches.len(), 2, "{caches:?}");
        assert!(within_a_quarter_octave(caches[1].bytes, 2.0 * MIB), "{caches:?}");
    }

    #[test]
    fn a_small_step_is_a_level_where_reported_and_a_slope_or_a_slow_reading_is_not() {
        // An L3 only 14 % slower than L2 (as a triad on one core of an AMD EPYC runs), which loses
        // another 20 % across its span; and a neighbour's burst that halves one reading.
        let reported = [32 * 1024, 1 << 20, 32 << 20];
        let mut curve = synthetic(
            &[(32.0 * KIB, 290.0), (MIB, 110.0), (32.0 * MIB, 95.0)],
            27.0,
            512.0 * MIB,
        );
        for p in &mut curve {
            let bytes = p.working_set_bytes as f64;
            if (2.0 * MIB..16.0 * MIB).contains(&bytes) {
                p.gb_per_s *= 1.0 - 0.2 * (bytes / (2.0 * MIB)).log2() / 3.0;
            }
        }
        curve[16].gb_per_s /= 2.0;
        let caches = find_caches(&curve, &reported, 27.0);
        assert_eq!(caches.len(), 3, "{caches:?}");
        for (cache, capacity) in caches.iter().zip([32.0 * KIB, MIB, 32.0 * MIB]) {
            assert!(
                within_a_quarter_octave(cache.bytes, capacity),
                "{cache:?} against {capacity}"
            );
        }
        // With nothing reported, a step that small is not told from a slope.
        let unreported = find_caches(&curve, &[], 27.0);
        assert_eq!(unreported.len(), 2, "{unreported:?}");
    }

    #[test]
    fn short_or_empty_curves_find_nothing() {
        assert!(find_caches(&[], &[32 * 1024], 27.0).is_empty());
        let flat = synthetic(&[(1e12, 100.0)], 100.0, 64.0 * KIB);
        assert!(find_caches(&flat, &[32 * 1024], 27.0).is_empty());
    }

    #[test]
    fn the_curve_is_read_between_points_and_held_past_its_ends() {
        let limits = Limits {
            fma: vec![],
            bandwidth: vec![],
            curve: vec![
                CurvePoint {
                    working_set_bytes: 1000,
                    gb_per_s: 100.0,
                },
                CurvePoint {
                    working_set_bytes: 4000,
                    gb_per_s: 25.0,
                },
                CurvePoint {
                    working_set_bytes: 2000,
                    gb_per_s: 20.0,
                },
            ],
            caches: vec![],
        };
        // The reading at 2000 is raised to the 25 measured at 4000.
        assert_eq!(limits.curve_gb_per_s(10.0), Some(100.0));
        assert_eq!(limits.curve_gb_per_s(1e9), Some(25.0));
        let mid = limits.curve_gb_per_s(1000.0 * 2f64.sqrt()).unwrap();
        assert!((mid - 50.0).abs() < 1e-9, "{mid}");
        assert_eq!(
            Limits {
                curve: vec![],
                ..limits
            }
            .curve_gb_per_s(1.0),
            None
        );
    }

    #[test]
    fn machine_ids_name_the_generation_when_the_brand_does_not() {
        for (brand, vendor, family, model, cpus, id) in [
            ("AMD EPYC", "AuthenticAMD", 0x19, 0x11, 2, "amd-epyc-zen4-2cpu"),
            ("AMD EPYC", "AuthenticAMD", 0x1a, 0x02, 2, "amd-epyc-zen5-2cpu"),
            (
                "Intel(R) Xeon(R) Processor",
                "GenuineIntel",
                6,
                0x8f,
                2,
                "intel-xeon-sapphire-rapids-2cpu",
            ),
            ("AMD EPYC", "AuthenticAMD", 0x30, 0x4, 8, "amd-epyc-30h-4h-8cpu"),
            (
                "AMD EPYC 9B14 96-Core Processor",
                "AuthenticAMD",
                0x19,
                0x11,
                2,
                "amd-epyc-9b14-2cpu",
            ),
            ("Apple M2", "", 0, 0, 8, "apple-m2-8cpu"),
        ] {
            assert_eq!(
                machine_id(brand, vendor, family, model, cpus),
                id,
                "{brand}, {family:x}h {model:x}h"
            );
        }
    }

    #[rstest::rstest]
    #[case("Intel(R) Xeon(R) Processor", "intel-xeon")]
    #[case("AMD EPYC 9B14 96-Core Processor", "amd-epyc-9b14")]
    #[case("AMD EPYC", "amd-epyc")]
    #[case("Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", "intel-xeon-platinum-8481c")]
    #[case("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", "intel-core-i7-8700k")]
    #[case("AMD Ryzen 9 7950X 16-Core Processor", "amd-ryzen-9-7950x")]
    #[case("Apple M2", "apple-m2")]
    #[case("  (R) CPU  ", "unknown-cpu")]
    fn cpu_names_drop_marks_counts_and_clocks(#[case] brand: &str, #[case] name: &str) {
        assert_eq!(cpu_name(brand), name);
    }
}
