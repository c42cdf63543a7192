//! Every blocking the tuner may choose passes the gate: the blocked matmul run with a candidate's
//! register tile, KC, MC and NC, and met by the shapes that straddle that candidate's blocks, at
//! every level.

use std::sync::Mutex;

use tkbench_harness::check::gate::{Selection, run_gate};
use tkbench_harness::measure::tune::candidates;
use tkbench_harness::ops::{Matmul, Op};
use tkbench_harness::registry::Registry;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::matmul::blocked::{Blocking, MicroTile, matmul_with};
use tkbench_kernels::{Isa, IsaSupport, Kind, Tile, Variant};

/// The candidate under check: the gate calls a plain function, which reads it here.
static CANDIDATE: Mutex<Blocking> = Mutex::new(Blocking::DEFAULT);

fn with_candidate(d: &MatmulDims, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f32], isa: Isa) {
    let blocking = *CANDIDATE.lock().expect("no test panicked holding the candidate");
    matmul_with(&blocking, d, a, b, bias, c, isa);
}

#[test]
fn every_candidate_blocking_passes_the_gate_at_its_own_block_edges() {
    // Each KC with the smallest and largest MC and NC: KC sets the bits, MC and NC the loop edges.
    // The wide tile, which sets only the edges of the register tile, with the smallest, the default
    // and the largest KC.
    let all = candidates();
    let kcs: Vec<usize> = all.iter().map(|b| b.kc).collect();
    let wide_kcs = [kcs.iter().min(), Some(&Blocking::DEFAULT.kc), kcs.iter().max()];
    let (mc_min, mc_max) = (
        all.iter().map(|b| b.mc_slivers).min(),
        all.iter().map(|b| b.mc_slivers).max(),
    );
    let (nc_min, nc_max) = (all.iter().map(|b| b.nc).min(), all.iter().map(|b| b.nc).max());
    let chosen: Vec<Blocking> = all
        .into_iter()
        .filter(|b| {
            (Some(b.mc_slivers), Some(b.nc)) == (mc_min, nc_min) || (Some(b.mc_slivers), Some(b.nc)) == (mc_max, nc_max)
        })
        .filter(|b| b.tile == MicroTile::Rows12 || wide_kcs.contains(&Some(&b.kc)))
        .collect();
    assert!(chosen.len() >= 16, "{chosen:?}");
    assert!(chosen.iter().any(|b| b.tile == MicroTile::Rows6), "{chosen:?}");
    for blocking in chosen {
        *CANDIDATE.lock().expect("no test panicked holding the candidate") = blocking;
        let tiles: &'static [Tile] = Vec::leak(vec![
            Tile::elements("k", blocking.kc),
            Tile::elements("n", blocking.nc),
            Tile::elements("m", blocking.mc_slivers * 6),
            Tile::elements("m", blocking.mc_slivers * 12),
            Tile::vectors("n", 2),
            Tile::vectors("n", 4),
        ]);
        let variant = Variant {
            name: "candidate",
            kind: Kind::Blocked,
            isa: IsaSupport::Dispatch,
            file: "",
            tiles,
            kernel: (with_candidate as tkbench_kernels::matmul::MatmulFn).into(),
        };
        let registry = Registry::builtin().with::<Matmul>(variant);
        let selection = Selection {
            op: Some(Matmul::NAME),
            variant: Some("candidate".to_owned()),
            ..Selection::default()
        };
        let gate = run_gate(&registry, &selection, |_| {}).expect("a valid selection");
        assert!(
            gate.pass(),
            "the gate refused blocking {blocking}: {:#?}",
            gate.failures
        );
    }
}
