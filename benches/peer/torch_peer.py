#!/usr/bin/env python3
"""Times PyTorch on the shapes of a tkbench report: the peer column of `cargo xtask bench`.

The script knows no op: the Rust side sends, for every job, the Python code to time.

Input: argv[1] names a JSON file holding a list of jobs, each an object
  {"kind": "op" | "model", "op": str, "shape": str, "threads": int,
   "setup": str, "stmt": str, "skip": str (optional)}
- `setup` is Python source run once per job, before timing, with these names already defined:
    torch, F (torch.nn.functional),
    g       a torch.Generator seeded with 7 (a fresh one for every job),
    rand    rand(*shape) -> float32 tensor of uniform values in [-1, 1) drawn from g.
  It defines the tensors (and, for a model job, the model) that `stmt` uses; it imports anything
  else itself (e.g. `import transformers`). Names it binds are globals of `stmt`.
- `stmt` is one statement, or a few lines, timed repeatedly. It runs inside a function, so a name it
  assigns is local to that function: to carry state from one run to the next (a KV cache, say),
  mutate an object made in `setup` rather than rebinding its name.
- `skip`, when present, says why the peer does not time this shape: "skipped <op> <shape>: <skip>"
  goes to stderr and nothing is emitted for the job (its setup and stmt are not run).
Before `setup`, torch.set_num_threads(threads) is called; autograd is off for the whole run
(torch.set_grad_enabled(False)). HF_HUB_OFFLINE=1 is set unless already set: nothing is fetched
from a model hub.

Timing: torch.utils.benchmark.Timer(...).blocked_autorange(min_run_time=T), T = 0.2 s when
TKBENCH_QUICK is set (non-empty and not "0"), else 1.0 s. Each block's time is divided by the runs
in the block; the median of those per-run times is reported, with a distribution-free 95 % interval
for that median.

Output: stdout gets a JSON list of
  {"kind", "op", "shape", "threads", "median_ns", "lower_ns", "upper_ns"}
(floats, nanoseconds per run), in job order, skipped jobs left out. Progress goes to stderr, one
line per job: "[i/n] torch <op> <shape> x<threads>: <median> ms".

Errors: a job whose setup or stmt raises stops the run: its kind, op, shape, threads and the
exception (with traceback) go to stderr and the exit status is 1, with nothing on stdout.
"""

import json
import math
import os
import statistics
import sys
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import torch.nn.functional as F
import torch.utils.benchmark as benchmark

QUICK = os.environ.get("TKBENCH_QUICK", "") not in ("", "0")
MIN_RUN_TIME = 0.2 if QUICK else 1.0
REQUIRED = {"kind": str, "op": str, "shape": str, "threads": int, "setup": str, "stmt": str}


class JobError(Exception):
    """A job that could not be run; the message names the job and what went wrong."""


def describe(job):
    return f"{job.get('kind')} {job.get('op')} {job.get('shape')} x{job.get('threads')}"


def check(job, i):
    if not isinstance(job, dict):
        raise JobError(f"job {i + 1} is not a JSON object: {job!r}")
    for key, ty in REQUIRED.items():
        if key not in job and not (key in ("setup", "stmt") and "skip" in job):
            raise JobError(f"job {i + 1} ({describe(job)}) has no {key!r}")
        if key in job and (not isinstance(job[key], ty) or isinstance(job[key], bool)):
            raise JobError(f"job {i + 1} ({describe(job)}): {key!r} must be a {ty.__name__}, got {job[key]!r}")
    if job["kind"] not in ("op", "model"):
        raise JobError(f"job {i + 1} ({describe(job)}): kind must be \"op\" or \"model\"")
    if job["threads"] < 1:
        raise JobError(f"job {i + 1} ({describe(job)}): threads must be at least 1")
    if "skip" in job and not isinstance(job["skip"], str):
        raise JobError(f"job {i + 1} ({describe(job)}): 'skip' must be a string")


def median_interval(times):
    """Median of `times` and a 95 % confidence interval for it, as (median, lower, upper).

    criterion reports a confidence interval for the median on the Rust side, so the peer gives one
    for the same statistic. Block times are not normal (a long right tail from preemption and
    frequency changes), so the interval is the distribution-free one from order statistics: with n
    sorted values, the 1-based ranks j = floor(n/2 - 0.98 sqrt(n)) and k = ceil(n/2 + 1 + 0.98 sqrt(n))
    bound the median with probability of at least about 95 % (the binomial count of values below the
    median, in its normal approximation; 0.98 = 1.96 / 2). Ranks are turned into 0-based indices and
    clamped to the sample; below 6 values the interval is simply [min, max].
    """
    xs = sorted(times)
    n = len(xs)
    med = statistics.median(xs)
    if n < 6:
        return med, xs[0], xs[-1]
    half = 0.98 * math.sqrt(n)
    j = math.floor(n / 2 - half) - 1
    k = math.ceil(n / 2 + 1 + half) - 1
    return med, xs[min(max(j, 0), n - 1)], xs[min(max(k, 0), n - 1)]


def run_job(job):
    torch.set_num_threads(job["threads"])
    g = torch.Generator().manual_seed(7)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float32) * 2 - 1

    env = {"__name__": "__tkbench_setup__", "torch": torch, "F": F, "g": g, "rand": rand}
    try:
        # Run here, once, and not as the Timer's `setup`: the Timer reruns its setup before every
        # block, which would rebuild a model each time and redraw the inputs from g.
        exec(compile(job["setup"], f"<setup of {job['op']} {job['shape']}>", "exec"), env)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        raise JobError(f"setup of {describe(job)} failed: {type(e).__name__}: {e}") from e
    try:
        timer = benchmark.Timer(stmt=job["stmt"], setup="pass", globals=env, num_threads=job["threads"])
        m = timer.blocked_autorange(min_run_time=MIN_RUN_TIME)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        raise JobError(f"stmt of {describe(job)} failed: {type(e).__name__}: {e}") from e
    return median_interval(m.times)  # m.times: seconds per run, one value per block


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} JOBS.json", file=sys.stderr)
        sys.exit(2)
    torch.set_grad_enabled(False)  # thread-local; the Timer runs stmt on this thread
    try:
        with open(sys.argv[1]) as f:
            jobs = json.load(f)
        if not isinstance(jobs, list):
            raise JobError(f"{sys.argv[1]} must hold a JSON list of jobs")
        for i, job in enumerate(jobs):
            check(job, i)
    except (OSError, ValueError, JobError) as e:
        print(f"torch_peer: bad job file {sys.argv[1]}: {e}", file=sys.stderr)
        sys.exit(1)

    results = []
    n = len(jobs)
    for i, job in enumerate(jobs):
        if "skip" in job:
            print(f"skipped {job['op']} {job['shape']}: {job['skip']}", file=sys.stderr)
            continue
        try:
            med, lo, hi = run_job(job)
        except JobError as e:
            traceback.print_exception(e.__cause__, file=sys.stderr)
            print(f"torch_peer: job [{i + 1}/{n}] {e}", file=sys.stderr)
            sys.exit(1)
        print(f"[{i + 1}/{n}] torch {job['op']} {job['shape']} x{job['threads']}: {med * 1e3:.4f} ms", file=sys.stderr)
        results.append({
            "kind": job["kind"], "op": job["op"], "shape": job["shape"], "threads": job["threads"],
            "median_ns": med * 1e9, "lower_ns": lo * 1e9, "upper_ns": hi * 1e9,
        })
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
