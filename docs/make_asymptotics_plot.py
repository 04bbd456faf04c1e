"""Make docs/asymptotics_risk.png: exact MLE risk vs the one- and two-term expansions.

Run from the repository root::

    python docs/make_asymptotics_plot.py

Two model/truth pairs whose exact risk E KL(g_theta* || g_theta_hat) has a closed form:

* Exponential model, Gamma(shape 2, scale 1/2) truth (misspecified, p = 1): the sample mean
  is Gamma(2n, rate 4n) and E KL = digamma(2n) - log(2n) + 1/(2n - 1);
* Normal(mu, sigma^2) model, Normal truth (p = 2): E KL = (digamma((n-1)/2) + log(2/n)
  + (n+1)/(n-3) - 1)/2 from the chi-square distribution of the sample variance.

The left panel shows the risks, the right panel the errors of the truncated expansions,
which fall like n^-2 (one term) and n^-3 (two terms).
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mpmath  # noqa: E402
import sympy  # noqa: E402
from sympy.stats import Gamma, Normal  # noqa: E402

from theory import asymptotics  # noqa: E402

OUT = pathlib.Path(__file__).with_name("asymptotics_risk.png")
NS = [5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000]


def exact_exponential_gamma(nv, k=2):
    m = mpmath.mpf(nv) * k
    return mpmath.digamma(m) - mpmath.log(m) + 1 / (m - 1)


def exact_normal(nv):
    nv = mpmath.mpf(nv)
    return (mpmath.digamma((nv - 1) / 2) + mpmath.log(2 / nv) + (nv + 1) / (nv - 3) - 1) / 2


def main() -> None:
    mpmath.mp.dps = 40
    cases = [
        ("Exponential model, Gamma(2, 1/2) truth (p=1)",
         asymptotics.mle_risk("exponential", truth=Gamma("X", 2, sympy.Rational(1, 2))),
         exact_exponential_gamma, "tab:blue"),
        ("Normal model, Normal truth (p=2)",
         asymptotics.mle_risk("normal", truth=Normal("X", 0, 1)), exact_normal, "tab:red"),
    ]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    for label, risk, exact, color in cases:
        c1, c2 = float(risk.c1), float(risk.c2)
        ns = [nv for nv in NS if nv > 3]
        ex = [float(exact(nv)) for nv in ns]
        one = [c1 / nv for nv in ns]
        two = [c1 / nv + c2 / nv**2 for nv in ns]
        ax1.loglog(ns, ex, "o", color=color, ms=4, label=f"{label}: exact")
        ax1.loglog(ns, one, ":", color=color, label=f"c1/n, c1={risk.c1}")
        ax1.loglog(ns, two, "-", color=color, lw=1, label=f"c1/n + c2/n², c2={risk.c2}")
        ax2.loglog(ns, [abs(e - o) for e, o in zip(ex, one, strict=True)], ":", color=color,
                   label=f"|exact − c1/n|  ({label.split(',')[0]})")
        ax2.loglog(ns, [abs(e - t) for e, t in zip(ex, two, strict=True)], "-", color=color,
                   label=f"|exact − c1/n − c2/n²|  ({label.split(',')[0]})")
    ref_n = [10, 1000]
    ax2.loglog(ref_n, [1e-2 * (10 / v) ** 2 for v in ref_n], "k--", lw=0.8, label="slope −2")
    ax2.loglog(ref_n, [1e-3 * (10 / v) ** 3 for v in ref_n], "k-.", lw=0.8, label="slope −3")
    ax1.set_xlabel("n")
    ax1.set_ylabel("E KL(g_θ* ‖ g_θ̂)")
    ax1.set_title("MLE risk and its expansions")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("n")
    ax2.set_ylabel("absolute error")
    ax2.set_title("error of the truncated expansions")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
