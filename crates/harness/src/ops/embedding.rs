//! The embedding op: token rows of wte plus position rows of wpe (maths, contract and variants in
//! `tkbench_kernels::embedding`).

use std::ops::Range;
use std::sync::Arc;

use ndarray::ArrayView2;
use tkbench_kernels::embedding::{self, EmbeddingDims};
use tkbench_kernels::{Isa, Variant};
use tkbench_reference::ops;

use super::{Kernel, 
    Buffer, Draw, GPT2_SMALL, Op, PeerCode, Plant, Profile, Reference, Special, bench_token_counts, sweep_widths,
};
use crate::aligned::AlignedVec;
use crate::check::tolerance::Rule;
use crate::measure::work::{F32, Unit, Work};
use crate::model::threads::By;

/// A embedding entry point: one of `tkbench_kernels::embedding`'s functions, or any closure of its type (an
/// outside kernel, which may hold state such as weights packed once).
pub type EmbeddingKernel = Kernel<dyn Fn(&EmbeddingDims, &[u32], &[f32], &[f32], &mut [f32], Isa) + Send + Sync>;

impl<G: Fn(&EmbeddingDims, &[u32], &[f32], &[f32], &mut [f32], Isa) + Send + Sync + 'static> From<G> for EmbeddingKernel {
    fn from(kernel: G) -> Self {
        Kernel::new(Arc::new(kernel))
    }
}

/// Token plus position embedding.
#[derive(Debug, Clone, Copy)]
pub struct Embedding;

/// The input slices of an embedding call.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingArgs<'a> {
    /// ids [T].
    pub ids: &'a [u32],
    /// wte [V, C].
    pub wte: &'a [f32],
    /// wpe [P, C].
    pub wpe: &'a [f32],
}

/// ids, wte and wpe, drawn.
pub struct EmbeddingInputs {
    ids: Vec<u32>,
    wte: AlignedVec,
    wpe: AlignedVec,
}

impl Op for Embedding {
    const NAME: &'static str = "embedding";
    const FIELDS: &'static [&'static str] = &["tokens", "channels", "vocab", "positions", "pos0"];
    const RULE: Rule = Rule::CorrectlyRounded;
    const RATIONALE: &'static str =
        "each output is one f32 addition of two table entries, correctly rounded in every variant";
    const UNIT: Unit = Unit::Bytes;
    const PROFILES: &'static [Profile] = &[Profile::Uniform, Profile::Exact];

    type Kernel = EmbeddingKernel;
    type Shape = EmbeddingDims;
    type Args<'a> = EmbeddingArgs<'a>;
    type Inputs = EmbeddingInputs;

    fn variants() -> Vec<Variant<EmbeddingKernel>> {
        embedding::VARIANTS.iter().map(|v| v.map(|&f| EmbeddingKernel::from(f))).collect()
    }

    fn fastest() -> &'static str {
        embedding::FASTEST
    }

    fn values(s: &EmbeddingDims) -> Vec<usize> {
        vec![s.tokens, s.channels, s.vocab, s.positions, s.pos0]
    }

    fn shape(v: &[usize]) -> Result<EmbeddingDims, String> {
        let s = EmbeddingDims {
            tokens: v[0],
            channels: v[1],
            vocab: v[2],
            positions: v[3],
            pos0: v[4],
        };
        if s.vocab == 0 {
            return Err("vocab must be positive".into());
        }
        if s.pos0 + s.tokens > s.positions {
            return Err(format!(
                "pos0 + tokens = {} exceeds positions = {}",
                s.pos0 + s.tokens,
                s.positions
            ));
        }
        Ok(s)
    }

    fn output(s: &EmbeddingDims) -> (usize, usize) {
        (s.tokens, s.channels)
    }

    fn draw(s: &EmbeddingDims, draw: &Draw) -> EmbeddingInputs {
        EmbeddingInputs {
            ids: draw.ids("ids", s.tokens, s.vocab),
            wte: draw.signal("wte", s.vocab * s.channels, s.channels).into(),
            wpe: draw.signal("wpe", s.positions * s.channels, s.channels).into(),
        }
    }

    fn args<'a>(_: &EmbeddingDims, x: &'a EmbeddingInputs) -> EmbeddingArgs<'a> {
        EmbeddingArgs {
            ids: &x.ids,
            wte: &x.wte,
            wpe: &x.wpe,
        }
    }

    fn buffers(x: &mut EmbeddingInputs) -> Vec<(&'static str, Buffer<'_>)> {
        vec![("ids", Buffer::Ids(&mut x.ids)), ("wte", Buffer::F32(&mut x.wte)), ("wpe", Buffer::F32(&mut x.wpe))]
    }

    /// A block of tokens keeps its positions.
    fn call(
        f: &EmbeddingKernel,
        isa: Isa,
        s: &EmbeddingDims,
        a: EmbeddingArgs<'_>,
        by: By,
        r: Range<usize>,
        out: &mut [f32],
    ) {
        debug_assert_eq!(by, By::Rows);
        f(&s.rows(r.clone()), &a.ids[r], a.wte, a.wpe, out, isa)
    }

    fn reference(s: &EmbeddingDims, x: &EmbeddingInputs) -> Reference {
        let c = s.channels;
        let wte = ArrayView2::from_shape((s.vocab, c), &x.wte[..]).expect("wte is [V, C]");
        let wpe = ArrayView2::from_shape((s.positions, c), &x.wpe[..]).expect("wpe is [P, C]");
        Reference {
            f64: ops::embedding(&wte.mapv(f64::from).view(), &wpe.mapv(f64::from).view(), &x.ids, s.pos0)
                .into_iter()
                .collect(),
            f32: ops::embedding(&wte, &wpe, &x.ids, s.pos0).into_iter().collect(),
            ..Reference::default()
        }
    }

    /// One add per element; two table rows read and one row written per token, plus the ids.
    fn work(s: &EmbeddingDims) -> Work {
        let (t, c) = (s.tokens as f64, s.channels as f64);
        Work {
            flops: t * c,
            bytes: 3.0 * t * c * F32 + t * F32,
            written: t * c * F32,
        }
    }

    /// Five tokens at every sweep width and at 768, no tokens, tokens of no channels, a decode step
    /// at the last position of a vocabulary-sized table, and a block of tokens after a cache.
    fn sweep() -> Vec<EmbeddingDims> {
        let dims = |tokens, channels, vocab, positions, pos0| EmbeddingDims {
            tokens,
            channels,
            vocab,
            positions,
            pos0,
        };
        let mut shapes: Vec<EmbeddingDims> = sweep_widths()
            .into_iter()
            .chain([768])
            .map(|c| dims(5, c, 50, 40, 0))
            .collect();
        shapes.extend([dims(0, 8, 3, 4, 0), dims(4, 0, 3, 6, 1), dims(1, 33, 50257, 40, 39), dims(37, 65, 97, 64, 7)]);
        shapes
    }

    fn straddle(dim: &str, value: usize) -> Vec<EmbeddingDims> {
        let dims = |tokens, channels, positions, pos0| EmbeddingDims {
            tokens,
            channels,
            vocab: 50,
            positions,
            pos0,
        };
        match dim {
            "tokens" => vec![dims(value, 48, value + 8, 3)],
            "channels" => vec![dims(5, value, 12, 2)],
            _ => Vec::new(),
        }
    }

    /// A vocabulary of three, so that drawn ids repeat: each token row has NaN in its own channel,
    /// and two positions hold NaN and +inf.
    fn specials() -> Vec<Special<EmbeddingDims>> {
        let c = 19;
        let shape = EmbeddingDims {
            tokens: 12,
            channels: c,
            vocab: 3,
            positions: 16,
            pos0: 2,
        };
        vec![Special {
            name: "nan-and-inf",
            about: "NaN or +inf in a table row reaches exactly the outputs that read it",
            shape,
            seed: 14,
            plants: vec![
                Plant::new("wte", 17, f32::NAN),
                Plant::new("wte", c + 3, f32::NAN),
                Plant::new("wte", 2 * c + 11, f32::NAN),
                Plant::new("wpe", (2 + 4) * c + 5, f32::NAN),
                Plant::new("wpe", (2 + 7) * c + 18, f32::INFINITY),
            ],
        }]
    }

    /// GPT-2 small's tables; a decode step at position 512, prefills from 0.
    fn bench_shapes(quick: bool) -> Vec<EmbeddingDims> {
        bench_token_counts(quick)
            .into_iter()
            .map(|t| EmbeddingDims {
                tokens: t,
                channels: GPT2_SMALL.n_embd,
                vocab: GPT2_SMALL.vocab_size,
                positions: GPT2_SMALL.n_positions,
                pos0: if t == 1 { 512 } else { 0 },
            })
            .collect()
    }

    fn peer(s: &EmbeddingDims) -> Result<PeerCode, String> {
        let (t, c, v, p, p0) = (s.tokens, s.channels, s.vocab, s.positions, s.pos0);
        Ok(PeerCode {
            setup: format!(
                "wte = rand({v}, {c})\nwpe = rand({p}, {c})\nids = torch.randint(0, {v}, ({t},), generator=g)\n\
                 out = torch.empty({t}, {c})\npos = wpe[{p0}:{end}]",
                end = p0 + t
            ),
            stmt: "torch.add(torch.index_select(wte, 0, ids), pos, out=out)".into(),
        })
    }

    /// Small shapes around the vector widths and tiles.
    fn random_case(pick: &mut dyn FnMut(usize) -> usize) -> (EmbeddingDims, f32) {
        let shape = EmbeddingDims {
            tokens: pick(20),
            channels: 1 + pick(199),
            vocab: 31,
            positions: 30,
            pos0: pick(10),
        };
        (shape, super::random_magnitude(pick, &[1.0, 30.0, 1e4]))
    }
}
