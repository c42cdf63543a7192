//! The rotary embedding pair by pair: the readable twin.

use super::RopeDims;
use crate::Isa;

/// x [T, NH · HS], cos and sin [P, HS/2] → out [T, NH · HS]. The ISA level is ignored.
pub fn rope(dims: &RopeDims, x: &[f32], cos: &[f32], sin: &[f32], out: &mut [f32], _isa: Isa) {
    dims.check(x, cos, sin, out);
    let (w, hs) = (dims.width(), dims.head_size);
    let half = hs / 2;
    if w == 0 {
        return;
    }
    for (t, (row, out_row)) in x.chunks_exact(w).zip(out.chunks_exact_mut(w)).enumerate() {
        let p = dims.pos0 + t;
        let (cos, sin) = (&cos[p * half..][..half], &sin[p * half..][..half]);
        for (head, out_head) in row.chunks_exact(hs).zip(out_row.chunks_exact_mut(hs)) {
            for i in 0..half {
                let (a, b) = (head[i], head[half + i]);
                out_head[i] = a * cos[i] - b * sin[i];
                out_head[half + i] = b * cos[i] + a * sin[i];
            }
        }
    }
}
