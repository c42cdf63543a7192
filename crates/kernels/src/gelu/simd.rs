//! GELU with pulp, through 0.5 · (1 + tanh(u)) = 1 / (1 + e^(−2u)) and the vector exp.

use pulp::{Simd, WithSimd};

use crate::{Isa, vmath};

struct Gelu<'a> {
    x: &'a [f32],
    out: &'a mut [f32],
}

impl WithSimd for Gelu<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (x, x_tail) = S::as_simd_f32s(self.x);
        let (out, out_tail) = S::as_mut_simd_f32s(self.out);
        for (o, &v) in out.iter_mut().zip(x) {
            *o = vmath::gelu(s, v);
        }
        if !x_tail.is_empty() {
            s.partial_store_f32s(out_tail, vmath::gelu(s, s.partial_load_f32s(x_tail)));
        }
    }
}

/// x [N] → out [N], run at `isa`.
pub fn gelu(x: &[f32], out: &mut [f32], isa: Isa) {
    super::check(x, out);
    isa.run(Gelu { x, out });
}
