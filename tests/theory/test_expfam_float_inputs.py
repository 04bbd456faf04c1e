"""Exponential-family closed forms with float parameters, against mpmath quadrature and sums."""

from __future__ import annotations

import mpmath
import pytest
import sympy

from theory import expfam, fdiv


def test_gamma_alpha_divergence_with_float_parameters_is_numeric_and_right():
    # reference: mpmath.quad of
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
