//! The thread policy of the kernel-driven model and the benches: how a call is cut into blocks, and
//! the pool that runs the blocks. Each op's definition says how its calls split ([`Op::split`]);
//! [`run_split`] makes the block calls through [`Op::call`], the one call path.
//!
//! Every kernel computes each output row, and each element of it, from the same inputs in the same
//! order whatever the block, so a split call gives the bits of the whole call.

use std::ops::Range;

use rayon::prelude::*;
use tkbench_kernels::Isa;

use crate::ops::Op;

/// Splits `rows` into at most `parts` contiguous, non-empty ranges of (nearly) equal length.
pub fn row_blocks(rows: usize, parts: usize) -> Vec<Range<usize>> {
    let size = rows.div_ceil(parts.max(1)).max(1);
    (0..rows)
        .step_by(size)
        .map(|start| start..(start + size).min(rows))
        .collect()
}

/// Columns a block of a one-row matmul starts on a multiple of: whole cache lines and whole vectors
/// at every level.
const COLUMN_ALIGN: usize = 64;

/// Splits a one-row matmul's `n` columns into at most `parts` contiguous blocks of nearly equal width,
/// each starting on a multiple of [`COLUMN_ALIGN`].
pub fn column_blocks(n: usize, parts: usize) -> Vec<Range<usize>> {
    let size = n.div_ceil(parts.max(1)).div_ceil(COLUMN_ALIGN).max(1) * COLUMN_ALIGN;
    (0..n).step_by(size).map(|start| start..(start + size).min(n)).collect()
}

/// Splits causal attention's `queries` (at positions pos0 ..) into at most `parts` contiguous ranges
/// of nearly equal work: query i sees pos0 + i + 1 keys.
pub fn attention_blocks(queries: usize, pos0: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, queries.max(1));
    let total: usize = (0..queries).map(|i| pos0 + i + 1).sum();
    let mut blocks = Vec::with_capacity(parts);
    let (mut start, mut done) = (0, 0);
    for i in 0..queries {
        done += pos0 + i + 1;
        let remaining_blocks = parts - blocks.len() - 1;
        let share = total * (blocks.len() + 1) / parts;
        // Close a block at its share of the work, leaving at least one query per later block.
        if remaining_blocks > 0 && done >= share && queries - (i + 1) >= remaining_blocks {
            blocks.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < queries || blocks.is_empty() {
        blocks.push(start..queries);
    }
    blocks
}

/// What the blocks of a [`Split`] count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Output rows (for attention, queries).
    Rows,
    /// Columns of a one-row matmul (a decode step, with no rows to share).
    Columns,
    /// Heads of a one-query attention (a decode step): each reads its heads' columns of the cache.
    Heads,
}

/// How threads split one call of an op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The blocks, one per thread at most.
    pub blocks: Vec<Range<usize>>,
    /// What the blocks count.
    pub by: By,
    /// Output floats per unit of a block: the row width, 1 for columns, the head size for heads.
    pub width: usize,
}

/// Cuts `out` into one mutable slice per block, `width` floats per unit of a block.
fn split_out<'a>(mut out: &'a mut [f32], blocks: &[Range<usize>], width: usize) -> Vec<&'a mut [f32]> {
    let mut parts = Vec::with_capacity(blocks.len());
    for block in blocks {
        let (head, tail) = std::mem::take(&mut out).split_at_mut(block.len() * width);
        parts.push(head);
        out = tail;
    }
    parts
}

/// The threads a call is split across: a pool of `threads` threads. Work that splits many calls runs
/// inside [`Workers::install`], on a pool thread: each split call then starts its blocks there, the
/// calling thread takes part and the others steal the rest, with no hand-over from outside the pool
/// (PERFORMANCE.md, "Threads: split calls from a pool thread").
pub struct Workers {
    /// The pool; none for one thread.
    pool: Option<rayon::ThreadPool>,
    threads: usize,
}

impl Workers {
    /// `threads` threads (0: rayon's default, `RAYON_NUM_THREADS` or one per CPU).
    pub fn new(threads: usize) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        let threads = pool.current_num_threads();
        Self {
            pool: (threads > 1).then_some(pool),
            threads,
        }
    }

    /// The number of threads that work on a split call.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `op` on a thread of the pool, so that the calls it splits start on a pool thread; with
    /// one thread there is no pool, and `op` runs on the calling thread.
    pub fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(op),
            None => op(),
        }
    }

    /// Calls `work(block, out_block)` on each block of `out` (`width` floats per unit of a block),
    /// the blocks in parallel on the pool (from inside [`Workers::install`], the calling pool thread
    /// takes part); a single block runs on the calling thread, since handing it over would only add
    /// two wake-ups.
    pub fn run(
        &self,
        blocks: &[Range<usize>],
        width: usize,
        out: &mut [f32],
        work: impl Fn(Range<usize>, &mut [f32]) + Sync,
    ) {
        let parts = split_out(out, blocks, width);
        match self.pool.as_ref().filter(|_| blocks.len() > 1) {
            Some(pool) => pool.install(|| {
                parts
                    .into_par_iter()
                    .zip(blocks.par_iter())
                    .for_each(|(out, block)| work(block.clone(), out));
            }),
            None => {
                for (out, block) in parts.into_iter().zip(blocks) {
                    work(block.clone(), out);
                }
            }
        }
    }
}

/// One call of `kernel` at `isa` on `shape`, split across `workers` as `split` (from
/// [`Op::split`]) says: one [`Op::call`] per block.
pub fn run_blocks<O: Op>(
    workers: &Workers,
    split: &Split,
    kernel: &O::Kernel,
    isa: Isa,
    shape: &O::Shape,
    args: O::Args<'_>,
    out: &mut [f32],
) {
    workers.run(&split.blocks, split.width, out, |block, out| {
        O::call(kernel, isa, shape, args, split.by, block, out)
    });
}

/// One call of `kernel` at `isa` on `shape`, split across `workers` by the op's policy.
pub fn run_split<O: Op>(
    workers: &Workers,
    kernel: &O::Kernel,
    isa: Isa,
    shape: &O::Shape,
    args: O::Args<'_>,
    out: &mut [f32],
) {
    let split = O::split(shape, workers.threads());
    run_blocks::<O>(workers, &split, kernel, isa, shape, args, out);
}

/// The whole call of `kernel` at `isa` on `shape`, on the calling thread.
pub fn call_whole<O: Op>(kernel: &O::Kernel, isa: Isa, shape: &O::Shape, args: O::Args<'_>, out: &mut [f32]) {
    let (rows, _) = O::output(shape);
    O::call(kernel, isa, shape, args, By::Rows, 0..rows, out);
}

#[cfg(test)]
mod tests {
    use super::attention_blocks;

    #[test]
    fn attention_blocks_cover_every_query_once_with_balanced_work() {
        for (queries, pos0, parts) in [(1024, 0, 2), (7, 0, 3), (5, 512, 2), (3, 0, 8), (1, 0, 2), (128, 0, 5)] {
            let blocks = attention_blocks(queries, pos0, parts);
            assert_eq!(blocks.first().unwrap().start, 0);
            assert_eq!(blocks.last().unwrap().end, queries);
            assert!(blocks.windows(2).all(|w| w[0].end == w[1].start && !w[1].is_empty()));
            assert!(blocks.len() <= parts.min(queries));
        }
        // A 1024-token prefill on 2 threads splits near 1024/√2, not at 512.
        let blocks = attention_blocks(1024, 0, 2);
        assert!((720..=726).contains(&blocks[0].end), "{blocks:?}");
    }
}
