//! Instruction-set levels: which ones this CPU has, and running a `pulp` kernel at exactly one of them,
//! so that one machine can compare levels and every run can say which level it ran at.

use pulp::{Simd, WithSimd};

/// A SIMD level a kernel can be run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// One lane at a time, no vector instructions (`pulp::Scalar`).
    Scalar,
    /// x86-64 AVX2 + FMA, 8 f32 lanes (`pulp::x86::V3`).
    Avx2,
    /// x86-64 AVX-512, 16 f32 lanes (`pulp::x86::V4`).
    Avx512,
    /// aarch64 NEON, 4 f32 lanes (`pulp::aarch64::Neon`).
    Neon,
}

impl Isa {
    /// Every level, from the narrowest.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// The level called `name`, if any.
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// Whether this CPU (and this build) can run the level.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => pulp::x86::V3::try_new().is_some(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => pulp::x86::V4::try_new().is_some(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => pulp::aarch64::Neon::try_new().is_some(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every level this CPU can run, from the narrowest.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_available()).collect()
    }

    /// The widest level this CPU can run.
    pub fn best() -> Isa {
        *Isa::available().last().expect("scalar is always available")
    }

    /// f32 lanes per vector at this level.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Scalar => 1,
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
            Isa::Neon => 4,
        }
    }

    /// Runs `op` at exactly this level. Panics if the CPU lacks it: callers choose levels from
    /// [`Isa::available`].
    #[inline(always)]
    pub fn run<Op: WithSimd>(self, op: Op) -> Op::Output {
        fn unavailable<T>(isa: Isa) -> T {
            panic!("ISA level {} is not available on this CPU", isa.name())
        }
        match self {
            Isa::Scalar => Simd::vectorize(pulp::Scalar::new(), op),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Simd::vectorize(pulp::x86::V3::try_new().unwrap_or_else(|| unavailable(self)), op),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Simd::vectorize(pulp::x86::V4::try_new().unwrap_or_else(|| unavailable(self)), op),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => Simd::vectorize(pulp::aarch64::Neon::try_new().unwrap_or_else(|| unavailable(self)), op),
            #[allow(unreachable_patterns)]
            _ => unavailable(self),
        }
    }
}

/// Bytes apart of the prefetches [`prefetch`] issues: a cache line of x86-64.
const PREFETCH_STRIDE: usize = 64;

/// The cache a prefetch fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    /// Every level down to L1 (`prefetcht0`): for lines wanted soon.
    L1,
    /// L2 and below, not L1 (`prefetcht1`): for lines wanted later, so that a stream from memory
    /// keeps many misses in flight without filling L1 with lines not yet wanted.
    L2,
}

/// Asks the CPU to bring `data` into its caches ahead of use: [`prefetch_into`] L1.
#[inline(always)]
pub fn prefetch<S: Simd, T>(s: S, data: &[T]) {
    prefetch_into(s, data, Prefetch::L1);
}

/// Asks the CPU to bring `data` into `cache` and the levels below it ahead of use: one prefetch every
/// 64 bytes from its start, at the x86-64 levels; at other levels it does nothing. A hint only: a
/// prefetch changes no value and cannot fault.
///
/// The hardware prefetchers follow a stream only within a 4 KiB page, so a kernel that streams from
/// memory on small pages restarts them at each page; prefetching a few KiB ahead keeps misses in
/// flight across the boundaries.
#[inline(always)]
pub fn prefetch_into<S: Simd, T>(s: S, data: &[T], cache: Prefetch) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::Any;
        use core::arch::x86_64::{_MM_HINT_T0, _MM_HINT_T1};
        // `S` is a concrete level once monomorphized, so these tests fold away.
        let level: &dyn Any = &s;
        let sse = match (
            level.downcast_ref::<pulp::x86::V4>(),
            level.downcast_ref::<pulp::x86::V3>(),
        ) {
            (Some(v4), _) => v4.sse,
            (None, Some(v3)) => v3.sse,
            (None, None) => return,
        };
        let start = data.as_ptr().cast::<i8>();
        for offset in (0..core::mem::size_of_val(data)).step_by(PREFETCH_STRIDE) {
            match cache {
                Prefetch::L1 => sse._mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)),
                Prefetch::L2 => sse._mm_prefetch::<_MM_HINT_T1>(start.wrapping_add(offset)),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (s, data, cache);
}

impl std::str::FromStr for Isa {
    type Err = String;

    /// Parses a level's name, naming the levels when it is none of them.
    fn from_str(name: &str) -> Result<Isa, String> {
        Isa::from_name(name).ok_or_else(|| {
            let names: Vec<_> = Isa::ALL.iter().map(|l| l.name()).collect();
            format!("no level named `{name}`; levels are {}", names.join(", "))
        })
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
