//! The model's operations as standalone functions on ndarray, in any precision: the float64 truth that
//! every kernel variant is checked against, and the building blocks of [`crate::model`].
//!
//! Legend: T = rows (tokens), C = channels, S = keys (cached + new), NH = query heads, NKV =
//! key/value heads, HS = a head's width, N = a row length, K = a reduction length.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, s};

use crate::real::Real;

/// Token plus position embeddings: out[t] = wte[ids[t]] + wpe[pos0 + t]. Ids must index wte and
/// positions wpe (the model checks this before calling).
pub fn embedding<F: Real>(wte: &ArrayView2<F>, wpe: &ArrayView2<F>, ids: &[u32], pos0: usize) -> Array2<F> {
    let mut x = Array2::zeros((ids.len(), wte.ncols())); // [T, C]
    for (t, (&id, mut row)) in ids.iter().zip(x.rows_mut()).enumerate() {
        row.assign(&(&wte.row(id as usize) + &wpe.row(pos0 + t)));
    }
    x
}

/// LayerNorm of every row of x [T, C]: (x − mean) / √(var + eps) · gamma + beta, biased variance.
pub fn layernorm<F: Real>(x: &ArrayView2<F>, gamma: &ArrayView1<F>, beta: &ArrayView1<F>, eps: F) -> Array2<F> {
    let c = F::of(x.ncols() as f64);
    let mut y = x.to_owned();
    for mut row in y.rows_mut() {
        let mean = row.sum() / c;
        row.mapv_inplace(|v| v - mean);
        let var = row.iter().map(|&v| v * v).sum::<F>() / c;
        let rstd = (var + eps).sqrt().recip();
        row.mapv_inplace(|v| v * rstd);
    }
    y * gamma + beta
}

/// RMSNorm of every row of x [T, C]: x / √(mean(x²) + eps) · gamma, with no mean subtracted and
/// no shift (Llama's norm).
pub fn rmsnorm<F: Real>(x: &ArrayView2<F>, gamma: &ArrayView1<F>, eps: F) -> Array2<F> {
    let c = F::of(x.ncols() as f64);
    let mut y = x.to_owned();
    for mut row in y.rows_mut() {
        let mean_square = row.iter().map(|&v| v * v).sum::<F>() / c;
        let rstd = (mean_square + eps).sqrt().recip();
        row.mapv_inplace(|v| v * rstd);
    }
    y * gamma
}

/// The rotary embedding's angles' cosines and sines [P, HS / 2] for positions 0 .. P, in Hugging
/// Face's default convention: the angle of position p and pair i is p · θ^(−2i / HS). They are
/// computed in float64 whatever `F`, since an angle of a late position loses every digit of its
/// fraction that float32 cannot hold.
pub fn rope_table<F: Real>(positions: usize, head_size: usize, theta: f64) -> (Array2<F>, Array2<F>) {
    let half = head_size / 2;
    let mut cos = Array2::zeros((positions, half)); // [P, HS / 2]
    let mut sin = Array2::zeros((positions, half)); // [P, HS / 2]
    for p in 0..positions {
        for i in 0..half {
            let inv_freq = 1.0 / theta.powf((2 * i) as f64 / head_size as f64);
            let angle = p as f64 * inv_freq;
            cos[[p, i]] = F::of(angle.cos());
            sin[[p, i]] = F::of(angle.sin());
        }
    }
    (cos, sin)
}

/// Rotary position embedding of x [T, NH · HS] (heads side by side) at positions pos0 .. pos0 + T,
/// rotate-half pairing: within each head, channel i pairs with channel i + HS / 2, and the pair
/// (a, b) at angle φ becomes (a cos φ − b sin φ, b cos φ + a sin φ). `cos` and `sin` are
/// [`rope_table`]'s, with at least pos0 + T rows.
pub fn rope<F: Real>(
    x: &ArrayView2<F>,
    n_head: usize,
    cos: &ArrayView2<F>,
    sin: &ArrayView2<F>,
    pos0: usize,
) -> Array2<F> {
    let hs = x.ncols() / n_head;
    let half = hs / 2;
    let mut y = x.to_owned(); // [T, NH · HS]
    for (t, mut row) in y.rows_mut().into_iter().enumerate() {
        let (cos, sin) = (cos.row(pos0 + t), sin.row(pos0 + t)); // [HS / 2]
        for h in 0..n_head {
            for i in 0..half {
                let (a, b) = (x[[t, h * hs + i]], x[[t, h * hs + half + i]]);
                row[h * hs + i] = a * cos[i] - b * sin[i];
                row[h * hs + half + i] = b * cos[i] + a * sin[i];
            }
        }
    }
    y
}

/// SiLU (swish): x · σ(x) = x / (1 + e^(−x)).
pub fn silu<F: Real>(x: F) -> F {
    x / (F::one() + (-x).exp())
}

/// The SwiGLU gate of Llama's MLP: silu(gate) · up, element by element, gate and up [T, I].
pub fn swiglu<F: Real>(gate: &ArrayView2<F>, up: &ArrayView2<F>) -> Array2<F> {
    let mut y = gate.mapv(silu); // [T, I]
    y.zip_mut_with(up, |g, &u| *g = *g * u);
    y
}

/// y = x · w + b: x [T, K], w [K, N] (stored [in, out] as GPT-2's Conv1D), b [N] → [T, N].
pub fn linear<F: Real>(x: &ArrayView2<F>, w: &ArrayView2<F>, b: Option<&ArrayView1<F>>) -> Array2<F> {
    let y = x.dot(w);
    match b {
        Some(b) => y + b,
        None => y,
    }
}

/// GELU, tanh approximation (`gelu_new`): 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))).
pub fn gelu_new<F: Real>(x: F) -> F {
    let half = F::of(0.5);
    let k = F::of((2.0 / std::f64::consts::PI).sqrt());
    half * x * (F::one() + (k * (x + F::of(0.044715) * x * x * x)).tanh())
}

/// Softmax of every row of x [T, N], subtracting the row maximum first so that exp never overflows;
/// −inf entries get probability 0.
pub fn softmax_rows<F: Real>(x: &ArrayView2<F>) -> Array2<F> {
    let mut y = x.to_owned();
    for row in y.rows_mut() {
        softmax_in_place(row);
    }
    y
}

fn softmax_in_place<F: Real>(mut row: ndarray::ArrayViewMut1<F>) {
    let max = row.fold(F::neg_infinity(), |m, &v| m.max(v));
    row.mapv_inplace(|v| (v - max).exp());
    let sum = row.sum();
    row.mapv_inplace(|v| v / sum);
}

/// Causal multi-head attention of the T queries q [T, C] at positions S − T .. S against keys k and
/// values v [S, C] (heads side by side): query i sees keys 0 ..= S − T + i. Returns [T, C].
pub fn causal_attention<F: Real>(
    q: &ArrayView2<F>,
    k: &ArrayView2<F>,
    v: &ArrayView2<F>,
    n_head: usize,
    scale: F,
) -> Array2<F> {
    grouped_causal_attention(q, k, v, n_head, n_head, scale)
}

/// Causal grouped-query attention: the NH query heads of q [T, NH · HS] share NKV key/value heads of
/// k and v [S, NKV · HS], query head h reading key/value head h / (NH / NKV), as Hugging Face's
/// `repeat_kv` repeats each key/value head for NH / NKV consecutive query heads. NKV = NH is
/// multi-head attention, NKV = 1 multi-query attention. Returns [T, NH · HS].
pub fn grouped_causal_attention<F: Real>(
    q: &ArrayView2<F>,
    k: &ArrayView2<F>,
    v: &ArrayView2<F>,
    n_head: usize,
    n_kv_head: usize,
    scale: F,
) -> Array2<F> {
    let (t, c) = q.dim();
    let hs = c / n_head;
    let group = n_head / n_kv_head; // query heads per key/value head
    let p0 = k.nrows() - t; // position of the first query
    let mut y = Array2::zeros((t, c)); // [T, NH · HS]
    for h in 0..n_head {
        let cols = h * hs..(h + 1) * hs;
        let kv_cols = (h / group) * hs..(h / group + 1) * hs;
        let qh = q.slice(s![.., cols.clone()]); // [T, HS]
        let kh = k.slice(s![.., kv_cols.clone()]); // [S, HS]
        let vh = v.slice(s![.., kv_cols]); // [S, HS]
        let mut scores = qh.dot(&kh.t()) * scale; // [T, S]
        for (i, mut row) in scores.rows_mut().into_iter().enumerate() {
            let (seen, mut hidden) = row.view_mut().split_at(Axis(0), p0 + i + 1);
            softmax_in_place(seen);
            hidden.fill(F::zero());
        }
        y.slice_mut(s![.., cols]).assign(&scores.dot(&vh)); // [T, HS]
    }
    y
}

/// The index of the largest value (the first one on ties).
pub fn argmax<F: Real>(values: &Array1<F>) -> usize {
    let mut best = (0, F::neg_infinity());
    for (i, &v) in values.iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}
