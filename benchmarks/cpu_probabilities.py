"""CPU benchmark: ``numeric.divergence`` on probabilities vs SciPy's composition.

For KL and JS (β = 1/2) at B×V = 256×32000 and 4096×1024 in float64 and float32, each
pair timed in the same run (calls interleaved, best of N):

* divkit: ``numeric.divergence(f, p, q)`` (the compiled path of numeric/_cpu.py when a C
  compiler is present, else numpy);
* SciPy: ``scipy.special.rel_entr(p, q).sum(-1)`` (KL) and
  ``scipy.spatial.distance.jensenshannon(p, q, axis=-1) ** 2`` (JS);
* plain numpy ``(p * np.log(p / q)).sum(-1)`` for KL as a floor (no zero-mass rules).

Then every catalog f alone at 256×32000 float64 (divkit ms and its ratio to SciPy's KL
composition measured in the same run). Prints a markdown table with the machine, the
thread count and the date.

Usage::

    python benchmarks/cpu_probabilities.py [--repeats 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import pathlib
import sys
import time

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

# this checkout's packages, not an installed copy
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numeric  # noqa: E402
from numeric import _cpu  # noqa: E402
from theory import fdiv  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from cpu_divergence import cpu_model  # noqa: E402

SHAPES = [(256, 32000), (4096, 1024)]


def best_times(fns, repeats):
    """Best wall time of each function, calls interleaved so that a change of machine load
    hits every side alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"# {cpu_model()}; numpy {np.__version__}; threads {_cpu.threads()}; compiled path "
          f"{'on' if _cpu.available() else 'off (no C compiler)'}; "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"# best of {args.repeats}, calls interleaved; P, Q ~ Dirichlet(1) rows")
    print("| f | B×V | dtype | divkit (ms) | SciPy (ms) | SciPy / divkit | numpy floor (ms) | "
          "max rel diff |")
    print("|---|---|---|---|---|---|---|---|")
    for rows, v in SHAPES:
        base_p = rng.dirichlet(np.ones(v), size=rows)
        base_q = rng.dirichlet(np.ones(v), size=rows)
        for dtype in (np.float64, np.float32):
            p, q = base_p.astype(dtype), base_q.astype(dtype)
            for name, scipy_fn in (("kl", lambda p=p, q=q: rel_entr(p, q).sum(-1)),
                                   ("js", lambda p=p, q=q: jensenshannon(p, q, axis=-1) ** 2)):
                def ours(name=name, p=p, q=q):
                    return numeric.divergence(name, p, q)

                ours()  # derive and compile once (cached on disk)
                fns = [ours, scipy_fn]
                if name == "kl":
                    fns.append(lambda p=p, q=q: (p * np.log(p / q)).sum(-1))
                times = best_times(fns, args.repeats)
                a, b = ours().astype(np.float64), scipy_fn().astype(np.float64)
                diff = float(np.max(np.abs(a - b) / np.abs(b)))
                floor = f"{times[2] * 1e3:.1f}" if len(times) > 2 else "—"
                print(f"| {name} | {rows}×{v} | {np.dtype(dtype).name} | {times[0] * 1e3:.1f} | "
                      f"{times[1] * 1e3:.1f} | {times[1] / times[0]:.2f} | {floor} | "
                      f"{diff:.1e} |", flush=True)
    rows, v = SHAPES[0]
    p = rng.dirichlet(np.ones(v), size=rows)
    q = rng.dirichlet(np.ones(v), size=rows)
    print()
    print(f"# every catalog f, {rows}×{v} float64; ratio = SciPy rel_entr sum / divkit")
    print("| f | divkit (ms) | SciPy KL (ms) | ratio |")
    print("|---|---|---|---|")
    for name in fdiv.names():
        numeric.divergence(name, p[:2], q[:2])
        td, ts = best_times([lambda name=name: numeric.divergence(name, p, q),
                             lambda: rel_entr(p, q).sum(-1)], args.repeats)
        print(f"| {name} | {td * 1e3:.1f} | {ts * 1e3:.1f} | {ts / td:.2f} |", flush=True)


if __name__ == "__main__":
    main()
