"""CPU benchmark: divkit's log-domain Sinkhorn vs POT (numpy) and geomloss (torch CPU).

    python benchmarks/cpu_transport.py [--sizes 1000 5000] [--eps 0.5 0.05] [--repeats 3]
                                       [--geomloss-python /path/to/python] [--memory]

Problem: n = m points uniform in the unit square (seed 0), uniform weights, cost
C = |x - y|^2 (max ≈ 2), float64. Same stopping rule for divkit and POT: tolerance 1e-9 on
the marginal violation — POT's ``sinkhorn_log`` checks the L2 norm of the column violation
every 10 iterations; divkit checks the L1 norm of the row violation (≥ the L2 norm) every
iteration, so divkit's rule is the stricter one. geomloss has no stopping rule (a fixed
ε-scaling schedule); it runs with ``scaling=0.9`` and its distance to the converged value
is printed instead. Timings: calls interleaved (divkit, POT, divkit, POT, …), best of
``--repeats``. ``--memory`` also measures the peak memory of ``sinkhorn_points`` with
n = 10^6 points (tracemalloc peak of numpy allocations and the process's max RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from numeric import sinkhorn, sinkhorn_points  # noqa: E402

TOL = 1e-9

_GEOMLOSS = r"""
import json, sys, time, numpy as np, torch, geomloss
torch.set_num_threads(int(sys.argv[4]))
d = np.load(sys.argv[1]); eps = float(sys.argv[2]); reps = int(sys.argv[3])
x = torch.from_numpy(d["x"]); y = torch.from_numpy(d["y"])
# geomloss p=2: cost |x-y|^2/2 and eps = blur^2, so blur = sqrt(eps/2) gives OT_eps/2 of ours
loss = geomloss.SamplesLoss("sinkhorn", p=2, blur=(eps / 2) ** 0.5, scaling=0.9, debias=False,
                            backend="tensorized")
best = float("inf")
for _ in range(reps):
    t = time.perf_counter(); v = float(loss(x, y)); best = min(best, time.perf_counter() - t)
print(json.dumps({"time": best, "value": 2 * v}))
"""


def problem(n, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.random((n, 2)), rng.random((n, 2))
    w = np.full(n, 1.0 / n)
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return x, y, w, cost


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def run_pot(ot, w, cost, eps):
    plan, log = ot.bregman.sinkhorn_log(w, w, cost, eps, numItermax=100000, stopThr=TOL, log=True,
                                        warn=False)
    return float((plan * cost).sum()), int(log["niter"]), log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--eps", type=float, nargs="+", default=[0.5, 0.05])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--geomloss-python", default=None)
    ap.add_argument("--memory", action="store_true")
    args = ap.parse_args()
    import ot

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy "
          f"{np.__version__}, POT {ot.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| n | ε | divkit dense (s) | it | divkit points (s) | POT sinkhorn_log (s) | it | "
          "POT / dense | POT / points | geomloss (s) | geomloss rel. dev. | |Δ cost| vs POT |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        x, y, w, cost = problem(n)
        reps = args.repeats if n <= 2000 else 1
        for eps in args.eps:
            td = tp = tq = float("inf")
            for _ in range(reps):
                t, rd = timed(lambda: sinkhorn(w, w, cost, epsilon=eps, tol=TOL))  # noqa: B023
                td = min(td, t)
                t, (pc, pit, _) = timed(lambda: run_pot(ot, w, cost, eps))  # noqa: B023
                tp = min(tp, t)
                t, rq = timed(lambda: sinkhorn_points(w, x, w, y, epsilon=eps, tol=TOL))  # noqa: B023
                tq = min(tq, t)
            gl_t, gl_dev = "n/a", "n/a"
            if args.geomloss_python:
                with tempfile.TemporaryDirectory() as tmp:
                    path = os.path.join(tmp, "xy.npz")
                    np.savez(path, x=x, y=y)
                    out = subprocess.run([args.geomloss_python, "-c", _GEOMLOSS, path, str(eps),
                                          str(reps), str(os.cpu_count())],
                                         capture_output=True, text=True, check=True)
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                    gl_t = f"{res['time']:.3f}"
                    gl_dev = f"{abs(res['value'] - float(rd.value)) / float(rd.value):.1e}"
            print(f"| {n} | {eps} | {td:.3f} | {rd.iterations} | {tq:.3f} | {tp:.3f} | {pit} | "
                  f"{tp / td:.2f} | {tp / tq:.2f} | {gl_t} | {gl_dev} | "
                  f"{abs(pc - float(rd.transport_cost)):.1e} |", flush=True)
    if args.memory:
        memory()


def memory():
    rng = np.random.default_rng(1)
    for n, m in ((10**6, 1000),):
        x, y = rng.random((n, 3)), rng.random((m, 3))
        a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
        tracemalloc.start()
        t = time.perf_counter()
        r = sinkhorn_points(a, x, b, y, epsilon=0.05, max_iter=2, tol=TOL)
        dt = time.perf_counter() - t
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        inputs = (x.nbytes + y.nbytes + a.nbytes + b.nbytes) / 2**20
        print(f"memory: n={n} m={m} d=3, {r.iterations} iterations in {dt:.1f} s: tracemalloc peak "
              f"{peak / 2**20:.1f} MiB (inputs {inputs:.1f} MiB; a dense n×m float64 cost would be "
              f"{n * m * 8 / 2**30:.1f} GiB), process max RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
