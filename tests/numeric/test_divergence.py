"""numeric.divergence on probability vectors: mpmath reference, zero mass, SciPy agreement."""

from __future__ import annotations

import mp_reference as ref
import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

import numeric
from numeric import tolerances as tol
from theory import fdiv

NAMES = fdiv.names()


def _cases(seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        p = rng.dirichlet(np.ones(9))
        q = rng.dirichlet(np.ones(9))
        out.append((p, q))
    p = rng.dirichlet(np.ones(9))
    out.append((p, p + 1e-9 * rng.standard_normal(9) * p))  # nearly equal, unnormalised
    p, q = rng.dirichlet(np.ones(9)), rng.dirichlet(np.ones(9))
    p[[0, 3]] = 0.0
    q[[3, 5]] = 0.0
    out.append((p, q))  # zero masses in P, in Q, and in both
    p = np.array([1e-300, 0.5, 0.5 - 1e-300, 5e-324])
    q = np.array([0.25, 1e-200, 0.75, 5e-324])
    out.append((p, q))  # tiny and subnormal entries
    return out


CASES = _cases(3)


@pytest.mark.parametrize("name", NAMES)
def test_against_mpmath_definition(name):
    fd = fdiv.get(name)
    p = np.array([c[0] for c in CASES[:4]])
    q = np.array([c[1] for c in CASES[:4]])
    got = numeric.divergence(fd, p, q)
    assert got.shape == (4,) and got.dtype == np.float64
    for i in range(4):
        want = ref.divergence(fd, ref._exact(p[i]), ref._exact(q[i]))
        err = abs(float(got[i]) - float(want))
        assert err <= 64 * tol.eps(np.float64) * _scale(fd, p[i], q[i]), (name, i, got[i], want)


def _terms(fd, p, q):
    f = sympy.lambdify(ref.u, fd.f, "mpmath")
    with mpmath.workdps(60):
        return [mpmath.mpf(b) * f(mpmath.mpf(a) / mpmath.mpf(b)) for a, b in zip(p, q, strict=True)
                if a > 0 and b > 0]


def _scale(fd, p, q):
    """Error scale of a float evaluation: the size of the terms plus the condition of
    D in its inputs, sum_i p_i |f'(r_i) - f'(1)| (1 + |log p_i| + |log q_i|) (the kernel
    works with log p - log q, each log rounded)."""
    df = sympy.lambdify(ref.u, sympy.diff(fd.f, ref.u), "mpmath")
    with mpmath.workdps(60):
        df1 = df(mpmath.mpf(1))
        cond = mpmath.fsum(
            mpmath.mpf(a) * abs(df(mpmath.mpf(a) / mpmath.mpf(b)) - df1)
            * (1 + abs(mpmath.log(a)) + abs(mpmath.log(b)))
            for a, b in zip(p, q, strict=True) if a > 0 and b > 0)
        return float(mpmath.fsum(abs(x) for x in _terms(fd, p, q)) + cond)


@pytest.mark.parametrize("name", NAMES)
def test_zero_mass_rules(name):
    fd = fdiv.get(name)
    for p, q in CASES[4:]:
        got = float(numeric.divergence(fd, p, q))
        want = ref.divergence(fd, ref._exact(p), ref._exact(q))
        if mpmath.isinf(want):
            assert got == np.inf, (name, got)
        else:
            assert np.isfinite(got)
            assert abs(got - float(want)) <= 1e-13 * max(1.0, abs(float(want))), (name, got, want)


def test_kl_inf_where_q_vanishes_and_js_stays_finite():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([1.0, 0.0, 0.0])
    assert numeric.divergence("kl", p, q) == np.inf
    assert np.isfinite(numeric.divergence("js", p, q))
    assert numeric.divergence("reverse_kl", q, p) == np.inf
    assert numeric.divergence("kl", np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0.0


def test_matches_scipy_rel_entr_including_zero_conventions():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(50), size=6)
    q = rng.dirichlet(np.ones(50), size=6)
    p[0, :5] = 0.0  # rel_entr(0, y) = 0
    q[1, 7] = 0.0  # rel_entr(x > 0, 0) = inf
    p[2, 9] = q[2, 9] = 0.0  # rel_entr(0, 0) = 0
    want = rel_entr(p, q).sum(axis=-1)
    got = numeric.divergence("kl", p, q)
    tol.assert_close(got, want, rtol=1e-13)


def test_matches_scipy_jensenshannon_squared():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(40), size=5)
    q = rng.dirichlet(np.ones(40), size=5)
    p[0, :3] = 0.0
    q[0, 2:6] = 0.0
    p[1] = 0.0
    p[1, 0] = 1.0
    q[1] = 0.0
    q[1, 1] = 1.0  # disjoint supports: JS = log 2
    # scipy normalises; feed normalised rows so both define the same quantity
    p /= p.sum(axis=-1, keepdims=True)
    q /= q.sum(axis=-1, keepdims=True)
    want = jensenshannon(p, q, axis=-1) ** 2
    got = numeric.divergence("js", p, q)
    tol.assert_close(got, want, rtol=1e-12)
    assert got[1] == pytest.approx(np.log(2), rel=1e-15)


def test_axis_broadcasting_and_dtypes():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(7), size=(3, 4)).astype(np.float32)
    q = rng.dirichlet(np.ones(7), size=(3, 4)).astype(np.float32)
    got = numeric.divergence("hellinger", p, q)
    assert got.dtype == np.float32 and got.shape == (3, 4)
    moved = numeric.divergence("hellinger", np.moveaxis(p, -1, 0), np.moveaxis(q, -1, 0), axis=0)
    tol.assert_close(moved, got, rtol=0.0)
    want = ((np.sqrt(p.astype(np.float64)) - np.sqrt(q.astype(np.float64))) ** 2).sum(-1)
    tol.assert_close(got, want.astype(np.float32), rtol=4 * tol.eps(np.float32))
    half = numeric.divergence("kl", p.astype(np.float16), q.astype(np.float16))
    assert half.dtype == np.float16


@pytest.mark.parametrize(
    ("p", "q", "message"),
    [
        ([0.5, -0.5], [0.5, 0.5], "p must be nonnegative"),
        ([0.5, 0.5], [np.nan, 0.5], "q must be finite"),
        ([0.5, 0.5], [0.2, 0.3, 0.5], "broadcastable"),
    ],
)
def test_invalid_input_names_the_argument(p, q, message):
    with pytest.raises(ValueError, match=message):
        numeric.divergence("kl", np.array(p), np.array(q))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=6),
       st.sampled_from(["kl", "js", "pearson", "neyman", "tv", "jeffreys"]))
@example([(0.0, 0.0), (1.0, 0.0)], "kl")
@example([(5e-324, 1.0), (1.0, 5e-324)], "js")
def test_property_never_nan_and_matches_reference(pairs, name):
    p = np.array([a for a, _ in pairs])
    q = np.array([b for _, b in pairs])
    fd = fdiv.get(name)
    got = float(numeric.divergence(fd, p, q))
    want = ref.divergence(fd, ref._exact(p), ref._exact(q))
    assert not np.isnan(got)
    if mpmath.isinf(want) or float(want) > np.finfo(np.float64).max:
        assert got == np.inf
    else:
        scale = _scale(fd, p, q) + abs(float(want))
        assert abs(got - float(want)) <= 64 * tol.eps(np.float64) * max(scale, 1e-300)
