"""Cauchy–Schwarz divergence claims: the Gaussian closed form, and a known-false comparison.

Notation: p = N(m1, s1²), q = N(m2, s2²); ``theory.cauchy_schwarz.gaussian`` is the closed form
D_CS = (m1 − m2)²/(s1² + s2²) + log((s1² + s2²)/(2 s1 s2)).
"""

from __future__ import annotations

import sympy
from sympy import Rational, exp, log, pi, sqrt

from proofs_check.catalog import _meta, register
from proofs_check.claims import Claim

_x = sympy.Symbol("x", real=True)
_m1, _m2 = sympy.symbols("m1 m2", real=True)
_s1, _s2 = sympy.symbols("s1 s2", positive=True)
_DOM = {_m1: (-1, 1), _m2: (-1, 1), _s1: (0.5, 2), _s2: (0.5, 2)}


def _closed():
    from theory import cauchy_schwarz

    return cauchy_schwarz.gaussian(_m1, _s1**2, _m2, _s2**2)


@register("cs_gaussian_closed_form", tags=("cauchy-schwarz", "gaussian", "integral", "sampled"),
          expected="consistent",
          source="Yu et al. (ICLR 2024), CS divergence D_CS = −log((∫pq)²/(∫p² ∫q²)); Gaussian "
          "product integral N(m1; m2, S1 + S2), e.g. Petersen & Pedersen, Matrix Cookbook §8.1.8",
          description="theory.cauchy_schwarz.gaussian vs mpmath quadrature of the three integrals")
def _cs_gauss(e):
    p = exp(-((_x - _m1) ** 2) / (2 * _s1**2)) / (_s1 * sqrt(2 * pi))
    q = exp(-((_x - _m2) ** 2) / (2 * _s2**2)) / (_s2 * sqrt(2 * pi))

    def integral(f):
        return sympy.Integral(f, (_x, -sympy.oo, sympy.oo))

    direct = log(integral(p * p)) + log(integral(q * q)) - 2 * log(integral(p * q))
    return Claim(e.name, sympy.Eq(direct, _closed()), _DOM, **_meta(e),
                 options={"engines": ("sampling",), "n_points": 6, "dps": 25})


@register("cs_gaussian_ge_kl", tags=("cauchy-schwarz", "gaussian", "kl", "false"),
          expected="violated",
          source="known false: D_CS is symmetric and grows only logarithmically in the variance "
          "ratio, KL(N(m1,s1²)‖N(m2,s2²)) = log(s2/s1) + (s1² + (m1−m2)²)/(2 s2²) − 1/2 "
          "linearly; e.g. s1 = 1/2, s2 = 2, m1 = m2",
          description="D_CS(p‖q) ≥ KL(p‖q) for Gaussians (false)")
def _cs_ge_kl(e):
    kl = log(_s2 / _s1) + (_s1**2 + (_m1 - _m2) ** 2) / (2 * _s2**2) - Rational(1, 2)
    return Claim(e.name, sympy.Ge(_closed(), kl), _DOM, **_meta(e))
