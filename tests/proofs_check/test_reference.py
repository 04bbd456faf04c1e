"""proofs_check.reference: two-precision mpmath values, Arb balls, divergences."""

import flint
import mpmath
import pytest
import sympy
from sympy.codegen.cfunctions import log1p

from proofs_check import reference
from theory import u

x = sympy.Symbol("x", positive=True)


def test_evaluate_matches_an_independent_mpmath_computation():
    got = reference.evaluate(u * sympy.log(u), {u: "0.3"}, dps=50)
    with mpmath.workdps(80):
        want = mpmath.mpf(3) / 10 * mpmath.log(mpmath.mpf(3) / 10)
        assert abs(got - want) < mpmath.mpf(10) ** -45


def test_string_inputs_are_exact_decimals_and_floats_exact_binaries():
    # "0.1" is 1/10 exactly: 10*x - 1 vanishes; the float 0.1 is not 1/10
    assert reference.evaluate(10 * x - 1, {x: "0.1"}, dps=40, atol=mpmath.mpf(10) ** -60) == 0
    got = reference.evaluate(10 * x - 1, {x: 0.1}, dps=40)
    with mpmath.workdps(60):
        want = 10 * mpmath.mpf(0.1) - 1  # exact binary value of the float, in 60 digits
        assert abs(got - want) <= abs(want) * mpmath.mpf(10) ** -35
    assert got > 0


def test_ill_conditioned_evaluation_is_rejected():
    # log(1 + x)/x at x = 1e-20 loses 20 digits to the rounding of 1 + x
    with pytest.raises(reference.IllConditionedError, match="disagree"):
        reference.evaluate(sympy.log(1 + x) / x, {x: "1e-20"}, dps=15)
    # the well-conditioned form of the same function passes and is right
    good = reference.evaluate(log1p(x) / x, {x: "1e-20"}, dps=30)
    with mpmath.workdps(50):
        want = 1 - mpmath.mpf("0.5e-20") + mpmath.mpf("1e-40") / 3
        assert abs(good - want) < mpmath.mpf(10) ** -28


def test_precision_does_not_leak():
    mpmath.mp.dps = 15
    before_flint = flint.ctx.prec
    reference.evaluate(sympy.exp(x), {x: "0.5"}, dps=90)
    reference.ball(sympy.exp(x), {x: "0.5"}, dps=90)
    assert mpmath.mp.dps == 15
    assert flint.ctx.prec == before_flint


def test_the_precision_fixture_restores_both_libraries():
    # drive the autouse fixture of tests/conftest.py by hand: a test body that leaves both
    # libraries at a high precision must find them reset when the fixture finishes
    import conftest

    gen = conftest._reset_precision.__wrapped__()
    next(gen)
    mpmath.mp.dps = 77
    flint.ctx.prec = 333
    with pytest.raises(StopIteration):
        next(gen)
    assert (mpmath.mp.dps, mpmath.mp.prec, flint.ctx.prec) == (15, 53, 53)


def test_ball_contains_the_reference_value():
    expr = sympy.sqrt(x) * sympy.log(1 + x) - sympy.exp(-x)
    b = reference.ball(expr, {x: "0.7"}, dps=40)
    v = reference.evaluate(expr, {x: "0.7"}, dps=60)
    with mpmath.workdps(60), reference.arb_precision(400):
        assert b.contains(flint.arb(mpmath.nstr(v, 55)))
        assert b.rad() < flint.arb(10) ** -35


def test_ball_of_piecewise_takes_the_union_when_undecided():
    pw = sympy.Piecewise((x, x < 1), (2 * x, True))
    assert reference.ball(pw, {x: "0.5"}).contains(flint.arb("0.5"))
    assert reference.ball(pw, {x: "1.5"}).contains(flint.arb(3))


def test_divergence_against_closed_forms():
    kl = reference.divergence("kl", ["1/2", "1/2"], ["1/4", "3/4"], dps=40)
    with mpmath.workdps(60):
        want = (mpmath.log(2) + mpmath.log(mpmath.mpf(2) / 3)) / 2
        assert abs(kl - want) < mpmath.mpf(10) ** -35
    # disjoint supports: KL is +inf (q = 0 < p), JS (beta = 1/2) is log 2 exactly
    assert reference.divergence("kl", [1, 0], [0, 1]) == mpmath.inf
    js = reference.divergence("js", [1, 0], [0, 1], dps=40)
    with mpmath.workdps(60):
        assert abs(js - mpmath.log(2)) < mpmath.mpf(10) ** -35
    b = reference.divergence_ball("js", [1, 0], [0, 1], dps=40)
    with reference.arb_precision(300):
        assert b.contains(flint.arb(2).log())


def test_divergence_rejects_invalid_distributions():
    with pytest.raises(ValueError, match="negative"):
        reference.divergence("kl", [1.5, -0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="sums to"):
        reference.divergence("kl", [0.5, 0.6], [0.5, 0.5])
    with pytest.raises(ValueError, match="same length"):
        reference.divergence("kl", [1], [0.5, 0.5])


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="no value given for symbol"):
        reference.evaluate(x + u, {x: 1})
    with pytest.raises(TypeError, match="sympy expression"):
        reference.evaluate("x + 1", {})
    with pytest.raises(ValueError, match="not real"):
        reference.evaluate(sympy.sqrt(x - 2), {x: 1}, dps=20)
