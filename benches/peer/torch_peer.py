#!/usr/bin/env python3
"""Times PyTorch on the shapes of a tkbench report: the peer column of `cargo xtask bench`.

Reads a JSON list of jobs from the file named by argv[1]; each job is
  {"kind": "op" | "model", "op": ..., "shape": "<shape string>", "params": {...}, "threads": N}
and prints a JSON list of {"kind", "op", "shape", "threads", "median_ns"} on stdout. Outputs are
preallocated where the op allows (`out=`), inputs are float32, and every job is warmed up before the
median of repeated runs is taken. Progress goes to stderr. Nothing is fetched from a model hub.
"""

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import torch.nn.functional as F

QUICK = os.environ.get("TKBENCH_QUICK", "") not in ("", "0")


def median_ns(fn):
    for _ in range(3):
        fn()
    budget = 0.3 if QUICK else 1.0
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < budget and len(times) < 1000):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    times.sort()
    return times[len(times) // 2]


def op_job(op, p):
    g = torch.Generator().manual_seed(7)
    rand = lambda *s: torch.rand(*s, generator=g) * 2 - 1
    if op == "embedding":
        wte, wpe = rand(p["vocab"], p["channels"]), rand(p["positions"], p["channels"])
        ids = torch.randint(0, p["vocab"], (p["tokens"],), generator=g)
        out = torch.empty(p["tokens"], p["channels"])
        pos = wpe[p["pos0"]: p["pos0"] + p["tokens"]]
        return lambda: torch.add(torch.index_select(wte, 0, ids), pos, out=out)
    if op == "layernorm":
        x, w, b = rand(p["rows"], p["channels"]), rand(p["channels"]) + 1, rand(p["channels"])
        return lambda: F.layer_norm(x, (p["channels"],), w, b, 1e-5)
    if op == "softmax":
        x, out = rand(p["rows"], p["cols"]) * 4, torch.empty(p["rows"], p["cols"])
        return lambda: torch.ops.aten._softmax.out(x, -1, False, out=out)
    if op == "attention":
        nh, hs, tq, s = p["heads"], p["head_size"], p["queries"], p["pos0"] + p["queries"]
        q, k, v = rand(1, nh, tq, hs), rand(1, nh, s, hs), rand(1, nh, s, hs)
        if p["pos0"] == 0:
            return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if tq == 1:  # one decode step sees every cached key
            return lambda: F.scaled_dot_product_attention(q, k, v)
        raise ValueError("attention with pos0 > 0 and more than one query is not timed")
    if op == "matmul":
        a, b, out = rand(p["m"], p["k"]), rand(p["k"], p["n"]), torch.empty(p["m"], p["n"])
        if p["bias"]:
            bias = rand(p["n"])
            return lambda: torch.addmm(bias, a, b, out=out)
        return lambda: torch.mm(a, b, out=out)
    if op == "gelu":
        x, out = rand(p["n"]) * 4, torch.empty(p["n"])
        return lambda: torch.ops.aten.gelu.out(x, approximate="tanh", out=out)
    raise ValueError(f"unknown op {op}")


_models = {}


def model_job(op, p):
    import transformers

    transformers.utils.logging.set_verbosity_error()
    if "model" not in _models:
        cfg = transformers.GPT2Config(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)
        _models["model"] = transformers.GPT2LMHeadModel(cfg).eval()
    model = _models["model"]
    ids = torch.randint(0, 50257, (1, p["tokens"] + p["cached"]), generator=torch.Generator().manual_seed(1))
    if op == "prefill":
        def run():
            with torch.no_grad():
                model(ids[:, : p["tokens"]])
        return run
    with torch.no_grad():
        cache = model(ids[:, : p["cached"]], use_cache=True).past_key_values

    def step():
        with torch.no_grad():
            extra = cache.get_seq_length() - p["cached"]
            if extra > 0:
                cache.crop(-extra)
            model(ids[:, p["cached"]:], past_key_values=cache, use_cache=True)
    return step


def main():
    jobs = json.load(open(sys.argv[1]))
    results = []
    for i, job in enumerate(jobs):
        torch.set_num_threads(job["threads"])
        try:
            fn = model_job(job["op"], job["params"]) if job["kind"] == "model" else op_job(job["op"], job["params"])
        except ValueError as e:
            print(f"[{i + 1}/{len(jobs)}] skipped {job['op']} {job['shape']}: {e}", file=sys.stderr)
            continue
        ns = median_ns(fn)
        print(f"[{i + 1}/{len(jobs)}] torch {job['op']} {job['shape']} x{job['threads']}: {ns / 1e6:.3f} ms", file=sys.stderr)
        results.append({"kind": job["kind"], "op": job["op"], "shape": job["shape"], "threads": job["threads"], "median_ns": ns})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
