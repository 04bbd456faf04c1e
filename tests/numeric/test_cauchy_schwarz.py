"""Cauchy–Schwarz divergence: closed forms vs 50-digit quadrature, estimators vs closed forms."""

import mpmath
import numpy as np
import pytest
import sympy

import numeric
from numeric.tolerances import assert_close
from theory import cauchy_schwarz as tcs

DPS = 50


def _mp_mixture(w, m, v):
    with mpmath.workdps(DPS):  # exact decimal inputs, as sympy.nsimplify sees them
        w, m, v = ([mpmath.mpf(str(t)) for t in arr] for arr in (w, m, v))
        c = [wi / mpmath.sqrt(2 * mpmath.pi * vi) for wi, vi in zip(w, v, strict=True)]
        h = [1 / (2 * vi) for vi in v]

    def pdf(x):
        return mpmath.fsum(ci * mpmath.exp(-hi * (x - mi) ** 2)
                           for ci, hi, mi in zip(c, h, m, strict=True))
    return pdf


def _quad(f):
    # the densities used here have variances <= 4 and means in [-3, 3]: beyond +-60 the
    # integrands are below e^-300, far under the 50-digit target; breakpoints near the means
    return mpmath.quad(f, [-60, -10, -3, -1, 0, 1, 2, 3, 10, 60])


def _mp_cs_1d(p, q):
    with mpmath.workdps(DPS):
        pp = _quad(lambda x: p(x) ** 2)
        qq = _quad(lambda x: q(x) ** 2)
        pq = _quad(lambda x: p(x) * q(x))
        return mpmath.log(pp) + mpmath.log(qq) - 2 * mpmath.log(pq)


def test_log_overlap_element_vs_quadrature():
    f = tcs.log_overlap_element()
    for m1, v1, m2, v2 in ((0.3, 0.5, -1.2, 2.0),):
        with mpmath.workdps(DPS):
            p, q = _mp_mixture([1], [m1], [v1]), _mp_mixture([1], [m2], [v2])
            val = _quad(lambda x: p(x) * q(x))  # noqa: B023
            sym = f.subs({tcs.delta: sympy.Rational(str(m1)) - sympy.Rational(str(m2)),
                          tcs.s: sympy.Rational(str(v1)) + sympy.Rational(str(v2))})
            assert abs(sympy.N(sym, DPS) - sympy.Float(mpmath.log(val), DPS)) < 1e-30


def test_symbolic_gaussian_closed_form():
    m1, m2 = sympy.symbols("m1 m2", real=True)
    v1, v2 = sympy.symbols("v1 v2", positive=True)
    g = tcs.gaussian(m1, v1, m2, v2)
    assert sympy.simplify(g - tcs.mixture([1], [m1], [v1], [1], [m2], [v2])) == 0
    assert g.subs({m2: m1, v2: v1}).simplify() == 0
    # equal variances: D = (m1 - m2)^2 / (2 v)
    assert sympy.simplify(g.subs(v2, v1) - (m1 - m2) ** 2 / (2 * v1)) == 0


def _sym_mixture(case):
    return tcs.mixture(*([sympy.nsimplify(v) for v in arr] for arr in case))


@pytest.mark.parametrize("case", [
    ([1.0], [0.0], [1.0], [1.0], [1.5], [0.3]),
    pytest.param(([0.3, 0.7], [-1.0, 2.0], [0.5, 1.5], [0.6, 0.4], [0.0, 3.0], [1.0, 2.0]),
                 marks=pytest.mark.slow),
])
def test_mixtures_1d_vs_quadrature(case):
    ref = _mp_cs_1d(_mp_mixture(*case[:3]), _mp_mixture(*case[3:]))
    got = numeric.cs_divergence_gaussian_mixtures(*case)
    assert_close(got, np.float64(float(ref)), rtol=1e-12)
    with mpmath.workdps(DPS):
        assert abs(sympy.N(_sym_mixture(case), DPS) - sympy.Float(ref, DPS)) < 1e-30


def test_far_apart_components_do_not_underflow():
    """Components 60 standard deviations apart: the naive sums underflow, log-sum-exp does not."""
    case = ([0.5, 0.5], [-300.0, 300.0], [1.0, 1.0], [1.0], [0.0], [4.0])
    got = numeric.cs_divergence_gaussian_mixtures(*case)
    ref = sympy.N(_sym_mixture(case), DPS)
    assert np.isfinite(got) and got > 1e4
    assert_close(got, np.float64(float(ref)), rtol=1e-12)


def test_full_covariance_vs_simultaneous_diagonalisation():
    """D_CS is affine invariant and additive over independent coordinates: whiten p, rotate to
    diagonalise q, and sum 1-D quadratures."""
    mp_, sp_ = np.array([0.2, -0.4]), np.array([[1.0, 0.6], [0.6, 2.0]])
    mq_, sq_ = np.array([1.0, 0.5]), np.array([[0.5, -0.2], [-0.2, 0.8]])
    got = numeric.cs_divergence_gaussian_mixtures([1.0], mp_[None], sp_[None], [1.0], mq_[None],
                                                   sq_[None])
    with mpmath.workdps(DPS):
        lp = mpmath.cholesky(mpmath.matrix(sp_.tolist()))
        li = lp ** -1
        sq_w = li * mpmath.matrix(sq_.tolist()) * li.T
        ev, vecs = mpmath.eigsy(sq_w)
        dm = vecs.T * li * (mpmath.matrix(mq_.tolist()) - mpmath.matrix(mp_.tolist()))
        # 1-D Gaussian closed form (checked against quadrature above):
        # D = d^2/(1 + v) + log((1 + v) / (2 sqrt(v))) between N(0, 1) and N(d, v)
        total = mpmath.fsum(dm[k] ** 2 / (1 + ev[k]) + mpmath.log((1 + ev[k]) / (2 * mpmath.sqrt(ev[k])))
                            for k in range(2))
    assert_close(got, np.float64(float(total)), rtol=1e-12)
    sym = tcs.gaussian(sympy.Matrix(mp_.tolist()), sympy.Matrix(sp_.tolist()),
                       sympy.Matrix(mq_.tolist()), sympy.Matrix(sq_.tolist()))
    assert abs(float(sym) - float(total)) < 1e-13


def _fitted_slope(estimate, target, sizes, reps, seed):
    rng = np.random.default_rng(seed)
    errs = [np.mean([abs(estimate(rng, n) - target) for _ in range(reps)]) for n in sizes]
    return np.polyfit(np.log(sizes), np.log(errs), 1)[0], errs


@pytest.mark.slow
def test_parzen_estimator_converges_to_smoothed_closed_form():
    sigma = 0.5
    target = float(numeric.cs_divergence_gaussian_mixtures(
        [1.0], [0.0], [1.0 + sigma**2 / 2], [1.0], [1.0], [2.25 + sigma**2 / 2]))
    exact = float(numeric.cs_divergence_gaussian_mixtures([1.0], [0.0], [1.0], [1.0], [1.0], [2.25]))
    assert target < exact                                   # smoothing shrinks the divergence

    def est(rng, n):
        return numeric.cs_divergence_samples(rng.normal(size=n), 1.0 + 1.5 * rng.normal(size=n),
                                             bandwidth=sigma)
    slope, errs = _fitted_slope(est, target, [100, 400, 1600], 8, 1)
    assert -0.8 < slope < -0.3, (slope, errs)              # O(n^-1/2) fluctuations
    assert errs[-1] < 0.03


@pytest.mark.slow
def test_cs_qmi_converges_to_gaussian_closed_form():
    rho, sigma = 0.6, 0.7
    v = 1.0 + sigma**2 / 2
    cov = np.array([[v, rho], [rho, v]])
    target = float(numeric.cs_divergence_gaussian_mixtures(
        [1.0], [[0.0, 0.0]], cov[None], [1.0], [[0.0, 0.0]], [[v, v]]))

    def est(rng, n):
        z = rng.normal(size=(n, 2))
        x, y = z[:, 0], rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
        return numeric.cs_qmi(x, y, bandwidth=sigma)
    slope, errs = _fitted_slope(est, target, [100, 400, 1600], 10, 2)
    assert -0.8 < slope < -0.3, (slope, errs)
    assert errs[-1] < 0.02
    rng = np.random.default_rng(3)
    assert numeric.cs_qmi(rng.normal(size=500), rng.normal(size=500), bandwidth=sigma) >= 0.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="weights_p"):
        numeric.cs_divergence_gaussian_mixtures([0.5, 0.6], [0, 1], [1, 1], [1.0], [0], [1])
    with pytest.raises(ValueError, match="covs_q"):
        numeric.cs_divergence_gaussian_mixtures([1.0], [0], [1], [1.0], [0], [-1.0])
    with pytest.raises(ValueError, match="positive definite"):
        numeric.cs_divergence_gaussian_mixtures([1.0], [[0, 0]], [[[1, 2], [2, 1]]], [1.0],
                                                [[0, 0]], [[[1, 2], [2, 1]]])
    with pytest.raises(ValueError, match="same dimension"):
        numeric.cs_divergence_samples(np.zeros((5, 2)), np.zeros((5, 3)), bandwidth=1.0)
    with pytest.raises(ValueError, match="bandwidth"):
        numeric.cs_divergence_samples(np.zeros(5), np.zeros(5), bandwidth=0.0)
    with pytest.raises(ValueError, match="x must be finite"):
        numeric.cs_qmi(np.array([0.0, np.nan]), np.zeros(2), bandwidth=1.0)
    with pytest.raises(ValueError, match="paired"):
        numeric.cs_qmi(np.zeros(4), np.zeros(5), bandwidth=1.0)
