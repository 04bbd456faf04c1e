"""Make the plots of docs/bounds.md (committed PNGs) from proofs_check.bounds.

Run from the repository root (about a minute on one core)::

    python docs/make_bounds_plots.py

* bounds_generalization.png — exact 0-1 generalization gap of the noisy linear network vs
  the layer-wise bounds sqrt(KL_l/2), over the training-set size n, with Monte Carlo points;
* bounds_kde_regimes.png — the derived thresholds h*(α) < h_G(α) < h_CLT(α) = √2 h_G(α), the
  Monte Carlo participation ratio Y2 against h/h_G at d = 8…40 with the derived limit, and the
  fraction of runs within one CLT standard deviation against h/h_CLT;
* bounds_universality.png — exact mixture regret vs the weight bound and log|H| on quantised
  Bernoulli classes, and the KT regret minus (1/2) log n converging to Clarke–Barron's constant;
* bounds_scaling_law.png — a synthetic noisy curve, the fitted L∞ + (x0/x)^α with its
  intervals, and the reducible part (read as a KL divergence).

Seeds are fixed, so the PNGs are reproducible.
"""

from __future__ import annotations

import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # this checkout first

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from proofs_check import bounds  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
LAYERS = [[[1.0, 0.3], [0.2, 1.0]], [[0.8, 0.1], [0.3, 1.0]], [[1.0, -0.4]]]


def generalization():
    ns = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
    gaps, bnds, mcs, mc_se, xr = [], [], [], [], []
    rng = np.random.default_rng(1)
    for n in ns:
        net = bounds.GaussianLinearNetwork(mu=[1.0, 0.5], sigma=1.0, layers=LAYERS, beta=0.5, n=n, s=0.3)
        rep = net.report(dps=20)
        gaps.append(float(rep["gap"]))
        bnds.append([float(x.bound) for x in rep["layers"]])
        xr.append(float(rep["xu_raginsky"]))
        x = net.sample_gap(rng, 100_000)
        mcs.append(x.mean())
        mc_se.append(x.std() / np.sqrt(x.size))
    bnds = np.array(bnds)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for layer in range(bnds.shape[1]):
        ax.plot(ns, bnds[:, layer], "-", lw=1.2, label=f"bound sqrt(KL_{layer}/2), layer {layer}")
    ax.plot(ns, xr, ":", color="gray", lw=1.5, label="Xu–Raginsky sqrt(I(W;S)/(2n))")
    ax.plot(ns, gaps, "k-", lw=2, label="exact gap (quadrature)")
    ax.errorbar(ns, mcs, yerr=3.29 * np.array(mc_se), fmt="o", ms=3, color="k", mfc="white",
                label="Monte Carlo (99.9 % interval)")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="training-set size n", ylabel="0-1 generalization gap",
           title="Hierarchical KL bounds, noisy linear network (s = 0.3, β = 0.5)")  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "bounds_generalization.png", dpi=110)
    plt.close(fig)


def kde():
    alphas = np.linspace(0.03, 1.5, 60)
    th = [bounds.kde_thresholds(a, dps=20) for a in alphas]
    hg = np.array([float(t.h_g) for t in th])
    hc = np.array([float(t.h_clt) for t in th])
    ho = np.array([float(t.h_opt) for t in th])
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4.2))
    a1.fill_between(alphas, hc, 3.2, color="tab:green", alpha=0.15, label="CLT (h > h_CLT)")
    a1.fill_between(alphas, hg, hc, color="tab:orange", alpha=0.2, label="heavy tails (h_G < h < h_CLT)")
    a1.fill_between(alphas, 0, hg, color="tab:red", alpha=0.12, label="extreme values (h < h_G)")
    a1.plot(alphas, hc, "g-", label="h_CLT(α) = √2 h_G(α)")
    a1.plot(alphas, hg, "r-", label="h_G(α)")
    a1.plot(alphas, ho, "k--", label="KL-optimal h*(α)")
    a1.set(xlabel="α = log n / d", ylabel="bandwidth h", ylim=(0, 3.2),
           title="Derived regimes, isotropic Gaussian")  # fmt: skip
    a1.legend(fontsize=7)
    alpha = 0.2
    hg0 = float(bounds.kde_thresholds(alpha).h_g)
    ratios = np.array([0.3, 0.5, 0.7, 0.85, 1.0, 1.2, np.sqrt(2) * 0.85, 1.5, np.sqrt(2) * 1.2, 2.0, 2.5])
    rng = np.random.default_rng(2)
    for d in (8, 16, 24, 32, 40):
        res = bounds.kde_monte_carlo(d, alpha, ratios * hg0, reps=100, rng=rng)
        a2.errorbar(ratios, res["y2"], yerr=3.29 * res["y2_se"], fmt="o-", ms=3, lw=1,
                    label=f"d = {d} (n = {res['n']})")  # fmt: skip
        a3.errorbar(ratios / np.sqrt(2), res["clt_within"], yerr=3.29 * res["clt_within_se"], fmt="o-",
                    ms=3, lw=1, label=f"d = {d}")  # fmt: skip
    grid = np.linspace(0.3, 2.5, 200)
    a2.plot(grid, np.where(grid < 1, 1 - grid**2, 0), "k--", lw=2, label="derived limit 1 − h²/h_G²")
    a2.axvline(np.sqrt(2), color="g", lw=0.8)
    a2.text(np.sqrt(2) + 0.02, 0.9, "h_CLT", color="g", fontsize=8)
    a2.set(xlabel="h / h_G", ylabel="participation ratio Y2", title=f"Monte Carlo, α = {alpha}: condensation")
    a2.legend(fontsize=7)
    a3.axhline(0.6827, color="k", ls="--", lw=2, label="CLT: 2Φ(1) − 1")
    a3.axvline(1.0, color="g", lw=0.8)
    a3.axvline(1 / np.sqrt(2), color="r", lw=0.8)
    a3.text(1.02, 0.98, "h_CLT", color="g", fontsize=8)
    a3.text(1 / np.sqrt(2) + 0.02, 0.98, "h_G", color="r", fontsize=8)
    a3.set(xlabel="h / h_CLT", ylabel="fraction with |ρ̂/Eρ̂ − 1| ≤ σ_CLT",
           title=f"Monte Carlo, α = {alpha}: CLT breakdown")  # fmt: skip
    a3.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "bounds_kde_regimes.png", dpi=110)
    plt.close(fig)


def universality():
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    ns = np.array([1, 3, 10, 30, 100, 300, 1000])
    for m, style in ((1000, "-"), (10**5, "--")):
        th = (np.arange(m) + 0.5) / m
        t0 = th[m // 2]
        reg = [bounds.bernoulli_mixture_regret(th, t0, int(n)) for n in ns]
        wb = [bounds.weight_bound(th, t0, int(n))[0] for n in ns]
        a1.plot(ns, reg, "k" + style, label=f"exact regret, |H| = {m:g}")
        a1.plot(ns, wb, "b" + style, label=f"weight bound min_ε[nε − log W_ε], |H| = {m:g}")
        a1.axhline(np.log(m), color="r", ls=style, lw=0.8, label=f"log |H| = {np.log(m):.1f}")
    a1.set(xscale="log", xlabel="n", ylabel="regret (nats)", title="Quantised Bernoulli, uniform prior")
    a1.legend(fontsize=7)
    nn = np.unique(np.logspace(1, 4, 25).astype(int))
    for a, name in ((0.5, "KT (Jeffreys)"), (1.0, "Laplace")):
        c = bounds.clarke_barron_constant([0.3, 0.7], concentration=a)
        r = [bounds.dirichlet_mixture_regret([0.3, 0.7], int(n), concentration=a) - 0.5 * np.log(n)
             for n in nn]  # fmt: skip
        a2.plot(nn, r, "-", label=f"{name}: regret − ½ log n")
        a2.axhline(c, ls="--", lw=0.8, color=a2.lines[-1].get_color(),
                   label=f"Clarke–Barron constant {c:.4f}")  # fmt: skip
    a2.set(xscale="log", xlabel="n", ylabel="nats", title="Mixture regret = (k/2) log n + O(1), θ0 = 0.3")
    a2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "bounds_universality.png", dpi=110)
    plt.close(fig)


def scaling():
    x = np.logspace(4, 10, 12)
    rng = np.random.default_rng(3)
    y = (1.7 + (1e5 / x) ** 0.35) * np.exp(0.01 * rng.standard_normal(x.size))
    fit = bounds.fit_scaling_law(x, y, sigma=0.01)
    grid = np.logspace(3.5, 11, 200)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(x, y, "ko", ms=4, label="synthetic: L∞ = 1.7, x0 = 1e5, α = 0.35, 1 % noise")
    lab = (f"fit: L∞ = {fit.l_inf:.3f} [{fit.l_inf_interval[0]:.3f}, {fit.l_inf_interval[1]:.3f}], "
           f"α = {fit.alpha:.3f} [{fit.alpha_interval[0]:.3f}, {fit.alpha_interval[1]:.3f}]")
    ax.plot(grid, fit.predict(grid), "b-", label=lab)
    ax.plot(grid, fit.reducible(grid), "g--", label="reducible part (x0/x)^α ≈ KL(true‖model)")
    ax.axhline(fit.l_inf, color="r", lw=0.8, label="L∞ ≈ entropy of the data")
    ax.set(xscale="log", yscale="log", xlabel="x (parameters, compute or data)", ylabel="loss",
           title="Scaling-law fit (95 % intervals)")  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "bounds_scaling_law.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    which = sys.argv[1:] or ["generalization", "kde", "universality", "scaling"]
    for name in which:
        {"generalization": generalization, "kde": kde, "universality": universality,
         "scaling": scaling}[name]()  # fmt: skip
