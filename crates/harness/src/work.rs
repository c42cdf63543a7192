//! The work of one op call: floating-point operations and bytes moved, the numbers behind every
//! throughput, roofline bound and percentage in the reports. Written once, here.
//!
//! Conventions: a fused multiply-add is 2 FLOPs; exp and tanh count as 1 FLOP each (they are
//! polynomials, but the count should describe the op, not an implementation); bytes are the
//! compulsory traffic of the op's inputs and outputs in f32 (every input read once, every output
//! written once), with GB = 1e9 bytes.

use serde::Serialize;

use tkbench_kernels::Op;

use crate::opcheck::Shape;

/// FLOPs and bytes of one call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Work {
    /// Floating-point operations.
    pub flops: f64,
    /// Bytes read and written.
    pub bytes: f64,
}

/// Whether `op`'s work is stated in FLOPs (matmul and attention, bound by arithmetic) rather than
/// in bytes (the rest, bound by memory): the benches' throughput unit and the report's plots.
pub fn measured_in_flops(op: Op) -> bool {
    matches!(op, Op::Matmul | Op::Attention)
}

const F32: f64 = 4.0;

/// The work of `shape`.
pub fn work(shape: &Shape) -> Work {
    match *shape {
        // One add per element; two table rows read and one row written per token, plus the ids.
        Shape::Embedding { tokens, channels, .. } => {
            let (t, c) = (tokens as f64, channels as f64);
            Work {
                flops: t * c,
                bytes: 3.0 * t * c * F32 + t * F32,
            }
        }
        // Per element: 1 add (mean), 3 (x − μ, square, add) for the variance, 4 to normalise
        // (subtract, scale, multiply-add); x read, out written, gamma and beta read once.
        Shape::LayerNorm { rows, channels } => {
            let (r, c) = (rows as f64, channels as f64);
            Work {
                flops: 8.0 * r * c,
                bytes: 2.0 * r * c * F32 + 2.0 * c * F32,
            }
        }
        // Per element: max, subtract, exp, add, scale.
        Shape::Softmax { rows, cols } => {
            let n = (rows * cols) as f64;
            Work {
                flops: 5.0 * n,
                bytes: 2.0 * n * F32,
            }
        }
        // Per visible query-key pair and head channel: a multiply-add for q · k and one for p · v.
        // q read, out written, k and v read once.
        Shape::Attention {
            queries,
            pos0,
            heads,
            head_size,
        } => {
            let c = (heads * head_size) as f64;
            let pairs: f64 = (0..queries).map(|i| (pos0 + i + 1) as f64).sum();
            let keys = (pos0 + queries) as f64;
            Work {
                flops: 4.0 * c * pairs,
                bytes: (2.0 * queries as f64 * c + 2.0 * keys * c) * F32,
            }
        }
        // A multiply-add per (i, p, j), plus the bias add; a, b and the bias read, c written.
        Shape::Matmul { m, k, n, bias } => {
            let (m, k, n) = (m as f64, k as f64, n as f64);
            let bias_flops = if bias { m * n } else { 0.0 };
            let bias_bytes = if bias { n * F32 } else { 0.0 };
            Work {
                flops: 2.0 * m * k * n + bias_flops,
                bytes: (m * k + k * n + m * n) * F32 + bias_bytes,
            }
        }
        // Per element: x², a multiply-add, two multiplies, exp, an add and a divide.
        Shape::Gelu { n } => Work {
            flops: 8.0 * n as f64,
            bytes: 2.0 * n as f64 * F32,
        },
    }
}

/// The work of one GPT-2 forward pass over T new tokens after `cached` tokens, for a model of width
/// C, MLP width I, L layers, NH heads and vocabulary V: the sum of its op calls.
pub fn model_work(config: &tkbench_reference::Config, tokens: usize, cached: usize) -> Work {
    let (c, i, v) = (config.n_embd, config.n_inner, config.vocab_size);
    let (t, l) = (tokens, config.n_layer);
    let mut calls = vec![Shape::Embedding {
        tokens: t,
        channels: c,
        vocab: v,
        positions: config.n_positions,
        pos0: cached,
    }];
    for _ in 0..l {
        calls.push(Shape::LayerNorm { rows: t, channels: c });
        calls.push(Shape::Matmul {
            m: t,
            k: c,
            n: 3 * c,
            bias: true,
        });
        calls.push(Shape::Attention {
            queries: t,
            pos0: cached,
            heads: config.n_head,
            head_size: config.head_size(),
        });
        calls.push(Shape::Matmul {
            m: t,
            k: c,
            n: c,
            bias: true,
        });
        calls.push(Shape::LayerNorm { rows: t, channels: c });
        calls.push(Shape::Matmul {
            m: t,
            k: c,
            n: i,
            bias: true,
        });
        calls.push(Shape::Gelu { n: t * i });
        calls.push(Shape::Matmul {
            m: t,
            k: i,
            n: c,
            bias: true,
        });
    }
    calls.push(Shape::LayerNorm { rows: t, channels: c });
    calls.push(Shape::Matmul {
        m: t,
        k: c,
        n: v,
        bias: false,
    });
    calls.push(Shape::Softmax { rows: t, cols: v });
    calls
        .iter()
        .map(work)
        .fold(Work { flops: 0.0, bytes: 0.0 }, |a, w| Work {
            flops: a.flops + w.flops,
            bytes: a.bytes + w.bytes,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_768_cubed_is_2_k_m_n() {
        let w = work(&Shape::Matmul {
            m: 768,
            k: 768,
            n: 768,
            bias: false,
        });
        assert_eq!(w.flops, 2.0 * 768f64.powi(3));
        assert_eq!(w.bytes, 3.0 * 768.0 * 768.0 * 4.0);
    }

    #[test]
    fn causal_attention_counts_visible_pairs_only() {
        // T = 4 from position 0: 1 + 2 + 3 + 4 = 10 pairs; one decode step after 3: 4 pairs.
        let prefill = work(&Shape::Attention {
            queries: 4,
            pos0: 0,
            heads: 2,
            head_size: 8,
        });
        assert_eq!(prefill.flops, 4.0 * 16.0 * 10.0);
        let decode = work(&Shape::Attention {
            queries: 1,
            pos0: 3,
            heads: 2,
            head_size: 8,
        });
        assert_eq!(decode.flops, 4.0 * 16.0 * 4.0);
    }

    #[test]
    fn gpt2_small_prefill_is_dominated_by_the_matmuls() {
        let config = tkbench_reference::Config::gpt2_small();
        // About 2 FLOPs per parameter per token: 2 · (85M block weights + 38.6M LM head) ≈ 247 MFLOP.
        let w = model_work(&config, 1, 0);
        assert!((w.flops / 1e6 - 247.0).abs() < 3.0, "{}", w.flops / 1e6);
    }
}
