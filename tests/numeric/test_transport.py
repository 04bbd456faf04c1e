"""Entropic OT and the Sinkhorn divergence against exact OT (linprog), POT, and calculus."""

import math
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.optimize import linprog

import numeric
from numeric.tolerances import assert_close

ot = pytest.importorskip("ot")


def _problem(n, m, d=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(m, d)) + 0.7
    a = rng.random(n) + 0.1
    b = rng.random(m) + 0.1
    return a / a.sum(), x, b / b.sum(), y


def _exact(a, b, cost):
    n, m = cost.shape
    eq = np.vstack([np.kron(np.eye(n), np.ones(m)), np.kron(np.ones(n), np.eye(m))])
    res = linprog(cost.ravel(), A_eq=eq, b_eq=np.r_[a, b], bounds=(0, None), method="highs")
    assert res.status == 0
    return res.fun


def _entropy(w):
    return float(-(w * np.log(w)).sum())


# ----------------------------------------------------------------------------- vs POT

@pytest.mark.parametrize("eps", [1.0, 0.1])
def test_plan_and_cost_match_pot_sinkhorn_log(eps):
    a, x, b, y = _problem(15, 20)
    cost = ot.dist(x, y)
    res = numeric.sinkhorn(a, b, cost, epsilon=eps, tol=1e-13, return_plan=True)
    plan = ot.bregman.sinkhorn_log(a, b, cost, eps, stopThr=1e-13, numItermax=20000)
    assert bool(res.converged)
    assert_close(res.plan, plan, rtol=1e-9, atol=1e-15)
    assert_close(res.transport_cost, np.float64((plan * cost).sum()), rtol=1e-10)
    # value = <pi, C> + eps KL(pi || a b^T), from POT's plan
    kl = float((plan * np.log(plan / np.outer(a, b))).sum())
    assert_close(res.value, float((plan * cost).sum()) + eps * kl, rtol=1e-10)


def test_batched_and_point_clouds_agree_with_pot():
    a, x, b, y = _problem(20, 25, seed=1)
    a2, x2, b2, y2 = _problem(20, 25, seed=2)
    costs = np.stack([ot.dist(x, y), ot.dist(x2, y2)])
    res = numeric.sinkhorn(np.stack([a, a2]), np.stack([b, b2]), costs, epsilon=0.3, tol=1e-13)
    pts = numeric.sinkhorn_points(np.stack([a, a2]), np.stack([x, x2]), np.stack([b, b2]),
                                  np.stack([y, y2]), epsilon=0.3, tol=1e-13)
    want = [ot.sinkhorn2(aa, bb, c, 0.3, method="sinkhorn_log", stopThr=1e-14, numItermax=10**5)
            for aa, bb, c in ((a, b, costs[0]), (a2, b2, costs[1]))]
    assert_close(res.transport_cost, np.array(want), rtol=1e-10)
    assert_close(pts.transport_cost, np.array(want), rtol=1e-10)
    assert_close(pts.value, res.value, rtol=1e-11)
    assert res.marginal_error.shape == (2,) and bool(res.converged.all())


def test_power_one_matches_pot_euclidean():
    a, x, b, y = _problem(25, 20, seed=3)
    cost = ot.dist(x, y, metric="euclidean")
    pts = numeric.sinkhorn_points(a, x, b, y, epsilon=0.2, power=1, tol=1e-13)
    want = ot.sinkhorn2(a, b, cost, 0.2, method="sinkhorn_log", stopThr=1e-14, numItermax=10**5)
    assert_close(pts.transport_cost, np.float64(want), rtol=1e-10)


# ----------------------------------------------------------------------------- vs exact OT

def test_sandwich_against_linprog():
    """W <= OT_eps <= W + eps min(H(a), H(b)) (KL(pi||a b^T) is a mutual information)."""
    a, x, b, y = _problem(8, 9, seed=4)
    cost = ot.dist(x, y)
    w = _exact(a, b, cost)
    for eps in (1.0, 0.1, 0.01):
        r = numeric.sinkhorn(a, b, cost, epsilon=eps, tol=1e-11, scaling=0.5, max_iter=10**5)
        assert bool(r.converged)
        v = float(r.value)
        assert w - 1e-9 <= float(r.transport_cost) <= v + 1e-9
        assert v <= w + eps * min(_entropy(a), _entropy(b)) + 1e-9


@pytest.mark.slow
def test_gap_rate_eps_log_one_over_eps():
    """Gap OT_eps - W ~ (d/2) eps log(1/eps) + c eps for measures that discretise densities.

    Quantile grids of N(0, 1) and N(0.5, 0.7^2), n = 80, d = 1: the fitted slope of
    gap/eps against log(1/eps) must be d/2 = 1/2 (within 0.15), and the gap must be
    below eps log(n) (the discrete bound) everywhere.
    """
    n = 80
    u = (np.arange(n) + 0.5) / n
    x, y = stats.norm.ppf(u), 0.7 * stats.norm.ppf(u) + 0.5
    w = np.full(n, 1.0 / n)
    cost = (x[:, None] - y[None, :]) ** 2
    exact = _exact(w, w, cost)
    eps = np.logspace(-1.4, -0.5, 4)
    gaps = []
    for e in eps:
        r = numeric.sinkhorn(w, w, cost, epsilon=e, tol=1e-8, max_iter=20000)
        assert bool(r.converged)
        gaps.append(float(r.value) - exact)
    gaps = np.array(gaps)
    assert (gaps > 0).all() and (gaps <= eps * math.log(n)).all()
    slope = np.polyfit(np.log(1 / eps), gaps / eps, 1)[0]
    assert abs(slope - 0.5) < 0.15, slope


@pytest.mark.slow
def test_small_epsilon_is_stable():
    """eps = 1e-4 of the cost scale: no overflow, converges, transport cost within eps log n of W."""
    a, x, b, y = _problem(10, 10, seed=5)
    cost = ot.dist(x, y)
    eps = 1e-4 * cost.max()
    r = numeric.sinkhorn(a, b, cost, epsilon=eps, tol=1e-8, scaling=0.5, max_iter=50000)
    assert bool(r.converged) and np.isfinite(r.f).all() and np.isfinite(r.g).all()
    w = _exact(a, b, cost)
    assert w - 1e-9 <= float(r.transport_cost) <= w + eps * math.log(10) + 1e-7
    pts = numeric.sinkhorn_points(a, x, b, y, epsilon=eps, tol=1e-8, scaling=0.5, max_iter=50000)
    assert_close(pts.value, r.value, rtol=1e-8)


# ----------------------------------------------------------------------------- divergence

def test_divergence_zero_on_the_diagonal_and_nonnegative():
    rng = np.random.default_rng(6)
    grid = np.linspace(0.0, 1.0, 15)
    for power in (1, 2):
        cost = np.abs(grid[:, None] - grid[None, :]) ** power
        for _ in range(3):
            a, b = rng.random(15), rng.random(15)
            a, b = a / a.sum(), b / b.sum()
            for eps in (1.0, 0.05):
                assert float(numeric.sinkhorn_divergence(a, a, cost, epsilon=eps)) == 0.0
                assert float(numeric.sinkhorn_divergence(a, b, cost, epsilon=eps, tol=1e-12)) > 0
        a, x, b, y = _problem(12, 15, seed=int(rng.integers(100)))
        assert float(numeric.sinkhorn_divergence_points(a, x, a, x, epsilon=0.1,
                                                        power=power)) == 0.0
        assert float(numeric.sinkhorn_divergence_points(a, x, b, y, epsilon=0.1, power=power,
                                                        tol=1e-12)) > 0


def test_divergence_tends_to_wasserstein():
    a, x, b, y = _problem(12, 12, seed=7)
    cost = ot.dist(x, y)
    w = _exact(a, b, cost)
    prev = None
    for eps in (0.5, 0.1, 0.02):
        s = float(numeric.sinkhorn_divergence_points(a, x, b, y, epsilon=eps, tol=1e-10,
                                                     scaling=0.5, max_iter=10**5))
        if prev is not None:
            assert abs(s - w) < abs(prev - w)
        prev = s
    assert abs(prev - w) < 0.02 * w


# ----------------------------------------------------------------------------- gradients

def _directional(fn, v, h=1e-6):
    return (fn(h) - fn(-h)) / (2 * h)


def test_weight_gradients_central_differences():
    a, x, b, y = _problem(10, 12, seed=8)
    cost = ot.dist(x, y)
    rng = np.random.default_rng(9)
    va = rng.normal(size=10)
    va -= va.mean()                                         # stay on the simplex
    res = numeric.sinkhorn(a, b, cost, epsilon=0.2, tol=1e-14)
    num = _directional(lambda t: float(numeric.sinkhorn(a + t * va, b, cost, epsilon=0.2,
                                                        tol=1e-14).value), va)
    assert_close(np.float64(va @ res.f), np.float64(num), rtol=1e-6)
    grid = np.linspace(0, 1, 10)
    c2 = (grid[:, None] - grid[None, :]) ** 2
    h1, h2 = rng.random(10) + 0.1, rng.random(10) + 0.1
    h1, h2 = h1 / h1.sum(), h2 / h2.sum()
    _, (ga, gb) = numeric.sinkhorn_divergence(h1, h2, c2, epsilon=0.05, tol=1e-14,
                                              return_grad=True)
    num_a = _directional(lambda t: float(numeric.sinkhorn_divergence(
        h1 + t * va, h2, c2, epsilon=0.05, tol=1e-14)), va)
    num_b = _directional(lambda t: float(numeric.sinkhorn_divergence(
        h1, h2 + t * va, c2, epsilon=0.05, tol=1e-14)), va)
    assert_close(np.float64(va @ ga), np.float64(num_a), rtol=1e-5)
    assert_close(np.float64(va @ gb), np.float64(num_b), rtol=1e-5)


@pytest.mark.parametrize("power", [1, 2])
def test_position_gradients_central_differences(power):
    a, x, b, y = _problem(8, 9, seed=10)
    kw = dict(epsilon=0.3, power=power, tol=1e-14)
    _, (ga, gx, gb, gy) = numeric.sinkhorn_divergence_points(a, x, b, y, return_grad=True, **kw)
    r = numeric.sinkhorn_points(a, x, b, y, return_grad=True, **kw)
    h = 1e-6
    for i, k in ((0, 0), (3, 1), (7, 0)):
        e = np.zeros_like(x)
        e[i, k] = h
        num_s = (float(numeric.sinkhorn_divergence_points(a, x + e, b, y, **kw))
                 - float(numeric.sinkhorn_divergence_points(a, x - e, b, y, **kw))) / (2 * h)
        num_ot = (float(numeric.sinkhorn_points(a, x + e, b, y, **kw).value)
                  - float(numeric.sinkhorn_points(a, x - e, b, y, **kw).value)) / (2 * h)
        assert_close(np.float64(gx[i, k]), np.float64(num_s), rtol=1e-5, atol=1e-8)
        assert_close(np.float64(r.grad_x[i, k]), np.float64(num_ot), rtol=1e-5, atol=1e-8)
    ey = np.zeros_like(y)
    ey[2, 1] = h
    num_y = (float(numeric.sinkhorn_divergence_points(a, x, b, y + ey, **kw))
             - float(numeric.sinkhorn_divergence_points(a, x, b, y - ey, **kw))) / (2 * h)
    assert_close(np.float64(gy[2, 1]), np.float64(num_y), rtol=1e-5, atol=1e-8)


# ----------------------------------------------------------------------------- memory

def test_point_clouds_never_hold_an_n_by_m_matrix():
    rng = np.random.default_rng(11)
    n = m = 2000
    x, y = rng.random((n, 2)), rng.random((m, 2))
    w = np.full(n, 1.0 / n)
    tracemalloc.start()
    numeric.sinkhorn_points(w, x, w, y, epsilon=0.1, max_iter=1, return_grad=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 6 * 2**20, peak                          # the n×m matrix would be 31 MiB


# ----------------------------------------------------------------------------- bad input

def test_bad_input_is_refused():
    a, x, b, y = _problem(4, 5, seed=12)
    cost = ot.dist(x, y)
    with pytest.raises(ValueError, match="a must be nonnegative"):
        numeric.sinkhorn(a * [1, -1, 1, 1], b, cost, epsilon=0.1)
    with pytest.raises(ValueError, match="b must sum to 1"):
        numeric.sinkhorn(a, 2 * b, cost, epsilon=0.1)
    with pytest.raises(ValueError, match="a must be finite"):
        numeric.sinkhorn(a * np.array([1, np.nan, 1, 1]), b, cost, epsilon=0.1)
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="epsilon"):
            numeric.sinkhorn(a, b, cost, epsilon=bad)
    c = cost.copy()
    c[1, 2] = np.nan
    with pytest.raises(ValueError, match="cost must be finite"):
        numeric.sinkhorn(a, b, c, epsilon=0.1)
    with pytest.raises(ValueError, match="b has 5 weights"):
        numeric.sinkhorn(a, b, cost[:, :4], epsilon=0.1)
    with pytest.raises(ValueError, match="same dimension"):
        numeric.sinkhorn_points(a, x, b, y[:, :1], epsilon=0.1)
    with pytest.raises(ValueError, match="power"):
        numeric.sinkhorn_points(a, x, b, y, epsilon=0.1, power=3)
    with pytest.raises(ValueError, match="square"):
        numeric.sinkhorn_divergence(a, b, cost, epsilon=0.1)
    with pytest.raises(ValueError, match="batch sizes"):
        numeric.sinkhorn(np.stack([a, a]), np.stack([b, b, b]), cost, epsilon=0.1)
    with pytest.raises(TypeError, match="cost"):
        numeric.sinkhorn(a, b, cost.astype(bool), epsilon=0.1)


def test_zero_weights_are_points_without_mass():
    a, x, b, y = _problem(6, 7, seed=13)
    a0 = np.r_[a, 0.0]
    x0 = np.vstack([x, [[50.0, -50.0]]])                  # a far point with no mass
    full = numeric.sinkhorn_points(a0, x0, b, y, epsilon=0.1, tol=1e-12)
    ref = numeric.sinkhorn_points(a, x, b, y, epsilon=0.1, tol=1e-12)
    assert_close(full.value, ref.value, rtol=1e-11)
    assert np.isfinite(full.f).all()
    dense = numeric.sinkhorn(a0, b, ot.dist(x0, y), epsilon=0.1, tol=1e-12)
    assert_close(dense.value, ref.value, rtol=1e-11)


# ----------------------------------------------------------------------------- nearly equal measures

def _mp_ot_eps(a, x, b, y, eps, dps=50):
    """OT_eps(a, b) for the cost |x - y|^2 at ``dps`` digits (+20 guard digits): damped Newton on
    the dual (f, g) with g_m = 0 fixed, from f = g = 0 with eps halved from the largest cost.

    An algorithm unrelated to the code under test (no Sinkhorn), on the exact binary inputs.
    """
    import mpmath as mp

    with mp.workdps(dps + 20):
        n, m = len(a), len(b)
        A = [mp.mpf(float(t)) for t in a]
        B = [mp.mpf(float(t)) for t in b]
        C = [[mp.fsum((mp.mpf(float(xi[k])) - mp.mpf(float(yj[k]))) ** 2 for k in range(len(xi)))
              for yj in y] for xi in x]
        f, g = [mp.mpf(0)] * n, [mp.mpf(0)] * m
        target = mp.mpf(float(eps))
        e = max(max(max(row) for row in C), target)

        def dual(f, g, e):
            return (mp.fsum(A[i] * f[i] for i in range(n)) + mp.fsum(B[j] * g[j] for j in range(m))
                    - e * (mp.fsum(A[i] * B[j] * mp.exp((f[i] + g[j] - C[i][j]) / e)
                                   for i in range(n) for j in range(m)) - 1))

        while True:
            for _ in range(200):
                P = [[A[i] * B[j] * mp.exp((f[i] + g[j] - C[i][j]) / e) for j in range(m)]
                     for i in range(n)]
                r = [mp.fsum(P[i]) for i in range(n)]
                c = [mp.fsum(P[i][j] for i in range(n)) for j in range(m)]
                grad = [A[i] - r[i] for i in range(n)] + [B[j] - c[j] for j in range(m - 1)]
                gn = max(abs(t) for t in grad)
                if gn < mp.mpf(10) ** (-(dps + 10)):
                    break
                H = mp.matrix(n + m - 1, n + m - 1)
                for i in range(n):
                    H[i, i] = r[i] / e
                    for j in range(m - 1):
                        H[i, n + j] = H[n + j, i] = P[i][j] / e
                for j in range(m - 1):
                    H[n + j, n + j] = c[j] / e
                d = mp.lu_solve(H, mp.matrix(grad))
                t, d0 = mp.mpf(1), dual(f, g, e)
                while True:                              # full steps once in the quadratic region
                    f2 = [f[i] + t * d[i] for i in range(n)]
                    g2 = [g[j] + t * d[n + j] for j in range(m - 1)] + [g[m - 1]]
                    if gn < mp.mpf(10) ** -12 or dual(f2, g2, e) >= d0 or t < mp.mpf(10) ** -30:
                        break
                    t /= 2
                f, g = f2, g2
            else:
                raise AssertionError("the mpmath reference did not converge")
            if e == target:
                return +dual(f, g, e)
            e = max(e / 2, target)


def _cloud(seed=9, n=12):
    x = np.random.default_rng(seed).normal(size=(n, 2))
    return np.full(n, 1.0 / n), x


@pytest.mark.parametrize("scaling", [None, 0.5])
def test_translation_gives_the_squared_shift(scaling):
    """y = x + v, same weights: S_eps = |v|^2 exactly for every eps (the cost changes by
    |v|^2 - 2<x_i - x_j, v>, whose second part is the same for every coupling).

    Before the fix: 9.21e-9 (no scaling) and a negative value (scaling=0.5) for |v|^2 =
    1.25e-8, the cross term stalled at 10,000 iterations, and no warning was given.
    """
    w, x = _cloud()
    v = np.array([1e-4, 5e-5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = float(numeric.sinkhorn_divergence_points(w, x, w, x + v, epsilon=0.1, scaling=scaling))
        r = numeric.sinkhorn_points(w, x, w, x + v, epsilon=0.1, scaling=scaling)
    assert abs(s - v @ v) <= 5e-3 * (v @ v), s
    assert bool(r.converged) and r.iterations < 200
    tight = float(numeric.sinkhorn_divergence_points(w, x, w, x + v, epsilon=0.1, scaling=scaling,
                                                     tol=1e-13))
    assert abs(tight - v @ v) <= 1e-6 * (v @ v), tight


@pytest.mark.slow
def test_near_identical_clouds_against_a_50_digit_newton_reference():
    w, x = _cloud()
    y = x + np.array([1e-4, 5e-5])
    ab, aa, bb = (_mp_ot_eps(w, x, w, y, 0.1), _mp_ot_eps(w, x, w, x, 0.1),
                  _mp_ot_eps(w, y, w, y, 0.1))
    ref = float(ab - aa / 2 - bb / 2)
    assert abs(ref - 1.25e-8) < 1e-16                     # the translation identity, independently
    s = float(numeric.sinkhorn_divergence_points(w, x, w, y, epsilon=0.1, tol=1e-13))
    assert abs(s - ref) <= 1e-15, (s, ref)
    r = numeric.sinkhorn_points(w, x, w, y, epsilon=0.1, tol=1e-13)
    assert abs(float(r.value) - float(ab)) <= 1e-15


def test_equal_measures_give_exactly_zero_alone_and_in_a_batch():
    """Before the fix: permuted points -2e-8-ish, an identical pair inside a batch nonzero."""
    w, x = _cloud()
    rng = np.random.default_rng(1)
    a = rng.random(12) + 0.1
    a /= a.sum()
    perm = rng.permutation(12)
    for weights in (w, a):
        s = numeric.sinkhorn_divergence_points(weights, x, weights[perm], x[perm], epsilon=0.1)
        assert float(s) == 0.0
    # the same measure written with a repeated point and a point of zero weight
    x2 = np.vstack([x, x[:1], [[40.0, 40.0]]])
    a2 = np.r_[a[0] / 2, a[1:], a[0] / 2, 0.0]
    assert float(numeric.sinkhorn_divergence_points(a, x, a2, x2, epsilon=0.1)) == 0.0
    y = x + [0.3, 0.0]
    xs, ys = np.stack([x, x]), np.stack([y, x[perm]])
    batch = numeric.sinkhorn_divergence_points(np.stack([w, w]), xs, np.stack([w, w]), ys,
                                               epsilon=0.1)
    assert float(batch[1]) == 0.0
    assert abs(float(batch[0]) - 0.09) < 1e-9
    _, grads = numeric.sinkhorn_divergence_points(w, x, w, x[perm], epsilon=0.1, return_grad=True)
    assert all(float(np.abs(g).max()) == 0.0 for g in grads)
    grid = np.linspace(0, 1, 12)
    cost = (grid[:, None] - grid[None, :]) ** 2
    hist = numeric.sinkhorn_divergence(np.stack([a, a]), np.stack([a, w]), cost, epsilon=0.05)
    assert float(hist[0]) == 0.0 and float(hist[1]) > 0


def test_a_solve_that_misses_tol_is_reported():
    a, x, b, y = _problem(10, 12, seed=3)
    with pytest.warns(RuntimeWarning, match="did not reach tol"):
        numeric.sinkhorn_divergence_points(a, x, b, y, epsilon=0.01, max_iter=2)
    grid = np.linspace(0, 1, 10)
    with pytest.warns(RuntimeWarning, match="did not reach tol"):
        numeric.sinkhorn_divergence(a, np.full(10, 0.1), (grid[:, None] - grid) ** 2,
                                    epsilon=0.001, max_iter=2)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 14), log_shift=st.floats(-6, -1),
       eps=st.sampled_from([0.05, 0.1, 1.0]), power=st.sampled_from([1, 2]),
       permute=st.booleans())
def test_fuzz_nearly_equal_and_permuted_clouds(seed, n, log_shift, eps, power, permute):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    a = rng.random(n) + 0.1
    a /= a.sum()
    perm = rng.permutation(n) if permute else np.arange(n)
    v = 10.0**log_shift * rng.normal(size=2)
    kw = dict(epsilon=eps, power=power, tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(numeric.sinkhorn_divergence_points(a, x, a[perm], x[perm], **kw)) == 0.0
        s = float(numeric.sinkhorn_divergence_points(a, x, a[perm], x[perm] + v, **kw))
        assert s >= 0.0
        if power == 2:
            assert abs(s - v @ v) <= 1e-3 * (v @ v) + 1e-14, (s, v @ v)
        noisy = x[perm] + 10.0**log_shift * rng.normal(size=(n, 2))
        assert float(numeric.sinkhorn_divergence_points(a, x, a[perm], noisy, **kw)) >= 0.0


# ----------------------------------------------------------------------------- more peers

def test_potentials_match_pot_sinkhorn_log_to_5e_12():
    a, x, b, y = _problem(12, 14, seed=21)
    cost = ot.dist(x, y)
    res = numeric.sinkhorn(a, b, cost, epsilon=0.5, tol=1e-15, return_plan=True)
    plan, log = ot.bregman.sinkhorn_log(a, b, cost, 0.5, stopThr=1e-16, numItermax=10**5, log=True)
    assert_close(res.plan, plan, rtol=5e-12, atol=1e-300)
    # POT's plan is u_i e^{-C_ij/eps} v_j, ours a_i b_j e^{(f_i + g_j - C_ij)/eps}
    fu = 0.5 * (log["log_u"] - np.log(a))
    gv = 0.5 * (log["log_v"] - np.log(b))
    shift = float(np.mean(res.f - fu))
    assert_close(res.f - shift, fu, rtol=5e-12, atol=5e-12)
    assert_close(res.g + shift, gv, rtol=5e-12, atol=5e-12)


def test_divergence_matches_geomloss():
    """geomloss (cost |x-y|^2/2, eps = blur^2, fixed eps-scaling schedule without a stopping
    rule) tends to our value as its scaling ratio tends to 1."""
    geomloss = pytest.importorskip("geomloss")
    torch = pytest.importorskip("torch")
    a, x, b, y = _problem(30, 25, seed=3)
    eps = 0.2
    ours = float(numeric.sinkhorn_divergence_points(a, x, b, y, epsilon=eps, tol=1e-13))
    gaps = []
    for scaling in (0.99, 0.999):
        loss = geomloss.SamplesLoss("sinkhorn", p=2, blur=math.sqrt(eps / 2), scaling=scaling,
                                    debias=True, backend="tensorized")
        val = 2 * loss(*(torch.tensor(t) for t in (a, x, b, y))).item()
        gaps.append(abs(val - ours) / ours)
    assert gaps[1] < 1e-5 and gaps[1] < gaps[0] / 10, gaps


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 12), log_gap=st.floats(-9, -1),
       eps=st.sampled_from([0.05, 0.1, 1.0]), power=st.sampled_from([1, 2]))
@example(seed=2, n=2, log_gap=-3.0, eps=0.01, power=1)   # a plan in blocks: singular Newton system
def test_fuzz_nearly_equal_histograms(seed, n, log_gap, eps, power):
    rng = np.random.default_rng(seed)
    grid = np.sort(rng.normal(size=n))
    cost = np.abs(grid[:, None] - grid[None, :]) ** power
    a = rng.random(n) + 0.1
    a /= a.sum()
    b = a * np.exp(10.0**log_gap * rng.normal(size=n))
    b /= b.sum()
    kw = dict(epsilon=eps, tol=1e-12, max_iter=10**5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(numeric.sinkhorn_divergence(a, a, cost, **kw)) == 0.0
        s = float(numeric.sinkhorn_divergence(a, b, cost, **kw))
        assert s >= 0.0
        perm = rng.permutation(n)
        sp = float(numeric.sinkhorn_divergence(a[perm], b[perm], cost[np.ix_(perm, perm)], **kw))
    assert abs(sp - s) <= 1e-12 * max(1.0, float(cost.max())), (sp, s)
