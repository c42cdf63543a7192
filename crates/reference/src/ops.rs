//! The model's operations as standalone functions on ndarray, in any precision: the float64 truth that
//! every kernel variant is checked against, and the building blocks of [`crate::model`].
//!
//! Legend: T = rows (tokens), C = channels, S = keys (cached + new), NH = heads, HS = C / NH,
//! N = a row length, K = a reduction length.

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
    let (t, c) = q.dim();
    let hs = c / n_head;
    let p0 = k.nrows() - t; // position of the first query
    let mut y = Array2::zeros((t, c)); // [T, C]
    for h in 0..n_head {
        let cols = h * hs..(h + 1) * hs;
        let qh = q.slice(s![.., cols.clone()]); // [T, HS]
        let kh = k.slice(s![.., cols.clone()]); // [S, HS]
        let vh = v.slice(s![.., cols.clone()]); // [S, HS]
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
