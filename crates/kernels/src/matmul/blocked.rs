//! Matmul with packing and an own pulp micro-kernel, in the five-loop nest of GotoBLAS/BLIS.
//!
//! The micro-kernel keeps an MR × NR tile of c in registers (MR rows × NV vectors) and streams a
//! packed sliver of a ([KC, MR]) and of b ([KC, NR]): per step of k, NV vector loads of b and MR
//! broadcasts of a feed MR × NV multiply-adds. At AVX-512 the tile is 12 × 2 or 6 × 4 vectors
//! ([`MicroTile`]), either of which uses 24 of its 32 registers for accumulators; elsewhere it is
//! 6 × 2, 12 of 16. The b sliver (KC × NR) is reused by every a sliver of the block, the a block
//! (MC × KC) by every b sliver of the panel, and the b panel (KC × NC) by every a block.
//!
//! The tile, KC, MC and NC are a [`Blocking`], chosen once per process ([`configure`]): the harness
//! times a few candidates on the machine in front of it and keeps the fastest, since the best
//! blocking follows the caches, their prefetchers and the load ports more than any rule of thumb
//! does (PERFORMANCE.md).

use std::sync::OnceLock;

use pulp::{Simd, WithSimd};

use super::MatmulDims;
use crate::Isa;
use crate::registry::Tile;

/// The register tile of the micro-kernel at AVX-512, named by its shape there (rows × vectors); at
/// every other level the tile is 6 × 2 vectors whichever is chosen, since 16 registers hold no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MicroTile {
    /// 12 rows × 2 vectors: 2 loads of b and 12 broadcasts of a per 24 multiply-adds.
    Rows12,
    /// 6 rows × 4 vectors: 4 loads of b and 6 broadcasts of a per 24 multiply-adds, with a b sliver
    /// twice as wide.
    Rows6,
}

impl MicroTile {
    /// Every tile, in the order a sweep tries them.
    pub const ALL: [MicroTile; 2] = [MicroTile::Rows12, MicroTile::Rows6];

    /// The tile's name in files and on the command line: its AVX-512 shape.
    pub fn name(self) -> &'static str {
        match self {
            MicroTile::Rows12 => "12x2",
            MicroTile::Rows6 => "6x4",
        }
    }

    /// The tile a name gives, if any.
    pub fn from_name(name: &str) -> Option<MicroTile> {
        MicroTile::ALL.into_iter().find(|tile| tile.name() == name)
    }
}

/// The register tile and cache blocking of the packed path. Only KC changes the bits of a result
/// (each element of c sums its KC-deep slices in order, then adds them up); the tile, MC and NC
/// change only the order in which elements of c are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    /// The register tile at AVX-512.
    pub tile: MicroTile,
    /// KC: the depth of a packed slice of k.
    pub kc: usize,
    /// MC: the rows of a packed a block, in slivers of MR rows (so 12 slivers are 144 rows with the
    /// 12-row tile at AVX-512 and 72 otherwise).
    pub mc_slivers: usize,
    /// NC: the columns of a packed b panel.
    pub nc: usize,
}

impl Blocking {
    /// The blocking a process runs with when nothing is configured: the one tuned on the first CPU
    /// this project was measured on.
    pub const DEFAULT: Blocking = Blocking {
        tile: MicroTile::Rows12,
        kc: 192,
        mc_slivers: 12,
        nc: 1024,
    };

    /// The largest value each field may take: beyond these the packed buffers (MC × KC and KC × NC
    /// floats) would outgrow any cache they are meant for, and a typo would allocate gigabytes.
    pub const MAX: Blocking = Blocking {
        tile: MicroTile::Rows12,
        kc: 4096,
        mc_slivers: 256,
        nc: 16384,
    };

    /// Whether every field lies in 1..=[`Blocking::MAX`]'s, naming the first that does not.
    pub fn check(&self) -> Result<(), String> {
        let fields = [
            ("kc", self.kc, Self::MAX.kc),
            ("mc_slivers", self.mc_slivers, Self::MAX.mc_slivers),
            ("nc", self.nc, Self::MAX.nc),
        ];
        for (name, value, max) in fields {
            if !(1..=max).contains(&value) {
                return Err(format!("matmul blocking: {name} = {value} is outside 1..={max}"));
            }
        }
        Ok(())
    }
}

impl core::fmt::Display for Blocking {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "tile {}, KC {}, MC {} slivers, NC {}",
            self.tile.name(),
            self.kc,
            self.mc_slivers,
            self.nc
        )
    }
}

/// The blocking of this process, fixed by [`configure`] or by the first call that needed it.
static CHOSEN: OnceLock<Blocking> = OnceLock::new();

/// Fixes the blocking every later call of [`matmul`] runs with. It can be fixed once: a second call
/// with another value fails (as does one after a call has already fixed the default), since results
/// must not change bits within a process.
pub fn configure(blocking: Blocking) -> Result<(), String> {
    blocking.check()?;
    let chosen = *CHOSEN.get_or_init(|| blocking);
    if chosen == blocking {
        Ok(())
    } else {
        Err(format!(
            "matmul blocking is already fixed at {chosen} in this process; {blocking} comes too late"
        ))
    }
}

/// The blocking [`matmul`] runs with.
pub fn blocking() -> Blocking {
    *CHOSEN.get_or_init(|| Blocking::DEFAULT)
}

fn kc() -> usize {
    blocking().kc
}

fn nc() -> usize {
    blocking().nc
}

fn mc_rows_at_6() -> usize {
    blocking().mc_slivers * 6
}

fn mc_rows_at_12() -> usize {
    blocking().mc_slivers * 12
}

/// Below this many rows of a, b is streamed row by row instead of packed: packing a KC × NC panel of b
/// pays off only when several rows reuse it, and for a single row (the LM head of a decode step,
/// 1 × 768 × 50257) the packing pass costs more than streaming b once (PERFORMANCE.md, "Decode: the
/// blocked matmul on one row" and "Decode: eight rows of b per pass"). The streamed path sums in
/// exactly the micro-kernel's order (per KC slice from zero, p ascending, then added to c), so every
/// element is bit-identical whichever path computes it: splitting rows across threads cannot change
/// a result.
const SMALL_M: usize = 4;

struct Matmul<'a, const MR: usize, const NV: usize> {
    dims: MatmulDims,
    blocking: Blocking,
    a: &'a [f32],
    b: &'a [f32],
    c: &'a mut [f32],
}

/// Packs a[ic.., pc..] ([mc, kc] of a [M, K]) into slivers of MR rows, each [kc, MR], zero-padded.
fn pack_a<const MR: usize>(a: &[f32], k: usize, ic: usize, mc: usize, pc: usize, kc: usize, packed: &mut [f32]) {
    for (sliver, rows) in (0..mc).step_by(MR).enumerate() {
        let out = &mut packed[sliver * kc * MR..][..kc * MR];
        let valid = MR.min(mc - rows);
        // Rows are read in step (each row's cache lines serve several values of p) so that the
        // stores are contiguous: MR values of a column of a per step of p.
        let src: [&[f32]; MR] = core::array::from_fn(|r| {
            let row = ic + rows + r.min(valid - 1);
            &a[row * k + pc..][..kc]
        });
        for (p, column) in out.chunks_exact_mut(MR).enumerate() {
            for (r, (x, row)) in column.iter_mut().zip(&src).enumerate() {
                *x = if r < valid { row[p] } else { 0.0 };
            }
        }
    }
}

/// Packs b[pc.., jc..] ([kc, nc] of b [K, N], rows ldb apart) into slivers of NR = NV vectors of
/// columns, each [kc, NR], zero-padded.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pack_b<S: Simd, const NV: usize>(
    b: &[f32],
    ldb: usize,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    packed: &mut [f32],
) {
    let nr = NV * crate::vmath::lanes::<S>();
    for (sliver, cols) in (0..nc).step_by(nr).enumerate() {
        let out = &mut packed[sliver * kc * nr..][..kc * nr];
        let valid = nr.min(nc - cols);
        for (p, out_row) in out.chunks_exact_mut(nr).enumerate() {
            let row = &b[(pc + p) * ldb + jc + cols..][..valid];
            if valid == nr {
                // Whole vectors with a constant count: a library copy call per row of the sliver
                // showed in the profile at 768³ (PERFORMANCE.md, "Matmul: packing without library
                // calls or strided stores").
                let (src, _) = S::as_simd_f32s(row);
                let (dst, _) = S::as_mut_simd_f32s(out_row);
                dst[..NV].copy_from_slice(&src[..NV]);
            } else {
                let (head, pad) = out_row.split_at_mut(valid);
                head.copy_from_slice(row);
                pad.fill(0.0);
            }
        }
    }
}

/// c[tile] += a_sliver · b_sliver for one MR × NR tile, `rows` × `cols` of it valid, at row stride n.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn micro_kernel<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    a_sliver: &[f32],
    b_sliver: &[S::f32s],
    c: &mut [f32],
    n: usize,
    rows: usize,
    cols: usize,
    nr: usize,
) {
    let mut acc = [[s.splat_f32s(0.0); NV]; MR];
    for (a, b) in a_sliver.chunks_exact(MR).zip(b_sliver.chunks_exact(NV)) {
        for r in 0..MR {
            let ar = s.splat_f32s(a[r]);
            for v in 0..NV {
                acc[r][v] = s.mul_add_e_f32s(ar, b[v], acc[r][v]);
            }
        }
    }
    if rows == MR && cols == nr {
        for (r, acc_row) in acc.iter().enumerate() {
            let (c_row, _) = S::as_mut_simd_f32s(&mut c[r * n..][..nr]);
            for (cv, &av) in c_row.iter_mut().zip(acc_row) {
                *cv = s.add_f32s(*cv, av);
            }
        }
    } else {
        // An edge tile: the valid lanes of each vector through partial loads and stores. Spilled to
        // an array instead, the accumulators went to the stack on every call, whole tiles included.
        let lanes = crate::vmath::lanes::<S>();
        for (r, acc_row) in acc.iter().enumerate().take(rows) {
            let c_row = &mut c[r * n..][..cols];
            for (part, &av) in c_row.chunks_mut(lanes).zip(acc_row) {
                let sum = s.add_f32s(s.partial_load_f32s(part), av);
                s.partial_store_f32s(part, sum);
            }
        }
    }
}

/// The path for fewer than SMALL_M rows: per row and per KC slice, acc = Σ_p a[i, p] · b[p, ..] with
/// vector multiply-adds from zero in p order, then c[i, ..] += acc, as the micro-kernel does.
///
/// A decode step is bound by reading b once from memory, so b is read GROUP rows at a time: each
/// element of the partial sum is loaded once, takes GROUP multiply-adds in p order and is stored once,
/// which keeps the partial-sum traffic (L1 or L2) at 1/GROUP of b's and gives the prefetchers GROUP
/// sequential streams. A pass takes UNROLL vectors of the partial sums at a time: as many independent
/// chains, and that many vectors of each row read together. The first group of a slice starts from
/// zero and the last adds into c, so the rounding is the micro-kernel's exactly.
struct Streamed<'a> {
    dims: MatmulDims,
    kc: usize,
    a: &'a [f32],
    b: &'a [f32],
    c: &'a mut [f32],
}

/// Rows of b read together by the streamed path (4 and 16 were tried against 8; see PERFORMANCE.md).
const GROUP: usize = 8;

/// Where a group of rows of b starts and ends its partial sums.
#[derive(Clone, Copy)]
struct Ends {
    /// The group starts the KC slice: the partial sums begin at zero, not from acc.
    first: bool,
    /// The group ends the KC slice: the sums are added into c instead of stored in acc.
    last: bool,
}

/// Vectors of the partial sums a streamed pass takes per step: four independent multiply-add chains,
/// and four vectors (256 bytes at AVX-512) of each row of b read together. One and two were slower,
/// eight slower still (see PERFORMANCE.md).
const UNROLL: usize = 4;

/// The sizes this variant branches on: the packed blocks of this process's blocking (MC at both
/// sliver heights), the streamed path's row count, groups of rows of b and unrolled vectors, and the micro-tile's width.
pub const TILES: &[Tile] = &[
    Tile::configured("k", kc),
    Tile::configured("n", nc),
    Tile::elements("m", SMALL_M),
    Tile::configured("m", mc_rows_at_6),
    Tile::configured("m", mc_rows_at_12),
    Tile::elements("k", GROUP),
    Tile::vectors("n", UNROLL),
    Tile::vectors("n", 2),
    Tile::vectors("n", 4),
];

/// acc (or zero) + Σ_r a[r] · b_rows[r] in r order, stored into acc or added into c.
#[inline(always)]
// Index loops over the G rows of the group read more clearly than zipped iterators, and their
// constant bound unrolls completely.
#[allow(clippy::needless_range_loop)]
fn stream_group<S: Simd, const G: usize>(
    s: S,
    a: &[f32],
    b_rows: [&[f32]; G],
    acc: &mut [f32],
    c: &mut [f32],
    ends: Ends,
) {
    let splats: [S::f32s; G] = core::array::from_fn(|r| s.splat_f32s(a[r]));
    let (acc_v, acc_tail) = S::as_mut_simd_f32s(acc);
    let (c_v, c_tail) = S::as_mut_simd_f32s(c);
    let len = acc_v.len();
    let b_v: [&[S::f32s]; G] = core::array::from_fn(|r| &S::as_simd_f32s(b_rows[r]).0[..len]);
    let c_v = &mut c_v[..len];
    let mut j = 0;
    while j + UNROLL <= len {
        stream_vectors::<S, G, UNROLL>(s, &splats, &b_v, acc_v, c_v, j, ends);
        j += UNROLL;
    }
    while j < len {
        stream_vectors::<S, G, 1>(s, &splats, &b_v, acc_v, c_v, j, ends);
        j += 1;
    }
    // The tail lanes go through one partial vector, so they are fused like the rest.
    if !acc_tail.is_empty() {
        let mut x = if ends.first {
            s.splat_f32s(0.0)
        } else {
            s.partial_load_f32s(acc_tail)
        };
        for r in 0..G {
            let (_, b_tail) = S::as_simd_f32s(b_rows[r]);
            x = s.mul_add_e_f32s(splats[r], s.partial_load_f32s(b_tail), x);
        }
        if ends.last {
            let c_x = s.add_f32s(s.partial_load_f32s(c_tail), x);
            s.partial_store_f32s(c_tail, c_x);
        } else {
            s.partial_store_f32s(acc_tail, x);
        }
    }
}

/// Vectors j .. j + U of one streamed pass: U chains, each acc (or zero) + Σ_r splats[r] · b[r][j + u]
/// in r order, stored into acc or added into c.
#[inline(always)]
// Index loops over the G × U register tile read more clearly than zipped iterators, and their
// constant bounds unroll completely.
#[allow(clippy::needless_range_loop)]
fn stream_vectors<S: Simd, const G: usize, const U: usize>(
    s: S,
    splats: &[S::f32s; G],
    b: &[&[S::f32s]; G],
    acc: &mut [S::f32s],
    c: &mut [S::f32s],
    j: usize,
    ends: Ends,
) {
    let mut x = [s.splat_f32s(0.0); U];
    if !ends.first {
        x.copy_from_slice(&acc[j..j + U]);
    }
    for r in 0..G {
        let row = &b[r][j..j + U];
        for u in 0..U {
            x[u] = s.mul_add_e_f32s(splats[r], row[u], x[u]);
        }
    }
    if ends.last {
        for (c_u, x_u) in c[j..j + U].iter_mut().zip(x) {
            *c_u = s.add_f32s(*c_u, x_u);
        }
    } else {
        acc[j..j + U].copy_from_slice(&x);
    }
}

impl WithSimd for Streamed<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let MatmulDims { k, n, ldb, .. } = self.dims;
        // [N]: one row's partial sums over a KC slice.
        let mut acc = vec![0.0f32; n];
        for (a_row, c_row) in self.a.chunks_exact(k).zip(self.c.chunks_exact_mut(n)) {
            for pc in (0..k).step_by(self.kc) {
                let slice_end = (pc + self.kc).min(k);
                let mut p = pc;
                while p < slice_end {
                    let row = |q: usize| &self.b[q * ldb..][..n];
                    if p + GROUP <= slice_end {
                        let ends = Ends {
                            first: p == pc,
                            last: p + GROUP == slice_end,
                        };
                        let rows = core::array::from_fn(|r| row(p + r));
                        stream_group::<S, GROUP>(s, &a_row[p..], rows, &mut acc, c_row, ends);
                        p += GROUP;
                    } else {
                        // The rows after the last whole group, one at a time in the same order.
                        let ends = Ends {
                            first: p == pc,
                            last: p + 1 == slice_end,
                        };
                        stream_group::<S, 1>(s, &a_row[p..], [row(p)], &mut acc, c_row, ends);
                        p += 1;
                    }
                }
            }
        }
    }
}

impl<const MR: usize, const NV: usize> WithSimd for Matmul<'_, MR, NV> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let MatmulDims { m, k, n, .. } = self.dims;
        let Blocking {
            kc: kc_max,
            mc_slivers,
            nc: nc_max,
            ..
        } = self.blocking;
        let nr = NV * crate::vmath::lanes::<S>();
        let mc_max = mc_slivers * MR;
        // The buffers are as large as this call needs, not as the blocking allows.
        let kc_len = kc_max.min(k);
        let mut a_packed = vec![0.0f32; mc_max.min(m.next_multiple_of(MR)) * kc_len];
        let mut b_packed = vec![0.0f32; nc_max.min(n).div_ceil(nr) * nr * kc_len];
        // LOOP 5: split n into NC-wide panels.
        for jc in (0..n).step_by(nc_max) {
            let nc = nc_max.min(n - jc);
            // LOOP 4: split k into KC-deep slices; pack the b panel.
            for pc in (0..k).step_by(kc_max) {
                let kc = kc_max.min(k - pc);
                pack_b::<S, NV>(self.b, self.dims.ldb, pc, kc, jc, nc, &mut b_packed);
                // LOOP 3: split m into MC-tall blocks; pack the a block.
                for ic in (0..m).step_by(mc_max) {
                    let mc = mc_max.min(m - ic);
                    pack_a::<MR>(self.a, k, ic, mc, pc, kc, &mut a_packed);
                    // LOOP 2: NR-wide slivers of the b panel.
                    for (jr_index, jr) in (0..nc).step_by(nr).enumerate() {
                        let (b_sliver, _) = S::as_simd_f32s(&b_packed[jr_index * kc * nr..][..kc * nr]);
                        // LOOP 1: MR-tall slivers of the a block.
                        for (ir_index, ir) in (0..mc).step_by(MR).enumerate() {
                            let a_sliver = &a_packed[ir_index * kc * MR..][..kc * MR];
                            let tile = &mut self.c[(ic + ir) * n + jc + jr..];
                            let rows = MR.min(mc - ir);
                            let cols = nr.min(nc - jr);
                            micro_kernel::<S, MR, NV>(s, a_sliver, b_sliver, tile, n, rows, cols, nr);
                        }
                    }
                }
            }
        }
    }
}

/// a [M, K], b [K, N], bias [N] → c [M, N], run at `isa` with this process's [`blocking`].
pub fn matmul(dims: &MatmulDims, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32], isa: Isa) {
    matmul_with(&blocking(), dims, a, b, bias, c, isa);
}

/// [`matmul`] with the blocking given: what the tuner times its candidates with. Panics on a
/// blocking [`Blocking::check`] refuses.
pub fn matmul_with(
    blocking: &Blocking,
    dims: &MatmulDims,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    isa: Isa,
) {
    if let Err(e) = blocking.check() {
        panic!("{e}");
    }
    dims.check(a, b, bias, c);
    dims.init_output(bias, c);
    if dims.m == 0 || dims.k == 0 || dims.n == 0 {
        return;
    }
    let blocking = *blocking;
    if dims.m < SMALL_M {
        // A few rows (a decode step): packing b costs more than it saves; stream b, 8 rows per pass.
        let kc = blocking.kc;
        isa.run(Streamed {
            dims: *dims,
            kc,
            a,
            b,
            c,
        });
        return;
    }
    match (isa, blocking.tile) {
        (Isa::Avx512, MicroTile::Rows12) => isa.run(Matmul::<12, 2> {
            dims: *dims,
            blocking,
            a,
            b,
            c,
        }),
        (Isa::Avx512, MicroTile::Rows6) => isa.run(Matmul::<6, 4> {
            dims: *dims,
            blocking,
            a,
            b,
            c,
        }),
        _ => isa.run(Matmul::<6, 2> {
            dims: *dims,
            blocking,
            a,
            b,
            c,
        }),
    }
}
