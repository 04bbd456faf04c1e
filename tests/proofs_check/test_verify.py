"""verify(), the engines and their verdicts."""

import time

import flint
import mpmath
import numpy as np
import pytest
import sympy
from sympy import Abs, Rational, log

from proofs_check import reference
from proofs_check.claims import Domain, ExpectationClaim, RateClaim, verify
from proofs_check.engines.certified import branch_and_bound
from theory import fdiv

p, q = sympy.symbols("p q", positive=True)
BOX = {p: (0.01, 0.99), q: (0.01, 0.99)}
KL2 = p * log(p / q) + (1 - p) * log((1 - p) / (1 - q))


def test_repl_claim_on_fdiv_discrete_is_certified():
    # a user-written claim, as in DESIGN.md, on divergences built with fdiv.get(...).discrete
    kl = fdiv.get("kl").discrete([p, 1 - p], [q, 1 - q])
    tv = fdiv.get("tv").discrete([p, 1 - p], [q, 1 - q])
    v = verify(sympy.Le(2 * tv**2, kl), domain=BOX, exclude=Abs(p - q) < Rational(1, 10))
    assert v.status == "certified"
    assert v.engine == "certified"
    assert v.excluded == "Abs(p - q) < 1/10"
    assert v.counterexample is None
    js = fdiv.get("js").discrete([p, 1 - p], [q, 1 - q])
    w = verify(sympy.Le(js, log(2)), domain=BOX)
    assert (w.status, w.excluded) == ("certified", None)


def test_claim_true_on_part_of_the_box_is_never_certified():
    # KL(p||q) <= 9/2 holds on the box except a small corner near (0.99, 0.01),
    # where KL = 0.98 log 99 = 4.503...; the certified engine alone must find it
    v = verify(sympy.Le(KL2, Rational(9, 2)), BOX, engines=("certified",), budget=20)
    assert v.status == "violated"
    point = {k: sympy.Rational(s) for k, s in v.counterexample.items()}
    assert point["p"] > Rational(9, 10) and point["q"] < Rational(1, 10)
    # and the full default chain agrees
    assert verify(sympy.Le(KL2, Rational(9, 2)), BOX).status == "violated"
    # direct branch-and-bound: a claim false on part of the box cannot come back certified
    res = branch_and_bound(Rational(9, 2) - KL2, [p, q], [(Rational(1, 100), Rational(99, 100),
                           False, False)] * 2, strict=False,
                           deadline=time.perf_counter() + 20)  # fmt: skip
    assert res.status == "violated"


def test_equality_set_without_exclusion_is_not_certified():
    # KL >= 0 with equality on p = q: without an excluded neighbourhood Arb cannot close
    # the boxes touching the diagonal, so the verdict falls back to sampling
    v = verify(sympy.Ge(KL2, 0), BOX, budget=4)
    assert v.status == "consistent"
    assert "minimum width" in v.detail or "time budget" in v.detail


def _arb_margin(statement, point):
    margin = statement.rhs - statement.lhs if isinstance(statement, sympy.LessThan) else None
    return reference.ball(margin, point, dps=40)


def test_violated_counterexample_rechecks_in_fresh_evaluations():
    stmt = sympy.Le(KL2, 2 * (p - q) ** 2)  # reversed Pinsker: false
    v = verify(stmt, BOX)
    assert v.status == "violated"
    assert set(v.counterexample) == {"p", "q"}
    margin = stmt.rhs - stmt.lhs
    value = reference.evaluate(margin, v.counterexample, dps=40)
    assert value < 0
    b = reference.ball(margin, v.counterexample, dps=40)
    assert b < 0
    assert abs(b.mid()) > b.rad()
    # the printed margin is the full-precision value of the same point
    with mpmath.workdps(40):
        assert abs(mpmath.mpf(v.margin) - value) < mpmath.mpf(10) ** -25


def test_identities_proved_and_violated():
    v = verify(sympy.Eq(log(p * q), log(p) + log(q)), BOX)
    assert (v.status, v.engine) == ("proved", "symbolic")
    kl_qp = KL2.subs({p: q, q: p}, simultaneous=True)
    w = verify(sympy.Eq(KL2, kl_qp), BOX)
    assert w.status == "violated"
    b = reference.ball(KL2 - kl_qp, w.counterexample, dps=40)
    assert abs(b) > 0


def test_symbolic_engine_proves_manifest_forms():
    v = verify(sympy.Ge((sympy.sqrt(p) - sympy.sqrt(q)) ** 2, 0), BOX)
    assert (v.status, v.engine) == ("proved", "symbolic")
    # 1 - p > 0 is not a sign assumption; the interior map x = lo + (hi-lo) s/(1+s) shows it
    w = verify(sympy.Ge((sympy.sqrt(1 - p) - sympy.sqrt(1 - q)) ** 2 / (1 - q), 0), BOX)
    assert w.status == "proved"


def test_time_budget_gives_inconclusive_never_a_pass():
    stmt = sympy.Le(2 * (p - q) ** 2, KL2)  # true, but not provable symbolically
    v = verify(stmt, BOX, exclude=Abs(p - q) < Rational(1, 10), budget=0.005)
    assert v.status == "inconclusive"
    assert "time budget" in v.detail

    def slow_draw(rng, size):
        time.sleep(0.01)
        return rng.standard_normal(size)

    c = ExpectationClaim("slow", slow_draw, target=0.0, relation="eq", n=10**7, source="test",
                         expected="consistent")  # fmt: skip
    assert c.check(budget=0.05).status == "inconclusive"


@pytest.mark.parametrize(
    "statement, domain, message",
    [
        (sympy.Le(p, sympy.Symbol("r")), {p: (0, 1)}, "unknown symbol"),
        (sympy.Le(p, q), {p: (0.5, 0.5, True, False), q: (0, 1)}, "empty"),
        (sympy.Le(p, q), {p: sympy.Interval(1, 0), q: (0, 1)}, "empty"),
        (sympy.Le(p, q), {p: (0.9, 0.1), q: (0, 1)}, "inverted bounds"),
        (sympy.Le(p, q), {p: (0, float("inf")), q: (0, 1)}, "infinite"),
        (sympy.Le(p, 1), {p: (0, 1), q: (0, 1)}, "does not use"),
        (p + q, {p: (0, 1), q: (0, 1)}, "relational"),
        (sympy.Le(p, q), {p: (0, 1), q: "0..1"}, "range of q"),
    ],
)
def test_malformed_claims_raise_clear_errors(statement, domain, message):
    with pytest.raises(ValueError, match=message):
        verify(statement, domain)


def test_domain_keeps_open_and_closed_ends():
    d = Domain({"p": (0.01, 0.99), "q": sympy.Interval.Lopen(0, 1)})
    assert d.describe() == "p ∈ [1/100, 99/100], q ∈ (0, 1]"
    # an open end at a singularity: x log x >= -1/e on (0, 1); Arb cannot close the box
    # at 0, sampling never evaluates there, and the verdict is honest
    v = verify(sympy.Ge(p * log(p), -1 / sympy.E), {p: (0, 1, True, True)}, budget=3)
    assert v.status in ("consistent", "certified")
    if v.status == "certified":  # only possible if Arb closed every box, 0 included
        pytest.fail("a box touching log(0) cannot be certified")


def test_monte_carlo_expectation_and_rate():
    def expo(rng, size):
        return rng.exponential(1.0, size)

    ok = ExpectationClaim("mean", expo, target=1.0, relation="eq", n=200_000, source="test",
                          expected="consistent").check()  # fmt: skip
    assert ok.status == "consistent"
    bad = ExpectationClaim("mean_le", expo, target=0.9, relation="le", n=200_000, source="test",
                           expected="violated").check()  # fmt: skip
    assert bad.status == "violated"
    assert bad.counterexample["recheck_seed"] != bad.counterexample["seed"]

    def sq_mean(rng, n, size):  # E[(mean of n standard normals)^2] = 1/n exactly
        return rng.standard_normal((size, n)).mean(axis=1) ** 2

    kw = {"ns": [10, 20, 40, 80, 160], "reps": 4000, "source": "test"}
    right = RateClaim("rate", sq_mean, slope=-1.0, tol=0.05, expected="consistent", **kw).check()
    assert right.status == "consistent"
    wrong = RateClaim("rate", sq_mean, slope=-0.5, tol=0.05, expected="violated", **kw).check()
    assert wrong.status == "violated"


def test_strict_inequality_fails_where_the_sides_meet():
    # p^2 + q^2 > 2pq is false exactly on p = q; sampling on the corners hits it
    v = verify(sympy.Gt(p**2 + q**2, 2 * p * q), BOX, engines=("sampling",))
    assert v.status == "violated"
    cx = {k: sympy.Rational(s) for k, s in v.counterexample.items()}
    assert cx["p"] == cx["q"]
    assert v.counterexample_ball == "0 (exact)"
    assert (p**2 + q**2 - 2 * p * q).subs({p: cx["p"], q: cx["q"]}) == 0


def test_precision_context_is_restored_after_verify():
    mpmath.mp.dps = 15
    verify(sympy.Le(KL2, log(100)), BOX, budget=5)
    assert mpmath.mp.dps == 15
    assert flint.ctx.prec == 53
    assert np.isfinite(1.0)
