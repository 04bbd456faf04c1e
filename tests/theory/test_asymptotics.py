"""theory.asymptotics: the n^-2 risk expansion against exact risks computed independently.

Exact references (mpmath, 50 digits), derived here without the expansion:

* Exponential model, Gamma(k, rate b) truth (misspecified for k != 1): the sample mean is
  Gamma(nk, rate nb), so E KL = digamma(nk) - log(nk) + 1/(nk - 1); the closed form is
  itself checked against the 1-D integral over the Gamma density of the sample mean.
* Poisson model, negative binomial truth (misspecified, overdispersed): the sample sum is
  NB(nr, p); exact sum over its pmf (on the event S >= 1 where the MLE exists).
* Normal(mu, sigma^2) model, Normal truth (p = 2): mean and variance independent, n s^2/sigma^2
  ~ chi^2_(n-1): E KL = (digamma((n-1)/2) + log(2/n) + (n+1)/(n-3) - 1)/2, checked against a
  1-D integral over the chi-square density.
* Bernoulli model: exact finite sum over Binomial(n, p) (S in 1..n-1).
"""

from __future__ import annotations

import itertools
import math
import time

import mpmath
import numpy as np
import pytest
import sympy
from sympy.stats import (
    Bernoulli,
    Beta,
    Cauchy,
    Exponential,
    FiniteRV,
    Gamma,
    LogNormal,
    NegativeBinomial,
    Normal,
    Poisson,
    Uniform,
)

from theory import asymptotics, expfam

R = sympy.Rational
NS = [10, 20, 50, 100, 200, 500, 1000, 2000]
DPS = 50


def mpf(x):
    with mpmath.workdps(DPS + 10):
        return +mpmath.mpf(sympy.N(x, DPS + 10))


def check_remainder(exact_fn, risk, ns=NS, bound=None):
    """n^3 |exact - (c1/n + c2/n^2)| bounded and its log-log slope <= -2.7."""
    c1, c2 = mpf(risk.c1), mpf(risk.c2)
    rems = []
    with mpmath.workdps(DPS):
        for nv in ns:
            ex = exact_fn(nv)
            rems.append(abs(ex - (c1 / nv + c2 / nv**2)))
    scaled = [float(r * nv**3) for r, nv in zip(rems, ns, strict=True)]
    assert max(scaled) < (bound if bound is not None else 100 * (1 + abs(float(c2)))), scaled
    # the scaled remainder settles (does not grow) at large n
    assert scaled[-1] < 2 * scaled[-3] + 1e-6, scaled
    slope = np.polyfit(np.log(ns), np.log([float(r) for r in rems]), 1)[0]
    assert slope <= -2.7, (slope, scaled)
    return scaled, slope


# ------------------------------------------------------------------ exponential / gamma truth
def exact_exponential_gamma(k):
    def f(nv):
        m = mpmath.mpf(nv) * k
        return mpmath.digamma(m) - mpmath.log(m) + 1 / (m - 1)

    return f


def test_exponential_gamma_closed_form_matches_integral():
    k, b, nv = mpmath.mpf(3), mpmath.mpf(2), 10
    with mpmath.workdps(DPS):
        eta = k / b
        shape, rate = nv * k, nv * b  # sample mean ~ Gamma(nk, rate nb)

        def integrand(t):
            dens = mpmath.exp(shape * mpmath.log(rate) - mpmath.loggamma(shape)
                              + (shape - 1) * mpmath.log(t) - rate * t)
            # KL(Exp(1/eta) || Exp(1/t)) = log(t/eta) + eta/t - 1
            return dens * (mpmath.log(t / eta) + eta / t - 1)

        integral = mpmath.quad(integrand, [0, eta / 2, eta, 2 * eta, mpmath.inf])
        assert abs(integral - exact_exponential_gamma(k)(nv)) < mpmath.mpf(10) ** -40


def test_exponential_gamma_misspecified():
    k = 3
    risk = asymptotics.mle_risk("exponential", truth=Gamma("X", k, R(1, 2)))
    assert risk.c1 == R(1, 2 * k)  # tr(I^-1 J)/2 with J = Var(X) = k/b^2, I^-1 = eta^2
    assert risk.c2 == R(11, 12 * k**2)
    check_remainder(exact_exponential_gamma(mpmath.mpf(k)), risk)


# ------------------------------------------------------------------ poisson / NB truth
def exact_poisson_negbin(r, p):
    """sympy's NegativeBinomial(r, p): pmf C(x+r-1, x) (1-p)^r p^x, mean p r/(1-p)."""

    def f(nv):
        lam = p * r / (1 - p)
        shape = nv * r
        mean_s = nv * lam
        sd = mpmath.sqrt(nv * p * r) / (1 - p)
        lo = max(1, int(mean_s - 45 * sd))
        hi = int(mean_s + 45 * sd) + 10
        logp, log1p_ = mpmath.log(p), mpmath.log(1 - p)
        logpmf = (mpmath.loggamma(lo + shape) - mpmath.loggamma(shape) - mpmath.loggamma(lo + 1)
                  + shape * log1p_ + lo * logp)
        pmf = mpmath.exp(logpmf)
        total = mpmath.mpf(0)
        for s in range(lo, hi + 1):
            lam_hat = mpmath.mpf(s) / nv
            total += pmf * (lam * mpmath.log(lam / lam_hat) - lam + lam_hat)
            pmf *= (s + shape) / (s + 1) * p
        return total

    return f


def test_poisson_negative_binomial_misspecified():
    r, p = 3, R(1, 2)
    risk = asymptotics.mle_risk("poisson", truth=NegativeBinomial("Y", r, p))
    lam, var = p * r / (1 - p), p * r / (1 - p) ** 2
    assert risk.c1 == var / lam / 2  # sandwich: Var(X)/(2 E X)
    with mpmath.workdps(DPS):
        check_remainder(exact_poisson_negbin(mpmath.mpf(r), mpmath.mpf(1) / 2), risk)


# ------------------------------------------------------------------ normal / normal (p = 2)
def exact_normal_normal(nv):
    nv = mpmath.mpf(nv)
    return (mpmath.digamma((nv - 1) / 2) + mpmath.log(2 / nv) + (nv + 1) / (nv - 3) - 1) / 2


def test_normal_closed_form_matches_chi_square_integral():
    nv = 12
    with mpmath.workdps(DPS):
        nu = mpmath.mpf(nv - 1)

        def integrand(c):  # c = n s^2 / sigma^2 ~ chi^2_nu; E (mu - mu_hat)^2 = sigma^2 / n
            dens = mpmath.exp((nu / 2 - 1) * mpmath.log(c) - c / 2 - (nu / 2) * mpmath.log(2)
                              - mpmath.loggamma(nu / 2))
            v = c / nv  # sigma_hat^2 / sigma^2
            kl = mpmath.log(v) / 2 + (1 + mpmath.mpf(1) / nv) / (2 * v) - mpmath.mpf(1) / 2
            return dens * kl

        integral = mpmath.quad(integrand, [0, nu / 2, nu, 2 * nu, mpmath.inf])
        assert abs(integral - exact_normal_normal(nv)) < mpmath.mpf(10) ** -40


def test_normal_normal_two_parameters():
    mu, s = sympy.Symbol("mu", real=True), sympy.Symbol("s", positive=True)
    risk = asymptotics.mle_risk("normal", truth=Normal("X", mu, s))
    assert risk.p == 2 and risk.c1 == 1  # p / 2
    assert not risk.c2.free_symbols  # location-scale invariance
    check_remainder(exact_normal_normal, risk, ns=NS)


# ------------------------------------------------------------------ bernoulli (finite sum)
def test_bernoulli_finite_sum():
    p = R(2, 5)
    risk = asymptotics.mle_risk("bernoulli", truth=Bernoulli("B", p))
    assert risk.c1 == R(1, 2)

    def exact(nv):
        pm = mpmath.mpf(2) / 5
        total = mpmath.mpf(0)
        for s in range(1, nv):
            q = mpmath.mpf(s) / nv
            kl = pm * mpmath.log(pm / q) + (1 - pm) * mpmath.log((1 - pm) / (1 - q))
            total += mpmath.binomial(nv, s) * pm**s * (1 - pm) ** (nv - s) * kl
        return total

    check_remainder(exact, risk, ns=[40, 60, 100, 200, 400, 800])


# ------------------------------------------------------------------ structure of the result
@pytest.mark.parametrize(
    "name, fixed, params",
    [
        ("bernoulli", {}, {"probs": R(1, 3)}),
        ("binomial", {"total_count": 5}, {"probs": R(1, 4)}),
        ("categorical", {"num_classes": 4}, {"probs": (R(1, 4), R(1, 8), R(1, 2), R(1, 8))}),
        ("poisson", {}, {"rate": R(3, 2)}),
        ("geometric", {}, {"probs": R(1, 3)}),
        ("exponential", {}, {"rate": 2}),
        ("gamma", {}, {"concentration": R(5, 2), "rate": 2}),
        ("beta", {}, {"concentration1": 2, "concentration0": R(7, 2)}),
        ("normal_known_variance", {"scale": 2}, {"loc": 1}),
        ("normal", {}, {"loc": 1, "scale": 2}),
        ("diagonal_normal", {"dim": 2}, {"loc": (0, 1), "scale": (1, 3)}),
    ],
)
def test_well_specified_leading_term_is_p_over_2(name, fixed, params):
    fam = expfam.get(name, **fixed)
    risk = asymptotics.mle_risk(fam, truth=params)
    assert abs(sympy.N(risk.c1 - sympy.Rational(fam.dim, 2), 45)) < 1e-40
    assert risk.well_specified


def test_random_symbol_and_explicit_cumulants_agree():
    truth = Uniform("U", 0, 1)
    via_rv = asymptotics.mle_risk("normal", truth=truth)
    # cumulants of T = (X, X^2) for U(0, 1): moments E X^j = 1/(j+1)
    m = [R(1, j + 1) for j in range(7)]
    mean = [m[1], m[2]]
    cov = [[m[2] - m[1] ** 2, m[3] - m[1] * m[2]], [m[3] - m[1] * m[2], m[4] - m[2] ** 2]]

    def k3(a, b, c):  # T_i = X^(i+1)
        e = lambda *pw: m[sum(pw)]  # noqa: E731
        i, j, k = a + 1, b + 1, c + 1
        return (e(i, j, k) - e(i) * e(j, k) - e(j) * e(i, k) - e(k) * e(i, j)
                + 2 * e(i) * e(j) * e(k))

    third = [[[k3(a, b, c) for c in range(2)] for b in range(2)] for a in range(2)]
    explicit = asymptotics.mle_risk("normal", truth={"mean": mean, "cov": cov, "third": third})
    assert sympy.simplify(via_rv.c1 - explicit.c1) == 0
    assert sympy.simplify(via_rv.c2 - explicit.c2) == 0
    assert via_rv.projection == {"loc": R(1, 2), "scale": sympy.sqrt(3) / 6}


def test_order_one_and_evaluate_and_latex():
    r1 = asymptotics.mle_risk("poisson", truth=Poisson("P", 2), order=1)
    assert r1.c2 is None and r1.c1 == R(1, 2)
    r2 = asymptotics.mle_risk("poisson", truth=Poisson("P", 2))
    assert r2.evaluate(10) == R(1, 20) + r2.c2 / 100
    assert r2.evaluate(10, terms=1) == R(1, 20)
    assert sympy.simplify(r2.expression.subs(asymptotics.n, 7) - r2.evaluate(7)) == 0
    tex = r2.latex()
    assert "n^{-2}" in tex and "O(n^{-3})" in tex


def test_implicit_projection_gamma_symbolic_truth():
    # LogNormal(mu, 1) is outside the Gamma model: theta* solves two digamma equations
    mu = sympy.Symbol("mu", real=True)
    risk = asymptotics.mle_risk("gamma", truth=LogNormal("X", mu, 1))
    assert risk.theta_star_equations is not None and not risk.well_specified
    assert len(risk.theta_star_equations) == 2
    # at mu = 0: solve the equations, compare with the Taylor coefficients of the KL
    eqs = [sympy.lambdify(risk.theta_star, (e.lhs - e.rhs).subs(mu, 0), modules="mpmath")
           for e in risk.theta_star_equations]
    c1, c2 = (sympy.lambdify(risk.theta_star, c.subs(mu, 0), modules="mpmath")
              for c in (risk.c1, risk.c2))
    with mpmath.workdps(80):
        sol = mpmath.findroot(lambda t1, t2: [f(t1, t2) for f in eqs], (2, -1))
        ref1, ref2 = gamma_lognormal_reference()
        assert abs(c1(*sol) - ref1) < mpmath.mpf(10) ** -18
        assert abs(c2(*sol) - ref2) < mpmath.mpf(10) ** -18


def test_symbolic_member_given_as_random_symbol_is_recognised():
    # Gamma(k, 1) is the Gamma member (k, rate 1): its own projection, c1 = p/2 (before:
    # implicit digamma equations in theta1_star, theta2_star and c1 in those symbols)
    k = sympy.Symbol("k", positive=True)
    risk = asymptotics.mle_risk("gamma", truth=Gamma("X", k, 1))
    assert risk.theta_star == (k, -1) and risk.theta_star_equations is None
    assert risk.c1 == 1 and risk.well_specified
    ref = gamma_reference(R(7, 3), 1)[1]
    with mpmath.workdps(DPS):
        assert abs(mpf(risk.c2.subs(k, R(7, 3))) - ref) < mpmath.mpf(10) ** -18 * ref
    # Beta(a, b): the same coefficients as the member given by its parameters
    a, b = sympy.symbols("a b", positive=True)
    t0 = time.perf_counter()
    via_rv = asymptotics.mle_risk("beta", truth=Beta("X", a, b))
    elapsed = time.perf_counter() - t0
    via_params = asymptotics.mle_risk("beta", truth={"concentration1": a, "concentration0": b})
    assert via_rv.theta_star == (a, b) and via_rv.c1 == 1
    assert sympy.expand(via_rv.c2 - via_params.c2) == 0
    assert elapsed < 5, elapsed  # before: 19 s (Beta(a, 2): over 60 s)
    # not a member: a Weibull density is not affine in (log x, x)
    lam = sympy.Symbol("lam", positive=True)
    assert asymptotics._member_parameters(
        expfam.get("gamma"), sympy.stats.Weibull("W", lam, k)) is None


def test_numeric_projection_gamma_misspecified():
    # Gamma model, Uniform(0, 2) truth: theta* solves digamma equations numerically
    risk = asymptotics.mle_risk("gamma", truth=Uniform("U", 0, 2))
    a, b = (sympy.N(v, 50) for v in risk.theta_star)
    with mpmath.workdps(DPS):
        am, bm = mpf(a), -mpf(b)
        # moment matching: E log X = digamma(a) - log(rate), E X = a / rate
        e_log = mpmath.log(2) - 1  # ∫_0^2 log(x)/2 dx
        assert abs(mpmath.digamma(am) - mpmath.log(bm) - e_log) < mpmath.mpf(10) ** -40
        assert abs(am / bm - 1) < mpmath.mpf(10) ** -40


# ------------------------------------------------------------------ Monte Carlo, p = 2
def test_monte_carlo_normal_model_uniform_truth():
    """Misspecified two-parameter case: Normal(mu, sigma^2) fitted to U(0, 1) data.

    The O(n^-3) remainder of this model is about 10/n^3 (measured with 4e5 replications:
    n^3 (MC - prediction) = 15.6, 11.1, -7.7 +- 13 at n = 25, 50, 100), i.e. about 1.5
    standard errors of a 1e5-replication mean at n = 50 and negligible at n = 200; the
    seed is fixed, so the check is deterministic.
    """
    risk = asymptotics.mle_risk("normal", truth=Uniform("U", 0, 1))
    mu_s, var_s = 0.5, 1.0 / 12.0
    rng = np.random.default_rng(1)
    reps = 100_000
    for nv in (50, 200):
        kls = []
        for _chunk in range(4):
            x = rng.random((reps // 4, nv))
            mu_h = x.mean(axis=1)
            var_h = x.var(axis=1)  # MLE (ddof=0)
            kl = 0.5 * np.log(var_h / var_s) + (var_s + (mu_s - mu_h) ** 2) / (2 * var_h) - 0.5
            kls.append(kl)
        kl = np.concatenate(kls)
        assert kl.size >= 100_000
        mean, se = kl.mean(), kl.std(ddof=1) / np.sqrt(kl.size)
        pred = float(risk.evaluate(nv))
        z = 2.5758293035489004  # two-sided 99 %
        assert abs(pred - mean) <= z * se, (nv, pred, mean, se)
        # the one-term prediction is measurably worse at n = 50
        if nv == 50:
            assert abs(float(risk.evaluate(nv, terms=1)) - mean) > abs(pred - mean)


# ------------------------------------------------------------------ timing
@pytest.mark.parametrize(
    "family, truth",
    [
        ("bernoulli", lambda: Bernoulli("B", R(1, 3))),
        ("poisson", lambda: NegativeBinomial("Y", 2, R(1, 3))),
        ("geometric", lambda: Poisson("P", 3)),
        ("exponential", lambda: Gamma("X", 2, 1)),
        ("normal_known_variance", lambda: Exponential("X", 1)),
        ("normal", lambda: Exponential("X", 2)),
        ("gamma", lambda: Gamma("X", 3, R(1, 2))),
        ("beta", lambda: Beta("X", 2, 5)),
        (expfam.get("categorical", num_classes=4),
         lambda: FiniteRV("F", {0: R(1, 2), 1: R(1, 4), 2: R(1, 8), 3: R(1, 8)})),
        (expfam.get("binomial", total_count=6), lambda: Bernoulli("B", R(1, 3))),
    ],
)
def test_mle_risk_is_fast(family, truth):
    t0 = time.perf_counter()
    risk = asymptotics.mle_risk(family, truth=truth())
    elapsed = time.perf_counter() - t0
    assert risk.c2 is not None and risk.p <= 3
    assert elapsed < 10, elapsed


# ------------------------------------------------------------------ p-n criterion
def test_pn_criterion_bridges():
    v = asymptotics.pn_criterion(2, 1000, bayes_error=0.49)
    with mpmath.workdps(30):
        r = mpmath.mpf(1) / 1000
        assert abs(v.risk - r) < 1e-25
        assert abs(v.tv_pinsker - mpmath.sqrt(r / 2)) < 1e-25
        assert abs(v.tv_bh - mpmath.sqrt(1 - mpmath.exp(-r))) < 1e-25
        assert abs(v.bayes_error_pinsker - (1 - mpmath.sqrt(r / 2)) / 2) < 1e-25
    assert v.kl_budget_pinsker < v.kl_budget_bh or v.kl_budget_pinsker >= v.kl_budget_bh
    # Pinsker's budget 2(1-2e)^2 at e = 0.49 is 8e-4 < R: not met by Pinsker
    assert not v.satisfied_pinsker
    # n_required is the first n meeting the larger budget
    nr = v.n_required
    budget = max(v.kl_budget_pinsker, v.kl_budget_bh)
    assert 1 / nr <= budget * (1 + 1e-30) < 1 / (nr - 1)
    assert asymptotics.pn_criterion(2, nr, bayes_error=0.49).satisfied


def test_pn_criterion_from_family_and_truth():
    v = asymptotics.pn_criterion("exponential", 500, bayes_error=0.45,
                                 truth=Gamma("X", 2, R(1, 2)))
    assert v.p == 1 and v.satisfied
    risk = asymptotics.mle_risk("exponential", truth=Gamma("X", 2, R(1, 2)))
    assert abs(v.risk - mpf(risk.evaluate(500))) < 1e-40


def test_pn_criterion_bridge_regimes():
    # small KL: Pinsker is the sharper TV bound; large KL: Bretagnolle-Huber
    small = asymptotics.pn_criterion(1, 10_000, bayes_error=0.4)
    assert small.tv_pinsker < small.tv_bh
    large = asymptotics.pn_criterion(40, 10, bayes_error=0.1)
    assert large.tv_bh < large.tv_pinsker == 1


# ------------------------------------------------------------------ errors
def test_bad_input():
    with pytest.raises(ValueError, match="undefined or infinite"):
        asymptotics.mle_risk("normal", truth=Cauchy("C", 0, 1))
    with pytest.raises(ValueError, match="support mismatch"):
        asymptotics.mle_risk("poisson", truth=Normal("Z", 0, 1))
    with pytest.raises(ValueError, match="support mismatch"):
        asymptotics.mle_risk("exponential", truth=Poisson("P", 1))
    with pytest.raises(ValueError, match="support mismatch"):
        asymptotics.mle_risk("beta", truth=Uniform("U", 0, 2))
    with pytest.raises(ValueError, match="truth is required"):
        asymptotics.mle_risk("poisson", truth=None)
    with pytest.raises(ValueError, match="order"):
        asymptotics.mle_risk("poisson", truth={"rate": 1}, order=3)
    with pytest.raises(ValueError, match="unknown exponential family"):
        asymptotics.mle_risk("poison", truth={"rate": 1})
    with pytest.raises(ValueError, match="constant|boundary"):
        asymptotics.mle_risk("bernoulli", truth=FiniteRV("F", {0: 1}))
    with pytest.raises(ValueError, match="dimension"):
        asymptotics.mle_risk("normal", truth={"mean": [1], "cov": [[1]], "third": [[[0]]]})
    with pytest.raises(ValueError, match="undefined"):
        asymptotics.mle_risk("poisson", truth={"mean": [1], "cov": [[sympy.oo]],
                                                "third": [[[0]]]})
    risk = asymptotics.mle_risk("poisson", truth={"rate": 2})
    for bad in (0, -3, R(-1, 2)):
        with pytest.raises(ValueError, match="positive"):
            risk.evaluate(bad)
        with pytest.raises((ValueError, TypeError)):
            asymptotics.pn_criterion(risk, bad, bayes_error=0.4)
    with pytest.raises(ValueError, match="bayes_error"):
        asymptotics.pn_criterion(risk, 10, bayes_error=0.5)
    with pytest.raises(TypeError):
        asymptotics.mle_risk(3, truth={"rate": 2})


# ------------------------------------------------------------------ issue 14 item 6: speed
# Independent references for the categorical and Beta families, derived without the code's
# contractions (no inverse-function rule, no conjugate tensors).
def categorical_c2(probs):
    """c2 of the categorical family, well specified, by hand: the MLE is the vector of
    empirical frequencies and KL(p || p_hat) = sum_x p_x log(p_x / p_hat_x) is a sum of one
    function per class; with d = p_hat_x - p_x, -log(1 + d/p) to fourth order and the
    central moments of a frequency, E d^2 = p(1-p)/n, E d^3 = p(1-p)(1-2p)/n^2,
    E d^4 = 3 p^2 (1-p)^2 / n^2 + O(n^-3), class x contributes (1 - p)/(2n) and
    (1 - p)(5 - p)/(12 p n^2): c1 = (K - 1)/2, c2 = (5 sum 1/p_x - 6K + 1)/12."""
    return (5 * sum(1 / p for p in probs) - 6 * len(probs) + 1) / 12


def exact_categorical_risk(probs, nv):
    """E KL(p || p_hat) over the multinomial counts with every class seen (the event where
    the MLE exists; its complement has probability below 0.8**n here), K = 3."""
    p = np.array([float(v) for v in probs])
    logfact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, nv + 1)))])
    a, b = np.meshgrid(np.arange(1, nv), np.arange(1, nv), indexing="ij")
    c = nv - a - b
    keep = c >= 1
    a, b, c = a[keep], b[keep], c[keep]
    logpmf = (logfact[nv] - logfact[a] - logfact[b] - logfact[c]
              + a * np.log(p[0]) + b * np.log(p[1]) + c * np.log(p[2]))
    kl = sum(p[i] * np.log(p[i] * nv / cnt) for i, cnt in enumerate((a, b, c)))
    return math.fsum(np.exp(logpmf) * kl)


def test_categorical_matches_exact_multinomial_risk():
    probs = (R(1, 5), R(3, 10), R(1, 2))
    risk = asymptotics.mle_risk(expfam.get("categorical", num_classes=3),
                                truth={"probs": probs})
    assert risk.c1 == 1 and risk.c2 == categorical_c2(probs) == R(26, 9)
    ns = [100, 150, 200, 300, 400]
    rem = [exact_categorical_risk(probs, nv) - (1 / nv + float(risk.c2) / nv**2) for nv in ns]
    scaled = [r * nv**3 for r, nv in zip(rem, ns, strict=True)]
    assert max(abs(v) for v in scaled) < 30, scaled  # measured: 21.1 ... 19.2
    assert np.polyfit(np.log(ns), np.log(np.abs(rem)), 1)[0] <= -2.7, scaled


@pytest.mark.parametrize("num_classes", [2, 3, 4, 5])
def test_categorical_symbolic_member_is_fast_and_matches_closed_form(num_classes):
    # before: the contraction of psi's tensors was one expression of 5e3 (K = 3) to 6e5
    # (K = 5) operations that simplify/cancel did not finish within minutes
    ps = [sympy.Symbol(f"p{i + 1}", positive=True) for i in range(num_classes - 1)]
    probs = (*ps, 1 - sum(ps))
    t0 = time.perf_counter()
    risk = asymptotics.mle_risk(expfam.get("categorical", num_classes=num_classes),
                                truth={"probs": probs})
    elapsed = time.perf_counter() - t0
    assert risk.c1 == R(num_classes - 1, 2)
    assert sympy.cancel(risk.c2 - categorical_c2(probs)) == 0
    assert elapsed < 10, elapsed


# 5-point central stencils (offsets -2..2) of the derivatives of order 0..4, and divisors
_STENCIL = [(0, 0, 1, 0, 0), (1, -8, 0, 8, -1), (-1, 16, -30, 16, -1), (-1, 2, 0, -2, 1),
            (1, -4, 6, -4, 1)]
_DIVISOR = [1, 12, 12, 2, 1]


def kl_taylor_reference(psi, mean, jac, theta_star, cum, h_exp=10):
    """c1, c2 by definition, at the current mpmath precision: the Taylor coefficients of
    f(eta_hat) = KL(g_theta* || g_theta(eta_hat)), with theta(eta_hat) solved by Newton
    (mpmath.findroot) on the mean equations, taken by finite differences on a 5 x 5 grid of
    step h = 10**-h_exp (error O(h^2)), against the moments of the sample mean of T (the
    truth's cumulants ``cum(idx)``): c1 = f_ij k_ij / 2, c2 = f_ijk k_ijk / 6 +
    f_ijkl k_ij k_kl / 8. No inverse-function rule, no tensors of psi."""
    h = mpmath.mpf(10) ** -h_exp
    eta = mean(*theta_star)

    def kl(e1, e2):
        t1, t2 = mpmath.findroot(
            lambda x, y: [m - e for m, e in zip(mean(x, y), (e1, e2), strict=True)],
            theta_star, J=jac)
        return (psi(t1, t2) - psi(*theta_star) - eta[0] * (t1 - theta_star[0])
                - eta[1] * (t2 - theta_star[1]))

    grid = {(u, v): kl(eta[0] + u * h, eta[1] + v * h)
            for u in range(-2, 3) for v in range(-2, 3)}

    def deriv(idx):
        i, j = idx.count(0), idx.count(1)
        tot = mpmath.fsum(_STENCIL[i][u + 2] * _STENCIL[j][v + 2] * grid[u, v]
                          for u in range(-2, 3) for v in range(-2, 3))
        return tot / (_DIVISOR[i] * _DIVISOR[j] * h ** (i + j))

    rng = range(2)
    c1 = mpmath.fsum(deriv((i, j)) * cum((i, j)) for i in rng for j in rng) / 2
    c2 = (mpmath.fsum(deriv(ix) * cum(ix) for ix in itertools.product(rng, repeat=3)) / 6
          + mpmath.fsum(deriv((i, j, k, m)) * cum((i, j)) * cum((k, m))
                        for i, j, k, m in itertools.product(rng, repeat=4)) / 8)
    return c1, c2


def _beta_psi(t1, t2):
    return mpmath.loggamma(t1) + mpmath.loggamma(t2) - mpmath.loggamma(t1 + t2)


def _beta_mean(t1, t2):
    return (mpmath.digamma(t1) - mpmath.digamma(t1 + t2),
            mpmath.digamma(t2) - mpmath.digamma(t1 + t2))


def _beta_jac(t1, t2):
    s = mpmath.polygamma(1, t1 + t2)
    return [[mpmath.polygamma(1, t1) - s, -s], [-s, mpmath.polygamma(1, t2) - s]]


def beta_reference(a, b, dps=60, h_exp=10):
    """c1, c2 of the Beta family under a Beta(a, b) truth (kl_taylor_reference); the
    cumulants of T = (log X, log(1-X)) are polygammas, the derivatives of log B(a+s, b+r)."""
    with mpmath.workdps(dps):
        a, b = mpmath.mpf(a), mpmath.mpf(b)
        pg = mpmath.polygamma

        def cum(idx):
            m = len(idx) - 1
            return ((pg(m, a) if set(idx) == {0} else 0) + (pg(m, b) if set(idx) == {1} else 0)
                    - pg(m, a + b))

        return kl_taylor_reference(_beta_psi, _beta_mean, _beta_jac, (a, b), cum, h_exp)


def gamma_reference(a, b, dps=80, h_exp=14):
    """c1, c2 of the Gamma family under a Gamma(a, rate b) truth (kl_taylor_reference);
    the cumulants of T = (log X, X) are the derivatives at 0 of the cumulant generating
    function log E[X^s e^(tX)] = log Gamma(a+s) - log Gamma(a) - (a+s) log(b-t) + a log b."""
    with mpmath.workdps(dps):
        a, b = mpmath.mpf(a), mpmath.mpf(b)
        pg = mpmath.polygamma
        cums = {(0, 0): pg(1, a), (0, 1): 1 / b, (1, 1): a / b**2, (0, 0, 0): pg(2, a),
                (0, 0, 1): 0, (0, 1, 1): 1 / b**2, (1, 1, 1): 2 * a / b**3}
        return kl_taylor_reference(
            lambda t1, t2: mpmath.loggamma(t1) - t1 * mpmath.log(-t2),
            lambda t1, t2: (mpmath.digamma(t1) - mpmath.log(-t2), -t1 / t2),
            lambda t1, t2: [[pg(1, t1), -1 / t2], [-1 / t2, t1 / t2**2]],
            (a, -b), lambda idx: cums[tuple(sorted(idx))], h_exp)


def gamma_lognormal_reference(dps=80, h_exp=14):
    """c1, c2 of the Gamma family under a LogNormal(0, 1) truth (kl_taylor_reference): the
    moments of T = (log X, X) = (Y, e^Y), Y standard normal, from
    E[Y^a e^(kY)] = e^(k^2/2) E[(Z + k)^a] (Z standard normal), theta* by Newton on the
    moment equations."""
    with mpmath.workdps(dps):
        def raw(a, k):  # E[Y^a e^(kY)]
            gauss = [1, 0, 1, 0, 3]  # E[Z^j]
            return mpmath.exp(mpmath.mpf(k) ** 2 / 2) * mpmath.fsum(
                math.comb(a, j) * mpmath.mpf(k) ** (a - j) * gauss[j] for j in range(a + 1))

        mu = [raw(1, 0), raw(0, 1)]

        def cum(idx):  # E[prod (T_i - mu_i)], T_0 = Y, T_1 = e^Y, by expanding the product
            terms = {(0, 0): mpmath.mpf(1)}
            for i in idx:
                nxt: dict = {}
                for (a, k), c in terms.items():
                    step = (a + 1, k) if i == 0 else (a, k + 1)
                    nxt[step] = nxt.get(step, 0) + c
                    nxt[a, k] = nxt.get((a, k), 0) - c * mu[i]
                terms = nxt
            return mpmath.fsum(c * raw(a, k) for (a, k), c in terms.items())

        def mean(t1, t2):
            return (mpmath.digamma(t1) - mpmath.log(-t2), -t1 / t2)

        def jac(t1, t2):
            return [[mpmath.polygamma(1, t1), -1 / t2], [-1 / t2, t1 / t2**2]]

        theta = mpmath.findroot(lambda x, y: [g - e for g, e in zip(mean(x, y), mu,
                                                                    strict=True)],
                                (2, -1), J=jac)
        return kl_taylor_reference(lambda t1, t2: mpmath.loggamma(t1) - t1 * mpmath.log(-t2),
                                   mean, jac, (theta[0], theta[1]), cum, h_exp)


def beta_uniform_reference(lo, hi, dps=80, h_exp=14):
    """theta*, c1, c2 of the Beta family under a Uniform(lo, hi) truth: the moments of
    T = (log X, log(1-X)) by quadrature of the uniform density, theta* by Newton from the
    method-of-moments start, then kl_taylor_reference (central moments of order 2 and 3
    are the cumulants)."""
    with mpmath.workdps(dps):
        lo, hi = mpmath.mpf(lo), mpmath.mpf(hi)
        stat = (mpmath.log, lambda x: mpmath.log(1 - x))

        def expect(fn):
            return mpmath.quad(fn, [lo, hi]) / (hi - lo)

        mu = [expect(t) for t in stat]

        def cum(idx):
            return expect(lambda x: mpmath.fprod(stat[i](x) - mu[i] for i in idx))

        m, v = (lo + hi) / 2, (hi - lo) ** 2 / 12
        start = (m * (m * (1 - m) / v - 1), (1 - m) * (m * (1 - m) / v - 1))
        theta = mpmath.findroot(
            lambda x, y: [g - e for g, e in zip(_beta_mean(x, y), mu, strict=True)],
            start, J=_beta_jac, maxsteps=200)
        theta = (theta[0], theta[1])
        return (theta, *kl_taylor_reference(_beta_psi, _beta_mean, _beta_jac, theta, cum,
                                            h_exp))


def test_beta_numeric_truth_is_fast_and_matches_reference():
    # before: 6-7 s, almost all in sympy.N on cumulants written with Gauss' digamma
    # theorem (logs of nested radicals for digamma(3/10)) and in sympy.diff of the Beta
    # function's gamma products
    a, b = R(3, 10), 7
    t0 = time.perf_counter()
    risk = asymptotics.mle_risk("beta", truth=Beta("X", a, b))
    elapsed = time.perf_counter() - t0
    ref1, ref2 = beta_reference(mpmath.mpf(3) / 10, 7)
    with mpmath.workdps(DPS):
        assert abs(mpf(risk.c1) - 1) < mpmath.mpf(10) ** -45  # well specified: p / 2
        assert abs(ref1 - 1) < mpmath.mpf(10) ** -15
        assert abs(mpf(risk.c2) - ref2) < mpmath.mpf(10) ** -14 * abs(ref2)
        # the cumulants of T keep full precision: kappa_12 = -trigamma(a + b), exactly
        k12 = mpf(risk.cumulants.cov[0, 1])
        assert abs(k12 + mpmath.polygamma(1, mpmath.mpf(73) / 10)) < mpmath.mpf(10) ** -45
    assert elapsed < 5, elapsed


# ------------------------------------------------------------------ symbolic Gamma and Beta
# members, Uniform truth of the Beta model (`divkit derive risk --family beta` and
# `--truth "Uniform(1/5,1/2)"` hit the 60 s limit, `--family gamma` took 20 s)
def _symbolic_member(names):
    return {k: sympy.Symbol(k, positive=True) for k in names}


def test_gamma_symbolic_member_is_fast_and_matches_reference():
    # before: theta* stayed implicit (two digamma equations in theta1_star, theta2_star)
    # although a member of the model is its own projection, and c1 was not reduced to p/2
    params = _symbolic_member(("concentration", "rate"))
    a, b = params["concentration"], params["rate"]
    t0 = time.perf_counter()
    risk = asymptotics.mle_risk("gamma", truth=params)
    elapsed = time.perf_counter() - t0
    assert risk.theta_star == (a, -b) and risk.theta_star_equations is None
    assert risk.c1 == 1
    # the KL risk is invariant under rescaling x, so c2 does not depend on the rate
    assert risk.c2.free_symbols == {a}
    ref1, ref2 = gamma_reference(R(5, 2), 3)
    with mpmath.workdps(DPS):
        assert abs(ref1 - 1) < mpmath.mpf(10) ** -20
        assert abs(mpf(risk.c2.subs({a: R(5, 2), b: 3})) - ref2) < mpmath.mpf(10) ** -18 * ref2
    assert elapsed < 5, elapsed


def test_beta_symbolic_member_is_fast_and_matches_reference():
    params = _symbolic_member(("concentration1", "concentration0"))
    a, b = params["concentration1"], params["concentration0"]
    t0 = time.perf_counter()
    risk = asymptotics.mle_risk("beta", truth=params)
    elapsed = time.perf_counter() - t0
    assert risk.theta_star == (a, b) and risk.theta_star_equations is None
    assert risk.c1 == 1
    # x -> 1 - x swaps the two parameters and keeps the risk
    swapped = risk.c2.xreplace({a: b, b: a})
    at = {a: R(5, 2), b: R(3, 2)}
    ref1, ref2 = beta_reference(R(5, 2), R(3, 2), dps=80, h_exp=14)
    with mpmath.workdps(DPS):
        assert abs(mpf(risk.c2.subs(at)) - ref2) < mpmath.mpf(10) ** -18 * ref2
        assert abs(mpf(swapped.subs(at)) - ref2) < mpmath.mpf(10) ** -18 * ref2
    assert elapsed < 5, elapsed


def test_beta_uniform_truth_is_fast_and_matches_reference():
    # before: E[X^s (1-X)^r] over [1/5, 1/2] came from sympy.integrate as hypergeometric
    # functions whose derivatives stayed unevaluated (Subs(Derivative(...))), and the
    # contraction of those expressions ran for minutes
    t0 = time.perf_counter()
    risk = asymptotics.mle_risk("beta", truth=Uniform("U", R(1, 5), R(1, 2)))
    elapsed = time.perf_counter() - t0
    cum = risk.cumulants
    for v in (*cum.mean, *cum.cov, *sympy.flatten(cum.third.tolist())):
        assert v.is_number and not v.has(sympy.Derivative, sympy.Subs, sympy.hyper)
    theta, ref1, ref2 = beta_uniform_reference(R(1, 5), R(1, 2))
    with mpmath.workdps(DPS):
        for got, want in zip(risk.theta_star, theta, strict=True):
            assert abs(mpf(got) - want) < mpmath.mpf(10) ** -40 * want
        assert abs(mpf(risk.c1) - ref1) < mpmath.mpf(10) ** -30 * ref1
        assert abs(mpf(risk.c2) - ref2) < mpmath.mpf(10) ** -18 * ref2
    assert elapsed < 5, elapsed
