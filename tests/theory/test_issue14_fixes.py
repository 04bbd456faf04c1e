"""Issue 14 items 5 and 7: regressions against independent references (mpmath, by hand)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy

import numeric
from proofs_check import _cli_derive
from proofs_check.cli import main
from theory import expfam, fdiv, t, u


def test_gamma_alpha_divergence_with_float_parameters_is_numeric_and_right():
    # issue 14 item 5: MemoryError after 37 s before; reference: mpmath.quad of
    # q f(p/q) over the two Gamma densities (P first), at 30 digits
    pp = {"concentration": 3.7, "rate": 0.77}
    qq = {"concentration": 3.3, "rate": 1.72}
    got = expfam.get("gamma").f_divergence(fdiv.get("alpha", alpha="3/10"), pp, qq)
    al = mpmath.mpf(3) / 10
    with mpmath.workdps(30):
        def dens(x, k, b):
            k, b = mpmath.mpf(k), mpmath.mpf(b)
            return b**k * x ** (k - 1) * mpmath.exp(-b * x) / mpmath.gamma(k)

        def integrand(x):
            p, q = dens(x, 3.7, 0.77), dens(x, 3.3, 1.72)
            r = p / q
            return q * (r ** (1 - al) - (1 - al) * r - al) / (al * (al - 1))

        want = mpmath.quad(integrand, [0, 1, 5, 20, 80, mpmath.inf])
    assert isinstance(got, sympy.Float)
    assert abs(float(got) - float(want)) <= 1e-12 * abs(float(want))


def test_categorical_accepts_float_probabilities_off_by_ulps():
    probs = (0.1, 0.2, 0.7000000000000001)  # sums to 1 + 2**-52 in exact binary
    q = (0.3, 0.3, 0.4)
    got = expfam.get("categorical", num_classes=3).kl({"probs": probs}, {"probs": q})
    with mpmath.workdps(40):
        want = mpmath.fsum(mpmath.mpf(a) * mpmath.log(mpmath.mpf(a) / mpmath.mpf(b))
                           for a, b in zip(probs, q, strict=True))
    assert abs(float(sympy.N(got, 30)) - float(want)) <= 1e-14
    with pytest.raises(ValueError, match="sum to 1"):
        expfam.get("categorical", num_classes=3).kl({"probs": (0.5, 0.3, 0.3)}, {"probs": q})


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


def test_boolean_parameter_from_text():
    # the CLI hands --param values to fdiv.get as text
    params = _cli_derive._params(["beta=3/10", "normalized=True"])
    d = fdiv.get("js", **params)
    beta = sympy.Rational(3, 10)
    m = beta * u + 1 - beta
    want = (beta * u * sympy.log(u) - m * sympy.log(m)) / (beta * (1 - beta))
    assert sympy.simplify(d.f - want) == 0
    assert fdiv.get("js", normalized="false").f == fdiv.get("js").f
    with pytest.raises(ValueError, match="true or false"):
        fdiv.get("js", normalized="maybe")


def test_max_generator_has_its_zero_mass_limits():
    d = fdiv.FDivergence.from_string("max(u,1)-1")
    # by hand: f = 0 on (0, 1], u - 1 beyond: f(0+) = 0, f(u)/u -> 1, f'(0+) = 0
    assert d.f_at_zero == 0 and d.slope_at_infinity == 1 and d.df_at_zero == 0
    assert not d.strictly_convex


def test_risk_with_extreme_gamma_truth_is_a_clear_error(capsys):
    rc = main(["derive", "risk", "--family", "gamma", "--truth", "Gamma(1e300, 1e-300)"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc in (2, 3) and len(err) == 1 and err[0].startswith("divkit derive: error:")


@pytest.mark.parametrize("fn", [
    lambda x: numeric.divergence("kl", x, x),
    lambda x: numeric.divergence_from_logits("kl", x, x),
    lambda x: numeric.policy_from_reward("kl", x, x, beta=1.0),
])
def test_numeric_inputs_empty_or_complex(fn):
    with pytest.raises(ValueError, match="empty"):
        fn(np.zeros((0, 3)))
    with pytest.raises(TypeError, match="real"):
        fn(np.full((1, 3), 1 / 3 + 0j))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fdpo_rejects_non_finite(bad):
    z = np.zeros(2)
    with pytest.raises(ValueError, match="ref_logp_rejected must be finite"):
        numeric.fdpo_loss("kl", z, z, z, np.array([0.0, bad]), beta=0.1)
