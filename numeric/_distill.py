r"""Distillation losses that are not a single f-divergence: SinKD, BD-KD and PLD.

Teacher first, student second, as everywhere in divkit (P = teacher, Q = student). Each
loss is a vector of per-row values (one per row of the batch) reduced by ``reduction`` in
the one vocabulary of :mod:`numeric._reduction` (default ``"mean"``); gradients are those of
the reduced loss; outputs have the logits' floating dtype (computed in float64).
"""

from __future__ import annotations

import math

import numpy as np

from numeric._api import divergence_from_logits
from numeric._backend import namespace
from numeric._reduction import reduction_scale
from numeric.registry import check_options, operation

__all__ = ["sinkd_loss", "bdkd_loss", "bdkd_entropy_weights", "pld_loss"]


def _logits(xp, x, name):
    arr = xp.asarray(x)
    if not xp.isdtype(arr.dtype, "real floating"):
        arr = xp.astype(arr, xp.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, classes), got {tuple(arr.shape)}")
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(f"{name} must be finite, found NaN or inf")
    return xp.astype(arr, xp.float64)


def _positive(v, name):
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number, got {v!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite positive number, got {v!r}")
    return v


def _log_softmax(xp, z):
    m = xp.max(z, axis=-1, keepdims=True)
    return z - (m + xp.log(xp.sum(xp.exp(z - m), axis=-1, keepdims=True)))


def _out_dtype(xp, *arrays):
    """The logits' floating dtype (float64 for integer input)."""
    dts = [xp.asarray(a).dtype for a in arrays]
    dts = [d if xp.isdtype(d, "real floating") else xp.float64 for d in dts]
    return xp.result_type(*dts)


def _pair(xp, teacher_logits, student_logits):
    t = _logits(xp, teacher_logits, "teacher_logits")
    s = _logits(xp, student_logits, "student_logits")
    if t.shape != s.shape:
        raise ValueError(f"teacher_logits and student_logits must have the same shape, got "
                         f"{tuple(t.shape)} and {tuple(s.shape)}")
    return t, s


# --------------------------------------------------------------------------- SinKD

@operation(backends={"array-api": None})
def sinkd_loss(teacher_logits, student_logits, *, temperature=2.0, epsilon=0.1, n_iter=20,
               reduction="mean", return_grad=False):
    r"""SinKD's batch-wise Sinkhorn distance (Cui et al. 2024, arXiv 2402.17110, ``loss.py``).

    With :math:`p^s_i = \mathrm{softmax}(z^s_i/T)`, :math:`p^t_j = \mathrm{softmax}(z^t_j/T)`
    (rows of the batch), the B×B cost :math:`W_{ij} = \|p^s_i - p^t_j\|_1`, the kernel
    :math:`K = e^{-W/\varepsilon}` and ``n_iter`` rounds of row then column normalisation
    :math:`P \leftarrow P / P\mathbf 1`, :math:`P \leftarrow P / \mathbf 1^\top P`:

    .. math:: L = \sum_{ij} P_{ij} W_{ij} = \sum_i L_i,\qquad L_i = \sum_j P_{ij} W_{ij}

    (no entropy term, no scale factor: the paper multiplies by 0.001 / 0.0008 outside; the
    student is the row side). The per-row values are :math:`L_i`; the paper's :math:`L`
    is ``reduction="sum"``. Evaluated in log space (the normalisations are log-softmaxes),
    so small ε does not underflow.

    Parameters
    ----------
    teacher_logits, student_logits : array_like, shape (B, C)
    temperature : float
        T (the paper hard-codes 2).
    epsilon : float
        ε (paper: 0.1).
    n_iter : int
        Normalisation rounds (paper: 20).
    reduction : {"none", "sum", "mean", "batchmean"}
        :math:`L_i` per row, their sum (the paper's value), their mean (default), or the
        sum divided by B (the same as the mean here).
    return_grad : bool
        Also return :math:`\partial L/\partial z^s` of the reduced loss: the exact
        derivative of the unrolled ``n_iter`` rounds (what autograd gives on the paper's
        code), by reverse mode.

    Returns
    -------
    loss : array, 0-d unless ``reduction="none"`` (then (B,)); the logits' dtype
    grad_student : array (B, C), optional

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> float(sinkd_loss(z, z)) < 0.01  # identical batches: P concentrates on the diagonal
    True
    """
    xp = namespace(teacher_logits, student_logits)
    check_options("sinkd_loss", reduction=reduction, return_grad=return_grad)
    dt = _out_dtype(xp, teacher_logits, student_logits)
    t, s = _pair(xp, teacher_logits, student_logits)
    temp = _positive(temperature, "temperature")
    eps = _positive(epsilon, "epsilon")
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive int, got {n_iter!r}")
    ps = xp.exp(_log_softmax(xp, s / temp))
    pt = xp.exp(_log_softmax(xp, t / temp))
    bsz = ps.shape[0]
    w = xp.stack([xp.sum(xp.abs(ps - pt[j]), axis=-1) for j in range(bsz)], axis=1)
    lx = -w / eps
    saved = []
    for _ in range(int(n_iter)):
        for ax in (1, 0):
            m = xp.max(lx, axis=ax, keepdims=True)
            lx = lx - (m + xp.log(xp.sum(xp.exp(lx - m), axis=ax, keepdims=True)))
            saved.append((ax, lx))
    p = xp.exp(lx)
    per_row = xp.sum(p * w, axis=1)
    scale = reduction_scale(reduction, bsz, bsz)
    loss = per_row if reduction == "none" else xp.sum(per_row) * scale
    loss = xp.astype(xp.asarray(loss), dt)
    if not return_grad:
        return loss
    # reverse mode: y = x - LSE_ax(x)  =>  dx = dy - softmax_ax(x) * sum_ax(dy), softmax = e^y
    dlx = p * w * scale
    for ax, y in reversed(saved):
        dlx = dlx - xp.exp(y) * xp.sum(dlx, axis=ax, keepdims=True)
    dw = p * scale - dlx / eps
    gps = xp.zeros_like(ps)
    for j in range(bsz):
        gps = gps + dw[:, j:j + 1] * xp.sign(ps - pt[j])
    gs = ps * (gps - xp.sum(ps * gps, axis=-1, keepdims=True)) / temp
    return loss, xp.astype(gs, dt)


# --------------------------------------------------------------------------- BD-KD

@operation(backends={"array-api": None})
def bdkd_entropy_weights(teacher_logits, student_logits, *, temperature=1.0):
    r"""Per-sample (forward, reverse) KL weights from the entropy gap (divkit's rule).

    With :math:`\delta_i = (H(p^s_i) - H(p^t_i)) / \log C` (the entropy gap, in units of
    the largest entropy):
    :math:`w^{f}_i = 1 + \max(-\delta_i, 0)` and :math:`w^{r}_i = 1 + \max(\delta_i, 0)`.
    A student less confident than its teacher gets more of the mode-seeking reverse KL, an
    over-confident one more of the mass-covering forward KL; equal entropies give (1, 1).

    BD-KD (Amara et al. 2022, arXiv 2212.12965) balances the two KLs per sample by the
    teacher/student entropy gap; its exact weight formula was not available to us, so this
    rule is ours — pass your own weights to :func:`bdkd_loss` to reproduce the paper.

    Returns
    -------
    (w_forward, w_reverse) : arrays of shape (B,)
    """
    xp = namespace(teacher_logits, student_logits)
    t, s = _pair(xp, teacher_logits, student_logits)
    temp = _positive(temperature, "temperature")
    lt, ls = _log_softmax(xp, t / temp), _log_softmax(xp, s / temp)
    ht = -xp.sum(xp.exp(lt) * lt, axis=-1)
    hs = -xp.sum(xp.exp(ls) * ls, axis=-1)
    c = t.shape[-1]
    delta = (hs - ht) / math.log(c) if c > 1 else xp.zeros_like(hs)
    zero = xp.zeros_like(delta)
    return 1.0 + xp.maximum(-delta, zero), 1.0 + xp.maximum(delta, zero)


@operation(backends={"numpy": None})
def bdkd_loss(teacher_logits, student_logits, *, temperature=1.0, weights=None,
              reduction="mean", return_grad=False):
    r"""BD-KD's balanced KL, per row :math:`L_i = w^f_i\,\mathrm{KL}(p^t_i\|p^s_i) + w^r_i\,
    \mathrm{KL}(p^s_i\|p^t_i)`, reduced (the paper's :math:`\frac1B\sum_i L_i` is the
    default ``"mean"``).

    :math:`p = \mathrm{softmax}(z/T)` for both; the forward KL is catalog ``"kl"`` and the
    reverse KL catalog ``"reverse_kl"`` of :func:`numeric.divergence_from_logits` (teacher as
    P), whose fused kernels give the values and gradients.

    Parameters
    ----------
    teacher_logits, student_logits : array_like, shape (B, C)
    temperature : float
        T > 0 (no :math:`T^2` factor; multiply outside if wanted).
    weights : (w_forward, w_reverse), optional
        Per-sample weights, each of shape (B,) or scalars, nonnegative. Default:
        :func:`bdkd_entropy_weights` (divkit's entropy-gap rule). Weights are constants for
        the gradient (detached), as sample weights are.
    reduction : {"none", "sum", "mean", "batchmean"}
        :math:`L_i` per row, their sum, their mean (default), or the sum divided by B.
    return_grad : bool
        Also return :math:`\partial L/\partial z^s` of the reduced loss.

    Returns
    -------
    loss : array, 0-d unless ``reduction="none"``; the logits' dtype
    grad_student : array (B, C), optional

    Examples
    --------
    >>> import numpy as np
    >>> t = np.log([[0.5, 0.5]]); s = np.log([[0.25, 0.75]])
    >>> round(float(bdkd_loss(t, s, weights=(1.0, 0.0))), 10)  # KL(teacher || student)
    0.1438410362
    """
    check_options("bdkd_loss", reduction=reduction, return_grad=return_grad)
    dt = _out_dtype(np, teacher_logits, student_logits)
    t, s = _pair(np, teacher_logits, student_logits)
    temp = _positive(temperature, "temperature")
    if weights is None:
        wf, wr = bdkd_entropy_weights(t, s, temperature=temp)
    else:
        try:
            wf, wr = weights
        except (TypeError, ValueError):
            raise TypeError("weights must be a pair (w_forward, w_reverse)") from None
        wf = np.broadcast_to(np.asarray(wf, dtype=np.float64), (t.shape[0],))
        wr = np.broadcast_to(np.asarray(wr, dtype=np.float64), (t.shape[0],))
        for name, w in (("w_forward", wf), ("w_reverse", wr)):
            if not (np.isfinite(w).all() and (w >= 0).all()):
                raise ValueError(f"weights: {name} must be finite and nonnegative")
    bsz = t.shape[0]
    scale = reduction_scale(reduction, bsz, bsz)
    kw = dict(temperature=temp, reduction="none", return_grad=return_grad)
    fwd = divergence_from_logits("kl", t, s, **kw)
    rev = divergence_from_logits("reverse_kl", t, s, **kw)
    lf, lr = (fwd, rev) if not return_grad else (fwd[0], rev[0])
    per_row = wf * lf + wr * lr
    loss = per_row if reduction == "none" else np.asarray(np.sum(per_row) * scale)
    loss = np.asarray(loss).astype(dt)
    if not return_grad:
        return loss
    grad = (wf[:, None] * fwd[1] + wr[:, None] * rev[1]) * scale
    return loss, grad.astype(dt)


# --------------------------------------------------------------------------- PLD

def _logcumsumexp(xp, z):
    acc = getattr(getattr(xp, "logaddexp", None), "accumulate", None)
    if acc is not None:
        return acc(z, axis=-1)
    raise TypeError(f"pld_loss needs logaddexp.accumulate, which {xp.__name__} lacks")


@operation(backends={"array-api": None})
def pld_loss(teacher_logits, student_logits, labels=None, *, temperature=1.0,
             reduction="mean", return_grad=False):
    r"""PLD: the list-wise Plackett–Luce distillation loss (Bassam, Zhu, Bian 2025).

    The target order :math:`\pi^*` puts the true label first (if ``labels`` is given),
    then the other classes by decreasing teacher logit; the weights are the teacher's
    confidences :math:`\alpha = \mathrm{softmax}(z^t/T)`; with student logits ``s``:

    .. math::
        L = \sum_{k=1}^{C} \alpha_{\pi^*_k}\Big[\log\sum_{\ell\ge k} e^{s_{\pi^*_\ell}}
            - s_{\pi^*_k}\Big],\qquad
        \frac{\partial L}{\partial s_{\pi^*_m}} = \sum_{k\le m}\alpha_{\pi^*_k}\,
            \frac{e^{s_{\pi^*_m}}}{\sum_{\ell\ge k} e^{s_{\pi^*_\ell}}} - \alpha_{\pi^*_m}.

    Convex and invariant to adding a constant to ``s``; its k = 1 term is the
    α-weighted cross-entropy of the first choice. Suffix log-sum-exps are accumulated in
    log space (no underflow of small logits).

    Parameters
    ----------
    teacher_logits, student_logits : array_like, shape (B, C)
    labels : array_like of int, shape (B,), optional
        True classes (placed first in π*); ``None`` orders by the teacher alone.
    temperature : float
        T of the teacher weights (the student logits enter unscaled).
    reduction : {"none", "sum", "mean", "batchmean"}
        The per-row losses, their sum, their mean (default), or the sum divided by B (the
        same as the mean here).
    return_grad : bool
        Also return :math:`\partial L/\partial s` (for the reduced loss).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[2.0, 1.0, 0.0]]); s = np.zeros((1, 3))
    >>> a = np.exp(t[0]) / np.exp(t[0]).sum()
    >>> bool(np.isclose(float(pld_loss(t, s)), a @ np.log([3.0, 2.0, 1.0])))
    True
    """
    xp = namespace(teacher_logits, student_logits)
    check_options("pld_loss", reduction=reduction, return_grad=return_grad)
    dt = _out_dtype(xp, teacher_logits, student_logits)
    t, s = _pair(xp, teacher_logits, student_logits)
    temp = _positive(temperature, "temperature")
    bsz, c = t.shape
    key = -t
    if labels is not None:
        lab = xp.asarray(labels)
        if lab.shape != (bsz,) or not xp.isdtype(lab.dtype, "integral"):
            raise ValueError(f"labels must be integers of shape ({bsz},), got "
                             f"{tuple(lab.shape)} {lab.dtype}")
        if bool(xp.any((lab < 0) | (lab >= c))):
            raise ValueError(f"labels must lie in [0, {c})")
        first = xp.arange(c)[None, :] == lab[:, None]
        key = xp.where(first, -xp.inf, key)
    order = xp.argsort(key, axis=-1, stable=True)
    z = xp.take_along_axis(s, order, axis=-1)
    la = xp.take_along_axis(_log_softmax(xp, t / temp), order, axis=-1)
    suffix = xp.flip(_logcumsumexp(xp, xp.flip(z, axis=-1)), axis=-1)
    alpha = xp.exp(la)
    per_row = xp.sum(alpha * (suffix - z), axis=-1)
    scale = reduction_scale(reduction, bsz, bsz)
    loss = xp.astype(xp.asarray(per_row if reduction == "none" else xp.sum(per_row) * scale),
                     dt)
    if not return_grad:
        return loss
    cum = _logcumsumexp(xp, la - suffix)
    g_sorted = (xp.exp(z + cum) - alpha) * scale
    inv = xp.argsort(order, axis=-1)
    return loss, xp.astype(xp.take_along_axis(g_sorted, inv, axis=-1), dt)
