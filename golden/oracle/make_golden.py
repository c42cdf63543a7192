#!/usr/bin/env python3
"""Makes tkbench's golden cases with Hugging Face transformers in float64: GPT2LMHeadModel for the
GPT-2 family, LlamaForCausalLM for the Llama family.

For every case of cases.yaml this script builds a synthetic checkpoint of the case's family (scheme
tkbench-splitmix64-v1, identical to crates/reference/src/synthetic.rs), saves it with
save_pretrained, reloads it from disk, and runs it in float32 and float64. GPT-2 runs with eager
attention. Llama runs with SDPA attention, since transformers' eager Llama attention takes its
softmax in float32 whatever the model's dtype; and in its float64 run two more float32 steps of
transformers' Llama are kept in float64 (see keep_llama_float64): RMSNorm, which casts its input to
float32, and the rotary embedding, whose frequencies and angles are float32.
It writes, under OUT/<case>/:

  checkpoint/        config.json + model.safetensors, as save_pretrained wrote them
  outputs.safetensors  logits [R, V] float64 and logits_f32 [R, V] float32 (the oracle's own float32
                     run) at the case's R logit positions; hidden_states.<i> [H, C] float64 at its H
                     hidden positions, for i = 0..n_layer (HF's hidden_states convention)
  manifest.yaml      provenance, config, tokens, steps, positions, checksums and tolerances

The oracle runs each case's whole sequence in one call. tkbench feeds it in the case's `steps`
(a prefill, then chunks or decode steps through its KV cache); under causal attention both give the
same values, so the cache paths are checked against a run that has none.

It never writes into golden/ itself: `cargo xtask golden` runs it on a staging directory, checks the
result, and only then replaces golden/cases/. Nothing is fetched from a model hub.
"""

import argparse
import hashlib
import itertools
import math
import os
import platform
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import safetensors
import safetensors.numpy
import torch
import transformers
import yaml

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

SCHEME = "tkbench-splitmix64-v1"
GAMMA = np.uint64(0x9E3779B97F4A7C15)
MASK64 = (1 << 64) - 1
PREFIXES = {"gpt2": "transformer.", "llama": ""}


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & MASK64
    return h


def draws(key: int, n: int) -> np.ndarray:
    """The first n raw 64-bit draws of stream `key`: splitmix64(key + (i + 1) * gamma)."""
    z = np.uint64(key) + np.arange(1, n + 1, dtype=np.uint64) * GAMMA
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def init(family: str, name: str, shape: list) -> tuple:
    """(offset, std) of a synthetic tensor, as each family's Architecture::synthetic_init gives it."""
    if family == "llama":
        if name.endswith("norm.weight"):
            return 1.0, 0.1
        return 0.0, 1.0 / math.sqrt(float(shape[1]))
    return init_gpt2(name, shape)


def init_gpt2(name: str, shape: list) -> tuple:
    """(offset, std) of the synthetic values of tensor `name`: LayerNorm gains near 1, no zero bias."""
    is_layernorm = any(ln in name for ln in ("ln_1.", "ln_2.", "ln_f."))
    if name in ("wte.weight", "wpe.weight"):
        return 0.0, 1.0 / math.sqrt(float(shape[1]))
    if is_layernorm:
        return (1.0, 0.1) if name.endswith(".weight") else (0.0, 0.1)
    if name.endswith(".weight"):
        return 0.0, 1.0 / math.sqrt(float(shape[0]))
    return 0.0, 0.05


def synthetic_tensor(family: str, seed: int, name: str, shape: list) -> np.ndarray:
    key = seed ^ fnv1a64(name.encode())
    offset, std = init(family, name, shape)
    half_width = std * math.sqrt(3.0)
    u = ((draws(key, int(np.prod(shape))) >> np.uint64(40)).astype(np.float64) + 0.5) / 16777216.0 * 2.0 - 1.0
    return (offset + half_width * u).astype(np.float32).reshape(shape)


def synthetic_tokens(seed: int, n: int, vocab_size: int) -> list:
    key = seed ^ fnv1a64(b"tokens")
    return [int(t) for t in draws(key, n) % np.uint64(vocab_size)]


def expected_tensors(family: str, cfg: dict) -> list:
    """Canonical names and shapes, as each family's Architecture::expected_tensors lists them."""
    if family == "llama":
        return expected_llama_tensors(cfg)
    c, v, p = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    i = cfg["n_inner"] or 4 * c
    names = [("wte.weight", [v, c]), ("wpe.weight", [p, c])]
    for layer in range(cfg["n_layer"]):
        for suffix, shape in [
            ("ln_1.weight", [c]), ("ln_1.bias", [c]),
            ("attn.c_attn.weight", [c, 3 * c]), ("attn.c_attn.bias", [3 * c]),
            ("attn.c_proj.weight", [c, c]), ("attn.c_proj.bias", [c]),
            ("ln_2.weight", [c]), ("ln_2.bias", [c]),
            ("mlp.c_fc.weight", [c, i]), ("mlp.c_fc.bias", [i]),
            ("mlp.c_proj.weight", [i, c]), ("mlp.c_proj.bias", [c]),
        ]:
            names.append((f"h.{layer}.{suffix}", shape))
    names += [("ln_f.weight", [c]), ("ln_f.bias", [c])]
    return names


def expected_llama_tensors(cfg: dict) -> list:
    """Canonical names and shapes, as crates/reference/src/llama/config.rs lists them."""
    c, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    q = cfg["num_attention_heads"] * cfg["head_dim"]
    kv = cfg["num_key_value_heads"] * cfg["head_dim"]
    names = [("model.embed_tokens.weight", [v, c])]
    for layer in range(cfg["num_hidden_layers"]):
        for suffix, shape in [
            ("input_layernorm.weight", [c]),
            ("self_attn.q_proj.weight", [q, c]), ("self_attn.k_proj.weight", [kv, c]),
            ("self_attn.v_proj.weight", [kv, c]), ("self_attn.o_proj.weight", [c, q]),
            ("post_attention_layernorm.weight", [c]),
            ("mlp.gate_proj.weight", [i, c]), ("mlp.up_proj.weight", [i, c]),
            ("mlp.down_proj.weight", [c, i]),
        ]:
            names.append((f"model.layers.{layer}.{suffix}", shape))
    names.append(("model.norm.weight", [c]))
    if not cfg["tie_word_embeddings"]:
        names.append(("lm_head.weight", [v, c]))
    return names


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_digest(family: str, path: str, cfg: dict) -> str:
    """SHA-256 over the tensors as stored on disk, in canonical-name order (see checkpoint.rs)."""
    stored = safetensors.numpy.load_file(path)
    prefix = PREFIXES[family]
    canonical = {k[len(prefix):] if prefix and k.startswith(prefix) else k: a for k, a in stored.items()}
    h = hashlib.sha256()
    for name in sorted(n for n, _ in expected_tensors(family, cfg)):
        a = canonical[name]
        assert a.dtype == np.float32, (name, a.dtype)
        h.update(f"{name}\n[{','.join(str(d) for d in a.shape)}]\n".encode())
        h.update(np.ascontiguousarray(a).astype("<f4").tobytes())
    return h.hexdigest()


def set_synthetic(case: dict, family: str, params: dict, expected: list) -> None:
    """Copies every synthetic tensor into the model's parameters, refusing a parameter left unset."""
    missing = sorted(set(params) - {n for n, _ in expected})
    if missing:
        sys.exit(f"{case['name']}: parameters the generator does not set: {missing}")
    with torch.no_grad():
        for name, shape in expected:
            if list(params[name].shape) != shape:
                sys.exit(f"{case['name']}: {name} has shape {list(params[name].shape)}, expected {shape}")
            params[name].copy_(torch.from_numpy(synthetic_tensor(family, case["seed"], name, shape)))


def build_llama_checkpoint(case: dict, ckpt_dir: str) -> None:
    cfg = case["config"]
    hf_config = transformers.LlamaConfig(
        num_hidden_layers=cfg["num_hidden_layers"], hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"], num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"], head_dim=cfg["head_dim"],
        vocab_size=cfg["vocab_size"], max_position_embeddings=cfg["max_position_embeddings"],
        rms_norm_eps=cfg["rms_norm_eps"],
        rope_parameters={"rope_type": "default", "rope_theta": cfg["rope_theta"]},
        hidden_act="silu", attention_bias=False, mlp_bias=False,
        tie_word_embeddings=cfg["tie_word_embeddings"],
        bos_token_id=0, eos_token_id=cfg["vocab_size"] - 1, pad_token_id=None,
    )
    model = transformers.LlamaForCausalLM(hf_config).eval()
    params = dict(model.named_parameters(remove_duplicate=True))
    set_synthetic(case, "llama", params, expected_tensors("llama", cfg))
    model.save_pretrained(ckpt_dir)


def build_checkpoint(case: dict, ckpt_dir: str) -> None:
    if family_of(case) == "llama":
        return build_llama_checkpoint(case, ckpt_dir)
    cfg = case["config"]
    hf_config = transformers.GPT2Config(
        n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
        n_positions=cfg["n_positions"], vocab_size=cfg["vocab_size"], n_inner=cfg["n_inner"],
        layer_norm_epsilon=cfg["layer_norm_epsilon"], activation_function="gelu_new",
        tie_word_embeddings=True,
        bos_token_id=cfg["vocab_size"] - 1, eos_token_id=cfg["vocab_size"] - 1,
    )
    model = transformers.GPT2LMHeadModel(hf_config).eval()
    set_synthetic(case, "gpt2", dict(model.transformer.named_parameters()), expected_tensors("gpt2", cfg))
    model.save_pretrained(ckpt_dir)


def family_of(case: dict) -> str:
    family = case.get("family", "gpt2")
    if family not in PREFIXES:
        sys.exit(f"{case['name']}: family {family!r} is not one of {sorted(PREFIXES)}")
    return family


def keep_llama_float64(model) -> None:
    """Keeps in float64 the two steps of transformers' Llama that run in float32 whatever its dtype.

    LlamaRMSNorm casts its input to float32 and back; LlamaRotaryEmbedding computes its inverse
    frequencies, its angles and their cosines and sines in float32. Both are replaced, on this
    model's modules only, by the same formulas in the input's dtype: RMSNorm as
    weight * x * rsqrt(mean(x^2) + eps), and the rotary angles as position * theta^(-2i/HS) with
    inverse frequencies computed in float64. Everything else (the projections, the rotation of q
    and k, grouped-query attention through SDPA, the MLP, the LM head) is transformers' own code.
    """
    llama = transformers.models.llama.modeling_llama

    def rmsnorm_forward(self, hidden_states):
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))

    def rotary_forward(self, x, position_ids):
        cfg = self.config
        dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        theta = cfg.rope_parameters["rope_theta"]
        inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
        freqs = position_ids[..., None].to(torch.float64) * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    for module in model.modules():
        if isinstance(module, llama.LlamaRMSNorm):
            module.forward = rmsnorm_forward.__get__(module)
        elif isinstance(module, llama.LlamaRotaryEmbedding):
            assert module.rope_type == "default", module.rope_type
            module.forward = rotary_forward.__get__(module)


def positions_of(case: dict, steps: list) -> tuple:
    """(logit positions, hidden positions) of a case, ascending.

    Logits: every position, or the `logit_positions` listed plus the last position of every step.
    Hidden states: every position, or every `hidden_every`-th one plus the logit positions and the
    first and last position of every step.
    """
    t = sum(steps)
    ends = set()
    p0 = 0
    for n in steps:
        ends |= {p0, p0 + n - 1}
        p0 += n
    if "logit_positions" not in case:
        return list(range(t)), list(range(t))
    listed = set(case["logit_positions"])
    bad = sorted(p for p in listed if not 0 <= p < t)
    if bad:
        sys.exit(f"{case['name']}: logit_positions {bad} are not below the {t} tokens")
    logits = sorted(listed | {p0 - 1 for p0 in itertools.accumulate(steps)})
    every = case.get("hidden_every", 1)
    hidden = sorted(set(range(0, t, every)) | set(logits) | ends)
    return logits, hidden


ORACLES = {
    "gpt2": "transformers.GPT2LMHeadModel, eager attention, model.double()",
    "llama": (
        "transformers.LlamaForCausalLM, SDPA attention, model.double(), RMSNorm and the rotary "
        "angles kept in float64 (transformers casts both to float32)"
    ),
}


def run_oracle(family: str, ckpt_dir: str, tokens: list):
    if family == "llama":
        model = transformers.LlamaForCausalLM.from_pretrained(
            ckpt_dir, dtype=torch.float32, local_files_only=True, attn_implementation="sdpa"
        ).eval()
    else:
        model = transformers.GPT2LMHeadModel.from_pretrained(
            ckpt_dir, dtype=torch.float32, local_files_only=True, attn_implementation="eager"
        ).eval()
    ids = torch.tensor([tokens], dtype=torch.long)
    with torch.no_grad():
        out32 = model(ids, output_hidden_states=True)
        model = model.double()
        if family == "llama":
            keep_llama_float64(model)
        out64 = model(ids, output_hidden_states=True)
    logits64 = out64.logits[0].numpy().astype(np.float64)
    logits32 = out32.logits[0].numpy().astype(np.float32)
    hidden = [h[0].numpy().astype(np.float64) for h in out64.hidden_states]
    return logits64, logits32, hidden


def make_case(case: dict, defaults: dict, out_root: str) -> None:
    name = case["name"]
    family = family_of(case)
    cfg = dict(case["config"])
    case_dir = os.path.join(out_root, name)
    ckpt_dir = os.path.join(case_dir, "checkpoint")
    os.makedirs(case_dir, exist_ok=True)
    print(f"[{name}] building the checkpoint (seed {case['seed']})", flush=True)
    build_checkpoint(case, ckpt_dir)
    model_file = os.path.join(ckpt_dir, "model.safetensors")
    digest = checkpoint_digest(family, model_file, cfg)

    tokens = synthetic_tokens(case["seed"], case["n_tokens"], cfg["vocab_size"])
    steps = case.get("steps", [len(tokens)])
    if sum(steps) != len(tokens) or min(steps) < 1:
        sys.exit(f"{name}: steps {steps} must be positive and sum to n_tokens {len(tokens)}")
    logit_positions, hidden_positions = positions_of(case, steps)
    print(f"[{name}] running the oracle on {len(tokens)} tokens in float32 and float64", flush=True)
    logits64, logits32, hidden = run_oracle(family, ckpt_dir, tokens)
    logits64, logits32 = logits64[logit_positions], logits32[logit_positions]
    outputs = {"logits": np.ascontiguousarray(logits64), "logits_f32": np.ascontiguousarray(logits32)}
    for i, h in enumerate(hidden):
        outputs[f"hidden_states.{i}"] = np.ascontiguousarray(h[hidden_positions])
    outputs_file = os.path.join(case_dir, "outputs.safetensors")
    safetensors.numpy.save_file(outputs, outputs_file)

    scale = float(np.abs(logits64).max())
    gap = float(np.abs(logits32.astype(np.float64) - logits64).max()) / scale
    f32_tol = defaults["f32_gap_factor"] * gap
    print(f"[{name}] max |logit| {scale:.3g}; oracle float32 gap {gap:.3g} (max rel)", flush=True)

    if family == "llama":
        config = {key: cfg[key] for key in LLAMA_FIELDS}
    else:
        cfg["n_inner"] = cfg["n_inner"] or 4 * cfg["n_embd"]
        config = {
            "n_layer": cfg["n_layer"], "n_head": cfg["n_head"], "n_embd": cfg["n_embd"],
            "n_positions": cfg["n_positions"], "vocab_size": cfg["vocab_size"], "n_inner": cfg["n_inner"],
            "layer_norm_epsilon": cfg["layer_norm_epsilon"], "scale_attn_weights": True,
        }
    manifest = {
        "schema": 2,
        "name": name,
        **({"family": family} if family != "gpt2" else {}),
        "description": case["description"],
        "oracle": {
            "name": ORACLES[family],
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "transformers": str(transformers.__version__),
            "safetensors": str(safetensors.__version__),
            "numpy": str(np.__version__),
        },
        "checkpoint": {
            "committed": bool(case["commit_checkpoint"]),
            "scheme": SCHEME,
            "seed": case["seed"],
            "digest": digest,
            "files": {
                f: file_sha256(os.path.join(ckpt_dir, f)) for f in sorted(os.listdir(ckpt_dir))
            } if case["commit_checkpoint"] else {},
        },
        "config": config,
        "tokens": tokens,
        "steps": steps,
        "logit_positions": logit_positions,
        "hidden_positions": hidden_positions,
        "dtype": "float64",
        "outputs": {"file": "outputs.safetensors", "sha256": file_sha256(outputs_file)},
        "oracle_f32_gap": gap,
        "tolerances": {
            "f64_max_rel": {
                "value": defaults["f64_max_rel"],
                "rationale": (
                    "float64 unit roundoff 1.1e-16 times reduction lengths up to about 1e4 and a few "
                    "layers of growth stays below 1e-10; 1e-9 leaves a margin and is still 7 orders "
                    "of magnitude tighter than any float32 error, so any missing term or reordering "
                    "bug shows"
                ),
            },
            "f32_max_rel": {
                "value": f32_tol,
                "rationale": (
                    f"{defaults['f32_gap_factor']} x the oracle's own float32-vs-float64 gap on this case "
                    f"({gap:.3g}): a float32 implementation as careful as PyTorch's rounds differently "
                    "but at the same scale"
                ),
            },
        },
    }
    with open(os.path.join(case_dir, "manifest.yaml"), "w") as f:
        f.write(f"# Golden case `{name}`, written by golden/oracle/make_golden.py; do not edit.\n")
        yaml.safe_dump(manifest, f, sort_keys=False, width=100, default_flow_style=None)


LLAMA_FIELDS = [
    "num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
    "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings", "rms_norm_eps",
    "rope_theta", "tie_word_embeddings",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", required=True, help="the case list (golden/oracle/cases.yaml)")
    parser.add_argument("--out", required=True, help="the staging directory to write cases into")
    parser.add_argument("--only", action="append", default=[], help="make only this case (repeatable)")
    args = parser.parse_args()
    with open(args.cases) as f:
        spec = yaml.safe_load(f)
    if spec.get("schema") != 2:
        sys.exit(f"{args.cases}: unknown schema {spec.get('schema')!r}; expected 2")
    names = [c["name"] for c in spec["cases"]]
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        sys.exit(f"{args.cases}: no case named {', '.join(unknown)}; cases are {', '.join(names)}")
    torch.set_num_threads(os.cpu_count() or 1)
    for case in spec["cases"]:
        if not args.only or case["name"] in args.only:
            make_case(case, spec, args.out)


if __name__ == "__main__":
    main()
