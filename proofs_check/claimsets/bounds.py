"""Bounds and rates: generalization bounds, SDPI coefficients, KDE in high dimensions, the
universality lens, scaling laws and MLE-risk rates (tag ``bounds``; docs/bounds.md).

Every claim compares a computed bound or rate with an independent computation: exact
enumeration, mpmath quadrature at ≥ 30 digits, or Monte Carlo with a stated interval. Monte
Carlo seeds are fixed: the rate and expectation claims use the ``--seed`` of ``divkit check``
(default 0; a re-check uses seed + 1000003), the KDE, SDPI and scaling-law claims their own
seeds (9001, 9002, 20261201, 31337). Each Monte Carlo interval is at 99.9 % (miss rate 0.1 %
per interval when the claim is true; a ``violated`` rate or expectation verdict needs two
independent runs to miss). Claims tagged
``false`` are known to be false and must come back ``violated``.
"""

from __future__ import annotations

import functools
import time

import mpmath
import numpy as np

from proofs_check.catalog import register
from proofs_check.claims import CallableClaim, ExpectationClaim
from proofs_check.rates import PowerLawClaim

_FALSE = "known false: "
_HG = ("He & Goldfeld (2024), 'Information-theoretic generalization bounds for deep neural "
       "networks', arXiv 2404.03176 (hierarchical KL bound); Bu, Zou & "
       "Veeravalli (2020), IEEE JSAIT 1(1) (individual-sample mutual-information bound); Xu & "
       "Raginsky (2017), NeurIPS, Thm. 1")  # fmt: skip
_SDPI = ("Polyanskiy & Wu (2024), Information Theory: From Coding to Learning, chapter on strong "
         "data-processing inequalities (Dobrushin coefficient; Gaussian channel η_TV = 1 − 2Q(A/σ); "
         "η_KL ≤ η_TV); He & Goldfeld (2024) (Dropout, DropConnect, noise injection)")  # fmt: skip
_BM = ("Biroli & Mézard (2024), 'Kernel density estimators in large dimensions', arXiv "
       "2408.05807 (regimes h_CLT, h_G; thresholds derived for the isotropic Gaussian in "
       "proofs_check.bounds._kde)")  # fmt: skip
_UL = ("Feder, Urbanke & Fogel (2025), 'The universality lens', arXiv 2506.07661 (regret via "
       "the weight W_ε); Barron (1998), index of resolvability")  # fmt: skip
_CB = ("Clarke & Barron (1990), IEEE Trans. Inf. Theory 36(3), and (1994), J. Statist. Plann. "
       "Inference 41: regret = (k/2) log(n/(2πe)) + log(√det I(θ)/w(θ)) + o(1); Krichevsky & "
       "Trofimov (1981)")  # fmt: skip
_SL = ("Henighan et al. (2020), 'Scaling laws for autoregressive generative modeling', arXiv "
       "2010.14701, eq. L(x) = L∞ + (x0/x)^α")  # fmt: skip
_SH = ("Sheena (2021), arXiv 2105.08947: E KL(g_θ*‖g_θ̂) = c1/n + c2/n² + O(n⁻³) "
       "(theory.asymptotics.mle_risk)")  # fmt: skip


def _meta(e) -> dict:
    return {"source": e.source, "tags": e.tags, "expected": e.expected,
            "description": e.description}  # fmt: skip


def _tick(deadline, what):
    if time.perf_counter() > deadline:
        raise TimeoutError(f"time budget ran out at {what}")


# ============================================================== IT generalization bounds
def _networks():
    """Four exact models: sample sizes 1..16, strong and weak signal (μ = 0: pure noise)."""
    from proofs_check.bounds import GaussianLinearNetwork

    l1 = [[1.0, 0.3], [0.2, 1.0]]
    l2 = [[0.8, 0.1], [0.3, 1.0]]
    head = [[1.0, -0.4]]
    return [
        ("n=1, s=0.3, β=0.5", GaussianLinearNetwork(mu=[1.0, 0.5], sigma=1.0, layers=[l1, l2, head],
                                                    beta=0.5, n=1, s=0.3)),
        ("n=4, s=0.05, β=0.5", GaussianLinearNetwork(mu=[1.0, 0.5], sigma=1.0, layers=[l1, l2, head],
                                                     beta=0.5, n=4, s=0.05)),
        ("n=16, s=0.3, β=[0.2,1,0.1]", GaussianLinearNetwork(mu=[0.5, -1.0], sigma=1.5,
                                                             layers=[l1, l2, head],
                                                             beta=[0.2, 1.0, 0.1], n=16, s=0.3)),
        ("n=2, s=1, β=2, μ=0", GaussianLinearNetwork(mu=[0.0, 0.0], sigma=1.0, layers=[l1, head],
                                                     beta=2.0, n=2, s=1.0)),
    ]  # fmt: skip


def _hg_margins(kind):
    def run(deadline):
        out = []
        with mpmath.workdps(30):
            for label, net in _networks():
                _tick(deadline, label)
                rep = net.report(dps=30)
                kls = [x.kl for x in rep["layers"]]
                if kind == "bound":
                    xr = rep["xu_raginsky"]
                    out.append((f"{label}, Xu–Raginsky: gap {mpmath.nstr(rep['gap'], 12)} vs "
                                f"sqrt(I(W;S)/2n) {mpmath.nstr(xr, 12)}", float(xr - rep["gap"])))
                    for x in rep["layers"]:
                        out.append((f"{label}, layer {x.layer}: gap {mpmath.nstr(rep['gap'], 12)} vs "
                                    f"bound {mpmath.nstr(x.bound, 12)}", float(x.bound - rep["gap"])))
                elif kind == "quarter":
                    for x in rep["layers"]:
                        b = mpmath.sqrt(x.kl / 8)
                        out.append((f"{label}, layer {x.layer}: gap {mpmath.nstr(rep['gap'], 12)} > "
                                    f"sqrt(KL/8) = {mpmath.nstr(b, 12)}", float(b - rep["gap"])))
                else:
                    sign = 1 if kind == "nonincreasing" else -1
                    for i in range(len(kls) - 1):
                        out.append((f"{label}: KL_{i} = {mpmath.nstr(kls[i], 12)}, KL_{i + 1} = "
                                    f"{mpmath.nstr(kls[i + 1], 12)}", float(sign * (kls[i] - kls[i + 1]))))
        return out

    return run


@register("hg_layerwise_bound_gaussian_linear", tags=("bounds", "generalization"),
           expected="consistent", source=_HG,
           description="exact 0-1 gap ≤ sqrt(KL_l/2) at every layer l of a noisy linear network, "
           "and ≤ the Xu–Raginsky sqrt(I(W;S)/(2n)) (binary Gaussian classification; gap by "
           "quadrature at 30 digits, information measures exact)")  # fmt: skip
def _hg_bound(e):
    return CallableClaim(e.name, _hg_margins("bound"), **_meta(e))


@register("hg_kl_nonincreasing_in_layer", tags=("bounds", "generalization", "data-processing"),
           expected="consistent", source=_HG,
           description="the layer-wise train/test KL divergence KL_l = I(W; T_l, Y) is "
           "non-increasing in l (exact Gaussian mutual informations at 30 digits)")  # fmt: skip
def _hg_mono(e):
    return CallableClaim(e.name, _hg_margins("nonincreasing"), **_meta(e))


@register("false_hg_kl_increasing_in_layer", tags=("bounds", "generalization", "false"),
           expected="violated", source=_FALSE + "reverse of the data-processing argument of He & "
           "Goldfeld (2024)",
           description="the layer-wise KL divergence grows with the layer index")  # fmt: skip
def _hg_incr(e):
    return CallableClaim(e.name, _hg_margins("increasing"), **_meta(e))


@register("false_hg_bound_quarter_constant", tags=("bounds", "generalization", "false"),
           expected="violated", source=_FALSE + "He & Goldfeld (2024) with the sub-Gaussian "
           "constant of a loss in [0, 1/2] instead of [0, 1] (constant 4× too small)",
           description="exact 0-1 gap ≤ sqrt(KL_l/8) at every layer")  # fmt: skip
def _hg_quarter(e):
    return CallableClaim(e.name, _hg_margins("quarter"), **_meta(e))


@register("hg_gap_monte_carlo", tags=("bounds", "generalization", "montecarlo"),
           expected="consistent", source=_HG,
           description="Monte Carlo gap of the n=1, s=0.3 network (300k runs, 99.9 % interval) "
           "equals the quadrature value used by hg_layerwise_bound_gaussian_linear")  # fmt: skip
def _hg_mc(e):
    label, net = _networks()[0]
    target = float(net.gap(dps=30))
    return ExpectationClaim(e.name, net.sample_gap, target=target, relation="eq", n=300_000,
                            **_meta(e))  # fmt: skip


# ============================================================== SDPI
_EDGES = (("1", "1"), ("0.3", "2"), ("3", "0.5"))


@register("sdpi_gaussian_eta_tv", tags=("bounds", "sdpi", "quadrature"), expected="consistent",
           source=_SDPI,
           description="TV(N(−A,σ²), N(A,σ²)) by quadrature at 30 digits equals 1 − 2Q(A/σ) (erfc "
           "at 50 digits) to 1e-25, and shorter input pairs in [−A, A] stay below it")  # fmt: skip
def _sdpi_gauss(e):
    from proofs_check.bounds import gaussian_eta_tv, gaussian_pair_tv

    def run(deadline):
        out = []
        for a, s in _EDGES:
            eta = gaussian_eta_tv(a, s, dps=50)
            am = mpmath.mpf(a)
            # TV depends on |x1 − x2| only: the extreme pair ±A and two shorter distances
            for x1, x2 in ((-am, am), (-am, am / 3), (0, am)):
                _tick(deadline, f"A={a}, σ={s}")
                tv = gaussian_pair_tv(x1, x2, s, dps=30)
                if x2 - x1 == 2 * am:
                    out.append((f"A={a}, σ={s}: TV(−A, A) {mpmath.nstr(tv, 30)} vs 1 − 2Q(A/σ) "
                                f"{mpmath.nstr(eta, 30)}", float(mpmath.mpf(10) ** -25 - abs(tv - eta))))
                else:
                    out.append((f"A={a}, σ={s}: TV({mpmath.nstr(x1, 6)}, {mpmath.nstr(x2, 6)}) = "
                                f"{mpmath.nstr(tv, 20)} > η_TV", float(eta - tv)))
        return out

    return CallableClaim(e.name, run, **_meta(e))


def _mixture_kl(P, Q, pts, sg):
    """KL(Σ P_i N(x_i, σ²) ‖ Σ Q_i N(x_i, σ²)) by mpmath quadrature on [min − 16σ, max + 16σ]
    (the two tails hold less than 1e-50 of the integrand's mass)."""

    def dens(w, y):
        return sum(wi * mpmath.exp(-((y - xi) ** 2) / (2 * sg**2)) for wi, xi in zip(w, pts, strict=True))

    norm = 1 / (sg * mpmath.sqrt(2 * mpmath.pi))
    lo, hi = min(pts), max(pts)
    cuts = [lo - 16 * sg, lo - 8 * sg, lo, hi, hi + 8 * sg, hi + 16 * sg]
    return norm * mpmath.quad(lambda y: dens(P, y) * mpmath.log(dens(P, y) / dens(Q, y)), cuts,
                              method="gauss-legendre")


@register("sdpi_gaussian_kl_contraction", tags=("bounds", "sdpi", "quadrature"),
           expected="consistent", source=_SDPI,
           description="KL(PK‖QK) ≤ (1 − 2Q(A/σ))·KL(P‖Q) for the Gaussian channel K and random "
           "two-point inputs on [−A, A], one per (A, σ) (output KL by quadrature at 30 digits)")  # fmt: skip
def _sdpi_kl(e):
    from proofs_check.bounds import gaussian_eta_tv

    def run(deadline):
        rng = np.random.default_rng(20261201)
        out = []
        with mpmath.workdps(30):
            for a, s in _EDGES:
                eta = gaussian_eta_tv(a, s, dps=30)
                am, sg = mpmath.mpf(a), mpmath.mpf(s)
                # one random two-point input law pair per (A, σ)
                _tick(deadline, f"A={a}, σ={s}")
                pts = [mpmath.mpf(v) for v in rng.uniform(-1, 1, 2) * float(am)]
                p1, q1 = (mpmath.mpf(v) for v in rng.uniform(0.05, 0.95, 2))
                P, Q = [p1, 1 - p1], [q1, 1 - q1]
                kl_in = sum(pi * mpmath.log(pi / qi) for pi, qi in zip(P, Q, strict=True))
                kl_out = _mixture_kl(P, Q, pts, sg)
                out.append((f"A={a}, σ={s}, x={[mpmath.nstr(x, 6) for x in pts]}: "
                            f"KL out {mpmath.nstr(kl_out, 12)} > η·KL in", float(eta * kl_in - kl_out)))
        return out

    return CallableClaim(e.name, run, **_meta(e))


@register("sdpi_dropout_dropconnect_exact", tags=("bounds", "sdpi", "enumeration"),
           expected="consistent", source=_SDPI,
           description="exact Dobrushin coefficients (rational enumeration) of Dropout on "
           "{0,1}^d and DropConnect with m·d weights equal 1 − p^d and 1 − p^{md}")  # fmt: skip
def _sdpi_drop(e):
    from fractions import Fraction

    from proofs_check.bounds import dropconnect_dobrushin, dropout_dobrushin

    def run(deadline):
        out = []
        for d, p in ((1, "1/2"), (2, "1/3"), (3, "1/2"), (4, "2/5")):
            _tick(deadline, f"dropout d={d}")
            got, want = dropout_dobrushin(d, p), 1 - Fraction(p) ** d
            out.append((f"dropout d={d}, p={p}: {got} vs {want}", 1.0 if got == want else -1.0))
        for d, m, p in ((1, 1, "1/2"), (2, 2, "1/3"), (3, 2, "1/2"), (2, 3, "3/4")):
            _tick(deadline, f"dropconnect d={d}, m={m}")
            got, want = dropconnect_dobrushin(d, m, p), 1 - Fraction(p) ** (d * m)
            out.append((f"dropconnect d={d}, m={m}, p={p}: {got} vs {want}", 1.0 if got == want else -1.0))
        return out

    return CallableClaim(e.name, run, **_meta(e))


# ============================================================== KDE in large dimensions
_KDE_ALPHAS = ("0.05", "0.1", "0.2", "0.35", "0.5", "1", "2")
_KDE_MC_ALPHA = 0.2
_KDE_DS = (8, 16, 24, 32, 40)


def _legendre_rate(u):
    """I(u) = sup_t (t u − Λ(t)) by a numeric root of Λ'(t) = u (independent of the closed form)."""
    lam = lambda t: -mpmath.log(1 - 2 * t) / 2 + t / (1 - 2 * t)  # noqa: E731
    dlam = lambda t: 1 / (1 - 2 * t) + 1 / (1 - 2 * t) ** 2  # noqa: E731
    t = mpmath.findroot(lambda t: dlam(t) - u, (mpmath.mpf(-50), mpmath.mpf("0.49")), solver="bisect")
    return t * u - lam(t)


@register("kde_thresholds_derived", tags=("bounds", "kde"), expected="consistent", source=_BM,
           description="h_CLT = √2·h_G (to 1e-25), I(u_min) = α by a numeric Legendre transform, "
           "and the KL per dimension minimal at h* = √u_min, over α ∈ [0.05, 2] at 30 digits")  # fmt: skip
def _kde_derived(e):
    from proofs_check.bounds import kde_kl_per_dimension, kde_thresholds

    def run(deadline):
        out = []
        with mpmath.workdps(30):
            for a in _KDE_ALPHAS:
                _tick(deadline, f"α={a}")
                th = kde_thresholds(a, dps=30)
                tiny = mpmath.mpf(10) ** -25
                out.append((f"α={a}: h_CLT/h_G − √2", float(tiny - abs(th.h_clt / th.h_g - mpmath.sqrt(2)))))
                out.append((f"α={a}: I(u_min) − α by Legendre", float(tiny - abs(_legendre_rate(th.u_min)
                                                                                  - th.alpha))))
                kl0 = kde_kl_per_dimension(th.h_opt, a)
                out.append((f"α={a}: KL(h*) vs the closed form", float(tiny - abs(kl0 - th.kl_opt))))
                for f in ("0.9", "0.97", "1.03", "1.1", "1.5"):
                    kl1 = kde_kl_per_dimension(th.h_opt * mpmath.mpf(f), a)
                    out.append((f"α={a}: KL(h*) ≤ KL({f}·h*)", float(kl1 - kl0)))
        return out

    return CallableClaim(e.name, run, **_meta(e))


def _kde_order(false: bool):
    from proofs_check.bounds import kde_thresholds

    def run(deadline):
        out = []
        for a in _KDE_ALPHAS:
            _tick(deadline, f"α={a}")
            th = kde_thresholds(a, dps=30)
            if false:
                out.append((f"α={a}: h* = {mpmath.nstr(th.h_opt, 15)} < h_CLT = {mpmath.nstr(th.h_clt, 15)}",
                            float(th.h_opt - th.h_clt)))
            else:
                out.append((f"α={a}: h* < h_G", float(th.h_g - th.h_opt)))
                out.append((f"α={a}: h_G < h_CLT", float(th.h_clt - th.h_g)))
        return out

    return run


@register("kde_kl_optimum_below_h_clt", tags=("bounds", "kde"), expected="consistent", source=_BM,
           description="the KL-optimal bandwidth h* lies below h_G, hence below h_CLT (the CLT "
           "does not hold at the optimum), α ∈ [0.05, 2]")  # fmt: skip
def _kde_below(e):
    return CallableClaim(e.name, _kde_order(False), **_meta(e))


@register("false_kde_clt_at_kl_optimum", tags=("bounds", "kde", "false"), expected="violated",
           source=_FALSE + "contradicts Biroli & Mézard (2024): the KL-optimal bandwidth is not in "
           "the CLT regime",
           description="the KL-optimal bandwidth lies above h_CLT")  # fmt: skip
def _kde_false(e):
    return CallableClaim(e.name, _kde_order(True), **_meta(e))


def _trend(ds, values):
    """Least squares of u(d) = u∞ + a·log(d)/d + b/d; returns (u∞, standard error)."""
    ds = np.asarray(ds, dtype=float)
    X = np.vstack([np.ones_like(ds), np.log(ds) / ds, 1 / ds]).T
    coef, *_ = np.linalg.lstsq(X, values, rcond=None)
    resid = values - X @ coef
    s2 = float((resid**2).sum()) / max(len(ds) - 3, 1)
    cov = s2 * np.linalg.inv(X.T @ X)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


@register("kde_min_distance_monte_carlo", tags=("bounds", "kde", "montecarlo"),
           expected="consistent", source=_BM,
           description="Monte Carlo E min_i |x−y_i|²/d at d = 8…40, n = e^{0.2d} (99.9 % "
           "intervals) matches the finite-d quadrature, whose fitted trend u∞ + a log d/d + b/d "
           "extrapolates to the derived u_min(α) = h*² (99.9 % t-interval)")  # fmt: skip
def _kde_umin(e):
    from scipy import stats

    from proofs_check.bounds import kde_min_distance_exact, kde_monte_carlo, kde_thresholds

    def run(deadline):
        rng = np.random.default_rng(9001)
        out, exact = [], []
        z = 3.29
        for d in _KDE_DS:
            _tick(deadline, f"d={d}")
            ex = kde_min_distance_exact(d, _KDE_MC_ALPHA)
            exact.append(ex)
            res = kde_monte_carlo(d, _KDE_MC_ALPHA, [1.0], reps=60, rng=rng)
            dev = abs(res["umin"] - ex)
            out.append((f"d={d}: MC {res['umin']:.5f} ± {res['umin_se']:.5f} vs quadrature {ex:.6f}",
                        z * res["umin_se"] - dev))
        ds = list(range(8, 41, 4))
        vals = [kde_min_distance_exact(d, _KDE_MC_ALPHA) for d in ds]
        u_inf, se = _trend(ds, np.asarray(vals))
        want = float(kde_thresholds(_KDE_MC_ALPHA).u_min)
        tq = float(stats.t.ppf(0.9995, len(ds) - 3))
        out.append((f"trend u∞ = {u_inf:.5f} ± {se:.5f} vs derived u_min {want:.6f}",
                    tq * se - abs(u_inf - want)))
        return out

    return CallableClaim(e.name, run, **_meta(e))


_KDE_MC_CACHE: dict = {}


def _kde_shared_mc(deadline):
    """One Monte Carlo at d = 8…40 (seed 9002, 200 runs per d) shared by the two crossover claims.

    Bandwidths: h_G/2, h_G, 0.85·h_CLT, 1.35·h_CLT, 2·h_G at α = 0.2.
    """
    if "res" in _KDE_MC_CACHE:
        return _KDE_MC_CACHE["res"]
    from proofs_check.bounds import kde_monte_carlo, kde_thresholds

    th = kde_thresholds(_KDE_MC_ALPHA)
    hg, hc = float(th.h_g), float(th.h_clt)
    hs = [0.5 * hg, hg, 0.85 * hc, 1.35 * hc, 2 * hg]
    rng = np.random.default_rng(9002)
    rows = []
    for d in _KDE_DS:
        _tick(deadline, f"Monte Carlo at d={d}")
        rows.append(kde_monte_carlo(d, _KDE_MC_ALPHA, hs, reps=200, rng=rng))
    _KDE_MC_CACHE["res"] = rows
    return rows


@register("kde_participation_crossover", tags=("bounds", "kde", "montecarlo"),
           expected="consistent",
           source=_BM + "; Derrida (1981) REM; Mézard, Parisi & Virasoro (1987), Spin glass "
           "theory and beyond: Y2 → 1 − T/T_c, here 1 − h²/h_G², below h_G",
           description="Monte Carlo participation ratio Y2 at d = 8…40 (n = e^{0.2d}, 200 runs): at "
           "h = h_G/2 its fitted trend y∞ + a/d covers the derived 3/4 within ±0.1 (99.9 % "
           "interval); at h = 2h_G > h_CLT log Y2 falls linearly in d (slope interval below 0); "
           "Y2 decreases in h")  # fmt: skip
def _kde_y2(e):
    def run(deadline):
        rows = _kde_shared_mc(deadline)
        out = []
        for d, res in zip(_KDE_DS, rows, strict=True):
            y2, se = res["y2"][[0, 1, 4]], res["y2_se"][[0, 1, 4]]
            out.append((f"d={d}: Y2 decreasing in h {np.round(y2, 4).tolist()}",
                        float(min(y2[0] - y2[1], y2[1] - y2[2]) + 3.29 * max(se))))
        ds = np.asarray(_KDE_DS, dtype=float)
        y = np.array([r["y2"][0] for r in rows])
        s = np.array([r["y2_se"][0] for r in rows])
        X = np.vstack([np.ones_like(ds), 1 / ds]).T
        W = 1 / s**2
        cov = np.linalg.inv(X.T @ (X * W[:, None]))
        coef = cov @ (X.T @ (W * y))
        y_inf, y_se = float(coef[0]), float(np.sqrt(cov[0, 0]))
        out.append((f"h=h_G/2: trend y∞ = {y_inf:.4f} ± {y_se:.4f} vs derived 0.75 ± 0.1",
                    0.1 + 3.29 * y_se - abs(y_inf - 0.75)))
        hi = np.array([r["y2"][4] for r in rows])
        sly = np.array([r["y2_se"][4] for r in rows]) / hi
        W = 1 / sly**2
        A = np.vstack([np.ones_like(ds), ds]).T
        cov = np.linalg.inv(A.T @ (A * W[:, None]))
        coef = cov @ (A.T @ (W * np.log(hi)))
        slope, sse = float(coef[1]), float(np.sqrt(cov[1, 1]))
        out.append((f"h=2h_G: d log Y2/dd = {slope:.4f} ± {sse:.4f} (must be < 0)", -(slope + 3.29 * sse)))
        return out

    return CallableClaim(e.name, run, **_meta(e))


_CLT_P = 0.6826894921370859  # 2Φ(1) − 1


@register("kde_clt_crossover", tags=("bounds", "kde", "montecarlo"), expected="consistent",
           source=_BM,
           description="Monte Carlo (same runs as kde_participation_crossover): the fraction of runs "
           "with |ρ̂/Eρ̂ − 1| ≤ σ_CLT (exact finite-d σ) is 2Φ(1) − 1 ± 0.03 at h = 1.35·h_CLT for every "
           "d = 8…40, and above 2Φ(1) − 1 + 0.03 at h = 0.85·h_CLT (between h_G and h_CLT) for "
           "d ≥ 16 (99.9 % binomial intervals)")  # fmt: skip
def _kde_clt(e):
    def run(deadline):
        rows = _kde_shared_mc(deadline)
        out = []
        for d, res in zip(_KDE_DS, rows, strict=True):
            p_above, se_above = res["clt_within"][3], res["clt_within_se"][3]
            out.append((f"d={d}, h=1.35·h_CLT: {p_above:.3f} ± {se_above:.3f} vs {_CLT_P:.4f} ± 0.03",
                        0.03 + 3.29 * se_above - abs(p_above - _CLT_P)))
            if d >= 16:
                p_below, se_below = res["clt_within"][2], res["clt_within_se"][2]
                out.append((f"d={d}, h=0.85·h_CLT: {p_below:.3f} ± {se_below:.3f} must exceed "
                            f"{_CLT_P + 0.03:.4f}", p_below - 3.29 * se_below - _CLT_P - 0.03))
        return out

    return CallableClaim(e.name, run, **_meta(e))


# ============================================================== universality lens
def _grid_class(m):
    return (np.arange(m) + 0.5) / m


_UL_CASES = ((10, 5, (1, 10, 100)), (1000, 500, (1, 10, 100, 1000)), (1000, 37, (10, 300)),
             (10**6, 500_000, (10,)), (10**6, 123_456, (10,)))  # fmt: skip


def _mp_regret(thetas, t0, n):
    """The same regret at 30 digits (mpmath sums over the count), for small classes and n."""
    with mpmath.workdps(30):
        t0 = mpmath.mpf(t0)
        ths = [mpmath.mpf(t) for t in thetas]
        total = mpmath.mpf(0)
        for k in range(n + 1):
            p = t0**k * (1 - t0) ** (n - k)
            q = mpmath.fsum(t**k * (1 - t) ** (n - k) for t in ths) / len(ths)
            total += mpmath.binomial(n, k) * p * mpmath.log(p / q)
        return total


@register("universality_weight_bound_exact", tags=("bounds", "universality", "enumeration"),
           expected="consistent", source=_UL,
           description="exact regret D(P^n_θ0‖Q) ≤ min_ε [nε − log W_ε] on quantised Bernoulli "
           "classes of 10…10⁶ hypotheses (uniform prior), n = 1…1000; regrets re-checked with "
           "mpmath at 30 digits for the classes of ≤ 10³ and n ≤ 10")  # fmt: skip
def _ul_bound(e):
    from proofs_check.bounds import bernoulli_mixture_regret, weight_bound

    def run(deadline):
        out = []
        for m, j, ns in _UL_CASES:
            th = _grid_class(m)
            for n in ns:
                _tick(deadline, f"|H|={m}, n={n}")
                reg = bernoulli_mixture_regret(th, th[j], n)
                b, eps = weight_bound(th, th[j], n)
                out.append((f"|H|={m}, θ0={th[j]:.6g}, n={n}: regret {reg:.6g} vs bound {b:.6g} "
                            f"(ε={eps:.3g})", b - reg))
                if m <= 1000 and n <= 10:
                    ref = _mp_regret(th, th[j], n)
                    out.append((f"|H|={m}, n={n}: float regret vs 30 digits",
                                1e-10 * (1 + abs(float(ref))) - abs(reg - float(ref))))
        return out

    return CallableClaim(e.name, run, **_meta(e))


@register("universality_far_below_log_class", tags=("bounds", "universality"),
           expected="consistent", source=_UL,
           description="for a simple truth (a grid point) in a class of 10⁶ hypotheses, the "
           "weight bound at n = 10, 30 is below log|H|/4 (the regret is set by the weight, not "
           "by the class size)")  # fmt: skip
def _ul_far(e):
    from proofs_check.bounds import weight_bound

    def run(deadline):
        out = []
        m = 10**6
        th = _grid_class(m)
        for j in (500_000, 123_456):
            for n in (10, 30):
                _tick(deadline, f"n={n}")
                b, _ = weight_bound(th, th[j], n)
                out.append((f"θ0={th[j]:.6g}, n={n}: bound {b:.5g} vs log|H|/4 = {np.log(m) / 4:.5g}",
                            np.log(m) / 4 - b))
        return out

    return CallableClaim(e.name, run, **_meta(e))


@register("false_universality_constant_regret", tags=("bounds", "universality", "false"),
           expected="violated", source=_FALSE + "the regret grows like (k/2) log n (Clarke & "
           "Barron (1990)); no bound independent of the weight and of n exists",
           description="the regret of every mixture on the quantised Bernoulli classes is ≤ 1 "
           "nat, whatever the weight of the truth")  # fmt: skip
def _ul_false(e):
    from proofs_check.bounds import bernoulli_mixture_regret

    def run(deadline):
        out = []
        for m, j, ns in _UL_CASES[:3]:
            th = _grid_class(m)
            for n in ns:
                _tick(deadline, f"|H|={m}, n={n}")
                reg = bernoulli_mixture_regret(th, th[j], n)
                out.append((f"|H|={m}, θ0={th[j]:.6g}, n={n}: regret {reg:.6g} > 1", 1.0 - reg))
        return out

    return CallableClaim(e.name, run, **_meta(e))


def _cb_quantity(p, a):
    from proofs_check.bounds import clarke_barron_constant, dirichlet_mixture_regret

    k = len(p) - 1
    c = clarke_barron_constant(p, concentration=a)

    def quantity(n, rng):
        return dirichlet_mixture_regret(p, n, concentration=a) - k / 2 * np.log(n) - c, 0.0

    return quantity


@register("kt_regret_half_log_n", tags=("bounds", "universality", "rate"), expected="consistent",
           source=_CB,
           description="KT (Dirichlet ½) mixture on Bernoulli(0.3): exact regret − ½ log n − "
           "Clarke–Barron constant ~ C n^{-r}, r = 1 ± 0.05 (n = 100…1600): the regret is "
           "(k/2) log n + O(1)")  # fmt: skip
def _kt(e):
    return PowerLawClaim(e.name, _cb_quantity([0.3, 0.7], 0.5), ns=[100, 200, 400, 800, 1600],
                         rate=1.0, rate_tol=0.05, **_meta(e))  # fmt: skip


@register("laplace_regret_log_n_three_symbols", tags=("bounds", "universality", "rate"),
           expected="consistent", source=_CB,
           description="Laplace (uniform Dirichlet) mixture on 3 symbols (k = 2): exact regret − "
           "log n − Clarke–Barron constant ~ C n^{-r}, r = 1 ± 0.05 (n = 50…800)")  # fmt: skip
def _laplace(e):
    return PowerLawClaim(e.name, _cb_quantity([0.2, 0.3, 0.5], 1.0), ns=[50, 100, 200, 400, 800],
                         rate=1.0, rate_tol=0.05, **_meta(e))  # fmt: skip


# ============================================================== scaling laws
_SL_TRUE = (1.7, 1e5, 0.35)
_SL_X = np.logspace(4, 10, 12)


def _sl_curves(k, seed, noise=0.01):
    rng = np.random.default_rng(seed)
    l_inf, x0, a = _SL_TRUE
    clean = l_inf + (x0 / _SL_X) ** a
    return [clean * np.exp(noise * rng.standard_normal(_SL_X.size)) for _ in range(k)]


@register("scaling_law_recovery", tags=("bounds", "scaling-law", "montecarlo"),
           expected="consistent", source=_SL,
           description="on 40 synthetic curves L∞ = 1.7, x0 = 1e5, α = 0.35 with 1 % log-normal "
           "noise (seeded), the 95 % intervals of fit_scaling_law cover each true parameter in a "
           "fraction whose 99.9 % binomial interval contains 0.95")  # fmt: skip
def _sl(e):
    from scipy import stats

    from proofs_check.bounds import fit_scaling_law

    def run(deadline):
        hits = np.zeros(3)
        k = 40
        for i, y in enumerate(_sl_curves(k, 31337)):
            _tick(deadline, f"curve {i}")
            f = fit_scaling_law(_SL_X, y, sigma=0.01, confidence=0.95)
            ivs = (f.l_inf_interval, f.x0_interval, f.alpha_interval)
            hits += [lo <= t <= hi for (lo, hi), t in zip(ivs, _SL_TRUE, strict=True)]
        out = []
        for name, h in zip(("L∞", "x0", "α"), hits, strict=True):
            lo, hi = stats.binomtest(int(h), k).proportion_ci(0.999)
            out.append((f"{name}: coverage {int(h)}/{k}, 99.9 % interval [{lo:.3f}, {hi:.3f}]",
                        min(0.95 - lo, hi - 0.95)))
        return out

    return CallableClaim(e.name, run, **_meta(e))


@register("false_scaling_law_without_floor", tags=("bounds", "scaling-law", "false"),
           expected="violated", source=_FALSE + "Henighan et al. (2020): the irreducible loss L∞ "
           "must be separated before reading the exponent",
           description="a pure power law L = (x0/x)^α (log–log line, L∞ = 0) fitted to the same "
           "synthetic curves recovers α within its 95 % interval")  # fmt: skip
def _sl_false(e):
    from scipy import stats

    def run(deadline):
        out = []
        lx = np.log(_SL_X)
        for i, y in enumerate(_sl_curves(5, 31337)):
            _tick(deadline, f"curve {i}")
            res = stats.linregress(lx, np.log(y))
            tq = float(stats.t.ppf(0.975, lx.size - 2))
            a_hat, a_se = -res.slope, res.stderr
            out.append((f"curve {i}: α̂ = {a_hat:.4f} ± {tq * a_se:.4f} vs true {_SL_TRUE[2]}",
                        tq * a_se - abs(a_hat - _SL_TRUE[2])))
        return out

    return CallableClaim(e.name, run, **_meta(e))


# ============================================================== MLE risk rates (Sheena)
_EXP_K = 2  # truth Gamma(k = 2, scale 1/2), model exponential: c1 = 1/(2k), c2 = 11/(12k²)
_NB_R, _NB_P = 4, 0.5  # truth NegativeBinomial(4, 1/2) (mean 4, variance 8), model Poisson
_REPS = 200_000


@functools.cache
def _sheena_coeffs(family):
    import sympy
    from sympy.stats import Gamma, NegativeBinomial

    from theory import asymptotics

    if family == "exponential":
        r = asymptotics.mle_risk("exponential", truth=Gamma("X", _EXP_K, sympy.Rational(1, _EXP_K)))
    else:
        r = asymptotics.mle_risk("poisson", truth=NegativeBinomial("Y", _NB_R, sympy.Rational(1, 2)))
    return float(r.c1), float(r.c2)


def _sheena_draw(family, n, rng, size):
    """(KL(g_θ*‖g_θ̂), quadratic term ½ φ''(η*) (T̄ − η*)²) for ``size`` samples of size n."""
    if family == "exponential":
        xbar = rng.gamma(n * _EXP_K, 1.0 / (n * _EXP_K), size)  # T̄ of n Gamma(k, 1/k) draws
        kl = np.log(xbar) + 1 / xbar - 1  # KL(Exp(1)‖Exp(1/x̄))
        quad = (xbar - 1) ** 2 / 2
    else:
        lam = _NB_R * _NB_P / (1 - _NB_P)
        s = rng.negative_binomial(n * _NB_R, 1 - _NB_P, size)  # sum of n NB(r, p) draws
        if np.any(s == 0):
            raise ValueError("a sample mean of 0: the Poisson MLE does not exist (probability 2^-4n)")
        xbar = s / n
        kl = lam * np.log(lam / xbar) + xbar - lam  # KL(Poi(λ*)‖Poi(x̄))
        quad = (xbar - lam) ** 2 / (2 * lam)
    return kl, quad


def _sheena_quantity(family, order):
    def quantity(n, rng):
        kl, quad = _sheena_draw(family, n, rng, _REPS)
        # order 2: E[KL − quad] = R_n − c1/n exactly, since E[quad] = κ2/(2 n ψ'') = c1/n
        x = kl if order == 1 else kl - quad
        return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))

    return quantity


def _sheena_builder(family, order, *, sign=1.0, rate=None):
    def build(e):
        c1, c2 = _sheena_coeffs(family)
        if order == 1:
            return PowerLawClaim(e.name, _sheena_quantity(family, 1), ns=[64, 128, 256, 512, 1024],
                                 rate=1.0, rate_tol=0.05, constant=c1, constant_rtol=0.05, **_meta(e))
        return PowerLawClaim(e.name, _sheena_quantity(family, 2), ns=[16, 32, 64, 128, 256],
                             rate=2.0 if rate is None else rate, rate_tol=0.1, constant=sign * c2,
                             constant_rtol=0.15, **_meta(e))  # fmt: skip

    return build


for _fam, _desc in (("exponential", "exponential model, Gamma(2, 1/2) truth (c1 = 1/4, c2 = 11/48)"),
                    ("poisson", "Poisson model, NegativeBinomial(4, 1/2) truth (c1 = 1, c2 = 1/4)")):
    register(f"sheena_{_fam}_first_order", tags=("bounds", "rate", "montecarlo", "asymptotics"),
             expected="consistent", source=_SH,
             description=f"{_desc}: Monte Carlo E KL ~ C n^-r with r = 1 ± 0.05, C = c1 ± 5 % "
             f"(n = 64…1024, {_REPS} samples per n)")(_sheena_builder(_fam, 1))  # fmt: skip
    register(f"sheena_{_fam}_second_order", tags=("bounds", "rate", "montecarlo", "asymptotics"),
             expected="consistent", source=_SH,
             description=f"{_desc}: Monte Carlo E[KL − ½φ''δ²] = R_n − c1/n ~ C n^-r with r = 2 "
             f"± 0.1, C = c2 ± 15 % (n = 16…256)")(_sheena_builder(_fam, 2))  # fmt: skip

register("false_sheena_second_order_sign", tags=("bounds", "rate", "montecarlo", "false"),
         expected="violated", source=_FALSE + "sign error in the n⁻² term of Sheena (2021)",
         description="exponential/Gamma: R_n − c1/n ~ −c2 n^-2")(
    _sheena_builder("exponential", 2, sign=-1.0))  # fmt: skip


@register("plugin_kl_rate_constant", tags=("bounds", "rate", "montecarlo", "kl"),
           expected="consistent",
           source="Wilks (1938): 2n·KL(P̂_n‖P) → χ²_{k−1}, so E KL = (k−1)/(2n) + O(n⁻²); the "
           "catalog's plugin_kl_rate checks the slope only",
           description="E KL(P̂_n‖P), k = 4: r = 1 ± 0.05 and C = (k − 1)/2 = 3/2 ± 5 % "
           "(n = 200…3200, 4000 draws per n)")  # fmt: skip
def _plugin_const(e):
    from proofs_check.catalog import _plugin_kl

    def quantity(n, rng):
        x = _plugin_kl(rng, n, 4000)
        return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))

    return PowerLawClaim(e.name, quantity, ns=[200, 400, 800, 1600, 3200], rate=1.0, rate_tol=0.05,
                         constant=1.5, constant_rtol=0.05, **_meta(e))  # fmt: skip
