//! 64-byte-aligned float buffers: the inputs and outputs the benches hand to kernels, and, on 2 MiB
//! huge pages, the model's copy of its weights and its KV cache.
//!
//! A kernel gives the same bits at any address, but a vector load from a row that starts 16 bytes
//! into a cache line touches two lines (the system allocator aligns large blocks to 16 bytes only),
//! which slows every row (PERFORMANCE.md, "Buffers on cache lines, and one dispatch per call").
//!
//! Huge pages matter to buffers streamed from memory: fewer TLB misses, and fewer page ends, where
//! the hardware prefetcher stops (PERFORMANCE.md, "Huge pages for the weights and the KV cache").
//! Linux grants them to a mapping advised with
//! `MADV_HUGEPAGE` when transparent huge pages are in `madvise` or `always` mode; elsewhere, or when
//! refused, a buffer falls back to the system allocator's pages, which [`AlignedVec::pages`] tells.
//!
//! The benches' buffers stay on small pages, as the PyTorch peer's tensors are: PyTorch can put its
//! tensors on huge pages too (`THP_MEM_ALLOC_ENABLE=1`), but then every op that allocates its output
//! faults in fresh huge pages on each call (PERFORMANCE.md has its layernorm's times), so an op
//! comparison on huge pages would measure its allocator rather than its kernels.

use std::ops::{Deref, DerefMut};

use bytemuck::{Pod, Zeroable};

/// Floats in one 64-byte cache line.
pub const LINE: usize = 16;

/// One cache line of floats.
#[derive(Clone, Copy, Zeroable, Pod)]
#[repr(C, align(64))]
struct Line([f32; LINE]);

/// Bytes in a transparent huge page on x86-64 and most aarch64 Linux kernels.
const HUGE_PAGE: usize = 2 << 20;

/// Which pages back a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// 2 MiB transparent huge pages where the kernel grants them (Linux), for buffers of at least
    /// one huge page; the system allocator's pages otherwise.
    Huge,
    /// The system allocator's pages (4 KiB on x86-64 Linux).
    Small,
}

/// Where the floats live.
enum Storage {
    /// The system allocator's pages.
    Heap(Vec<Line>),
    /// An anonymous mapping advised to use huge pages; the floats start `start` bytes in, on a huge
    /// page boundary.
    #[cfg(target_os = "linux")]
    Mapped { map: memmap2::MmapMut, start: usize },
}

/// A buffer of `len` floats whose first element starts a 64-byte cache line; it derefs to `[f32]`.
pub struct AlignedVec {
    storage: Storage,
    len: usize,
}

impl Default for AlignedVec {
    fn default() -> Self {
        AlignedVec {
            storage: Storage::Heap(Vec::new()),
            len: 0,
        }
    }
}

impl Clone for AlignedVec {
    fn clone(&self) -> Self {
        let mut v = Self::filled_on(self.len, 0.0, self.pages());
        v.copy_from_slice(self);
        v
    }
}

impl AlignedVec {
    /// `len` copies of `value`, on the system allocator's pages.
    pub fn filled(len: usize, value: f32) -> Self {
        Self::filled_on(len, value, Pages::Small)
    }

    /// `len` copies of `value` on `pages`.
    pub fn filled_on(len: usize, value: f32, pages: Pages) -> Self {
        if pages == Pages::Huge && len * size_of::<f32>() >= HUGE_PAGE {
            #[cfg(target_os = "linux")]
            if let Some(mut v) = Self::mapped(len) {
                v.fill(value);
                return v;
            }
        }
        AlignedVec {
            storage: Storage::Heap(vec![Line([value; LINE]); len.div_ceil(LINE)]),
            len,
        }
    }

    /// `len` zeros in an anonymous mapping advised to use transparent huge pages, or `None` when the
    /// system refuses the mapping or the advice (a kernel without them). Pages are granted when they
    /// are first written, so the caller's fill decides where they come from.
    #[cfg(target_os = "linux")]
    fn mapped(len: usize) -> Option<Self> {
        let bytes = len * size_of::<f32>();
        // One huge page more than needed, so the floats can start on a huge page boundary.
        let map = memmap2::MmapMut::map_anon(bytes + HUGE_PAGE).ok()?;
        map.advise(memmap2::Advice::HugePage).ok()?;
        let start = (HUGE_PAGE - map.as_ptr() as usize % HUGE_PAGE) % HUGE_PAGE;
        Some(AlignedVec {
            storage: Storage::Mapped { map, start },
            len,
        })
    }

    /// A copy of `values`, on the system allocator's pages.
    pub fn from_slice(values: &[f32]) -> Self {
        Self::from_slice_on(values, Pages::Small)
    }

    /// A copy of `values` on `pages`.
    pub fn from_slice_on(values: &[f32], pages: Pages) -> Self {
        let mut v = Self::filled_on(values.len(), 0.0, pages);
        v.copy_from_slice(values);
        v
    }

    /// Which pages back the buffer: `Huge` when it is a mapping advised to use huge pages, which the
    /// kernel then grants as its THP mode and its free memory allow; `Small` otherwise.
    pub fn pages(&self) -> Pages {
        match self.storage {
            Storage::Heap(_) => Pages::Small,
            #[cfg(target_os = "linux")]
            Storage::Mapped { .. } => Pages::Huge,
        }
    }
}

impl From<Vec<f32>> for AlignedVec {
    fn from(values: Vec<f32>) -> Self {
        Self::from_slice(&values)
    }
}

impl Deref for AlignedVec {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match &self.storage {
            Storage::Heap(lines) => &bytemuck::cast_slice(lines)[..self.len],
            #[cfg(target_os = "linux")]
            Storage::Mapped { map, start } => bytemuck::cast_slice(&map[*start..*start + self.len * size_of::<f32>()]),
        }
    }
}

impl DerefMut for AlignedVec {
    fn deref_mut(&mut self) -> &mut [f32] {
        match &mut self.storage {
            Storage::Heap(lines) => &mut bytemuck::cast_slice_mut(lines)[..self.len],
            #[cfg(target_os = "linux")]
            Storage::Mapped { map, start } => {
                bytemuck::cast_slice_mut(&mut map[*start..*start + self.len * size_of::<f32>()])
            }
        }
    }
}

impl AsRef<[f32]> for AlignedVec {
    fn as_ref(&self) -> &[f32] {
        self
    }
}

impl std::fmt::Debug for AlignedVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{AlignedVec, HUGE_PAGE, Pages};

    #[test]
    fn buffers_start_on_a_cache_line_and_hold_their_values() {
        for len in [0, 1, 15, 16, 17, 1000] {
            let values: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 3.0).collect();
            let v = AlignedVec::from_slice(&values);
            assert_eq!(v.as_ptr() as usize % 64, 0, "len {len}");
            assert_eq!(&v[..], &values[..], "len {len}");
            let filled = AlignedVec::filled(len, f32::NAN);
            assert_eq!(filled.len(), len);
            assert!(filled.iter().all(|x| x.is_nan()));
        }
    }

    #[test]
    fn buffers_of_a_huge_page_or_more_start_on_one_when_mapped() {
        // 2 MiB - 4 bytes, 2 MiB and 2 MiB + 4 bytes, 5 MiB + 12 bytes.
        for len in [(1 << 19) - 1, 1 << 19, (1 << 19) + 1, 5 * (1 << 18) + 3] {
            let values: Vec<f32> = (0..len).map(|i| (i % 1001) as f32 - 500.0).collect();
            let mut v = AlignedVec::filled_on(len, f32::NAN, Pages::Huge);
            assert!(v.iter().all(|x| x.is_nan()), "len {len}");
            v.copy_from_slice(&values);
            let expect = if cfg!(target_os = "linux") && len >= 1 << 19 {
                // A system that refuses the mapping gives small pages; this one must not.
                Pages::Huge
            } else {
                Pages::Small
            };
            assert_eq!(v.pages(), expect, "len {len}");
            if v.pages() == Pages::Huge {
                assert_eq!(v.as_ptr() as usize % HUGE_PAGE, 0, "len {len}");
            }
            let copy = v.clone();
            assert_eq!(copy.pages(), v.pages());
            assert!(copy[..] == values[..], "len {len}");
            let small = AlignedVec::filled(len, 1.5);
            assert_eq!(small.pages(), Pages::Small);
            assert_eq!(small.as_ptr() as usize % 64, 0);
            assert!(small.iter().all(|&x| x == 1.5));
        }
    }
}
