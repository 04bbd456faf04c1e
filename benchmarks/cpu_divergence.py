"""CPU benchmark: divergence + student gradient from logits, divkit and its peers in one run.

For each shape (256×32000, 4096×1024, 8×128256), dtype (float32, float64) and f (KL,
reverse KL, JS (β = 1/2), TV, alpha (α = 0.3), Jeffreys), the forward loss per row and the
gradient with respect to the student logits, timed in the same process, calls interleaved
(a, b, c, a, b, c, ...) so that a change of machine load hits every side alike:

* divkit: ``numeric.divergence_from_logits(f, t, s, reduction="none", return_grad=True)``;
* hand numpy: log-softmax of both rows, the loss, the analytic gradient ``q (g - Σ q g)``;
* SciPy: the same through ``scipy.special.log_softmax`` / ``rel_entr`` /
  ``scipy.spatial.distance.jensenshannon`` where they apply;
* torch eager (1 thread and all threads) and ``torch.compile`` (all threads): the loss
  written with ``log_softmax`` and its gradient by autograd;
* the floor: read the two inputs and write one array of their size (``np.add(t, s, out)``).

Prints best-of-N wall times, best peer / divkit and divkit / floor per cell, and the
geometric mean of best peer / divkit. Inputs are the same arrays for every side (torch
tensors share their memory). The load of the machine (``os.getloadavg``) is printed
before and after.

Usage::

    python benchmarks/cpu_divergence.py [--repeats 5] [--shapes 256x32000,4096x1024,8x128256]
        [--fs kl,reverse_kl,js,tv,alpha0.3,jeffreys] [--dtypes float32,float64] [--no-compile]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import math
import os
import platform
import subprocess
import time

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.special import log_softmax, rel_entr

import numeric
from numeric import _cpu

ALPHA = 0.3


# --------------------------------------------------------------------------- numpy / SciPy


def _np_log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _grad(q, qg):
    """q (g - Σ q g) from the weighted terms q g."""
    return qg - q * qg.sum(axis=-1, keepdims=True)


def _numpy_case(name, lsm):
    """The hand-written loss and student gradient of ``name``; ``lsm`` the log-softmax."""

    def run(t, s):
        lt, ls = lsm(t), lsm(s)
        p, q = np.exp(lt), np.exp(ls)
        if name == "kl":
            loss = rel_entr(p, q).sum(axis=-1) if lsm is log_softmax else (
                p * (lt - ls)).sum(axis=-1)
            return loss, q - p
        if name == "reverse_kl":
            loss = rel_entr(q, p).sum(axis=-1) if lsm is log_softmax else (
                q * (ls - lt)).sum(axis=-1)
            return loss, q * (ls - lt - loss[:, None])
        if name == "js":
            lm = np.log(0.5 * (p + q))
            if lsm is log_softmax:
                loss = jensenshannon(p, q, axis=-1) ** 2
            else:
                loss = 0.5 * (p * (lt - lm)).sum(axis=-1) + 0.5 * (q * (ls - lm)).sum(axis=-1)
            return loss, _grad(q, 0.5 * q * (ls - lm))
        if name == "tv":
            d = q - p
            return 0.5 * np.abs(d).sum(axis=-1), _grad(q, 0.5 * q * np.sign(d))
        if name == "alpha":
            w = np.exp((1 - ALPHA) * lt + ALPHA * ls)  # p^(1-α) q^α
            sw = w.sum(axis=-1)
            loss = (sw - 1.0) / (ALPHA * (ALPHA - 1.0))
            return loss, (-w + q * sw[:, None]) / (1.0 - ALPHA)
        if name == "jeffreys":
            d = lt - ls
            loss = ((p - q) * d).sum(axis=-1)
            return loss, _grad(q, -q * d - p + q)
        raise ValueError(name)

    return run


# --------------------------------------------------------------------------- torch


def _torch_loss(torch, name):
    F = torch.nn.functional

    def loss(t, s):
        lt, ls = F.log_softmax(t, dim=-1), F.log_softmax(s, dim=-1)
        p, q = lt.exp(), ls.exp()
        if name == "kl":
            out = (p * (lt - ls)).sum(-1)
        elif name == "reverse_kl":
            out = (q * (ls - lt)).sum(-1)
        elif name == "js":
            lm = torch.log(0.5 * (p + q))
            out = 0.5 * (p * (lt - lm)).sum(-1) + 0.5 * (q * (ls - lm)).sum(-1)
        elif name == "tv":
            out = 0.5 * (p - q).abs().sum(-1)
        elif name == "alpha":
            out = (torch.exp((1 - ALPHA) * lt + ALPHA * ls).sum(-1) - 1.0) / (
                ALPHA * (ALPHA - 1.0))
        elif name == "jeffreys":
            out = ((p - q) * (lt - ls)).sum(-1)
        else:
            raise ValueError(name)
        return out

    return loss


def _torch_case(torch, fn, threads):
    def run(t, s):
        old = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            tt = torch.from_numpy(t)
            ss = torch.from_numpy(s).requires_grad_(True)
            loss = fn(tt, ss)
            (g,) = torch.autograd.grad(loss.sum(), ss)
            return loss.detach().numpy(), g.numpy()
        finally:
            torch.set_num_threads(old)

    return run


# --------------------------------------------------------------------------- timing


def best_times(fns, t, s, repeats):
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            gc.collect()
            t0 = time.perf_counter()
            fn(t, s)
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip() + f", {os.cpu_count()} CPU(s)"
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--shapes", default="256x32000,4096x1024,8x128256")
    ap.add_argument("--fs", default="kl,reverse_kl,js,tv,alpha,jeffreys")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--no-compile", action="store_true", help="leave out torch.compile")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import torch
    # one compiled loss per (f, shape, dtype): dynamo guards the shared code object on them,
    # and past its default limit of 8 recompiles it would silently run the rest eagerly
    torch._dynamo.config.recompile_limit = 1024

    all_threads = torch.get_num_threads()
    shapes = [tuple(int(x) for x in sh.split("x")) for sh in args.shapes.split(",")]
    names = args.fs.split(",")
    print(f"# {cpu_model()}; numpy {np.__version__}; torch {torch.__version__}; "
          f"divkit threads {_cpu.threads()} (compiled path "
          f"{'on' if _cpu.available() else 'off'}); torch threads {all_threads}")
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min); best of "
          f"{args.repeats}; forward + student gradient; times in ms")
    print("| shape | dtype | f | divkit | numpy | SciPy | torch 1T | torch | torch.compile | "
          "floor | best peer / divkit | divkit / floor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratios = []
    compiled = {}
    for shape in shapes:
        rng = np.random.default_rng(args.seed)
        base_t = rng.standard_normal(shape) * 3.0
        base_s = base_t + rng.standard_normal(shape)
        for dt in args.dtypes.split(","):
            t = np.ascontiguousarray(base_t.astype(dt))
            s = np.ascontiguousarray(base_s.astype(dt))
            out = np.empty_like(t)

            def floor(t, s, out=out):
                np.add(t, s, out=out)

            for name in names:
                params = {"alpha": ALPHA} if name == "alpha" else None

                def ours(t, s, name=name, params=params):
                    return numeric.divergence_from_logits(name, t, s, reduction="none",
                                                          return_grad=True, params=params)

                peers = {"numpy": _numpy_case(name, _np_log_softmax),
                         "SciPy": _numpy_case(name, log_softmax),
                         "torch 1T": _torch_case(torch, _torch_loss(torch, name), 1),
                         "torch": _torch_case(torch, _torch_loss(torch, name), 0)}
                if not args.no_compile:
                    if name not in compiled:
                        compiled[name] = torch.compile(_torch_loss(torch, name), dynamic=True)
                    peers["torch.compile"] = _torch_case(torch, compiled[name], 0)
                for fn in (ours, *peers.values()):
                    fn(t, s)  # warm: kernels compiled, caches filled
                times = best_times([ours, floor, *peers.values()], t, s, args.repeats)
                td, tf, tp = times[0], times[1], dict(zip(peers, times[2:], strict=True))
                best = min(tp.values())
                ratios.append(best / td)
                cells = [f"{tp[k] * 1e3:.1f}" if k in tp else "—"
                         for k in ("numpy", "SciPy", "torch 1T", "torch", "torch.compile")]
                label = f"alpha({ALPHA})" if name == "alpha" else name
                print(f"| {shape[0]}×{shape[1]} | {dt} | {label} | {td * 1e3:.1f} | "
                      + " | ".join(cells)
                      + f" | {tf * 1e3:.1f} | {best / td:.2f} | {td / tf:.1f} |", flush=True)
    gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"# geometric mean of best peer / divkit over {len(ratios)} cells: {gm:.2f}; "
          f"cells with divkit faster than every peer: {sum(r >= 1 for r in ratios)}"
          f"/{len(ratios)}; load after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
