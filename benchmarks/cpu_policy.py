"""Time numeric.policy_from_reward against a numpy softmax, side by side (CPU, float64).

    python benchmarks/cpu_policy.py [--rows 65536] [--actions 16] [--repeat 7]

For every strictly convex catalog f: the median wall time of ``policy_from_reward`` on
random rewards (N(0, 1)) and reference log-probabilities, beta = 0.1, its ratio to a plain
numpy softmax of ``log pi_ref + r / beta`` (the closed form for KL) measured in the same
run (just before it), the outer iterations of the slowest row and the mean number per
row (from untimed runs with ``max_iter`` = 1, 2, ...: the share of rows converged by then),
and whether every row converged.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import sys
import time
import warnings

import numpy as np
from scipy.special import log_softmax

# this checkout's packages, not an installed copy
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numeric  # noqa: E402
from theory import fdiv  # noqa: E402


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def _mean_iterations(name, r, lref, beta, slowest):
    """Mean outer iterations per row: sum over k of the share of rows not converged within
    k iterations (rows are independent, so a run with max_iter=k stops exactly those)."""
    mean = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(1, slowest):
            res = numeric.policy_from_reward(name, r, lref, beta=beta, max_iter=k)
            mean += 1.0 - float(res.converged.mean())
    return mean


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=65536)
    ap.add_argument("--actions", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--beta", type=float, default=0.1)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    r = rng.normal(0, 1, (args.rows, args.actions))
    lref = log_softmax(rng.normal(0, 1, (args.rows, args.actions)), axis=-1)
    beta = args.beta

    def softmax():
        z = lref + r / beta
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    print(f"policy_from_reward, {args.rows}x{args.actions} float64, beta={beta}, "
          f"median of {args.repeat}; numpy {np.__version__}, {platform.machine()}")
    print(f"{'f':<14}{'ms':>9}{'softmax ms':>12}{'ratio':>8}{'iters':>7}{'mean':>7}  converged")
    for name in fdiv.names():
        if not fdiv.get(name).strictly_convex:
            continue
        numeric.policy_from_reward(name, r[:4], lref[:4], beta=beta)  # compile, cache
        t_sm, _ = _median_time(softmax, args.repeat)
        t_p, res = _median_time(lambda n=name: numeric.policy_from_reward(n, r, lref, beta=beta),
                                args.repeat)
        mean = _mean_iterations(name, r, lref, beta, res.iterations)
        print(f"{name:<14}{1e3 * t_p:9.1f}{1e3 * t_sm:12.1f}{t_p / t_sm:8.1f}{res.iterations:7d}"
              f"{mean:7.2f}  {bool(res.converged.all())}")


if __name__ == "__main__":
    main()
