"""theory.alignment against the papers' stated forms, exact computation and 50-digit mpmath."""

import itertools

import mpmath
import pytest
import sympy

from proofs_check.reference import nash
from theory import alignment, fdiv, u

POINTS = ["0.03", "0.4", "1", "2.5", "40"]


def _same_function(a, b, var=u, points=POINTS, dps=50):
    """a and b agree at every point to dps - 5 digits (evaluated independently by sympy.N)."""
    for x in points:
        va = sympy.N(a.subs(var, sympy.Rational(x)), dps)
        vb = sympy.N(b.subs(var, sympy.Rational(x)), dps)
        assert abs(va - vb) <= sympy.Float(10) ** (5 - dps) * (1 + abs(vb)), (x, va, vb)


# f-DPG's f'(t) table (naver/disco code, references/papers.md §4) -> catalog name and scale
FDPG_CODE = {
    "reverse_kl": (-1 / u, 1),                       # their KL(p || pi)
    "kl": (sympy.log(u) + 1, 1),                     # their reverse KL(pi || p)
    "js": (sympy.log(2 * u / (1 + u)), 2),           # their JS = 2 x ours
    "neyman": (1 - u**-2, 1),                        # their chi2(p || pi)
    "pearson": (2 * (u - 1), 1),                     # their reverse chi2(pi || p)
}


@pytest.mark.parametrize("name", sorted(FDPG_CODE))
def test_fdpg_pseudo_reward_matches_the_paper_code(name):
    their_df, scale = FDPG_CODE[name]
    _same_function(-scale * alignment.fdpg_pseudo_reward(name), their_df)


def test_fdpg_tv_pseudo_reward_is_half_sign():
    _same_function(-alignment.fdpg_pseudo_reward("tv"), sympy.sign(sympy.log(u)) / 2,
                   points=["0.2", "3", "17"])


def test_fdpg_ebm_kl_is_rl_with_kl_reward():
    b, r, ell, lz = alignment.beta, alignment.reward, alignment.log_ratio, alignment.log_partition
    got = b * alignment.fdpg_ebm_pseudo_reward("kl")
    assert sympy.expand(got - (r - b * ell - b * (lz + 1))) == 0


def test_fdpg_filtered_target_zero_mass_rule():
    inside, outside = alignment.fdpg_filtered_pseudo_reward("kl")
    assert outside == -sympy.oo
    assert sympy.expand(inside + alignment.log_ratio + alignment.log_partition + 1) == 0
    assert alignment.fdpg_filtered_pseudo_reward("js")[1] == -fdiv.get("js").slope_at_infinity


def test_fdpo_logits_match_the_paper_code():
    b, uw, ul = alignment.beta, alignment.u_w, alignment.u_l
    # forward KL (catalog reverse_kl): logits = -exp(-logratio_w) + exp(-logratio_l)
    assert sympy.simplify(alignment.fdpo_logit("reverse_kl") / b - (-1 / uw + 1 / ul)) == 0
    # alpha (TRL): (u_l^-a - u_w^-a)/a
    a = sympy.Rational(1, 3)
    got = alignment.fdpo_logit(fdiv.get("alpha", alpha=a)) / b
    want = (ul**-a - uw**-a) / a
    for x, y in (("0.2", "3"), ("5", "0.7")):
        s = {uw: sympy.Rational(x), ul: sympy.Rational(y)}
        assert abs(sympy.N((got - want).subs(s), 50)) < 1e-45
    # JS: their logit is log(2u/(1+u)) per response = 2 x ours
    js = alignment.fdpo_logit("js") / b
    theirs = sympy.log(2 * uw / (1 + uw)) - sympy.log(2 * ul / (1 + ul))
    for x, y in (("0.2", "3"), ("5", "0.7")):
        s = {uw: sympy.Rational(x), ul: sympy.Rational(y)}
        assert abs(sympy.N((2 * js - theirs).subs(s), 50)) < 1e-45


@pytest.mark.parametrize("name", ["kl", "reverse_kl", "alpha"])
def test_fdpo_policy_ratio_inverts_the_reward(name):
    lam = sympy.Symbol("lambda", real=True)
    ratio = alignment.fdpo_policy_ratio(name)
    reward = alignment.fdpo_reward(name)
    for x in ("0.1", "0.9", "3"):
        s = {alignment.reward: reward.subs(u, sympy.Rational(x)), alignment.beta: sympy.Rational(1, 3),
             lam: sympy.Rational(2, 5)}
        val = ratio.subs(s).subs({alignment.beta: sympy.Rational(1, 3), lam: sympy.Rational(2, 5)})
        assert abs(sympy.N(val, 50) - sympy.Rational(x)) < 1e-45


def test_fdpo_policy_ratio_needs_strict_convexity():
    with pytest.raises(ValueError, match="not strictly convex"):
        alignment.fdpo_policy_ratio("tv")
    with pytest.raises(TypeError, match="catalog name or an FDivergence"):
        alignment.fdpg_pseudo_reward(3)


def test_dphrl_losses_are_the_paper_losses():
    assert sympy.simplify(alignment.dphrl_paper_loss("forward_kl")
                          - alignment.dphrl_loss("reverse_kl")) == 0
    _same_function(alignment.dphrl_paper_loss("js"), 2 * alignment.dphrl_loss("js"))
    with pytest.raises(ValueError, match="known: forward_kl, js"):
        alignment.dphrl_paper_loss("reverse")


@pytest.mark.parametrize("name", ["reverse_kl", "kl", "js", "hellinger", "alpha"])
def test_dphrl_reference_mean_is_the_divergence_exactly(name):
    pol = [sympy.Rational(1, 10), sympy.Rational(3, 5), sympy.Rational(3, 10)]
    ref = [sympy.Rational(1, 4), sympy.Rational(1, 4), sympy.Rational(1, 2)]
    loss = alignment.dphrl_loss(name)
    mean = sum(q * loss.subs(u, p / q) for p, q in zip(pol, ref, strict=True))
    want = fdiv.get(name).discrete(pol, ref)
    assert abs(sympy.N(mean - want, 60)) < 1e-50


@pytest.mark.parametrize("name", ["reverse_kl", "js", "alpha"])
def test_dphrl_gradient_is_the_log_derivative(name):
    ell = sympy.Symbol("ell", real=True)
    loss = alignment.dphrl_loss(name).subs(u, sympy.exp(ell))
    want = sympy.diff(loss, ell).subs(ell, sympy.log(u))
    _same_function(alignment.dphrl_loss_gradient(name), want)


def _d2o_brute(pi, ell, neg, k, b, a):
    """Ordered K-tuples, mpmath at 60 digits (independent of the multiset sum)."""
    with mpmath.workdps(60):
        neg, b, a = (mpmath.mpf(sympy.Rational(x).p) / sympy.Rational(x).q for x in (neg, b, a))
        tot = mpmath.mpf(0)
        for tup in itertools.product(range(len(pi)), repeat=k):
            w = mpmath.fprod(mpmath.mpf(sympy.Rational(pi[i])) for i in tup)
            z = b * mpmath.fsum(mpmath.mpf(sympy.Rational(ell[i])) for i in tup) / k - a * neg
            tot += w * mpmath.log1p(mpmath.exp(-z))
        return tot


def test_d2o_expected_loss_by_enumeration_and_jensen_bound():
    pi, ell, neg = ["1/2", "3/10", "1/5"], ["-1", "1/2", "2"], sympy.Rational(1, 3)
    b, a = sympy.Rational(3, 2), sympy.Rational(1, 2)
    Ld, m, negs, alpha = alignment.d2o_distributional_loss()
    mean = sum(sympy.Rational(p) * sympy.Rational(x) for p, x in zip(pi, ell, strict=True))
    dist = sympy.N(Ld.subs({m: mean, negs: neg, alpha: a, alignment.beta: b}), 50)
    gaps = []
    for k in (1, 2, 3, 4):
        exact = alignment.d2o_expected_loss(pi, ell, neg, k=k, beta_value=b, alpha_value=a)
        brute = _d2o_brute(pi, ell, neg, k, b, a)
        assert abs(sympy.N(exact, 50) - sympy.Float(mpmath.nstr(brute, 55), 55)) < 1e-45
        gaps.append(sympy.N(exact, 50) - dist)
    assert all(g > 0 for g in gaps)  # Jensen: the sample loss upper-bounds the distributional one
    assert all(g2 < g1 for g1, g2 in itertools.pairwise(gaps))  # and tightens as K grows


def test_d2o_bad_input():
    with pytest.raises(ValueError, match="k must be ≥ 1"):
        alignment.d2o_loss(0)
    with pytest.raises(ValueError, match="same length"):
        alignment.d2o_expected_loss(["1/2", "1/2"], [0], 0, k=1, beta_value=1, alpha_value=1)
    with pytest.raises(ValueError, match="sum to 1"):
        alignment.d2o_expected_loss(["1/2", "1/3"], [0, 0], 0, k=1, beta_value=1, alpha_value=1)
    with pytest.raises(ValueError, match="must be > 0"):
        alignment.d2o_expected_loss(["1/2", "1/2"], [0, 0], 0, k=1, beta_value=0, alpha_value=1)


HALF = sympy.Rational(1, 2)
RPS = [[HALF, 1, 0], [0, HALF, 1], [1, 0, HALF]]


def test_preference_game_bad_input():
    G = alignment.PreferenceGame
    with pytest.raises(ValueError, match="square"):
        G([[HALF, 1, 0], [0, HALF, 1]], ["1/2", "1/2"], beta=1)
    with pytest.raises(ValueError, match="not a probability"):
        G([[HALF, "3/2"], ["-1/2", HALF]], ["1/2", "1/2"], beta=1)
    with pytest.raises(ValueError, match="not a preference matrix"):
        G([[HALF, "0.7"], ["0.7", HALF]], ["1/2", "1/2"], beta=1)
    with pytest.raises(ValueError, match="ref has length 2"):
        G(RPS, ["1/2", "1/2"], beta=1)
    with pytest.raises(ValueError, match="positive probability vector"):
        G(RPS, ["1/2", "1/2", "1/2"], beta=1)
    for bad in (0, -1, "-1/10"):
        with pytest.raises(ValueError, match="beta must be a positive number"):
            G(RPS, ["1/3", "1/3", "1/3"], beta=bad)
    with pytest.raises(TypeError, match="n × n"):
        G("PP", ["1/2", "1/2"], beta=1)


def test_equilibrium_against_an_independent_solver_and_unexploitability():
    ref = [sympy.Rational(1, 6), sympy.Rational(1, 3), sympy.Rational(1, 2)]
    beta = sympy.Rational(1, 5)
    g = alignment.PreferenceGame(RPS, ref, beta=beta)
    pi = nash.equilibrium(g, dps=50)
    with mpmath.workdps(60):
        # mpmath.findroot on the softmax form in (x1, x2), x3 = 1 - x1 - x2
        P = [[mpmath.mpf(sympy.Rational(x).p) / sympy.Rational(x).q for x in row] for row in RPS]
        rf = [mpmath.mpf(1) / 6, mpmath.mpf(1) / 3, mpmath.mpf(1) / 2]
        b = mpmath.mpf(1) / 5

        def eqs(x1, x2):
            x = [x1, x2, 1 - x1 - x2]
            w = [rf[i] * mpmath.exp(mpmath.fsum(P[i][j] * x[j] for j in range(3)) / b)
                 for i in range(3)]
            z = mpmath.fsum(w)
            return [w[0] / z - x1, w[1] / z - x2]

        sol = mpmath.findroot(eqs, (mpmath.mpf("0.3"), mpmath.mpf("0.3")))
        assert abs(sol[0] - pi[0]) < mpmath.mpf(10) ** -45
        assert abs(sol[1] - pi[1]) < mpmath.mpf(10) ** -45
    assert abs(mpmath.fsum(pi) - 1) < mpmath.mpf(10) ** -48
    # pi* is a best response to itself: P_beta(pi* > pi*) >= P_beta(pi' > pi*) for any pi'
    star = [sympy.Float(mpmath.nstr(x, 55), 55) for x in pi]
    best = sympy.N(g.objective(star, star), 50)
    assert abs(best - HALF) < 1e-45  # a symmetric game has value 1/2
    for other in ([HALF, sympy.Rational(1, 4), sympy.Rational(1, 4)], [sympy.Rational(1, 10)] * 2
                  + [sympy.Rational(4, 5)], ref):
        assert sympy.N(g.objective(other, star), 50) < best


def test_fixed_point_residual_and_steps_are_consistent():
    g = alignment.PreferenceGame(RPS, ["1/3", "1/3", "1/3"], beta="1/4")
    pi = nash.equilibrium(g, dps=40)
    star = [sympy.Float(mpmath.nstr(x, 45), 45) for x in pi]
    assert all(abs(sympy.N(r, 40)) < 1e-35 for r in g.fixed_point_residual(star))
    half, full = g.mirror_prox_step(star, 2)  # the equilibrium is a fixed point of both updates
    for a, b in zip(full, star, strict=True):
        assert abs(sympy.N(a - b, 40)) < 1e-35
    for a, b in zip(g.mirror_descent_step(star, "1/2"), star, strict=True):
        assert abs(sympy.N(a - b, 40)) < 1e-35
    assert g.rate_bound(4) == (1 + 2 * sympy.Rational(1, 4)) ** -2


def test_derivations_rows():
    keys = [k for k, _l, _v in alignment.derivations("kl")]
    assert keys[:3] == ["f", "fdpo_logit", "fdpo_reward"] and "dphrl_loss" in keys
    tv = dict((k, v) for k, _l, v in alignment.derivations("tv"))
    assert "not unique" in tv["fdpo_policy_ratio"]
    assert [k for k, _l, _v in alignment.derivations("nash_mp")][0] == "game"
    assert [k for k, _l, _v in alignment.derivations("D2O")][0] == "loss_k3"
    with pytest.raises(ValueError, match="did you mean"):
        alignment.derivations("nash_mpp")
    with pytest.raises(ValueError, match="takes no --param"):
        alignment.derivations("d2o", alpha=1)


@pytest.mark.parametrize(("name", "param", "value"), [
    ("alpha", "alpha", 0.9999), ("alpha", "alpha", 0.61803), ("js", "beta", 0.2718281828459045),
    ("power", "alpha", 1.0000000596046448)])
def test_get_with_a_many_digit_float_is_quick_and_exact(name, param, value):
    """Issue 19 item 7: `fdiv.get("alpha", alpha=0.9999).df` took 31 s (simplify of
    u**(9999/10000)); the derived quantities stay exact (checked at u = 3 against the
    generator differentiated by mpmath at 50 digits) and come back within 2 s."""
    import time

    start = time.perf_counter()
    d = fdiv.get(name, **{param: value})
    df, d2f, std = d.df, d.d2f, d.standardized
    assert time.perf_counter() - start < 2.0
    f = sympy.lambdify(u, d.f, "mpmath")
    with mpmath.workdps(50):
        x = mpmath.mpf(3)
        assert abs(sympy.N(df.subs(u, 3), 50) - mpmath.diff(f, x)) < 1e-35
        assert abs(sympy.N(d2f.subs(u, 3), 50) - mpmath.diff(f, x, 2)) < 1e-30
    assert sympy.N(std.subs(u, 1), 30) == 0
