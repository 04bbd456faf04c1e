r"""Independent mpmath references for the divergence kernels (50 digits plus guard digits).

Computed directly from the generator's definition :math:`D_f(P\|Q) = \sum_i q_i f(p_i/q_i)`
with ``f`` evaluated by mpmath from the sympy expression ``fd.f`` (never from the kernels'
element forms), softmax computed in mpmath from the *exact* floats the kernel saw, and the
zero-mass rules from ``fd.f_at_zero`` / ``fd.slope_at_infinity``. Gradients come from the
DESIGN.md formula evaluated at high precision with the raw :math:`g = f - u f'` (no shift,
no rewrite), and independently from central differences of the reference loss.

Precision lives in ``mpmath.workdps`` contexts; every function returns mpf values (or
lists of them) that the tests convert with ``float``.
"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import sympy

from theory import u  # noqa: F401  (re-exported for the tests)

DPS = 50
GUARD = 20


@functools.lru_cache(maxsize=256)
def _mp_functions(fd):
    """f, f' and g = f - u f' of ``fd`` as mpmath callables, with the zero-mass limits."""
    f = sympy.lambdify(u, fd.f, modules="mpmath")
    df_expr = sympy.diff(fd.f, u)
    df = sympy.lambdify(u, df_expr, modules="mpmath")
    f0 = fd.f_at_zero
    slope = fd.slope_at_infinity
    # lim_{u -> inf} (f(u)/u - f'(u)): the weight of p in q*g where q = 0
    kappa = sympy.limit(fd.f / u - df_expr, u, sympy.oo)
    # lim_{u -> 0} u f'(u): enters g(0+) = f(0+) - lim u f'(u)
    udf0 = sympy.limit(u * df_expr, u, 0, "+")
    return f, df, _mpc(f0), _mpc(slope), _mpc(kappa), _mpc(udf0)


def _mpc(value):
    if value is sympy.oo:
        return mpmath.inf
    if value is -sympy.oo:
        return mpmath.ninf
    return mpmath.mpf(sympy.N(value, DPS + GUARD))


def _exact(x) -> list:
    """Exact mpf values of a float row (``-inf`` kept)."""
    return [mpmath.mpf(float(v)) if np.isfinite(v) else mpmath.ninf for v in np.asarray(x)]


def softmax(row, temperature=1.0) -> list:
    """Probabilities of ``row`` (exact floats / temperature), zeros where the logit is -inf."""
    with mpmath.workdps(DPS + GUARD):
        xs = _exact(row)
        tem = mpmath.mpf(float(temperature))
        fin = [x / tem for x in xs if x != mpmath.ninf]
        m = max(fin)
        es = [mpmath.exp(x / tem - m) if x != mpmath.ninf else mpmath.mpf(0) for x in xs]
        s = mpmath.fsum(es)
        return [e / s for e in es]


def divergence(fd, p, q) -> mpmath.mpf:
    """:math:`\\sum_i q_i f(p_i/q_i)` with 0·f(0/0) = 0, q f(0/q) = q f(0+), 0·f(p/0) = p f'(∞)."""
    f, _, f0, slope, _, _ = _mp_functions(fd)
    with mpmath.workdps(DPS + GUARD):
        terms = []
        for pi, qi in zip(p, q, strict=True):
            pi, qi = mpmath.mpf(pi), mpmath.mpf(qi)
            if pi == 0 and qi == 0:
                continue
            if qi == 0:
                terms.append(pi * slope)
            elif pi == 0:
                terms.append(qi * f0)
            else:
                terms.append(qi * f(pi / qi))
        if any(mpmath.isinf(x) for x in terms):
            return mpmath.inf
        return +mpmath.fsum(terms)


def from_logits(fd, t_row, s_row, temperature=1.0):
    """Reference ``(D, grad_student, grad_teacher)`` for one row pair (w.r.t. raw logits).

    Gradients: :math:`\\partial D/\\partial b_j = q_j(g_j - \\sum_i q_i g_i)/T` and
    :math:`\\partial D/\\partial a_j = p_j(f'(r_j) - \\sum_i p_i f'(r_i))/T`, with the limits
    of the terms where a probability is 0 (``None`` for a gradient that is undefined
    because a needed limit is infinite).
    """
    f, df, f0, slope, kappa, udf0 = _mp_functions(fd)
    p = softmax(t_row, temperature)
    q = softmax(s_row, temperature)
    d = divergence(fd, p, q)
    with mpmath.workdps(DPS + GUARD):
        tem = mpmath.mpf(float(temperature))
        qg, ph = [], []
        for pi, qi in zip(p, q, strict=True):
            if pi == 0 and qi == 0:
                qg.append(mpmath.mpf(0))
                ph.append(mpmath.mpf(0))
            elif qi == 0:
                qg.append(pi * kappa)
                ph.append(pi * slope)
            elif pi == 0:
                qg.append(qi * (f0 - udf0))
                ph.append(qi * udf0)
            else:
                r = pi / qi
                qg.append(qi * (f(r) - r * df(r)))
                ph.append(pi * df(r))
        gs = _centre(qg, q, tem)
        gt = _centre(ph, p, tem)
    return d, gs, gt


def _centre(terms, weights, tem):
    if any(mpmath.isinf(x) or mpmath.isnan(x) for x in terms):
        return None
    # sum(weights) is 1 up to the working precision; dividing by it keeps the exact
    # zero of a constant g (identical rows)
    m = mpmath.fsum(terms) / mpmath.fsum(weights)
    return [(x - w * m) / tem for x, w in zip(terms, weights, strict=True)]


def central_difference(fd, t_row, s_row, *, side: str, h="1e-25"):
    """:math:`\\partial D/\\partial(\\text{logit}_j)` by central differences at 50 digits."""
    t = _exact(t_row)
    s = _exact(s_row)
    out = []
    with mpmath.workdps(DPS + GUARD + 30):
        hh = mpmath.mpf(h)
        for j in range(len(t)):
            vals = []
            for sign in (1, -1):
                tt, ss = list(t), list(s)
                if side == "student":
                    ss[j] = ss[j] + sign * hh
                else:
                    tt[j] = tt[j] + sign * hh
                vals.append(divergence(fd, _softmax_mp(tt), _softmax_mp(ss)))
            out.append((vals[0] - vals[1]) / (2 * hh))
    return out


def _softmax_mp(xs):
    fin = [x for x in xs if x != mpmath.ninf]
    m = max(fin)
    es = [mpmath.exp(x - m) if x != mpmath.ninf else mpmath.mpf(0) for x in xs]
    s = mpmath.fsum(es)
    return [e / s for e in es]


def to_float(values) -> np.ndarray:
    """mpf values as a float64 array (inf kept)."""
    return np.array([float(v) for v in values], dtype=np.float64)


# ------------------------------------------------------------------ Arb (python-flint)
# The same reference for long rows (the 128256-wide peaky row, the 41×1271 shape) with
# certified balls at 300 bits (~90 digits): mpmath at 50 digits would take minutes there.
ARB_PREC = 300


@functools.lru_cache(maxsize=64)
def _arb_functions(fd):
    import flint

    table = {"log": lambda x: x.log(), "exp": lambda x: x.exp(), "sqrt": lambda x: x.sqrt(),
             "mpf": flint.arb, "Abs": abs, "sign": lambda x: flint.arb(x.sgn())}
    f = sympy.lambdify(u, fd.f, modules=[table, "mpmath"])
    df = sympy.lambdify(u, sympy.diff(fd.f, u), modules=[table, "mpmath"])
    return f, df


def from_logits_arb(fd, t_row, s_row):
    """``(D, grad_student)`` as floats (mid-points of balls whose radius is checked to be
    below 1e-30 relative or 1e-60 absolute), for rows of finite logits; ``fd.f`` in Arb."""
    import flint

    old = flint.ctx.prec
    flint.ctx.prec = ARB_PREC
    try:
        f, df = _arb_functions(fd)
        t = [flint.arb(float(x)) for x in np.asarray(t_row, dtype=np.float64)]
        s = [flint.arb(float(x)) for x in np.asarray(s_row, dtype=np.float64)]
        mt, ms = max(float(x) for x in t_row), max(float(x) for x in s_row)
        et = [(x - mt).exp() for x in t]
        es = [(x - ms).exp() for x in s]
        st, ss = sum(et), sum(es)
        p = [e / st for e in et]
        q = [e / ss for e in es]
        terms = [qi * f(pi / qi) for pi, qi in zip(p, q, strict=True)]
        d = sum(terms)
        qg = []
        for pi, qi in zip(p, q, strict=True):
            r = pi / qi
            qg.append(qi * (f(r) - r * df(r)))
        m = sum(qg) / sum(q)
        grad = [x - w * m for x, w in zip(qg, q, strict=True)]
        for val in [d, *grad]:
            assert val.rad() <= 1e-30 * abs(val.mid()) + flint.arb("1e-60"), val
        return float(d.mid()), np.array([float(g.mid()) for g in grad])
    finally:
        flint.ctx.prec = old
