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
}

/// The measured limits of the machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Limits {
    /// FMA peaks per level and thread count.
    pub fma: Vec<FmaPeak>,
    /// Bandwidths per working set and thread count.
    pub bandwidth: Vec<Bandwidth>,
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

/// What the CPUID instruction says of this CPU.
#[derive(Debug, Default)]
struct Cpuid {
    brand: Option<String>,
    vendor: String,
    hypervisor: String,
    /// SIMD flags under the names Linux's /proc/cpuinfo gives them.
    flags: Vec<String>,
    caches: Vec<Cache>,
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
    if let Some(f) = id.get_feature_info() {
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
        machine_id: format!("{}-{logical_cpus}cpu", slug(&cpu)),
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

/// The share of a cache level the probe's triad fills: enough to measure the level, with room left for
/// the stack and the code. The roofline takes a row to fit a level when its bytes fit the cache.
pub const WORKING_SET_FRACTION: f64 = 0.6;

/// Floats between the starts of a triad's arrays modulo 4 KiB: arrays that start on the same offset
/// of a page (as huge-page buffers all do) make each store look like a conflict to the loads of the
/// same element (4K aliasing), which cuts a triad's bandwidth (PERFORMANCE.md).
const TRIAD_SKEW: usize = 1024 / 4;

/// The triad bandwidth of `threads` threads on arrays of `elements` floats asked for on `pages`, and
/// the pages they got (small where the system refused huge ones).
fn triad_bandwidth(elements: usize, threads: usize, passes: usize, pages: Pages) -> (f64, Pages) {
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
    let seconds = best_of(3, || {
        pool.install(|| {
            arrays.par_iter_mut().for_each(|(a, b, c)| {
                let a = &mut a[..elements];
                let b = &b[TRIAD_SKEW..][..elements];
                let c = &c[2 * TRIAD_SKEW..][..elements];
                for _ in 0..passes {
                    isa.run(Triad { a, b, c });
                    black_box(&mut *a);
                }
            });
        });
    });
    ((3 * 4 * elements * threads * passes) as f64 / seconds / 1e9, got)
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
    let caches = caches();
    let cache_bytes = |level: u32, default: u64| {
        caches
            .iter()
            .find(|c| c.level == level && c.kind != "Instruction")
            .map_or(default, |c| c.bytes)
    };
    // Three arrays filling WORKING_SET_FRACTION of L1, L2 or (shared) L3; and three of 128 MiB in
    // all, beyond any last-level cache. Passes are sized to about 100 MB of traffic per thread (at
    // least two).
    let working_set = |bytes: u64| (bytes as f64 * WORKING_SET_FRACTION) as usize / 12;
    let l1_elements = working_set(cache_bytes(1, 32 * 1024));
    let l2_elements = working_set(cache_bytes(2, 512 * 1024));
    let l3_total = working_set(cache_bytes(3, 8 << 20));
    let dram_total = 32 << 20;
    let traffic = if quick { 30e6 } else { 150e6 };
    let mut bandwidth = Vec::new();
    for &threads in &thread_counts {
        for (level, elements) in [
            ("l1", l1_elements),
            ("l2", l2_elements),
            ("l3", l3_total / threads),
            ("dram", dram_total / threads),
        ] {
            let passes = ((traffic / (12.0 * elements as f64)) as usize).max(2);
            let (small, _) = triad_bandwidth(elements, threads, passes, Pages::Small);
            // Only a working set far beyond the caches can tell the pages apart; arrays the system
            // kept on small pages measure nothing new.
            let huge = match level {
                "dram" => match triad_bandwidth(elements, threads, passes, Pages::Huge) {
                    (gb_per_s, Pages::Huge) => gb_per_s,
                    (_, Pages::Small) => 0.0,
                },
                _ => 0.0,
            };
            bandwidth.push(Bandwidth {
                level: level.into(),
                threads,
                working_set_bytes: (12 * elements) as u64,
                gb_per_s: small.max(huge),
                huge_pages: huge > small,
            });
        }
    }
    Limits { fma, bandwidth }
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
    }
}
