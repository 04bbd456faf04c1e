"""Generators at their edges: conjugates in closed form, f(1) exactly 0, zero-mass limits of kinks."""

from __future__ import annotations

import mpmath
import pytest
import sympy

from theory import fdiv, t, u


@pytest.mark.parametrize(("name", "params", "want"), [
    # textbook conjugates (Nguyen, Wainwright & Jordan 2010, Table 1)
    ("reverse_kl", {}, lambda x: mpmath.log(-1 / x) - 1),
    ("alpha", {"alpha": 1}, lambda x: -mpmath.log(1 - x)),
])
def test_conjugate_has_a_real_closed_form(name, params, want):
    conj = fdiv.get(name, **params).conjugate
    assert conj.expr is not None and not conj.expr.has(sympy.I)
    for x in (-7.5, -1, -1e-3):
        val = sympy.N(conj.expr.subs(t, sympy.Float(x)), 30)
        assert val.is_real
        assert abs(float(val) - float(want(mpmath.mpf(x)))) <= 1e-13 * (1 + abs(float(val)))


def test_generator_with_tiny_nonzero_f1_is_rejected():
    with pytest.raises(ValueError, match=r"f\(1\)"):
        fdiv.FDivergence(u * sympy.log(u) + sympy.Float("1e-60"))
    # an exact constant that is zero but not syntactically so still passes
    fdiv.FDivergence(u * sympy.log(u) + sympy.log(6) - sympy.log(2) - sympy.log(3))


def test_max_generator_has_its_zero_mass_limits():
    d = fdiv.FDivergence.from_string("max(u,1)-1")
    # by hand: f = 0 on (0, 1], u - 1 beyond: f(0+) = 0, f(u)/u -> 1, f'(0+) = 0
    assert d.f_at_zero == 0 and d.slope_at_infinity == 1 and d.df_at_zero == 0
    assert not d.strictly_convex


def test_policy_map_at_a_decimal_parameter_answers_quickly():
    # sympy's solve ran for minutes on js at beta = 3/10 (the REPL path of issue 19 item 7);
    # the closed-form search is bounded, the numeric inverse of f' serves such members
    import time

    d = fdiv.get("js", beta=0.3)
    start = time.process_time()
    inv = d.policy_map
    conj = d.conjugate
    assert time.process_time() - start < 4.0
    if inv is not None:  # whatever is returned is the inverse of f'
        for x in (sympy.Rational(1, 3), sympy.Integer(2)):
            assert abs(sympy.N(inv.subs(t, d.df.subs(u, x)) - x, 30)) < 1e-25
    assert conj.domain is not None
