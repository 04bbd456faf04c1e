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
from numeric._forms import ELL, LOG_P, LOG_Q, DivergenceForms, P, Q, log_weighted

__all__ = ["CHUNK_ELEMENTS", "divergence_rows", "from_logits_rows", "element_values",
           "check_logits"]

#: Elements per chunk of rows (a few hundred KiB of float64 per temporary).
CHUNK_ELEMENTS = 1 << 15

_NAMES = ("loss", "grad_student", "grad_teacher")


def _elements(fm: DivergenceForms, which: tuple[str, ...]):
    return [getattr(fm, w) for w in which]


_LA, _LB = LOG_P, LOG_Q


def _fn(fm: DivergenceForms, which: tuple[str, ...], branch: str):
    """The generated numpy function of ``which`` on ``branch``, taking the parameters last."""
    els = _elements(fm, which)
    theta = list(fm.symbols)
    if branch == "lo":
        exprs, args = [e.lo for e in els], [ELL, Q]
    elif branch == "hi":
        exprs, args = [e.hi for e in els], [ELL, P]
    elif branch in ("lo_log", "lo_exp"):
        exprs = [log_weighted(e.lo, Q, _LB, elementary=branch == "lo_exp") for e in els]
        args = [ELL, _LB]
    else:
        exprs = [log_weighted(e.hi, P, _LA, elementary=branch == "hi_exp") for e in els]
        args = [ELL, _LA]
    fn = compile_numpy(exprs, args + theta, name=f"{_slug(fm)}_{branch}_{'_'.join(e.name for e in els)}")
    return lambda x, w: fn(x, w, *fm.theta)


def _series_overwrite(fm, which, ell, weight, out, log_weight=False):
    """Replace the terms where ``|ell|`` is inside each element's series radius by
    ``weight * sum_k c_k ell^k`` (``exp(weight)`` when ``log_weight``), in place."""
    masks: dict = {}
    for k, el in enumerate(_elements(fm, which)):
        if el.series is None:
            continue
        coeffs, radius = el.series
        if radius not in masks:
            near = np.abs(ell) < radius
            masks[radius] = (near, ell[near], None) if near.any() else None
        hit = masks[radius]
        if hit is None:
            continue
        near, x, w = hit
        if w is None:
            w = weight[near]
            w = np.exp(w) if log_weight else w
            masks[radius] = (near, x, w)
        acc = np.full(x.shape, coeffs[-1])
        for c in coeffs[-2::-1]:  # Horner, in place
            acc *= x
            acc += c
        acc *= w
        if not isinstance(out[k], np.ndarray) or out[k].shape != ell.shape:
            out[k] = np.array(np.broadcast_to(out[k], ell.shape), dtype=np.float64)
        out[k][near] = acc




def _slug(fm: DivergenceForms) -> str:
    name = getattr(fm.family_forms.family, "name", "f")
    return "".join(c if c.isalnum() else "_" for c in str(name))[:40]


def _careful_terms(fm, which, a, b, ell=None, p=None, q=None):
    """Element terms of ``which`` with every branch evaluated only where it holds.

    ``a, b`` are log-weights (``-inf`` = zero mass), ``ell`` their difference when the
    caller has it more accurately than ``a - b`` (row constants cancelled first), ``p, q``
    the weights themselves when the caller has them exactly (probability input). Returns
    one float64 array per quantity, shaped like ``a``: the series where ``|ell|`` is small,
    ``lo`` where ``ell = a - b <= 0``, ``hi`` where ``ell > 0`` (both with the weight as
    ``exp(log weight)`` merged into the exponentials), and the zero-mass limits where ``a``
    or ``b`` is ``-inf``.
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
        c0, cinf = el.at_p_zero, el.at_q_zero
        if only_p0.any():
            w = np.exp(b[only_p0]) if q is None else q[only_p0]
            out[k][only_p0] = c0 if np.isinf(c0) else w * c0
        if only_q0.any():
            w = np.exp(a[only_q0]) if p is None else p[only_q0]
            out[k][only_q0] = cinf if np.isinf(cinf) else w * cinf
    if live.any():
        al, bl = a[live], b[live]
        ell = al - bl if ell is None else ell[live]
        lo = ell <= 0
        hi = ~lo
        vals = [np.empty(ell.shape) for _ in which]
        for side, mask, w in (("lo", lo, bl), ("hi", hi, al)):
            if not mask.any():
                continue
            for k, r in enumerate(_fn(fm, which, side + "_log")(ell[mask], w[mask])):
                vals[k][mask] = r
            bad = mask & ~np.logical_and.reduce([np.isfinite(v) for v in vals])
            if bad.any():
                # a weighted expm1 overflowed (0·inf): every exponential merged with the weight
                for k, r in enumerate(_fn(fm, which, side + "_exp")(ell[bad], w[bad])):
                    vals[k][bad] = np.where(np.isfinite(vals[k][bad]), vals[k][bad], r)
        general = getattr(fm, "general", None)
        if general is not None:
            bad = ~np.logical_and.reduce([np.isfinite(v) for v in vals])
            if bad.any():
                # a form derived near a special parameter value overflowed at an extreme
                # ratio: the family's general form at the same value
                alt = _careful_terms(general, which, al[bad], bl[bad], ell[bad])
                for k in range(len(which)):
                    if getattr(general, which[k]).name != getattr(fm, which[k]).name:
                        continue  # another shift constant: not interchangeable
                    vals[k][bad] = np.where(np.isfinite(vals[k][bad]), vals[k][bad], alt[k])
        _series_overwrite(fm, which, ell, bl, vals, log_weight=True)
        for k in range(len(which)):
            out[k][live] = vals[k]
    return out


def element_values(fm: DivergenceForms, form, ell):
    """:math:`X(e^{\\ell})` (weight ``q = 1``) of the element ``form`` of ``fm`` (one of
    its attributes ``loss``, ``raw``, ``grad_student``, ...), evaluated as the kernels do."""
    which = next((n for n in ("loss", "raw", "grad_student", "grad_teacher", "grad_student_near",
                              "grad_teacher_near") if getattr(fm, n) is form), None)
    if which is None:
        raise ValueError("form must be an element of fm")
    ell = np.asarray(ell, dtype=np.float64)
    a = ell.copy()
    b = np.zeros_like(ell)
    b[np.isposinf(ell)] = -np.inf  # q = 0 < p
    a[np.isposinf(ell)] = 0.0
    with np.errstate(all="ignore"):
        (out,) = _careful_terms(fm, (which,), a, b, np.where(np.isfinite(ell), ell, 0.0))
    return out


def _shifted_exp(x):
    """Row pieces of a log-softmax, float64, without rounding away the tail mass.

    Returns ``z = x - x[J]`` (``J`` the row argmax), ``e = exp(z)`` (so ``e[J] = 1``),
    ``so = sum_{i != J} e_i`` (summed with ``e[J]`` held out, so ``1 - p_J = so/(1+so)``
    keeps its relative accuracy when the row is nearly one-hot) and ``J``. The row's
    log-sum-exp is ``x[J] + log1p(so)``.
    """
    j = np.argmax(x, axis=-1)
    idx = np.arange(x.shape[0])
    z = np.subtract(x, x[idx, j][:, None], dtype=np.float64)
    e = np.exp(z)
    e[idx, j] = 0.0
    so = np.sum(e, axis=-1, keepdims=True)
    e[idx, j] = 1.0
    return z, e, so, j


def check_logits(x, name):
    """Raise ValueError for NaN or +inf logits, or a row of all -inf logits."""
    bad = np.isnan(x) | np.isposinf(x)
    if bad.any():
        raise ValueError(f"{name} contains NaN or +inf; logits must be finite or -inf (masked)")
    dead = np.all(np.isneginf(x), axis=-1)
    if dead.any():
        raise ValueError(
            f"{name} has a row whose logits are all -inf (no probability mass); "
            "drop such rows with mask="
        )


def _group_terms(fm, group, xt, xs, zt, zs, lst, lss, ell, q):
    """Element terms and row sums of the quantities ``group`` for one chunk of rows: the fast
    ``lo`` form (``hi`` where ``lo`` holds for ``ell <= 0`` only), the series near
    ``ell = 0``, and the careful branches on rows whose sums are not finite."""
    with np.errstate(all="ignore"):
        terms = [np.array(np.broadcast_to(t, ell.shape), dtype=np.float64)
                 for t in _fn(fm, group, "lo")(ell, q)]
        if any(el.lo_only for el in _elements(fm, group)):
            up = ell > 0
            if up.any():
                for k, r in enumerate(_fn(fm, group, "hi_log")(ell[up], (zt - lst)[up])):
                    terms[k][up] = r
        _series_overwrite(fm, group, ell, q, terms)
        sums = [np.sum(t, axis=-1) for t in terms]
    ok = np.logical_and.reduce([np.isfinite(s) for s in sums])
    if not ok.all():
        bad = np.flatnonzero(~ok)
        check_logits(xt[bad], "teacher_logits")
        check_logits(xs[bad], "student_logits")
        with np.errstate(all="ignore"):
            fixed = _careful_terms(fm, group, zt[bad] - lst[bad], zs[bad] - lss[bad], ell[bad])
        for k in range(len(group)):
            terms[k][bad] = fixed[k]
            sums[k][bad] = np.sum(fixed[k], axis=-1)
    return terms, sums


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
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        idx = np.arange(i1 - i0)
        with np.errstate(all="ignore"):
            zt, p, so_t, jt = _shifted_exp(xt[i0:i1])
            zs, q, so_s, js = _shifted_exp(xs[i0:i1])
            lst, lss = np.log1p(so_t), np.log1p(so_s)
            ell = zt - zs
            ell -= lst - lss
            q /= 1.0 + so_s
            if teacher:
                p /= 1.0 + so_t
        # the loss on its own (its own generated function and fallback rows), then the
        # gradient terms together: the loss is the same number whether or not gradients
        # are asked for
        terms, sums = [], []
        for group in (("loss",), which[1:]):
            if not group:
                continue
            t_g, s_g = _group_terms(fm, group, xt[i0:i1], xs[i0:i1], zt, zs, lst, lss, ell, q)
            terms += t_g
            sums += s_g
        loss[i0:i1] = np.maximum(sums[0], 0.0)
        # a row whose terms all vanish has r == 1 throughout: the minimum, gradient exactly 0
        flat = sums[0] == 0.0
        k = 1
        for want, weight, jj, so, out, gname in ((student, q, js, so_s, gs_out, "grad_student"),
                                                 (teacher, p, jt, so_t, gt_out, "grad_teacher")):
            if not want:
                continue
            term = terms[k]
            if any(term is other for o, other in enumerate(terms) if o != k):
                term = term.copy()
            near = getattr(fm, gname + "_near")
            if near is not None:
                # nearly equal rows: the form that vanishes at r = 1 keeps the gradient's
                # relative accuracy (the main form vanishes where the mass of disjoint
                # rows sits)
                close = np.flatnonzero(sums[0] < fm.near_threshold[gname])
                if close.size:
                    with np.errstate(all="ignore"):
                        (alt,) = _careful_terms(fm, (gname + "_near",), zt[close] - lst[close],
                                                zs[close] - lss[close], ell[close])
                    term = term.copy() if term is terms[k] else term
                    term[close] = alt
            # d_j = w_j (h_j - sum_i w_i h_i), terms = w h. At the row's argmax J the
            # bracket is h_J (1 - w_J) - sum_{i != J} w_i h_i: both pieces summed without
            # the dominant term, so nothing cancels when w_J is close to 1.
            t_j = term[idx, jj].copy()
            with np.errstate(all="ignore"):
                term[idx, jj] = 0.0
                m_o = np.sum(term, axis=-1)
                m = (m_o + t_j)[:, None]
                g = weight * m
                np.subtract(term, g, out=g)
                g[idx, jj] = t_j * (so[:, 0] / (1.0 + so[:, 0])) - weight[idx, jj] * m_o
                if grad_scale != 1.0:
                    g *= grad_scale
            g[~np.isfinite(m[:, 0])] = np.nan
            g[flat] = 0.0
            out[i0:i1] = g
            k += 1
    return loss


def divergence_rows(fm: DivergenceForms, p, q):
    r"""Row divergences :math:`\sum_i q_i f(p_i/q_i)` of 2-D arrays (float64 results;
    float32 input is read as is by the compiled path, which computes in float64), or None
    when an entry is negative, NaN or infinite (checked on the way).

    Rows sum the standardised terms :math:`q F(r) \ge 0` plus the exact correction
    :math:`f'(1)\sum_i (p_i - q_i)` (zero for normalised rows); where that correction
    cancels most of the sum (unnormalised input, e.g. :math:`p \ll q` in mass), the row
    sums :math:`q f(r)` directly instead. The compiled path (:mod:`numeric._cpu`) answers
    where a C compiler is present, this module's numpy evaluation otherwise and for the
    uneven rows.
    """
    from numeric import _cpu

    if _cpu.available() and p.dtype == q.dtype and p.dtype in (np.float32, np.float64):
        std_sum, diff, status = _cpu.divergence_rows(fm, p, q)
        if not status.all():
            return None
        with np.errstate(over="ignore"):                 # an exact +inf stays +inf
            total = std_sum + fm.df_at_one * diff if fm.df_at_one != 0.0 else std_sum
        # rows no C form could evaluate, and rows whose standardised sum cancels against
        # f'(1) sum(p - q) (unnormalised input): the numpy evaluation
        redo = status == 2
        if fm.df_at_one != 0.0:
            with np.errstate(invalid="ignore"):
                redo |= np.abs(total) < 1e-3 * std_sum
        if fm.loss.series is None:
            # no series at r = 1 (a kink, as TV's): the C forms see the rounded p/q, whose
            # error is ~1e-16 (p + q) per element; rows of small divergence go to numpy,
            # which uses log1p((p - q)/q) (TV of rows 1e-11 apart: 4e-7 -> 1e-16 relative)
            scale = np.sum(p, axis=1, dtype=np.float64) + np.sum(q, axis=1, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                redo |= std_sum < 1e-3 * scale
        if redo.any():
            total[redo] = _divergence_rows_numpy(
                fm, p[redo].astype(np.float64), q[redo].astype(np.float64))
        return total
    for x in (p, q):
        if not np.isfinite(x).all() or (x < 0).any():
            return None
    return _divergence_rows_numpy(fm, p.astype(np.float64, copy=False),
                                  q.astype(np.float64, copy=False))


def _log_ratio(p, q, a, b):
    r"""``log(p/q)`` per element, accurate where p and q are close: ``log1p((p - q)/q)`` for
    :math:`p/q \in (1/2, 2)` (``p - q`` exact there, Sterbenz), else ``log p - log q``.

    ``log p - log q`` carries an absolute error of about 1e-16·|log q|, which is the whole
    of :math:`\ell` when the rows differ by a few ulps (TV of rows 1 ulp apart came out
    10 % low, rows 1e-11 apart 1e-6 off, through every family's series as well).
    """
    with np.errstate(all="ignore"):
        ell = a - b
        near = (p < 2.0 * q) & (q < 2.0 * p)
        if near.any():
            ell[near] = np.log1p((p[near] - q[near]) / q[near])
    return ell


def _rescaled_terms(fm, which, p, q, a, b, ell, bad):
    r"""The terms of ``which`` at the elements ``bad`` recomputed with both weights scaled by
    :math:`2^{-k}` (:math:`\ell` unchanged; each term is 1-homogeneous in (p, q)) and the
    result scaled back by :math:`2^{k}`: an element such as p = 1e308, q = 1 no longer
    meets inf - inf inside its form (it overflows, if at all, in the final exact scaling)."""
    out = list(_careful_terms(fm, which, a, b, ell=ell, p=p, q=q))
    k = np.frexp(np.maximum(p[bad], q[bad]))[1]          # p, q < 2^k
    shift = k * np.log(2.0)
    alt = _careful_terms(fm, which, a[bad] - shift, b[bad] - shift, ell=ell[bad],
                         p=np.ldexp(p[bad], -k), q=np.ldexp(q[bad], -k))
    for j in range(len(which)):
        fixed = np.ldexp(alt[j], k)
        out[j][bad] = np.where(np.isnan(out[j][bad]) | np.isfinite(fixed), fixed, out[j][bad])
    return out


def _divergence_rows_numpy(fm: DivergenceForms, p, q):
    """:func:`divergence_rows` in numpy, float64 in and out."""
    n, v = p.shape
    out = np.empty(n, dtype=np.float64)
    df1 = fm.df_at_one
    step = max(1, CHUNK_ELEMENTS // max(v, 1))
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        cp, cq = p[i0:i1], q[i0:i1]
        with np.errstate(divide="ignore"):
            a, b = np.log(cp), np.log(cq)
        ell = _log_ratio(cp, cq, a, b)
        with np.errstate(all="ignore"):
            (terms,) = _careful_terms(fm, ("loss",), a, b, ell=ell, p=cp, q=cq)
            bad = ~np.isfinite(terms) & (cp > 0) & (cq > 0)
            if bad.any():
                terms = _rescaled_terms(fm, ("loss",), cp, cq, a, b, ell, bad)[0]
        diff = np.sum(cp - cq, axis=-1)
        total = np.sum(terms, axis=-1)
        if df1 != 0.0:
            with np.errstate(over="ignore"):
                total = total + df1 * diff
        # rows whose masses differ so much that the standardised sum cancels against
        # f'(1) sum(p - q): sum q f(r) directly there
        std_sum = np.sum(terms, axis=-1)
        uneven = np.abs(total) < 1e-3 * std_sum
        if df1 != 0.0 and uneven.any():
            with np.errstate(all="ignore"):
                (raw,) = _careful_terms(fm, ("raw",), a[uneven], b[uneven], ell=ell[uneven],
                                        p=cp[uneven], q=cq[uneven])
                bad = ~np.isfinite(raw) & (cp[uneven] > 0) & (cq[uneven] > 0)
                if bad.any():
                    (raw,) = _rescaled_terms(fm, ("raw",), cp[uneven], cq[uneven], a[uneven],
                                             b[uneven], ell[uneven], bad)
            total[uneven] = np.sum(raw, axis=-1)
        out[i0:i1] = total
    return out
