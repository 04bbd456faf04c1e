r"""Public kernels: validation, layout and dtype policy only; the math is in the launchers.

Every function takes ``f`` as a catalog name (``theory.fdiv.names()``) or a
:class:`theory.fdiv.FDivergence` (any user generator); the element expressions come from
:mod:`numeric._forms` and run through :mod:`numeric.codegen`.

Dtypes: float32 and float64 inputs; float16 is accepted; everything is computed in float64
on the CPU and the outputs are rounded to the input's floating dtype (float64 for integer
input).

cupy arrays in, cupy arrays out: each public function begins with one ``if`` that hands cupy
inputs to :mod:`numeric._cupy` (generated CUDA kernels for :func:`divergence_from_logits`;
host round trips, stated there, for the others).
"""

from __future__ import annotations

import numpy as np

from numeric import _kernels, _kkt
from numeric._backend import as_numpy_input
from numeric._forms import forms
from numeric._reduction import reduction_scale
from numeric.registry import check_options, dispatch, operation

__all__ = ["divergence", "divergence_from_logits", "fdpo_loss", "policy_from_reward",
           "PolicyResult"]

PolicyResult = _kkt.PolicyResult



def _out_dtype(*arrays) -> np.dtype:
    dt = np.result_type(*[a.dtype for a in arrays])
    if dt.kind != "f":
        return np.dtype(np.float64)
    if dt not in (np.float16, np.float32, np.float64):
        raise TypeError(f"unsupported dtype {dt}; use float16, float32 or float64")
    return dt


def check_axis(axis, ndim, name):
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    if ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the distribution axis)")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for {name} with {ndim} dimension(s)")
    return int(axis) % ndim


def _rows(x, axis):
    """(rows, V) float view/copy of ``x`` with ``axis`` last, and the batch shape."""
    moved = np.moveaxis(x, axis, -1)
    batch = moved.shape[:-1]
    return np.ascontiguousarray(moved).reshape(-1, moved.shape[-1]), batch


@operation(backends={"cupy-host": "numeric._cupy:via_host", "host": "numeric._api:divergence_host"})
def divergence(f, p, q, *, axis=-1, params=None):
    r"""The f-divergence :math:`D_f(P\|Q) = \sum_i q_i\, f(p_i/q_i)` along ``axis``.

    Parameters
    ----------
    f : str, theory.fdiv.Family or theory.fdiv.FDivergence
        Catalog name, family or generator.
    p : array_like
        P, the first argument (target / teacher): nonnegative weights.
    q : array_like
        Q, the second argument (model / student): nonnegative weights, same shape as ``p``
        (or broadcastable to a common shape).
    axis : int, optional
        The distribution axis (default the last).
    params : dict, optional
        Parameter values of the family (``{"beta": 0.3}`` for ``"js"``), as floats; they
        override those of an FDivergence. The kernel is compiled once per family and
        takes them at run time, so a sweep or a schedule costs no new derivation.

    Returns
    -------
    numpy.ndarray
        The divergences, shape of the broadcast inputs without ``axis``; dtype of the inputs.

    Notes
    -----
    Zero mass follows the generator: :math:`0\cdot f(0/0) = 0`,
    :math:`q f(0/q) = q f(0^+)`, :math:`0\cdot f(p/0) = p f'(\infty)`; so KL(P‖Q) is
    ``inf`` where :math:`q_i = 0 < p_i`, and JS stays finite. Rows need not be normalised:
    the sum is exactly :math:`\sum_i q_i f(p_i/q_i)` (scipy's ``jensenshannon`` normalises,
    ``rel_entr`` does not). Internally :math:`\sum_i q_i F(p_i/q_i) + f'(1)\sum_i(p_i-q_i)`
    with the standardised :math:`F \ge 0`, evaluated in float64 in log space.

    Raises
    ------
    ValueError
        Negative, NaN or infinite entries (naming ``p`` or ``q``), shapes that do not
        broadcast, an axis out of range.

    Examples
    --------
    >>> import numpy as np
    >>> float(divergence("kl", np.array([0.5, 0.5]), np.array([0.25, 0.75])))
    0.1438410362...
    >>> float(divergence("kl", np.array([0.5, 0.5]), np.array([1.0, 0.0])))
    inf
    """
    check_options("divergence", params=params)
    return dispatch("divergence", p, q)(f, p, q, axis=axis, params=params)


def divergence_host(f, p, q, *, axis=-1, params=None):
    """:func:`divergence` on the host (numpy arrays): the compiled C kernel, numpy where it
    does not run."""
    fm = forms(f, **(params or {}))
    p = as_numpy_input(p, "p")
    q = as_numpy_input(q, "q")
    dt = _out_dtype(p, q)
    try:
        p, q = np.broadcast_arrays(p, q)
    except ValueError:
        raise ValueError(f"p and q must have broadcastable shapes, got {p.shape} and {q.shape}")\
            from None
    ax = check_axis(axis, p.ndim, "p")
    if dt not in (np.float32, np.float64) or p.dtype != q.dtype:
        p, q = p.astype(np.float64), q.astype(np.float64)
    p2, batch = _rows(p, ax)
    q2, _ = _rows(q, ax)
    out = _kernels.divergence_rows(fm, p2, q2)  # None: a bad entry, named below
    if out is None:
        for name, x in (("p", p), ("q", q)):
            if not np.isfinite(x).all():
                raise ValueError(f"{name} must be finite (probabilities), found NaN or inf")
            if (x < 0).any():
                raise ValueError(f"{name} must be nonnegative, found a negative entry")
    return out.reshape(batch).astype(dt)


def grad_flags(return_grad, teacher_grad) -> tuple[bool, bool]:
    """``(student, teacher)`` gradients asked for; ``return_grad`` and ``teacher_grad`` bools."""
    if isinstance(return_grad, str):
        raise TypeError(f"return_grad must be a bool, got {return_grad!r}; ask for the teacher "
                        "gradient with return_grad=True, teacher_grad=True")
    if not isinstance(return_grad, (bool, np.bool_)):
        raise TypeError(f"return_grad must be a bool, got {type(return_grad).__name__}")
    if not isinstance(teacher_grad, (bool, np.bool_)):
        raise TypeError(f"teacher_grad must be a bool, got {type(teacher_grad).__name__}")
    if teacher_grad and not return_grad:
        raise ValueError("teacher_grad=True needs return_grad=True")
    return bool(return_grad), bool(teacher_grad)


def reduction_factor(reduction, kept: int, batch: tuple) -> float:
    """The factor of the summed per-row losses for ``reduction`` (1 for "none")."""
    return reduction_scale(reduction, kept, batch[0] if batch else 1)


@operation(backends={"cupy": "numeric._cupy:divergence_from_logits",
                     "host": "numeric._api:divergence_from_logits_host"})
def divergence_from_logits(f, teacher_logits, student_logits, *, axis=-1, temperature=1.0,
                           mask=None, reduction="mean", return_grad=False, teacher_grad=False,
                           params=None):
    r""":math:`D_f(P\|Q)` with :math:`P = \mathrm{softmax}(a/T)` (teacher) and
    :math:`Q = \mathrm{softmax}(b/T)` (student), fused with its gradient.

    Parameters
    ----------
    f : str or theory.fdiv.FDivergence
    teacher_logits : array_like
        Logits ``a`` of P (first argument). ``-inf`` entries have probability 0.
    student_logits : array_like
        Logits ``b`` of Q, same shape.
    axis : int, optional
        The vocabulary axis.
    temperature : float, optional
        :math:`T > 0`; both logit tensors are divided by it. The loss is the divergence of
        the softened distributions (no :math:`T^2` factor); gradients are with respect to
        the raw logits (they carry the :math:`1/T` of the chain rule).
    mask : array_like of bool, optional
        Shape of the rows (the inputs without ``axis``); ``True`` keeps a row, ``False``
        drops it (ignore_index style): its loss and gradient are 0 and it does not count
        in ``"mean"``.
    reduction : {"mean", "none", "sum", "batchmean"}
        ``"none"``: per-row divergences (shape of the rows). ``"sum"``: their sum over kept
        rows. ``"mean"`` (default): that sum divided by the number of kept rows — the mean
        divergence per row (not per element: before this version ``"mean"`` divided by
        rows × V). ``"batchmean"``: the sum divided by the size of the first batch dimension
        (PyTorch's ``kl_div`` meaning; for 1-D input, by 1). With no kept row the reduced
        loss is 0.
    return_grad : bool
        Also return :math:`\partial L/\partial b` (the student gradient), ``L`` the reduced
        loss; for ``"none"`` the gradient of the sum of the rows.
    teacher_grad : bool
        With ``return_grad=True``, also return :math:`\partial L/\partial a` (online
        distillation).
    params : dict, optional
        Parameter values of the family of ``f`` (run-time constants: a new value costs no
        compile).

    Returns
    -------
    loss : numpy.ndarray
        Input dtype. Scalar (0-d) unless ``reduction="none"``.
    grad_student : numpy.ndarray, optional
        Shape and dtype of ``student_logits`` (``return_grad=True``).
    grad_teacher : numpy.ndarray, optional
        Shape and dtype of ``teacher_logits`` (``teacher_grad=True``).

    Notes
    -----
    With :math:`a, b` the log-probabilities, :math:`r = p/q`,
    :math:`\hat g = f(r) - r f'(r) - c_g` and :math:`\hat h = f'(r) - c_h`
    (constants chosen by :mod:`numeric._forms` so that they vanish where the mass sits):

    .. math::
        D = \sum_i q_i F(r_i),\quad
        \frac{\partial D}{\partial b_j} = q_j\Big(\hat g_j - \sum_i q_i \hat g_i\Big),\quad
        \frac{\partial D}{\partial a_j} = p_j\Big(\hat h_j - \sum_i p_i \hat h_i\Big).

    For KL, :math:`\hat g = -r` and the student gradient is :math:`q - p`. Everything is in
    log space (row log-sum-exps, no division by a probability) and in float64 arithmetic;
    float32 input is read and the gradients written as float32. On the CPU the fused row
    kernel of ``numeric/kernels/`` runs, compiled for this machine (two passes over each
    row, the gradient written once, rows over threads); without a C compiler, numpy. A row
    whose divergence is ``+inf`` (e.g. KL with :math:`q_i = 0 < p_i`) has a gradient only
    where the limit is finite (the KL student gradient :math:`q - p`); otherwise NaN.

    Raises
    ------
    ValueError
        Shape mismatch, NaN or ``+inf`` logits, a kept row with all logits ``-inf``,
        temperature ≤ 0, unknown reduction, a mask of the wrong shape,
        ``teacher_grad=True`` without ``return_grad=True``.
    TypeError
        ``return_grad`` or ``teacher_grad`` not a bool (the former values ``"student"`` and
        ``"both"`` are now ``return_grad=True`` and ``teacher_grad=True``).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.log(np.array([[0.5, 0.5]])); s = np.log(np.array([[0.25, 0.75]]))
    >>> loss, g = divergence_from_logits("kl", t, s, reduction="sum", return_grad=True)
    >>> float(loss), g.round(6).tolist()
    (0.1438410362..., [[-0.25, 0.25]])
    """
    grad_flags(return_grad, teacher_grad)
    check_options("divergence_from_logits", reduction=reduction, params=params)
    return dispatch("divergence_from_logits", teacher_logits, student_logits, mask)(
        f, teacher_logits, student_logits, axis=axis, temperature=temperature, mask=mask,
        reduction=reduction, return_grad=return_grad, teacher_grad=teacher_grad, params=params)


def divergence_from_logits_host(f, teacher_logits, student_logits, *, axis=-1, temperature=1.0,
                                mask=None, reduction="mean", return_grad=False,
                                teacher_grad=False, params=None):
    """:func:`divergence_from_logits` on the host (numpy arrays): the compiled row kernel,
    numpy for the rows it leaves and without a compiler."""
    student, teacher = grad_flags(return_grad, teacher_grad)
    fm = forms(f, **(params or {}))
    t = as_numpy_input(teacher_logits, "teacher_logits")
    s = as_numpy_input(student_logits, "student_logits")
    if t.shape != s.shape:
        raise ValueError(f"teacher_logits and student_logits must have the same shape, got "
                         f"{t.shape} and {s.shape}")
    dt_t, dt_s = _out_dtype(t), _out_dtype(s)
    ax = check_axis(axis, t.ndim, "teacher_logits")
    temperature = float(temperature)
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite positive number, got {temperature}")
    t2, batch = _rows(t, ax)
    s2, _ = _rows(s, ax)
    n, v = t2.shape
    keep = np.ones(n, dtype=bool)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != batch:
            raise ValueError(f"mask must have the shape of the rows {batch}, got {m.shape}")
        if m.dtype != bool:
            raise ValueError(f"mask must be boolean (True keeps a row), got dtype {m.dtype}")
        keep = m.reshape(-1)
    rows = np.flatnonzero(keep)
    all_rows = rows.size == n
    kept = rows.size
    scale = reduction_factor(reduction, kept, batch)
    gs = (np.empty if all_rows else np.zeros)((n, v), dtype=dt_s) if student else None
    gt = (np.empty if all_rows else np.zeros)((n, v), dtype=dt_t) if teacher else None
    gs_k = gs if all_rows or gs is None else np.empty((kept, v), dtype=dt_s)
    gt_k = gt if all_rows or gt is None else np.empty((kept, v), dtype=dt_t)
    per_row = np.zeros(n, dtype=np.float64)
    if kept and v:
        tk, sk = (t2, s2) if all_rows else (t2[rows], s2[rows])
        per_row[rows] = _from_logits_kept(fm, tk, sk, temperature=temperature,
                                          grad_scale=scale / temperature, gs=gs_k, gt=gt_k,
                                          student=student, teacher=teacher)
    loss = per_row.reshape(batch) if reduction == "none" else np.asarray(per_row.sum() * scale)
    loss = loss.astype(np.result_type(dt_t, dt_s))
    if not student:
        return loss
    out = [loss]
    for g_k, g_full, x in ((gs_k, gs, s), (gt_k, gt, t)):
        if g_full is None:
            continue
        if not all_rows:
            g_full[rows] = g_k
        shaped = g_full.reshape(batch + (v,))
        out.append(np.ascontiguousarray(np.moveaxis(shaped, -1, ax)) if ax != x.ndim - 1
                   else shaped)
    return tuple(out)


def _from_logits_kept(fm, tk, sk, *, temperature, grad_scale, gs, gt, student, teacher):
    """Per-row divergences (float64) of the kept rows, gradients into ``gs``/``gt``: the
    compiled row kernel where it runs, numpy for what it leaves (and without a compiler)."""
    from numeric import _cpu

    if (_cpu.available() and tk.dtype == sk.dtype and tk.dtype in (np.float32, np.float64)
            and (gs is None or gs.dtype == tk.dtype) and (gt is None or gt.dtype == tk.dtype)):
        loss, status = _cpu.from_logits_rows(fm, tk, sk, temperature=temperature,
                                             grad_scale=grad_scale, gs=gs, gt=gt)
        invalid = (status & 1) == 0
        if invalid.any():
            bad = np.flatnonzero(invalid)
            _kernels.check_logits(tk[bad], "teacher_logits")
            _kernels.check_logits(sk[bad], "student_logits")
        # rows whose loss or gradient sums are not finite (an infinite divergence, an
        # overflow no C form avoids): numpy, which has the family's general forms as a
        # further fallback; the loss of a row is redone only for its own reason, so it is the
        # same number with and without gradients
        redo_loss = ((status & 2) != 0) | invalid  # invalid only after scaling by 1/T: numpy
        redo = redo_loss | ((status & 4) != 0)
        if redo.any():
            idx = np.flatnonzero(redo)
            xt = tk[idx].astype(np.float64) / temperature
            xs = sk[idx].astype(np.float64) / temperature
            g_s = np.empty(xt.shape, dtype=gs.dtype) if gs is not None else None
            g_t = np.empty(xt.shape, dtype=gt.dtype) if gt is not None else None
            alt = _kernels.from_logits_rows(fm, xt, xs, student=gs is not None,
                                            teacher=gt is not None, gs_out=g_s, gt_out=g_t,
                                            grad_scale=grad_scale)
            loss[redo_loss] = alt[redo_loss[idx]]
            if g_s is not None:
                gs[idx] = g_s
            if g_t is not None:
                gt[idx] = g_t
        return loss
    if temperature != 1.0:
        tk = tk.astype(np.float64) / temperature
        sk = sk.astype(np.float64) / temperature
    return _kernels.from_logits_rows(fm, tk, sk, student=student, teacher=teacher,
                                     gs_out=gs, gt_out=gt, grad_scale=grad_scale)


@operation(backends={"cupy-host": "numeric._cupy:via_host", "host": "numeric._api:fdpo_loss_host"})
def fdpo_loss(f, logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected, *, beta,
              reduction="mean", return_grad=False, params=None):
    r"""f-DPO loss :math:`-\log\sigma\big(\beta f'(u_w) - \beta f'(u_l)\big)` per pair, reduced.

    Wang et al. 2024 (f-DPO, arXiv 2309.16240, eq. 9), with :math:`u = \pi/\pi_{ref}`:
    :math:`u_w = \exp(\text{logp\_chosen} - \text{ref\_logp\_chosen})`, likewise
    :math:`u_l`. The policy :math:`\pi` is P, the reference Q (:math:`D_f(\pi\|\pi_{ref})`),
    so the paper's "reverse KL" (standard DPO, :math:`f = u\log u`) is catalog ``"kl"`` and
    its "forward KL" (:math:`f = -\log u`) is catalog ``"reverse_kl"``.

    Parameters
    ----------
    f : str, theory.fdiv.Family or theory.fdiv.FDivergence
    logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected : array_like
        Sequence log-probabilities (broadcastable); each element of the broadcast shape is
        one pair (one row of the reduction).
    beta : float
        :math:`\beta > 0`.
    reduction : {"none", "sum", "mean", "batchmean"}
        ``"none"``: the per-pair losses; ``"sum"``: their sum; ``"mean"`` (default): their
        mean; ``"batchmean"``: the sum divided by the size of the first dimension (the
        vocabulary of docs/conventions.md).
    return_grad : bool
        Also return the derivatives of the reduced loss with respect to ``logp_chosen`` and
        ``logp_rejected``, per pair (for ``"none"``: each pair's own); those with respect
        to the reference log-probabilities are their negatives.
    params : dict, optional
        Parameter values of the family (``{"beta": 0.3}`` for ``"js"``), as floats. The
        forms are derived and compiled once per family; the values enter at run time.

    Returns
    -------
    loss : numpy.ndarray
        0-d unless ``reduction="none"`` (then the broadcast shape); the inputs' floating
        dtype (float64 for integer input).
    (grad_chosen, grad_rejected) : numpy.ndarray, optional
        The broadcast shape, the same dtype.

    Notes
    -----
    :math:`z = \beta(f'(e^{\ell_w}) - f'(e^{\ell_l}))` with :math:`f'(e^{\ell})` generated from
    f in log-ratio form, and the loss is :math:`\operatorname{softplus}(-z)`; the gradient is
    :math:`-\sigma(-z)\,\beta\,e^{\ell} f''(e^{\ell})` (with a minus sign for the rejected).
    :math:`f'(e^{\ell})` is evaluated from forms in :math:`e^{\ell}` for :math:`\ell \le 0`
    and in :math:`e^{-\ell}` for :math:`\ell > 0` (no overflow where the value fits a
    float), near a special parameter value in its small-parameter form (the α-divergence
    at α = 1e-12: :math:`-\operatorname{expm1}(-\alpha\ell)/\alpha`), and where
    :math:`|f'|` or :math:`e^{\ell} f''` exceed 1e300 (power-like :math:`f'` at
    :math:`|\ell|` of several hundred) with mpmath at 50 digits; the gradient's product
    :math:`\sigma(-z)\,e^{\ell} f''` is formed in log space where :math:`\sigma(-z)`
    underflows. Accuracy (tested over log-ratios to :math:`\pm 10^4` for every catalog f):
    the loss to a few ulps of :math:`L + \sigma(-z)B`, the gradients to a relative
    :math:`64\varepsilon(1 + B + 3(|\ell_w| + |\ell_l|))`, with the row bound
    :math:`B = 1 + \beta(|f'(u_w)| + |f'(u_l)| + |\ell_w| u_w f''(u_w) +
    |\ell_l| u_l f''(u_l))`, the scale of the rounding of :math:`z` (each log-ratio and
    each :math:`f'` in float64); :math:`\pm\infty` only where the exact value exceeds the
    float range (Pearson at :math:`\ell_l = 710`).

    Examples
    --------
    >>> import numpy as np
    >>> round(float(fdpo_loss("kl", np.log(0.5), np.log(0.25), np.log(0.5), np.log(0.5),
    ...                      beta=1.0)), 12) == round(float(np.log1p(0.5)), 12)
    True
    >>> fdpo_loss("js", np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), beta=0.1,
    ...           reduction="none", params={"beta": 0.3}).round(6).tolist()
    [0.693147, 0.693147, 0.693147]
    """
    check_options("fdpo_loss", reduction=reduction, return_grad=return_grad, params=params)
    return dispatch("fdpo_loss", logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected)(
        f, logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected, beta=beta,
        reduction=reduction, return_grad=return_grad, params=params)


def fdpo_loss_host(f, logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected, *, beta,
                   reduction="mean", return_grad=False, params=None):
    """:func:`fdpo_loss` on the host (numpy arrays)."""
    arrays = [as_numpy_input(x, n) for x, n in (
        (logp_chosen, "logp_chosen"), (logp_rejected, "logp_rejected"),
        (ref_logp_chosen, "ref_logp_chosen"), (ref_logp_rejected, "ref_logp_rejected"))]
    for x, n in zip(arrays, ("logp_chosen", "logp_rejected", "ref_logp_chosen",
                             "ref_logp_rejected"), strict=True):
        if not np.isfinite(x).all():
            raise ValueError(f"{n} must be finite log-probabilities, found NaN or inf")
    beta = float(beta)
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite positive number, got {beta}")
    try:
        arrays = np.broadcast_arrays(*arrays)
    except ValueError:
        raise ValueError("logp_chosen, logp_rejected, ref_logp_chosen and ref_logp_rejected "
                         "must broadcast to a common shape") from None
    dt = _out_dtype(*arrays)
    res = _kkt.fdpo(forms(f, **(params or {})), *[x.astype(np.float64) for x in arrays],
                          beta=beta, grad=return_grad)
    loss, grads = (res, ()) if not return_grad else (res[0], res[1:])
    shape = loss.shape
    scale = reduction_scale(reduction, loss.size, shape[0] if shape else 1)
    if reduction != "none":
        loss = np.asarray(loss.sum() * scale)
        grads = tuple(g * scale for g in grads)
    if not return_grad:
        return loss.astype(dt)
    return loss.astype(dt), tuple(g.astype(dt) for g in grads)


@operation(backends={"cupy-host": "numeric._cupy:via_host",
                     "host": "numeric._api:policy_from_reward_host"})
def policy_from_reward(f, reward, ref_logp, *, beta, axis=-1, tol=None, max_iter=200, params=None):
    r"""The KKT-optimal policy :math:`\pi^* = \pi_{ref}\,(f')^{-1}\big((r - \lambda)/\beta\big)`.

    Solves :math:`\max_\pi \mathbb E_\pi[r] - \beta D_f(\pi\|\pi_{ref})` per row: the
    normaliser :math:`\lambda` makes :math:`\sum_i \pi_i = 1` (policy is P, reference Q).
    Where :math:`(r_i-\lambda)/\beta \le f'(0^+)` the optimal :math:`\pi_i` is 0
    (complementary slackness); :math:`(f')^{-1}` is ``f.policy_map`` when sympy found a
    closed form (a softmax when :math:`f' = c\log u + d`), otherwise an exact vectorised
    numeric inverse of :math:`f'` (Halley steps on :math:`\log u` from a table of local
    models, warm-started across iterations; bracketed steps on the stragglers only).

    Parameters
    ----------
    f : str, theory.fdiv.Family or theory.fdiv.FDivergence
        Must be strictly convex (f' invertible): not ``"tv"``. Any user generator works
        (``FDivergence.from_string("u*log(u) + (u-1)**2")``).
    reward : array_like
        :math:`r`, one value per action.
    ref_logp : array_like
        :math:`\log\pi_{ref}`, same shape; ``-inf`` entries are excluded (π = 0 there).
        Each row is normalised over its support first (``log([1, 1])`` is the uniform
        reference); λ refers to the normalised reference.
    beta : float
        :math:`\beta > 0`.
    axis : int
        The action axis.
    tol : float, optional
        Convergence threshold on :math:`|\sum_i\pi_i - 1|` before the final division by the
        sum (default 1e-13; up to 1e-10 where λ sits at its float resolution). A converged
        row also solves :math:`f'(\pi_i/\pi_{ref,i}) = (r_i-\lambda)/\beta` to a relative
        1e-12 in :math:`\pi_i` (or to the rounding of the right side) wherever
        :math:`\pi_i > 0`, and has :math:`\pi_i = 0` only where the right side is at most
        :math:`f'(0^+)`. See :mod:`numeric._kkt` for the solvers (softmax for KL, one
        pass; otherwise 2–3.5 iterations per row on average, measured, the slowest rows up to
        about 13, next to :math:`f'(\infty)`).
    max_iter : int
        Iterations of the safeguarded (Box–Cox) Newton/bisection on :math:`\lambda`.
    params : dict, optional
        Parameter values of the family (``{"beta": 0.3}``), as floats. The inverse of
        :math:`f'` is derived once per family with the parameters as symbols (near a special
        value, such as α → 0, in its small-parameter form) and takes the values at run time:
        a new value costs numeric work only (about 0.01 s; the first value of a family, its
        derivation, a few tenths of a second). At the family's default values the closed
        form ``f.policy_map`` is used where sympy finds one.

    Returns
    -------
    PolicyResult
        ``policy`` (π, rows that did not converge are NaN), ``normalizer`` (λ per row),
        ``converged`` (bool per row), ``iterations``. A ``RuntimeWarning`` names the number
        of rows that did not converge.

    Examples
    --------
    >>> import numpy as np
    >>> res = policy_from_reward("kl", np.array([0.0, 1.0]), np.log([0.5, 0.5]), beta=1.0)
    >>> res.policy.round(6).tolist(), bool(res.converged.all())
    ([0.268941, 0.731059], True)
    """
    check_options("policy_from_reward", params=params)
    return dispatch("policy_from_reward", reward, ref_logp)(
        f, reward, ref_logp, beta=beta, axis=axis, tol=tol, max_iter=max_iter, params=params)


def policy_from_reward_host(f, reward, ref_logp, *, beta, axis=-1, tol=None, max_iter=200,
                            params=None):
    """:func:`policy_from_reward` on the host (numpy arrays)."""
    fm = forms(f, **(params or {}))
    r = as_numpy_input(reward, "reward")
    lr = as_numpy_input(ref_logp, "ref_logp")
    if r.shape != lr.shape:
        raise ValueError(f"reward and ref_logp must have the same shape, got {r.shape} and "
                         f"{lr.shape}")
    beta = float(beta)
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite positive number, got {beta}")
    dt = _out_dtype(r, lr)
    ax = check_axis(axis, r.ndim, "reward")
    r2, batch = _rows(np.asarray(r, dtype=np.float64), ax)
    l2, _ = _rows(np.asarray(lr, dtype=np.float64), ax)
    # one reduction each: a NaN propagates through max/min
    if not (np.isfinite(r2.max()) and np.isfinite(r2.min())):
        raise ValueError("reward must be finite")
    lmax = float(l2.max())
    if not lmax < np.inf:
        raise ValueError("ref_logp must be finite or -inf (excluded action)")
    if lmax == -np.inf:
        raise ValueError("ref_logp has a row with no support (all -inf)")
    # (a row without support among others is refused where the reference is normalised)
    res = _kkt.policy(fm, r2, l2, beta=beta, tol=tol, max_iter=int(max_iter), lmax=lmax)
    pol = res.policy.reshape(batch + (r2.shape[-1],))
    pol = np.moveaxis(pol, -1, ax) if ax != r.ndim - 1 else pol
    return PolicyResult(policy=np.ascontiguousarray(pol).astype(dt, copy=False),
                        normalizer=res.normalizer.reshape(batch),
                        converged=res.converged.reshape(batch),
                        iterations=res.iterations)
