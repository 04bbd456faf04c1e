"""Alignment maps: f-DPO loss (vs TRL's hand-derived maps) and the KKT policy from reward."""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import sympy
from scipy.special import log_softmax, logsumexp

import numeric
from numeric import tolerances as tol
from theory import fdiv, u


def _pairs(seed, n=64):
    rng = np.random.default_rng(seed)
    lw, ll = rng.uniform(-60, -5, n), rng.uniform(-60, -5, n)
    rw, rl = lw + rng.normal(0, 2, n), ll + rng.normal(0, 2, n)
    return lw, ll, rw, rl


def _logsigmoid(x):
    return -np.logaddexp(0.0, -x)


# TRL DPOTrainer / alecwangcq f-DPO maps (references/peers.md §2, papers.md §3), in terms of
# the log-ratios lw = log pi/pi_ref (chosen), ll (rejected). Paper names -> catalog names.
def trl_reverse_kl(lw, ll, beta):  # paper "reverse KL" = standard DPO = catalog kl
    return -_logsigmoid(beta * (lw - ll))


def trl_forward_kl(lw, ll, beta):  # paper "forward KL" = catalog reverse_kl
    return -_logsigmoid(beta * (-np.exp(-lw) + np.exp(-ll)))


def trl_js(lw, ll, beta):  # paper JS f = u log u - (u+1) log((u+1)/2) = 2 x catalog js
    softplus = lambda x: np.logaddexp(0.0, x)  # noqa: E731
    return -_logsigmoid(beta * ((lw - ll) - (softplus(lw) - softplus(ll))))


def trl_alpha(lw, ll, beta, alpha):
    return -_logsigmoid(beta * (np.exp(-alpha * ll) - np.exp(-alpha * lw)) / alpha)


@pytest.mark.parametrize(
    ("name", "params", "trl"),
    [
        ("kl", {}, lambda lw, ll, b: trl_reverse_kl(lw, ll, b)),
        ("reverse_kl", {}, lambda lw, ll, b: trl_forward_kl(lw, ll, b)),
        # catalog js has f' = (1/2) log(2u/(1+u)): beta here is twice TRL's
        ("js", {}, lambda lw, ll, b: trl_js(lw, ll, b / 2)),
        ("alpha", {"alpha": sympy.Rational(1, 2)}, lambda lw, ll, b: trl_alpha(lw, ll, b, 0.5)),
        ("alpha", {"alpha": sympy.Rational(3, 10)}, lambda lw, ll, b: trl_alpha(lw, ll, b, 0.3)),
    ],
)
@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_fdpo_matches_trl_hand_derived_maps(name, params, trl, beta):
    lw, ll, rw, rl = _pairs(1)
    got = numeric.fdpo_loss(fdiv.get(name, **params), lw, ll, rw, rl, beta=beta)
    want = trl(lw - rw, ll - rl, beta)
    tol.assert_close(got, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", ["kl", "reverse_kl", "js", "alpha", "hellinger", "jeffreys"])
def test_fdpo_gradient_matches_mpmath_derivative(name):
    fd = fdiv.get(name)
    df = sympy.lambdify(u, fd.df, "mpmath")
    lw, ll, rw, rl = (x[:6] for x in _pairs(2))
    beta = 0.7
    loss, (gw, gl) = numeric.fdpo_loss(fd, lw, ll, rw, rl, beta=beta, return_grad=True)
    for i in range(6):
        with mpmath.workdps(50):
            b = mpmath.mpf(beta)
            aw, al = mpmath.mpf(rw[i]), mpmath.mpf(rl[i])

            def lossmp(x, y, b=b, aw=aw, al=al):
                z = b * (df(mpmath.exp(x - aw)) - df(mpmath.exp(y - al)))
                return mpmath.log1p(mpmath.exp(-z))

            x0, y0 = mpmath.mpf(lw[i]), mpmath.mpf(ll[i])
            want_l = lossmp(x0, y0)
            want_w = mpmath.diff(lambda x, y0=y0: lossmp(x, y0), x0)
            want_l2 = mpmath.diff(lambda y, x0=x0: lossmp(x0, y), y0)
        assert abs(loss[i] - float(want_l)) <= 1e-13 * max(1.0, abs(float(want_l)))
        assert abs(gw[i] - float(want_w)) <= 1e-12 * max(abs(float(want_w)), 1e-300)
        assert abs(gl[i] - float(want_l2)) <= 1e-12 * max(abs(float(want_l2)), 1e-300)


def test_fdpo_validates_and_keeps_dtype():
    x = np.zeros(3, dtype=np.float32)
    out = numeric.fdpo_loss("kl", x, x, x, x, beta=0.1)
    assert out.dtype == np.float32 and out.shape == (3,)
    tol.assert_close(out, np.full(3, np.log(2.0), dtype=np.float32), rtol=1e-7)
    with pytest.raises(ValueError, match="beta"):
        numeric.fdpo_loss("kl", x, x, x, x, beta=0.0)
    with pytest.raises(ValueError, match="broadcast"):
        numeric.fdpo_loss("kl", x, np.zeros(4), x, x, beta=0.1)


# ------------------------------------------------------------------ policy from reward
STRICT = [n for n in fdiv.names() if n != "tv"]


@pytest.mark.parametrize("name", STRICT)
@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_policy_normalised_and_reward_map_recovers_reward(name, beta):
    fd = fdiv.get(name)
    rng = np.random.default_rng(5)
    r = rng.normal(0, 1, (4, 7))
    lref = log_softmax(rng.normal(0, 1.5, (4, 7)), axis=-1)
    lref[2, 3] = -np.inf  # an action outside the reference support
    res = numeric.policy_from_reward(fd, r, lref, beta=beta)
    lref = lref - logsumexp(lref, axis=-1, keepdims=True)  # the reference is normalised
    assert res.converged.all(), res
    pi = res.policy
    assert pi.shape == r.shape and pi.dtype == np.float64
    assert (pi >= 0).all() and pi[2, 3] == 0.0
    np.testing.assert_array_less(np.abs(pi.sum(axis=-1) - 1.0), 1e-12)
    df = sympy.lambdify(u, fd.df, "mpmath")
    df0 = fd.df_at_zero
    for i in range(4):
        consts = []
        for j in range(7):
            if not np.isfinite(lref[i, j]):
                continue
            if pi[i, j] == 0.0:
                # complementary slackness: (r - lambda)/beta <= f'(0+)
                assert df0 != -sympy.oo
                assert (r[i, j] - res.normalizer[i]) / beta <= float(df0) + 1e-9
                continue
            with mpmath.workdps(40):
                ratio = mpmath.mpf(pi[i, j]) / mpmath.exp(mpmath.mpf(lref[i, j]))
                consts.append(float(mpmath.mpf(r[i, j]) - beta * df(ratio)))
        consts = np.array(consts)
        # r = beta f'(pi/pi_ref) + lambda: the same constant lambda on every action
        assert np.ptp(consts) <= 1e-9 * (1.0 + np.abs(r[i]).max()), (name, consts)
        assert abs(consts.mean() - res.normalizer[i]) <= 1e-8 * (1.0 + abs(res.normalizer[i]))


def test_kl_policy_is_the_tilted_softmax():
    rng = np.random.default_rng(8)
    r = rng.normal(0, 3, (5, 11))
    lref = log_softmax(rng.normal(0, 1, (5, 11)), axis=-1)
    beta = 0.3
    res = numeric.policy_from_reward("kl", r, lref, beta=beta)
    want = np.exp(lref + r / beta - logsumexp(lref + r / beta, axis=-1, keepdims=True))
    tol.assert_close(res.policy, want, rtol=1e-12, atol=1e-300)


def test_policy_axis_and_dtype():
    rng = np.random.default_rng(9)
    r = rng.normal(size=(6, 3)).astype(np.float32)
    lref = np.log(np.full((6, 3), 1 / 6, dtype=np.float32))
    res = numeric.policy_from_reward("js", r, lref, beta=0.5, axis=0)
    assert res.policy.dtype == np.float32 and res.policy.shape == (6, 3)
    assert res.normalizer.shape == (3,)
    np.testing.assert_array_less(np.abs(res.policy.sum(axis=0) - 1.0), 1e-6)


def test_non_converged_rows_are_reported_not_returned_as_garbage():
    rng = np.random.default_rng(10)
    r = rng.normal(0, 5, (3, 9))
    lref = log_softmax(rng.normal(size=(3, 9)), axis=-1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = numeric.policy_from_reward("reverse_kl", r, lref, beta=0.05, max_iter=1)
    assert not res.converged.all()
    assert np.isnan(res.policy[~res.converged]).all()
    assert any("did not converge" in str(w.message) for w in caught)


def test_policy_rejects_non_strictly_convex_and_bad_input():
    r = np.zeros((1, 3))
    lref = np.log(np.full((1, 3), 1 / 3))
    with pytest.raises(ValueError, match="strictly convex"):
        numeric.policy_from_reward("tv", r, lref, beta=1.0)
    with pytest.raises(ValueError, match="beta"):
        numeric.policy_from_reward("kl", r, lref, beta=-1.0)
    with pytest.raises(ValueError, match="same shape"):
        numeric.policy_from_reward("kl", r, lref[:, :2], beta=1.0)
    with pytest.raises(ValueError, match="no support"):
        numeric.policy_from_reward("kl", r, np.full((1, 3), -np.inf), beta=1.0)
