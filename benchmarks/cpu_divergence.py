"""CPU benchmark: divergence + student gradient from logits, divkit vs a SciPy composition.

For kl, reverse_kl, js (β = 1/2) and alpha (α = 1/2) at B×V = 256×32000 in float64 and
float32, each pair timed in the same run:

* divkit: ``numeric.divergence_from_logits(f, t, s, reduction="none", return_grad=True)``
* SciPy: what a SciPy user writes — ``scipy.special.log_softmax`` of both rows, ``exp``,
  ``scipy.special.rel_entr`` (KL, reverse KL), ``scipy.spatial.distance.jensenshannon``
  squared (JS), ``sqrt(p q)`` (α = 1/2, the Bhattacharyya form), and the hand-written
  gradient ``q (g - Σ q g)``.

Prints best-of-N wall times (the two sides' calls interleaved), the ratio SciPy/divkit,
the peak traced memory (tracemalloc, measured in a separate call) and the largest relative
difference between the two results (a sanity check, not an accuracy claim: the accuracy
tests are in tests/numeric).

Usage::

    python benchmarks/cpu_divergence.py [--rows 256] [--vocab 32000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import platform
import subprocess
import time
import tracemalloc

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.special import log_softmax, rel_entr

import numeric


def scipy_kl(t, s):
    lt, ls = log_softmax(t, axis=-1), log_softmax(s, axis=-1)
    p, q = np.exp(lt), np.exp(ls)
    return rel_entr(p, q).sum(axis=-1), q - p


def scipy_reverse_kl(t, s):
    lt, ls = log_softmax(t, axis=-1), log_softmax(s, axis=-1)
    p, q = np.exp(lt), np.exp(ls)
    loss = rel_entr(q, p).sum(axis=-1)
    return loss, q * (ls - lt - loss[:, None])


def scipy_js(t, s):
    lt, ls = log_softmax(t, axis=-1), log_softmax(s, axis=-1)
    p, q = np.exp(lt), np.exp(ls)
    loss = jensenshannon(p, q, axis=-1) ** 2
    h = 0.5 * (ls - np.log(0.5 * (p + q)))
    return loss, q * (h - (q * h).sum(axis=-1, keepdims=True))


def scipy_alpha_half(t, s):
    lt, ls = log_softmax(t, axis=-1), log_softmax(s, axis=-1)
    p, q = np.exp(lt), np.exp(ls)
    bc = np.sqrt(p * q)
    tot = bc.sum(axis=-1)
    return 4.0 * (1.0 - tot), -2.0 * bc + 2.0 * q * tot[:, None]


CASES = [
    ("kl", "kl", scipy_kl),
    ("reverse_kl", "reverse_kl", scipy_reverse_kl),
    ("js", "js", scipy_js),
    ("alpha(0.5)", "alpha", scipy_alpha_half),
]


def divkit_call(name):
    def run(t, s):
        return numeric.divergence_from_logits(name, t, s, reduction="none", return_grad=True)

    return run


def best_times(fns, t, s, repeats):
    """Best wall time of each function, calls interleaved (a, b, a, b, ...) so that a
    change of machine load hits both sides alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            gc.collect()
            t0 = time.perf_counter()
            fn(t, s)
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def peak_memory(fn, t, s):
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn(t, s)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                cores = [x for x in out.splitlines() if x.startswith("CPU(s):")]
                return line.split(":", 1)[1].strip() + (
                    f", {cores[0].split(':', 1)[1].strip()} CPU(s)" if cores else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    base_t = rng.standard_normal((args.rows, args.vocab)) * 3.0
    base_s = base_t + rng.standard_normal((args.rows, args.vocab))
    print(f"# {cpu_model()}; numpy {np.__version__}; "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"# B×V = {args.rows}×{args.vocab}, best of {args.repeats}; forward + student grad")
    print("| f | dtype | divkit (ms) | SciPy (ms) | SciPy / divkit | divkit peak (MiB) | "
          "SciPy peak (MiB) | max rel diff (loss) |")
    print("|---|---|---|---|---|---|---|---|")
    for dtype in (np.float64, np.float32):
        t = base_t.astype(dtype)
        s = base_s.astype(dtype)
        for label, name, ref in CASES:
            ours = divkit_call(name)
            ours(t[:2], s[:2])  # derive and generate the kernels once (cached on disk)
            td, ts = best_times([ours, ref], t, s, args.repeats)
            md = peak_memory(ours, t, s) / 2**20
            ms = peak_memory(ref, t, s) / 2**20
            l1, _ = ours(t, s)
            l2, _ = ref(t, s)
            diff = float(np.max(np.abs(l1.astype(np.float64) - l2) / np.abs(l2)))
            print(f"| {label} | {np.dtype(dtype).name} | {td * 1e3:.1f} | {ts * 1e3:.1f} | "
                  f"{ts / td:.2f} | {md:.1f} | {ms:.1f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
