r"""Launchers: sizes, layout, chunking and zero-mass branches around the generated code.

The mathematics lives in :mod:`numeric._forms` (sympy) and is turned into numpy code by
:mod:`numeric.codegen`; this layer decides *where* each generated expression is evaluated:

Rows are processed in chunks that fit the cache (:data:`CHUNK_ELEMENTS`), in float64
(whatever the input dtype; the result is rounded to it at the end).

From logits, per chunk of rows (two log-sum-exps, then one fused element pass):

1. :math:`z = x - \max x`, :math:`e = \exp z`, :math:`S = \sum e` for both inputs; then
   :math:`a = z_t - \log S_t`, :math:`b = z_s - \log S_s`, :math:`\ell = a - b`,
   :math:`p = e_t/S_t`, :math:`q = e_s/S_s` (one exp per element and input).
2. *fast path*: the ``lo`` branches of the loss / gradient forms at every element,
   the row sums :math:`D = \sum q F`, :math:`m = \sum q\hat g`, :math:`m_t = \sum p\hat h`,
   and :math:`\nabla_b = q\hat g - q\,m`, :math:`\nabla_a = p\hat h - p\,m_t`.
3. rows whose sums are not finite (an exponential overflowed, a ``-inf`` logit, an
   underflow to 0·∞) are recomputed by the *careful path*: ``lo`` where
   :math:`\ell \le 0`, ``hi`` where :math:`\ell > 0`, and the symbolic zero-mass limits
   where a log-probability is ``-inf`` — each branch evaluated only where it holds.
"""

from __future__ import annotations

import numpy as np

from numeric._compile import compile_numpy
from numeric._forms import ELL, DivergenceForms, P, Q

__all__ = ["CHUNK_ELEMENTS", "divergence_rows", "from_logits_rows"]

#: Elements per chunk of rows (a few hundred KiB of float64 per temporary).
CHUNK_ELEMENTS = 1 << 15

_NAMES = ("loss", "grad_student", "grad_teacher")


def _elements(fm: DivergenceForms, which: tuple[str, ...]):
    return [getattr(fm, w) for w in which]


def _lo_fn(fm: DivergenceForms, which: tuple[str, ...]):
    return compile_numpy([e.lo for e in _elements(fm, which)], [ELL, Q],
                         name=f"{_slug(fm)}_lo_{'_'.join(which)}")


def _hi_fn(fm: DivergenceForms, which: tuple[str, ...]):
    return compile_numpy([e.hi for e in _elements(fm, which)], [ELL, P],
                         name=f"{_slug(fm)}_hi_{'_'.join(which)}")


def _slug(fm: DivergenceForms) -> str:
    name = getattr(fm.fdiv, "name", "f")
    return "".join(c if c.isalnum() else "_" for c in str(name))[:40]


def _const(value) -> float:
    import sympy

    if value is sympy.oo:
        return np.inf
    if value is -sympy.oo:
        return -np.inf
    return float(value)


def _careful_terms(fm, which, a, b, p, q):
    """Element terms of ``which`` with every branch evaluated only where it holds.

    ``a, b`` are log-weights (``-inf`` = zero mass), ``p = exp(a)``, ``q = exp(b)``.
    Returns one float64 array per quantity, shaped like ``a``.
    """
    elements = _elements(fm, which)
    out = [np.zeros(a.shape, dtype=np.float64) for _ in which]
    a_zero = np.isneginf(a)
    b_zero = np.isneginf(b)
    both = a_zero & b_zero
    only_p0 = a_zero & ~both
    only_q0 = b_zero & ~both
    live = ~(a_zero | b_zero)
    for k, el in enumerate(elements):
        c0, cinf = _const(el.at_p_zero), _const(el.at_q_zero)
        if only_p0.any():
            w = q[only_p0]
            out[k][only_p0] = c0 if np.isinf(c0) else w * c0
        if only_q0.any():
            w = p[only_q0]
            out[k][only_q0] = cinf if np.isinf(cinf) else w * cinf
    if live.any():
        ell = a[live] - b[live]
        lo = ell <= 0
        vals = [np.empty(ell.shape) for _ in which]
        if lo.any():
            res = _lo_fn(fm, which)(ell[lo], q[live][lo])
            for k, r in enumerate(res):
                vals[k][lo] = r
        hi = ~lo
        if hi.any():
            res = _hi_fn(fm, which)(ell[hi], p[live][hi])
            for k, r in enumerate(res):
                vals[k][hi] = r
        for k in range(len(which)):
            out[k][live] = vals[k]
    return out


def _shifted_exp(x):
    """``z = x - max(x)``, ``e = exp(z)``, ``S = sum(e)`` per row of a float chunk (float64)."""
    z = np.subtract(x, np.max(x, axis=-1, keepdims=True), dtype=np.float64)
    e = np.exp(z)
    return z, e, np.sum(e, axis=-1, keepdims=True)


def _check_logits(x, name):
    bad = np.isnan(x) | np.isposinf(x)
    if bad.any():
        raise ValueError(f"{name} contains NaN or +inf; logits must be finite or -inf (masked)")
    dead = np.all(np.isneginf(x), axis=-1)
    if dead.any():
        raise ValueError(
            f"{name} has a row whose logits are all -inf (no probability mass); "
            "drop such rows with mask="
        )


def from_logits_rows(fm: DivergenceForms, xt, xs, *, student: bool, teacher: bool,
                     gs_out=None, gt_out=None, grad_scale: float = 1.0):
    """Divergence per row (float64) and optionally gradients, for 2-D float arrays.

    ``xt``, ``xs``: (rows, V) teacher and student logits already divided by the
    temperature. Gradients (w.r.t. these scaled logits, times ``grad_scale``) are written
    into ``gs_out`` / ``gt_out`` (arrays of the caller's dtype) when given.
    """
    which = ("loss",) + (("grad_student",) if student else ()) + (
        ("grad_teacher",) if teacher else ())
    n, v = xt.shape
    loss = np.empty(n, dtype=np.float64)
    step = max(1, CHUNK_ELEMENTS // max(v, 1))
    lo_all = _lo_fn(fm, which)
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        with np.errstate(all="ignore"):
            zt, p, st = _shifted_exp(xt[i0:i1])
            zs, q, ss = _shifted_exp(xs[i0:i1])
            lst, lss = np.log(st), np.log(ss)
            ell = zt - zs
            ell -= lst - lss
            q /= ss
            if teacher:
                p /= st
            terms = list(lo_all(ell, q))
            sums = [np.sum(t, axis=-1) for t in terms]
        ok = np.isfinite(sums[0])
        for s_ in sums[1:]:
            ok &= np.isfinite(s_)
        if not ok.all():
            bad = np.flatnonzero(~ok)
            _check_logits(xt[i0:i1][bad], "teacher_logits")
            _check_logits(xs[i0:i1][bad], "student_logits")
            if not teacher:
                p = p.copy()
                p[bad] /= st[bad]
            with np.errstate(all="ignore"):
                fixed = _careful_terms(fm, which, zt[bad] - lst[bad], zs[bad] - lss[bad],
                                       p[bad], q[bad])
            terms = [np.array(t, dtype=np.float64, copy=True) for t in terms]
            for k in range(len(which)):
                terms[k][bad] = fixed[k]
                sums[k][bad] = np.sum(fixed[k], axis=-1)
        loss[i0:i1] = np.maximum(sums[0], 0.0)
        k = 1
        for want, weight, out in ((student, q, gs_out), (teacher, p, gt_out)):
            if not want:
                continue
            m = sums[k][:, None]
            with np.errstate(invalid="ignore"):
                g = weight * m
                np.subtract(terms[k], g, out=g)
                if grad_scale != 1.0:
                    g *= grad_scale
            g[~np.isfinite(m[:, 0])] = np.nan
            out[i0:i1] = g
            k += 1
    return loss


def divergence_rows(fm: DivergenceForms, p, q):
    r"""Row divergences :math:`\sum_i q_i f(p_i/q_i)` of 2-D float64 nonnegative arrays.

    Unnormalised rows are allowed: the standardised terms are summed and the exact
    correction :math:`f'(1)\sum_i (p_i - q_i)` added.
    """
    n, v = p.shape
    out = np.empty(n, dtype=np.float64)
    df1 = float(fm.df_at_one)
    step = max(1, CHUNK_ELEMENTS // max(v, 1))
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        cp, cq = p[i0:i1], q[i0:i1]
        with np.errstate(divide="ignore"):
            a, b = np.log(cp), np.log(cq)
        (terms,) = _careful_terms(fm, ("loss",), a, b, cp, cq)
        total = np.sum(terms, axis=-1)
        if df1 != 0.0:
            total = total + df1 * np.sum(cp - cq, axis=-1)
        out[i0:i1] = total
    return out
