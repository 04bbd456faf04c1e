"""Make docs/transport_sinkhorn_limit.png: S_eps and OT_eps tend to W as eps -> 0.

Run from the repository root::

    python docs/make_transport_plot.py

Two 1-D point clouds of n = 200 points at the quantiles of N(0, 1) and N(1, 0.5^2) with
uniform weights and cost |x - y|^2. In 1-D the exact squared 2-Wasserstein distance is the
mean squared difference of the sorted points, so W is known exactly. The left panel shows
the debiased Sinkhorn divergence S_eps, the entropic cost OT_eps (with its entropic term)
and W against eps; the right panel the gaps |S_eps - W| and OT_eps - W on log-log axes:
OT_eps - W follows (d/2) eps log(1/eps) (the entropic bias, d = 1), while the debiasing
removes the leading term and S_eps - W shrinks like eps^2 until the discretisation
(eps below the squared spacing of the points) takes over.
"""

from __future__ import annotations

import pathlib
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout first

import numeric  # noqa: E402

OUT = pathlib.Path(__file__).with_name("transport_sinkhorn_limit.png")
N = 200
EPS = np.logspace(0, -2, 9)


def main():
    u = (np.arange(N) + 0.5) / N
    x = stats.norm.ppf(u)
    y = 1.0 + 0.5 * stats.norm.ppf(u)
    w = np.full(N, 1.0 / N)
    exact = float(np.mean((np.sort(x) - np.sort(y)) ** 2))
    s_eps, ot_eps = [], []
    for eps in EPS:
        kw = dict(epsilon=eps, tol=1e-9, scaling=0.7, max_iter=30000)
        s_eps.append(float(numeric.sinkhorn_divergence_points(w, x, w, y, **kw)))
        ot_eps.append(float(numeric.sinkhorn_points(w, x, w, y, **kw).value))
        print(f"eps={eps:.2e}  S={s_eps[-1]:.8f}  OT={ot_eps[-1]:.8f}  W={exact:.8f}", flush=True)
    s_eps, ot_eps = np.array(s_eps), np.array(ot_eps)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.semilogx(EPS, ot_eps, "o-", label=r"$\mathrm{OT}_\varepsilon$ (entropic)")
    ax1.semilogx(EPS, s_eps, "s-", label=r"$S_\varepsilon$ (debiased)")
    ax1.axhline(exact, color="k", lw=1, ls="--", label=r"$W_2^2$ (exact, sorted points)")
    ax1.set_xlabel(r"$\varepsilon$")
    ax1.set_ylabel("value")
    ax1.legend()
    ax1.set_title(r"N(0,1) vs N(1,0.5$^2$), n = 200, cost $|x-y|^2$")
    ax2.loglog(EPS, ot_eps - exact, "o-", label=r"$\mathrm{OT}_\varepsilon - W$")
    ax2.loglog(EPS, np.abs(s_eps - exact), "s-", label=r"$|S_\varepsilon - W|$")
    ref = EPS[EPS < 1]
    ax2.loglog(ref, 0.5 * ref * np.log(1 / ref), "k:", lw=1,
               label=r"$\frac{d}{2}\varepsilon\log(1/\varepsilon)$")
    ax2.loglog(ref, ref**2 / 30, "k--", lw=1, label=r"$\varepsilon^2/30$")
    ax2.set_xlabel(r"$\varepsilon$")
    ax2.set_ylabel("gap")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
