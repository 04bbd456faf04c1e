r"""Taylor coefficients of an element form around ratio one, by power-series arithmetic.

Every per-element quantity :math:`X(u)` of a divergence kernel is evaluated near
:math:`u = 1` (:math:`|\ell| < \ell_s`, :math:`u = e^{\ell}`) by its Taylor polynomial
:math:`\sum_k c_k \ell^k` instead of its closed form, whose terms cancel there (the loss
vanishes to second order at :math:`\ell = 0`). The coefficients depend on the family's
parameter values, so they are computed at run time, once per value, by truncated
power-series arithmetic over the sympy expression tree in mpmath at :data:`SERIES_DPS`
digits: exact up to the final rounding, whatever the parameter (1e-12 from an endpoint
included), with no symbolic series expansion.

:func:`taylor` returns the float64 coefficients and the radius :math:`\ell_s` on which the
polynomial is accurate to about one unit in the last place; ``None`` when the expression is
not analytic at :math:`\ell = 0` (``Abs``, ``sign``), where the closed form is used
everywhere.

>>> import sympy
>>> ell = sympy.Symbol("ell", real=True)
>>> c, radius = taylor(sympy.exp(ell) * ell - sympy.exp(ell) + 1, ell, {})   # KL: u log u - u + 1
>>> [round(x, 12) for x in c[:4]], radius, len(c)
([0.0, 0.0, 0.5, 0.333333333333], 0.5, 18)
"""

from __future__ import annotations

import mpmath
import sympy

__all__ = ["SERIES_DPS", "SERIES_TERMS", "SERIES_RADIUS", "taylor", "NotAnalytic"]

#: Working precision of the coefficient computation (digits).
SERIES_DPS = 40
#: Number of coefficients :math:`c_0 \ldots c_{K-1}`.
SERIES_TERMS = 24
#: The largest :math:`|\ell|` on which the polynomial replaces the closed form.
SERIES_RADIUS = 0.5


class NotAnalytic(ValueError):
    """The expression has a kink or a singularity at the expansion point."""


def _mul(a, b, n):
    return [mpmath.fsum(a[i] * b[k - i] for i in range(k + 1)) for k in range(n)]


def _exp(a, n):
    # b = exp(a): b' = a' b  ->  k b_k = sum_{j=1..k} j a_j b_{k-j}
    b = [mpmath.exp(a[0])] + [mpmath.mpf(0)] * (n - 1)
    for k in range(1, n):
        b[k] = mpmath.fsum(j * a[j] * b[k - j] for j in range(1, k + 1)) / k
    return b


def _log(a, n):
    # b = log(a): a b' = a'  ->  k a_0 b_k = k a_k - sum_{j=1..k-1} j b_j a_{k-j}
    if a[0] <= 0:
        raise NotAnalytic("log of a series that does not start positive")
    b = [mpmath.log(a[0])] + [mpmath.mpf(0)] * (n - 1)
    for k in range(1, n):
        b[k] = (k * a[k] - mpmath.fsum(j * b[j] * a[k - j] for j in range(1, k))) / (k * a[0])
    return b


def _pow(a, e, n):
    # b = a**e, e a number: a b' = e a' b  ->  k a_0 b_k = sum_j (e j - (k - j)) a_j b_{k-j}
    if a[0] == 0:
        if e == int(e) and e >= 0:
            out = [mpmath.mpf(1)] + [mpmath.mpf(0)] * (n - 1)
            for _ in range(int(e)):
                out = _mul(out, a, n)
            return out
        raise NotAnalytic("power of a series that starts at 0")
    if a[0] < 0 and e != int(e):
        raise NotAnalytic("non-integer power of a negative series")
    b = [a[0] ** e] + [mpmath.mpf(0)] * (n - 1)
    for k in range(1, n):
        b[k] = mpmath.fsum((e * j - (k - j)) * a[j] * b[k - j] for j in range(1, k + 1)) / (k * a[0])
    return b


def _series(expr, var, values, n):
    """Coefficient list of ``expr`` around ``var = 0`` (mpmath, current precision)."""
    if expr == var:
        return [mpmath.mpf(0), mpmath.mpf(1)] + [mpmath.mpf(0)] * (n - 2)
    if expr.is_Symbol:
        if expr not in values:
            raise ValueError(f"no value for the parameter {expr}")
        return [mpmath.mpf(values[expr])] + [mpmath.mpf(0)] * (n - 1)
    if expr.is_number:
        val = sympy.N(expr, mpmath.mp.dps + 5)
        if not val.is_real:
            raise NotAnalytic(f"non-real constant {expr}")
        return [mpmath.mpf(val)] + [mpmath.mpf(0)] * (n - 1)
    if expr.is_Add:
        parts = [_series(a, var, values, n) for a in expr.args]
        return [mpmath.fsum(col) for col in zip(*parts, strict=True)]
    if expr.is_Mul:
        out = None
        for a in expr.args:
            s = _series(a, var, values, n)
            out = s if out is None else _mul(out, s, n)
        return out
    if expr.is_Pow:
        base, e = expr.args
        if e.free_symbols & {var}:
            return _exp(_series(e * sympy.log(base), var, values, n), n)
        ev = e.subs(values) if e.free_symbols else e
        return _pow(_series(base, var, values, n), mpmath.mpf(sympy.N(ev, mpmath.mp.dps + 5)), n)
    if isinstance(expr, sympy.exp):
        return _exp(_series(expr.args[0], var, values, n), n)
    if isinstance(expr, sympy.log):
        return _log(_series(expr.args[0], var, values, n), n)
    name = type(expr).__name__
    if name in ("log1p", "expm1", "softplus", "logaddexp", "log1mexp", "xlogy", "xlog1py"):
        return _series(expr.as_elementary(), var, values, n)
    raise NotAnalytic(f"{name} has no power series here")


def taylor(expr: sympy.Expr, var: sympy.Symbol, values: dict, *, terms: int = SERIES_TERMS,
           radius: float = SERIES_RADIUS):
    """Float64 Taylor coefficients of ``expr`` in ``var`` at 0, and the radius of use.

    Parameters
    ----------
    expr : sympy.Expr
        In ``var`` and the parameter symbols of ``values``.
    values : dict
        ``{symbol: number}`` (exact or float) for every other free symbol.
    terms, radius : optional
        Number of coefficients and the wished radius; the radius is halved until the
        tail estimate :math:`|c_{K-1}| r^{K-1} + |c_{K-2}| r^{K-2}` is below
        :math:`10^{-18}` of the leading term's size at :math:`r`.

    Returns
    -------
    (list of float, float) or None
        ``None`` when ``expr`` is not analytic at 0 (the closed form is used there).
    """
    vals = {k: (sympy.Rational(v) if isinstance(v, float) else v) for k, v in values.items()}
    try:
        with mpmath.workdps(SERIES_DPS):
            c = _series(sympy.sympify(expr), var, vals, terms)
            # the leading coefficient, relative to the largest: a form derived near a special
            # parameter value has all its coefficients of the size of that small parameter
            # (JS at beta = 1e-30: 5e-31 ell^2 + ...), which an absolute threshold took for
            # zeros (the near-1 terms then vanished: 3e-4 relative error in the row)
            big = max(abs(x) for x in c)
            lead = next((k for k, x in enumerate(c) if abs(x) > mpmath.mpf(10) ** -30 * big),
                        None) if big > 0 else None
            r = mpmath.mpf(radius)
            if lead is None:
                return [0.0] * terms, float(r)
            while r > mpmath.mpf(1) / 64:
                size = abs(c[lead]) * r**lead
                tail = abs(c[-1]) * r ** (terms - 1) + abs(c[-2]) * r ** (terms - 2)
                if tail <= mpmath.mpf(10) ** -18 * size:
                    # as few terms as the radius needs (the kernels' Horner cost)
                    keep = terms
                    while keep > lead + 2 and abs(c[keep - 1]) * r ** (keep - 1) \
                            <= mpmath.mpf(10) ** -19 * size:
                        keep -= 1
                    return [float(x) for x in c[:keep]], float(r)
                r /= 2
            return None
    except (NotAnalytic, ZeroDivisionError, TypeError, ValueError, OverflowError):
        return None
