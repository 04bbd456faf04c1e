"""First-call and sweep cost of the parametric kernels (issue: numeric redesign, item 5).

Each figure is measured in a fresh Python process with an empty code cache
(``DIVKIT_CACHE_DIR`` set to a new temporary directory), so it includes the derivation of
the family's element forms, code generation and the per-value constants:

- ``cold``: first ``numeric.divergence_from_logits(name, t, s, params=..., return_grad=True,
                                                   reduction="none")``
  on a 64×1024 batch in the process;
- ``warm``: the same call again with a new parameter value (one compiled kernel per family
  serves every value: only the per-value constants are new);
- ``sweep``: every parameterised family × 20 values (endpoints included) at 64×1024, in one
  process after the cold calls.

Usage: ``python benchmarks/first_call.py`` (prints a markdown table).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
import numpy as np
t0 = time.perf_counter()
import numeric
from theory import fdiv
t_import = time.perf_counter() - t0
name, param, v1, v2 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
rng = np.random.default_rng(0)
t = rng.standard_normal((64, 1024)) * 3
s = t + rng.standard_normal((64, 1024))
kw = {param: v1} if param else {}
t0 = time.perf_counter()
numeric.divergence_from_logits(name, t, s, params=kw, return_grad=True, reduction="none")
cold = time.perf_counter() - t0
kw = {param: v2} if param else {}
t0 = time.perf_counter()
numeric.divergence_from_logits(name, t, s, params=kw, return_grad=True, reduction="none")
warm = time.perf_counter() - t0
print(json.dumps({"import": t_import, "cold": cold, "warm": warm}))
"""

SWEEP = r"""
import json, time
import numpy as np
import numeric
from theory import fdiv
UNIT = [0.0, 1e-12, 1e-7, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
        0.9, 0.99, 1 - 1e-3, 1 - 1e-7, 1.0]
SWEEPS = [("js", {}, "beta", UNIT), ("js", {"normalized": True}, "beta", UNIT),
          ("alpha", {}, "alpha", [-2.0, -0.5, -1e-3, 0.0, 1e-12, 1e-7, 1e-3, 0.1, 0.3, 0.5, 0.7,
                                   0.9, 1 - 1e-7, 1.0, 1 + 1e-12, 1.001, 1.5, 2.0, 3.0, 5.0]),
          ("power", {}, "alpha", [1e-12, 1e-7, 1e-3, 0.1, 0.25, 0.5, 0.75, 0.9, 1 - 1e-7, 1.0,
                                   1 + 1e-12, 1 + 1e-7, 1.001, 1.1, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0])]
rng = np.random.default_rng(0)
t = rng.standard_normal((64, 1024)) * 3
s = t + rng.standard_normal((64, 1024))
t0 = time.perf_counter()
n = 0
for name, opts, p, values in SWEEPS:
    fam = fdiv.family(name, **opts)
    for v in values:
        numeric.divergence_from_logits(fam, t, s, params={p: v}, return_grad=True, reduction="none")
        n += 1
print(json.dumps({"calls": n, "seconds": time.perf_counter() - t0}))
"""

CASES = [("kl", "", 0, 0), ("reverse_kl", "", 0, 0), ("js", "beta", 0.3, 0.7),
         ("hellinger", "", 0, 0), ("tv", "", 0, 0), ("pearson", "", 0, 0), ("neyman", "", 0, 0),
         ("alpha", "alpha", 0.5, 0.3), ("jeffreys", "", 0, 0), ("le_cam", "", 0, 0),
         ("softened_rkl", "", 0, 0), ("power", "alpha", 2.0, 3.0)]


def _run(code: str, *args: str) -> dict:
    env = dict(os.environ, DIVKIT_CACHE_DIR=tempfile.mkdtemp(prefix="divkit-cold-"))
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print("| divergence | import (s) | cold first call (s) | warm, new value (s) |")
    print("|---|---|---|---|")
    for name, param, v1, v2 in CASES:
        r = _run(CHILD, name, param, str(v1), str(v2))
        print(f"| {name}{'(' + param + ')' if param else ''} | {r['import']:.2f} | "
              f"{r['cold']:.2f} | {r['warm']:.3f} |")
    r = _run(SWEEP)
    print(f"\nsweep: {r['calls']} calls (4 families × 20 values, 64×1024, fwd + student grad, "
          f"cold cache) in {r['seconds']:.1f} s")


if __name__ == "__main__":
    main()
