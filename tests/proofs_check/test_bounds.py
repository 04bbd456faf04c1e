"""proofs_check.bounds against independent computations, and the claims tagged ``bounds``."""

import itertools
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from numeric.tolerances import assert_close
from proofs_check import bounds, catalog


# ------------------------------------------------------------------ generalization bounds
def _net(**kw):
    args = dict(mu=[1.0, 0.5], sigma=1.0, layers=[[[1.0, 0.3], [0.2, 1.0]], [[1.0, -0.4]]],
                beta=0.5, n=3, s=0.3)  # fmt: skip
    args.update(kw)
    return bounds.GaussianLinearNetwork(**args)


def test_gap_against_conditional_quadrature():
    # independent route: P(WZ<0) = ∫ φ(u) P(sign disagreement | W = m + s_w u) du
    net = _net()
    with mpmath.workdps(30):
        m, vw, vz, cov = net._moments()
        sw, sz = mpmath.sqrt(vw), mpmath.sqrt(vz)

        def disagree(c):
            rho = c / (sw * sz)
            root = mpmath.sqrt(1 - rho**2)

            def f(u):
                w = m + sw * u
                pz_neg = mpmath.ncdf(-(m + sz * rho * u) / (sz * root))
                return mpmath.npdf(u) * (pz_neg if w > 0 else 1 - pz_neg)

            cut = -m / sw
            return mpmath.quad(f, [-mpmath.inf, cut, mpmath.inf])

        want = disagree(0) - disagree(cov)
        got = net.gap(dps=30)
        assert abs(got - want) < mpmath.mpf(10) ** -25


def test_layer_kl_against_joint_determinant():
    # I(W; V) = ½ log(det Σ_W det Σ_V / det Σ_(W,V)), built here from the joint covariance
    net = _net(layers=[[[1.0, 0.3], [0.2, 1.0]], [[0.5, 0.5], [0.1, 0.9]], [[1.0, -0.4]]],
               beta=[0.3, 0.7, 0.2], n=5)  # fmt: skip
    kls = net.kl_per_layer(dps=30)
    with mpmath.workdps(40):
        sig2, n = mpmath.mpf(1), mpmath.mpf(5)
        gs, ns_ = [mpmath.eye(2)], [mpmath.zeros(2, 2)]
        for a, b in zip(net.layers, net.beta, strict=True):
            A = mpmath.matrix(a.tolist())
            gs.append(A * gs[-1])
            ns_.append(A * ns_[-1] * A.T + mpmath.mpf(b) ** 2 * mpmath.eye(A.rows))
        G = gs[-1]
        for layer, (g, nl) in enumerate(zip(gs, ns_, strict=True)):
            d = g.rows
            joint = mpmath.zeros(d + 1, d + 1)
            joint[0, 0] = (sig2 / n * G * G.T)[0, 0] + mpmath.mpf(0.3) ** 2  # the float s = 0.3
            c = sig2 / n * g * G.T
            cv = sig2 * g * g.T + nl
            for i in range(d):
                joint[0, i + 1] = joint[i + 1, 0] = c[i, 0]
                for j in range(d):
                    joint[i + 1, j + 1] = cv[i, j]
            want = mpmath.log(joint[0, 0] * mpmath.det(cv) / mpmath.det(joint)) / 2
            assert abs(kls[layer] - want) < mpmath.mpf(10) ** -25


def test_bound_dominates_gap_and_kl_shrinks():
    net = _net(n=2, s=0.1)
    rep = net.report()
    kls = [x.kl for x in rep["layers"]]
    assert all(a > b for a, b in itertools.pairwise(kls))
    assert rep["gap"] > 0
    assert rep["gap"] <= rep["best_bound"] == rep["layers"][-1].bound
    assert rep["gap"] <= rep["xu_raginsky"]
    # independent samples: Σ_i I(W; Z_i) ≤ I(W; S) (chain rule), so n·KL_0 ≤ I(W; S)
    assert net.n * kls[0] <= net.mutual_information()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"sigma": -1.0}, "sigma"),
        ({"s": 0.0}, "s must be positive"),
        ({"beta": -0.5}, "beta"),
        ({"n": 0}, "n must be an integer ≥ 1"),
        ({"n": 2.5}, "n must be"),
        ({"layers": [[[1.0, 0.3, 0.1]], [[1.0]]]}, "3 columns|2 columns"),
        ({"layers": [[[1.0, 0.3], [0.2, 1.0]]]}, "one row"),
        ({"mu": [np.nan, 1.0]}, "mu"),
    ],
)
def test_network_bad_input(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _net(**kw)


def test_gaussian_eta_tv_against_scipy_and_quadrature():
    from scipy.special import ndtr

    for a, s in ((1, 1), (0.3, 2), (3, 0.5)):
        eta = bounds.gaussian_eta_tv(a, s, dps=50)
        assert_close(float(eta), 1 - 2 * ndtr(-a / s), rtol=1e-14)
    tv = bounds.gaussian_pair_tv(-3, 3, 0.5, dps=30)
    assert abs(tv - bounds.gaussian_eta_tv(3, 0.5, dps=50)) < mpmath.mpf(10) ** -25
    with pytest.raises(ValueError, match="amplitude"):
        bounds.gaussian_eta_tv(-1, 1)
    with pytest.raises(ValueError, match="sigma"):
        bounds.gaussian_pair_tv(0, 1, -2)


def test_dropout_and_dropconnect_exact_values():
    # d = 1: the channel keeps x = 1 with probability 1 − p: TV(δ0, Bern(1 − p)) = 1 − p
    assert bounds.dropout_dobrushin(1, "1/3") == Fraction(2, 3)
    assert bounds.dropout_dobrushin(2, "1/2") == Fraction(3, 4)
    assert bounds.dropconnect_dobrushin(1, 3, "1/2") == 1 - Fraction(1, 2) ** 3
    with pytest.raises(ValueError, match="drop probability"):
        bounds.dropout_dobrushin(2, "3/2")
    with pytest.raises(ValueError, match="d must be"):
        bounds.dropout_dobrushin(0, "1/2")


# ------------------------------------------------------------------ KDE
def _legendre(u):
    """sup_t (t u − Λ(t)) by maximising numerically over t < 1/2 (mpmath findroot on Λ')."""
    lam = lambda t: -mpmath.log(1 - 2 * t) / 2 + t / (1 - 2 * t)  # noqa: E731
    t = mpmath.findroot(lambda t: mpmath.diff(lam, t) - u, mpmath.mpf(0) if u > 1.5 else -1)
    return t * u - lam(t)


def test_kde_rate_function_is_the_legendre_transform():
    with mpmath.workdps(30):
        for u in ("0.4", "1", "2", "3.5"):
            assert abs(bounds.kde_rate_function(u) - _legendre(mpmath.mpf(u))) < mpmath.mpf(10) ** -20
        assert abs(bounds.kde_rate_function(2)) < mpmath.mpf(10) ** -28  # zero at the mean


def test_kde_thresholds_solve_their_equations_and_kl_is_continuous():
    with mpmath.workdps(30):
        for a in ("0.1", "0.3", "1.5"):
            th = bounds.kde_thresholds(a)
            hg2 = th.h_g**2
            lhs = mpmath.log(1 + 1 / hg2) / 2 - hg2 / (2 * (1 + hg2) ** 2)
            assert abs(lhs - th.alpha) < mpmath.mpf(10) ** -25
            hc2 = th.h_clt**2
            lhs2 = mpmath.log(1 + 2 / hc2) / 2 - hc2 / (2 + hc2) ** 2
            assert abs(lhs2 - th.alpha) < mpmath.mpf(10) ** -25
            assert abs(th.h_opt**2 - hg2 * (2 * hg2 + 1) / (1 + hg2) ** 2) < mpmath.mpf(10) ** -25
            # the frozen and annealed branches of the KL meet at h_G
            annealed = mpmath.log(1 + hg2) / 2 - hg2 / (2 * (1 + hg2))
            frozen = th.alpha + mpmath.log(hg2) / 2 + th.u_min / (2 * hg2) - mpmath.mpf(1) / 2
            assert abs(annealed - frozen) < mpmath.mpf(10) ** -25
    with pytest.raises(ValueError, match="alpha"):
        bounds.kde_thresholds(-0.1)
    with pytest.raises(ValueError, match="bandwidth"):
        bounds.kde_kl_per_dimension(0, 0.5)


def test_kde_min_distance_against_poisson_mixture_cdf():
    # noncentral χ²_d(λ) CDF as a Poisson mixture of regularised gamma functions (not scipy's
    # ncx2), integrated on other breakpoints
    from scipy import integrate
    from scipy.special import gammainc, gammaln

    d, a = 4, 0.5
    n = int(round(np.exp(a * d)))
    j = np.arange(80)
    wts = np.exp(-d / 2 + j * np.log(d / 2) - gammaln(j + 1))

    def surv(v):
        return (1 - float((wts * gammainc(d / 2 + j, d * v / 2)).sum())) ** n

    want = sum(integrate.quad(surv, lo, hi, epsabs=1e-14, epsrel=1e-12)[0]
               for lo, hi in ((0, 0.7), (0.7, 1.9), (1.9, 5), (5, 40)))  # fmt: skip
    assert_close(bounds.kde_min_distance_exact(d, a), want, rtol=1e-8)


def test_kde_monte_carlo_small_and_bad_input():
    rng = np.random.default_rng(0)
    res = bounds.kde_monte_carlo(6, 0.4, [0.3, 3.0], reps=20, rng=rng)
    assert res["n"] == 11
    assert res["y2"][0] > res["y2"][1]  # condensed at small h, spread at large h
    assert np.all((res["y2"] > 0) & (res["y2"] <= 1))
    with pytest.raises(ValueError, match="bandwidths"):
        bounds.kde_monte_carlo(6, 0.4, [-1.0], reps=5, rng=rng)
    with pytest.raises(ValueError, match="d must be"):
        bounds.kde_monte_carlo(0, 0.4, [1.0], reps=5, rng=rng)
    with pytest.raises(ValueError, match="reps"):
        bounds.kde_monte_carlo(4, 0.4, [1.0], reps=1, rng=rng)


# ------------------------------------------------------------------ universality lens
def test_mixture_regret_against_sequence_enumeration():
    thetas, weights = [0.1, 0.35, 0.5, 0.8, 0.95], [1, 2, 3, 1, 5]
    t0, n = 0.4, 8
    with mpmath.workdps(40):
        w = [mpmath.mpf(x) / sum(weights) for x in weights]
        th = [mpmath.mpf(x) for x in thetas]
        total = mpmath.mpf(0)
        for seq in itertools.product((0, 1), repeat=n):
            k = sum(seq)
            p = mpmath.mpf(t0) ** k * (1 - mpmath.mpf(t0)) ** (n - k)
            q = mpmath.fsum(wi * ti**k * (1 - ti) ** (n - k) for wi, ti in zip(w, th, strict=True))
            total += p * mpmath.log(p / q)
    got = bounds.bernoulli_mixture_regret(thetas, t0, n, weights=weights)
    assert_close(got, float(total), rtol=1e-12)
    b, eps = bounds.weight_bound(thetas, t0, n, weights=weights)
    assert got <= b
    # the minimum over a dense ε grid is never below the returned optimum
    kl = [t0 * np.log(t0 / t) + (1 - t0) * np.log((1 - t0) / (1 - t)) for t in thetas]
    wn = np.asarray(weights) / sum(weights)
    grid = np.linspace(0, 2, 20001)
    vals = [n * e - np.log(wn[np.asarray(kl) <= e].sum()) for e in grid if min(kl) <= e]
    assert min(vals) >= b - 1e-9


def test_laplace_mixture_regret_closed_form():
    # Laplace (uniform prior) mixture: Q(x^n) = 1/((n+1) C(n,k)) for a sequence with k ones
    p, n = 0.3, 50
    with mpmath.workdps(30):
        pm = mpmath.mpf(p)
        terms = []
        for k in range(n + 1):
            pk = mpmath.binomial(n, k) * pm**k * (1 - pm) ** (n - k)
            log_ratio = k * mpmath.log(pm) + (n - k) * mpmath.log(1 - pm)
            terms.append(pk * (log_ratio + mpmath.log((n + 1) * mpmath.binomial(n, k))))
        want = mpmath.fsum(terms)
    assert_close(bounds.dirichlet_mixture_regret([p, 1 - p], n, concentration=1.0), float(want), rtol=1e-11)
    # KT constant for two symbols: log π − ½ log(2πe)
    assert_close(bounds.clarke_barron_constant([0.3, 0.7]), float(mpmath.log(mpmath.pi)
                 - mpmath.log(2 * mpmath.pi * mpmath.e) / 2), rtol=1e-14)  # fmt: skip


def test_universality_bad_input():
    with pytest.raises(ValueError, match="n must be"):
        bounds.bernoulli_mixture_regret([0.5], 0.5, 0)
    with pytest.raises(ValueError, match="theta0"):
        bounds.weight_bound([0.5], 1.5, 3)
    with pytest.raises(ValueError, match="weights"):
        bounds.weight_bound([0.2, 0.5], 0.5, 3, weights=[-1, 2])
    with pytest.raises(ValueError, match="thetas"):
        bounds.bernoulli_mixture_regret([0.0, 0.5], 0.5, 3)
    with pytest.raises(ValueError, match="probability vector"):
        bounds.dirichlet_mixture_regret([0.5, 0.6], 10)


# ------------------------------------------------------------------ scaling laws
X = np.logspace(4, 10, 12)


def test_scaling_fit_recovers_noisy_parameters_within_intervals():
    rng = np.random.default_rng(11)
    y = (1.7 + (1e5 / X) ** 0.35) * np.exp(0.01 * rng.standard_normal(X.size))
    fit = bounds.fit_scaling_law(X, y, sigma=0.01)
    for (lo, hi), t in zip((fit.l_inf_interval, fit.x0_interval, fit.alpha_interval),
                           (1.7, 1e5, 0.35), strict=True):  # fmt: skip
        assert lo <= t <= hi
    assert_close(fit.predict(X), 1.7 + (1e5 / X) ** 0.35, rtol=0.03)
    with pytest.raises(ValueError, match="positive"):
        fit.reducible([-1.0])


@pytest.mark.parametrize(
    "x, y, kw, match",
    [
        (X, (1e5 / X) ** 0.35, {}, "ill-posed: L∞ ended on its bound"),
        (X, 2 + 0 * X, {}, "does not decrease"),
        (X[:4], 1 + 1 / X[:4], {}, "at least 5"),
        (X, np.r_[1 + (1e5 / X[:6]) ** 0.35, 3 + (1e5 / X[6:]) ** 0.35], {}, "not non-increasing"),
        (X, 1 + (1e5 / X) ** 0.35, {"sigma": -0.1}, "sigma"),
        (X[::-1], 1 + (1e5 / X) ** 0.35, {}, "increasing"),
        (X, -(1 + (1e5 / X) ** 0.35), {}, "positive"),
    ],
)
def test_scaling_fit_refuses_ill_posed_and_bad_input(x, y, kw, match):
    with pytest.raises(ValueError, match=match):
        bounds.fit_scaling_law(x, y, **kw)


# ------------------------------------------------------------------ the claims
def test_bounds_claim_set_size_sources_and_false_claims():
    entries = catalog.select(tags=["bounds"])
    assert len(entries) >= 12
    assert sum(e.expected == "violated" for e in entries) >= 3
    for e in entries:
        assert len(e.source) > 20, e.name
        assert ("false" in e.tags) == (e.expected == "violated"), e.name


@pytest.mark.parametrize(
    "name",
    ["false_hg_kl_increasing_in_layer", "false_kde_clt_at_kl_optimum", "kde_kl_optimum_below_h_clt",
     "sdpi_dropout_dropconnect_exact", "kt_regret_half_log_n", "false_scaling_law_without_floor",
     "hg_kl_nonincreasing_in_layer"],
)
def test_cheap_bounds_claims_get_their_expected_verdict(name):
    v = catalog.get(name).check()
    assert v.ok, (v.status, v.summary())
