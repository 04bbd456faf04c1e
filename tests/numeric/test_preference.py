"""numeric's alignment arrays (f-DPG, DPH-RL, D²O, Nash-MP) against 50-digit mpmath references."""

import mpmath
import numpy as np
import pytest
import sympy

import numeric
from numeric.tolerances import ACCURACY, ALIGNMENT, assert_close, row_bound
from proofs_check.reference import nash
from theory import alignment, fdiv, u

LOGITS = np.array([0.3, -1.2, 0.8, 0.1, -0.4])
LOG_TARGET = np.array([-1.5, -0.7, -2.0, -1.1, -1.3])


def _mp_grad(name, theta, log_target, dps=50):
    """d/dtheta_j of D_f(softmax(theta) || softmax(log_target)) by mpmath.diff at dps digits."""
    f_mp = sympy.lambdify(u, fdiv.get(name).f, modules="mpmath")
    d = fdiv.get(name)
    slope = d.slope_at_infinity
    with mpmath.workdps(dps + 10):
        th0 = [mpmath.mpf(float(x)) for x in theta]
        lt = [mpmath.mpf(float(x)) if np.isfinite(x) else None for x in log_target]
        zt = mpmath.fsum(mpmath.exp(x) for x in lt if x is not None)
        p = [mpmath.exp(x) / zt if x is not None else mpmath.mpf(0) for x in lt]

        def D(th):
            m = mpmath.fsum(mpmath.exp(x) for x in th)
            pi = [mpmath.exp(x) / m for x in th]
            return mpmath.fsum(pj * f_mp(a / pj) if pj > 0 else a * mpmath.mpf(sympy.N(slope, dps))
                               for a, pj in zip(pi, p, strict=True))

        out = []
        for j in range(len(th0)):
            def along(x, j=j):
                th = list(th0)
                th[j] = x
                return D(th)

            out.append(float(mpmath.diff(along, th0[j])))
    return np.array(out)


@pytest.mark.parametrize("name", ["kl", "reverse_kl", "js", "hellinger", "jeffreys"])
def test_fdpg_exact_gradient_against_mpmath(name):
    got = numeric.fdpg_gradient(name, LOGITS, LOG_TARGET)
    assert_close(got, _mp_grad(name, LOGITS, LOG_TARGET), rtol=0, atol=ALIGNMENT["float64_rtol"])


def test_fdpg_batched_and_zero_mass_target():
    th = np.stack([LOGITS, LOGITS[::-1], np.zeros(5)])
    lt = np.stack([LOG_TARGET, LOG_TARGET[::-1], LOG_TARGET])
    got = numeric.fdpg_gradient("js", th.reshape(3, 1, 5), lt.reshape(3, 1, 5))
    assert got.shape == (3, 1, 5)
    for i in range(3):
        assert_close(got[i, 0], numeric.fdpg_gradient("js", th[i], lt[i]), rtol=1e-15, atol=1e-17)
    # a filtered target (zero mass outside the filter): finite for f'(inf) < inf, error for kl
    filt = LOG_TARGET.copy()
    filt[[1, 3]] = -np.inf
    assert_close(numeric.fdpg_gradient("reverse_kl", LOGITS, filt),
                 _mp_grad("reverse_kl", LOGITS, filt), rtol=0, atol=ALIGNMENT["float64_rtol"])
    assert_close(numeric.fdpg_gradient("js", LOGITS, filt), _mp_grad("js", LOGITS, filt),
                 rtol=0, atol=ALIGNMENT["float64_rtol"])
    with pytest.raises(ValueError, match="infinite"):
        numeric.fdpg_gradient("kl", LOGITS, filt)


def test_fdpg_importance_weighted_estimator_is_unbiased():
    rng = np.random.default_rng(3)
    q = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
    m = 200_000
    xs = rng.choice(5, size=(1, m), p=q)
    exact = numeric.fdpg_gradient("hellinger", LOGITS, LOG_TARGET)
    # one row, m samples: the estimate is the sample mean of per-sample terms
    est = numeric.fdpg_gradient("hellinger", LOGITS[None], LOG_TARGET[None], samples=xs,
                                log_proposal=np.log(q)[None], baseline=0.3)[0]
    # per-sample terms for the standard error
    per = numeric.fdpg_gradient("hellinger", np.broadcast_to(LOGITS, (m, 5)),
                                np.broadcast_to(LOG_TARGET, (m, 5)), samples=xs.T,
                                log_proposal=np.broadcast_to(np.log(q), (m, 5)), baseline=0.3)
    se = per.std(axis=0) / np.sqrt(m)
    assert_close(per.mean(axis=0), est, rtol=1e-10, atol=1e-15)
    assert np.all(np.abs(est - exact) < 5 * se + 1e-12), (est, exact, se)
    # on-policy sampling with Z estimated by importance sampling: consistent as m grows
    pi = np.exp(LOGITS - np.log(np.exp(LOGITS).sum()))
    xs2 = rng.choice(5, size=(1, m), p=pi)
    est2 = numeric.fdpg_gradient("hellinger", LOGITS[None], LOG_TARGET[None], samples=xs2,
                                 partition="estimate")[0]
    assert np.abs(est2 - exact).max() < 0.02 * np.abs(exact).max()


def test_fdpg_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        numeric.fdpg_gradient("kl", LOGITS, LOG_TARGET[:4])
    with pytest.raises(ValueError, match="outcome indices"):
        numeric.fdpg_gradient("kl", LOGITS, LOG_TARGET, samples=np.array([0, 5]))
    with pytest.raises(TypeError, match="integer"):
        numeric.fdpg_gradient("kl", LOGITS, LOG_TARGET, samples=np.array([0.5]))
    with pytest.raises(ValueError, match="logits must be finite"):
        numeric.fdpg_gradient("kl", np.array([0.0, np.nan]), np.zeros(2))
    with pytest.raises(ValueError, match="no mass"):
        numeric.fdpg_gradient("kl", np.zeros(2), np.full(2, -np.inf))
    with pytest.raises(ValueError, match="partition"):
        numeric.fdpg_gradient("kl", LOGITS, LOG_TARGET, partition="guess")


def test_fdpg_descent_reaches_the_target():
    th = np.zeros(5)
    p = np.exp(LOG_TARGET) / np.exp(LOG_TARGET).sum()
    for _ in range(150):
        th = th - 8.0 * numeric.fdpg_gradient("js", th, LOG_TARGET)  # step 2/f''(1), f''(1) = 1/4
    pi = np.exp(th) / np.exp(th).sum()
    assert_close(pi, p, rtol=1e-12)


ELLS = np.array([-30.0, -5.0, -1e-9, 0.0, 3e-8, 0.7, 4.0, 25.0])


def _mp_dphrl(name, ell, dps=50):
    d = fdiv.get(name)
    F = sympy.lambdify(u, alignment.dphrl_loss(d), modules="mpmath")
    G = sympy.lambdify(u, alignment.dphrl_loss_gradient(d), modules="mpmath")
    with mpmath.workdps(dps):
        vals = [(F(mpmath.exp(mpmath.mpf(x))), G(mpmath.exp(mpmath.mpf(x)))) for x in ell]
        return np.array([float(a) for a, _ in vals]), np.array([float(b) for _, b in vals])


# JS is DPH-RL's second loss; numeric._forms needs ~30 s on one core to derive its stable
# branches the first time (shared with the divergence kernels), hence the slow mark
@pytest.mark.parametrize("name", ["reverse_kl", "alpha", pytest.param("js", marks=pytest.mark.slow)])
def test_dphrl_loss_and_gradient_against_mpmath(name):
    loss, grad = numeric.dphrl_loss(name, ELLS, np.zeros_like(ELLS), reduction="none",
                                    return_grad=True)
    ref_loss, ref_grad = _mp_dphrl(name, ELLS)
    # numeric's accuracy policy: relative ACCURACY on the bulk, or the row bound
    # 64 eps L (value + sqrt value), L = 1 + |ell| (near ell = 0 the loss is ~ell^2 f''(1)/2)
    scale = 1 + np.abs(ELLS)
    for got, want, kind in ((loss, ref_loss, "loss"), (grad, ref_grad, "grad")):
        allowed = np.maximum(ACCURACY["float64"][kind] * np.abs(want),
                             row_bound(np.float64, scale, np.abs(want) + np.sqrt(np.abs(want))))
        assert np.all(np.abs(got - want) <= allowed), (kind, got, want)


@pytest.mark.parametrize("name, factor", [("reverse_kl", 1),
                                          pytest.param("js", 2, marks=pytest.mark.slow)])
def test_dphrl_gradient_against_central_differences_in_mpmath(name, factor):
    """Autograd-free: central differences of DPH-RL's own loss (50 digits) in log pi_theta."""
    paper = {"reverse_kl": "forward_kl", "js": "js"}[name]
    ell = np.array([-2.0, -0.3, 0.4, 1.5])
    _, grad = numeric.dphrl_loss(name, ell, np.zeros(4), reduction="sum", return_grad=True)
    F = sympy.lambdify(u, alignment.dphrl_paper_loss(paper) / factor, modules="mpmath")
    with mpmath.workdps(50):
        h = mpmath.mpf(10) ** -20
        fd = [float((F(mpmath.exp(mpmath.mpf(x) + h)) - F(mpmath.exp(mpmath.mpf(x) - h))) / (2 * h))
              for x in ell]
    assert_close(grad, np.array(fd), rtol=ALIGNMENT["float64_rtol"])


def test_dphrl_reference_mean_is_the_divergence():
    ref = np.array([0.1, 0.2, 0.3, 0.4])
    pol = np.array([0.25, 0.25, 0.1, 0.4])
    loss = numeric.dphrl_loss("reverse_kl", np.log(pol), np.log(ref), reduction="none")
    want = float(mpmath.fsum(mpmath.mpf(float(q)) * mpmath.log(mpmath.mpf(float(q)) / mpmath.mpf(float(p)))
                             for p, q in zip(pol, ref, strict=True)))  # KL(pi_ref || pi)
    assert_close(np.sum(ref * loss), want, rtol=1e-14)
    mean, g = numeric.dphrl_loss("reverse_kl", np.log(pol), np.log(ref), return_grad=True)
    assert_close(mean, loss.mean(), rtol=1e-15)
    assert_close(g, (pol / ref - 1) / 4, rtol=1e-14)


def test_dphrl_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        numeric.dphrl_loss("js", np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="reduction"):
        numeric.dphrl_loss("js", np.zeros(3), np.zeros(3), reduction="elementwise")
    with pytest.raises(TypeError, match="return_grad"):
        numeric.dphrl_loss("js", np.zeros(3), np.zeros(3), return_grad="both")
    with pytest.raises(ValueError, match="finite"):
        numeric.dphrl_loss("js", np.array([-np.inf]), np.zeros(1))


def test_d2o_loss_and_gradients():
    rng = np.random.default_rng(5)
    ls, rs = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    ln, rn = rng.normal(size=3), rng.normal(size=3)
    b, a = 0.7, 1.3
    loss, (gs, gn) = numeric.d2o_loss(ls, rs, ln, rn, beta=b, alpha=a, return_grad=True,
                                      reduction="none")
    L, ells, neg, alpha = alignment.d2o_loss(4)
    for i in range(3):
        s = {**{e: sympy.Float(float(x), 30) for e, x in zip(ells, ls[i] - rs[i], strict=True)},
             neg: sympy.Float(float(ln[i] - rn[i]), 30), alpha: sympy.Float(a, 30),
             alignment.beta: sympy.Float(b, 30)}
        assert_close(loss[i], float(sympy.N(L.subs(s), 30)), rtol=1e-14)
        # central differences in mpmath of the symbolic loss (d/d logp = d/d ell)
        for j, e in enumerate(ells):
            fd = float(sympy.N(sympy.diff(L, e).subs(s), 30))
            assert_close(gs[i, j], fd, rtol=ALIGNMENT["float64_rtol"])
        assert_close(gn[i], float(sympy.N(sympy.diff(L, neg).subs(s), 30)), rtol=ALIGNMENT["float64_rtol"])
    with pytest.raises(ValueError, match="beta"):
        numeric.d2o_loss(ls, rs, ln, rn, beta=0.0, alpha=1.0)
    with pytest.raises(ValueError, match="batch shape"):
        numeric.d2o_loss(ls, rs, ln[:2], rn[:2], beta=1.0, alpha=1.0)
    with pytest.raises(ValueError, match="same shape"):
        numeric.d2o_loss(ls, rs[:, :2], ln, rn, beta=1.0, alpha=1.0)


HALF = sympy.Rational(1, 2)
RPS5 = [[HALF, 1, 0, 1, 0], [0, HALF, 1, 0, 1], [1, 0, HALF, 1, 0], [0, 1, 0, HALF, 1],
        [1, 0, 1, 0, HALF]]
REF5 = [sympy.Rational(i, 15) for i in range(1, 6)]


def _arrays(rows, ref):
    return (np.array([[float(x) for x in r] for r in rows]), np.array([float(x) for x in ref]))


def test_nash_mirror_prox_step_matches_the_symbolic_update_and_converges():
    g = alignment.PreferenceGame(RPS5, REF5, beta="1/10")
    P, r = _arrays(RPS5, REF5)
    it = numeric.nash_mirror_prox(P, r, beta=0.1, steps=1)
    half, full = g.mirror_prox_step(REF5, 2)
    assert_close(it[1], np.array([float(sympy.N(x, 30)) for x in full]), rtol=1e-14)
    md = numeric.online_mirror_descent(P, r, beta=0.1, steps=1, eta=lambda k: 0.5)
    assert_close(md[1], np.array([float(sympy.N(x, 30)) for x in g.mirror_descent_step(REF5, "1/2")]),
                 rtol=1e-14)
    star = np.array([float(x) for x in nash.equilibrium(g, dps=30)])
    long = numeric.nash_mirror_prox(P, r, beta=0.1, steps=300)
    assert_close(long[-1], star, rtol=ALIGNMENT["float64_rtol"])


def test_nash_mirror_prox_large_game_runs_and_reaches_the_fixed_point():
    n = 200
    rng = np.random.default_rng(0)
    A = rng.uniform(-0.5, 0.5, (n, n))
    A = np.triu(A, 1)
    P = 0.5 + A - A.T
    ref = rng.dirichlet(np.ones(n))
    it = numeric.nash_mirror_prox(P, ref, beta=0.2, steps=150)
    assert it.shape == (151, n)
    pi = it[-1]
    w = np.log(ref) + P @ pi / 0.2
    fixed = np.exp(w - w.max())
    assert_close(pi, fixed / fixed.sum(), rtol=1e-10)


def test_preference_game_bad_input():
    P, r = _arrays(RPS5, REF5)
    with pytest.raises(ValueError, match="not a preference matrix"):
        numeric.nash_mirror_prox(np.full((5, 5), 0.6), r, beta=0.1, steps=3)
    with pytest.raises(ValueError, match="not a preference matrix"):
        numeric.nash_mirror_prox(P * 1.5, r, beta=0.1, steps=3)
    with pytest.raises(ValueError, match="square"):
        numeric.nash_mirror_prox(P[:3], r, beta=0.1, steps=3)
    with pytest.raises(ValueError, match="shape \\(5,\\)"):
        numeric.nash_mirror_prox(P, r[:4] / r[:4].sum(), beta=0.1, steps=3)
    with pytest.raises(ValueError, match="summing to 1"):
        numeric.nash_mirror_prox(P, r * 2, beta=0.1, steps=3)
    for bad in (0.0, -1.0, np.inf):
        with pytest.raises(ValueError, match="beta"):
            numeric.nash_mirror_prox(P, r, beta=bad, steps=3)
    with pytest.raises(ValueError, match="eta"):
        numeric.online_mirror_descent(P, r, beta=0.1, steps=3, eta=lambda k: -1.0)
    with pytest.raises(ValueError, match="steps"):
        numeric.nash_mirror_prox(P, r, beta=0.1, steps=-1)


@pytest.mark.slow
def test_equilibrium_at_n_200_to_50_digits_and_float64_nash_mp():
    """The largest size the issue names: 200 actions, 50 digits (~10 s on one core)."""
    n = 200
    rng = np.random.default_rng(2)
    rows = [[HALF] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            a = sympy.Rational(int(rng.integers(-32, 33)), 64)
            rows[i][j], rows[j][i] = HALF + a, HALF - a
    ref = [sympy.Rational(1, n)] * n
    pi = nash.equilibrium(alignment.PreferenceGame(rows, ref, beta="1/5"), dps=50)
    P, r = _arrays(rows, ref)
    with mpmath.workdps(60):
        Pm = [[mpmath.mpf(float(x)) for x in row] for row in P]  # k/64: exact in binary
        w = [mpmath.exp(mpmath.fdot(Pm[i], pi) * 5) for i in range(n)]
        z = mpmath.fsum(w)
        assert max(abs(w[i] / z - pi[i]) for i in range(n)) < ALIGNMENT["mp_solution"]
    it = numeric.nash_mirror_prox(P, r, beta=0.2, steps=200)
    assert_close(it[-1], np.array([float(x) for x in pi]), rtol=0, atol=ALIGNMENT["nash_float64"])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
def test_preference_losses_share_one_reduction_vocabulary(reduction):
    """dphrl_loss and d2o_loss: per-row values, their sum, their mean, the sum over the first
    dimension's size (docs/conventions.md); gradients of the reduced loss; the input dtype
    (dphrl_loss returned float64 for float32 input)."""
    rng = np.random.default_rng(6)
    lp, lr = rng.normal(-3, 1, (2, 5)), rng.normal(-3, 1, (2, 5))
    scale = {"none": 1.0, "sum": 1.0, "mean": 1 / 10, "batchmean": 1 / 2}[reduction]
    per, g = numeric.dphrl_loss("js", lp, lr, reduction="none", return_grad=True)
    got, h = numeric.dphrl_loss("js", lp, lr, reduction=reduction, return_grad=True)
    want = per if reduction == "none" else np.asarray(per.sum() * scale)
    assert_close(got, want, rtol=1e-15)
    assert_close(h, g * scale, rtol=1e-15)
    got32 = numeric.dphrl_loss("js", lp.astype(np.float32), lr.astype(np.float32),
                               reduction=reduction)
    assert got32.dtype == np.float32
    ls, rs = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    ln, rn = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    per, (gs, gn) = numeric.d2o_loss(ls, rs, ln, rn, beta=0.5, alpha=1.0, reduction="none",
                                     return_grad=True)
    got, (hs, hn) = numeric.d2o_loss(ls, rs, ln, rn, beta=0.5, alpha=1.0, reduction=reduction,
                                     return_grad=True)
    scale = {"none": 1.0, "sum": 1.0, "mean": 1 / 6, "batchmean": 1 / 2}[reduction]
    want = per if reduction == "none" else np.asarray(per.sum() * scale)
    assert_close(got, want, rtol=1e-15)
    assert_close(hs, gs * scale, rtol=1e-15)
    assert_close(hn, gn * scale, rtol=1e-15)


def test_fdpg_gradient_and_dphrl_take_params():
    """Every function that takes f takes params= (issue 21 item 5): the same answer as the
    exact member; fdpg_gradient keeps the logits' dtype."""
    logits, log_target = np.array([0.3, -0.2, 0.1]), np.log([0.5, 0.25, 0.25])
    member = fdiv.get("js", beta=sympy.Rational(3, 10))
    g = numeric.fdpg_gradient("js", logits, log_target, params={"beta": 0.3})
    assert_close(g, numeric.fdpg_gradient(member, logits, log_target), rtol=1e-13)
    g32 = numeric.fdpg_gradient("js", logits.astype(np.float32), log_target, params={"beta": 0.3})
    assert g32.dtype == np.float32
    lp, lr = np.array([-1.0, -2.0]), np.array([-1.5, -1.0])
    assert_close(numeric.dphrl_loss("alpha", lp, lr, params={"alpha": 0.25}),
                 numeric.dphrl_loss(fdiv.get("alpha", alpha=sympy.Rational(1, 4)), lp, lr),
                 rtol=1e-13)
