r"""Array side of :mod:`theory.alignment`: f-DPG gradients, DPH-RL and D²O losses, Nash-MP.

Policy first, as everywhere in divkit: :math:`D_f(\pi\|\pi_{ref}) = \sum\pi_{ref}
f(\pi/\pi_{ref})`. The element expressions (:math:`f'(e^{\ell})`, the standardised
generator and its log-derivative) come from :mod:`numeric._forms` through
:mod:`numeric.codegen`; this module validates, iterates and reduces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit

from numeric._backend import as_numpy_input
from numeric._forms import forms
from numeric._kkt import reward_limits, reward_values
from numeric._reduction import reduction_scale
from numeric.registry import check_options, operation

__all__ = ["fdpg_gradient", "dphrl_loss", "d2o_loss", "nash_mirror_prox",
           "online_mirror_descent"]

#: Largest |P + P^T - 1| and |sum(ref) - 1| accepted for a preference game.
GAME_TOL = 1e-9

def logsumexp(x, axis=-1, keepdims=False):
    """Log-sum-exp along ``axis`` (rows with a finite entry; faster than scipy's for small rows)."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def _out_dtype(*arrays) -> np.dtype:
    """The floating dtype of the result: that of the inputs (float64 for integer input)."""
    dt = np.result_type(*[np.asarray(a).dtype for a in arrays])
    return dt if dt in (np.float16, np.float32, np.float64) else np.dtype(np.float64)


def _float_array(x, name: str) -> np.ndarray:
    a = as_numpy_input(x, name)
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    return a.astype(np.float64)


def _beta(beta, name: str = "beta") -> float:
    if isinstance(beta, bool):
        raise TypeError(f"{name} must be a number, got a bool")
    b = float(beta)
    if not (np.isfinite(b) and b > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {beta}")
    return b


#: Largest log-ratio evaluated with the ``lo`` branch of an element form (e^30 ≈ 1e13).
_LO_BRANCH_MAX = 30.0


def _element(fm, form, ell: np.ndarray) -> np.ndarray:
    r""":math:`X(e^{\ell})` of an element form of ``fm`` (``q = 1``): the kernels' own
    evaluation (series near 0, ``lo``/``hi`` branches, zero-mass limits at ±inf)."""
    from numeric._kernels import element_values

    return element_values(fm, form, np.asarray(ell, dtype=np.float64))


# ---------------------------------------------------------------------- f-DPG
@operation(backends={"numpy": None})
def fdpg_gradient(f, logits, log_target, *, samples=None, log_proposal=None, baseline=0.0,
                  partition="exact", params=None):
    r"""Gradient of :math:`D_f(\pi_\theta\|p)` with respect to softmax logits θ (f-DPG).

    Go et al. (2023): :math:`\nabla_\theta D_f(\pi_\theta\|p) =
    \mathbb E_{x\sim\pi_\theta}[f'(\pi_\theta(x)/p(x))\,\nabla_\theta\log\pi_\theta(x)]`, i.e.
    policy-gradient ascent on the pseudo-reward :math:`-f'(\pi_\theta/p)`
    (:func:`theory.alignment.fdpg_pseudo_reward`). For :math:`\pi_\theta =
    \operatorname{softmax}(\theta)`, :math:`\nabla_\theta\log\pi_\theta(x) = e_x - \pi_\theta`.

    Parameters
    ----------
    f : str, theory.fdiv.Family or theory.fdiv.FDivergence
        Any generator (catalog, family, or user's).
    logits : array_like, shape (..., K)
        θ; the policy is P (first argument).
    log_target : array_like, shape (..., K)
        :math:`\log p` up to a constant per row (an EBM :math:`\log\pi_{ref} + r/\beta`, or a
        filter :math:`\log\pi_{ref}` with ``-inf`` outside it).
    samples : array_like of int, shape (..., m), optional, keyword-only
        Outcomes :math:`x_i \sim q`. Without them the exact gradient
        :math:`\pi_j(w_j - \sum_x \pi_x w_x)`, :math:`w = f'(\pi/p)`, is returned.
    log_proposal : array_like, shape (..., K), optional, keyword-only
        :math:`\log q` (normalised); default the policy itself (on-policy sampling).
    baseline : float, keyword-only
        b subtracted from :math:`f'` (a constant keeps the estimator unbiased).
    partition : {"exact", "estimate"}, keyword-only
        How :math:`Z` of the target is obtained: log-sum-exp over the K outcomes, or the
        importance-sampling estimate :math:`\hat Z = \frac1m\sum_i P(x_i)/q(x_i)` of f-DPG.
    params : dict, optional, keyword-only
        Parameter values of the family, as floats (derived once per family).

    Returns
    -------
    numpy.ndarray, shape (..., K), the dtype of ``logits`` (float64 for integers)
        The exact gradient, or :math:`\frac1m\sum_i \frac{\pi(x_i)}{q(x_i)}
        (f'(\pi(x_i)/p(x_i)) - b)(e_{x_i} - \pi)`.

    Notes
    -----
    Actions whose probability underflows to 0 in float64 contribute nothing to the exact
    gradient (their term :math:`\pi_j f'(\pi_j/p_j) \to 0` unless :math:`f'(0^+)` diverges
    like :math:`-1/u^2`, as for ``neyman``, where the divergence itself blows up).

    Raises
    ------
    ValueError
        Mismatched shapes, NaN/+inf input, a row whose target has no mass, or
        :math:`D_f(\pi_\theta\|p) = \infty` (π has mass where p has none and
        :math:`f'(\infty) = \infty`, e.g. ``kl``).

    Examples
    --------
    KL(π‖p) (catalog ``kl``): the gradient is :math:`\pi\odot(\log(\pi/p) - KL)`, zero at
    :math:`\pi = p`:

    >>> import numpy as np
    >>> g = fdpg_gradient("kl", np.log([0.2, 0.3, 0.5]), np.log([0.2, 0.3, 0.5]))
    >>> bool(np.abs(g).max() < 1e-15)
    True
    """
    check_options("fdpg_gradient", params=params)
    fm = forms(f, **(params or {}))
    dt = _out_dtype(as_numpy_input(logits, "logits"))
    th = _float_array(logits, "logits")
    lt = _float_array(log_target, "log_target")
    if th.shape != lt.shape or th.ndim == 0:
        raise ValueError(f"logits and log_target must have the same shape (..., K), got "
                         f"{th.shape} and {lt.shape}")
    if not np.isfinite(th).all():
        raise ValueError("logits must be finite")
    if np.isnan(lt).any() or np.isposinf(lt).any():
        raise ValueError("log_target must be finite or -inf (outcomes outside the target)")
    if partition not in ("exact", "estimate"):
        raise ValueError(f"partition must be 'exact' or 'estimate', got {partition!r}")
    b = float(baseline)
    if not np.isfinite(b):
        raise ValueError(f"baseline must be finite, got {baseline}")
    K = th.shape[-1]
    th2 = th.reshape(-1, K)
    lt2 = lt.reshape(-1, K)
    if np.isneginf(lt2).all(axis=-1).any():
        raise ValueError("log_target has a row with no mass (all -inf)")
    logpi = th2 - logsumexp(th2, axis=-1, keepdims=True)
    pi = np.exp(logpi)
    slope_inf = reward_limits(fm)[1]
    if samples is None:
        logp = lt2 - logsumexp(lt2, axis=-1, keepdims=True)
        ell = logpi - logp
        if not np.isfinite(slope_inf) and np.isposinf(ell).any():
            raise ValueError(f"D_{fm.family.name}(pi || p) is infinite: the policy has mass "
                             "where the target has none and f'(inf) = inf")
        w = reward_values(fm, ell) - b
        # pi underflowing to 0 contributes nothing (pi w -> 0 unless f'(0+) ~ -1/u^2, neyman)
        pw = np.where(pi > 0, pi * w, 0.0)
        grad = np.where(pi > 0, pi * (w - np.sum(pw, axis=-1, keepdims=True)), 0.0)
        return grad.reshape(th.shape).astype(dt, copy=False)
    xs = as_numpy_input(samples, "samples")
    if xs.dtype.kind not in "iu":
        raise TypeError(f"samples must be integer outcome indices, got dtype {xs.dtype}")
    if xs.shape[:-1] != th.shape[:-1] or xs.ndim != th.ndim or xs.shape[-1] == 0:
        raise ValueError(f"samples must have shape {th.shape[:-1] + ('m',)} with m ≥ 1, got "
                         f"{xs.shape}")
    if (xs < 0).any() or (xs >= K).any():
        raise ValueError(f"samples must be outcome indices in [0, {K})")
    xs2 = xs.reshape(-1, xs.shape[-1]).astype(np.intp)
    if log_proposal is None:
        lq2 = logpi
    else:
        lq = _float_array(log_proposal, "log_proposal")
        if lq.shape != th.shape:
            raise ValueError(f"log_proposal must have shape {th.shape}, got {lq.shape}")
        if np.isnan(lq).any() or np.isposinf(lq).any():
            raise ValueError("log_proposal must be finite or -inf")
        lq2 = lq.reshape(-1, K)
    rows = np.arange(th2.shape[0])[:, None]
    lq_s = lq2[rows, xs2]
    if np.isneginf(lq_s).any():
        raise ValueError("a sample has zero probability under log_proposal")
    m = xs2.shape[-1]
    lt_s = lt2[rows, xs2]
    if partition == "exact":
        logz = logsumexp(lt2, axis=-1, keepdims=True)
    else:
        logz = logsumexp(lt_s - lq_s, axis=-1, keepdims=True) - np.log(m)
    ell = logpi[rows, xs2] - (lt_s - logz)
    if not np.isfinite(slope_inf) and np.isposinf(ell).any():
        raise ValueError(f"D_{fm.family.name}(pi || p) is infinite: a sample lies outside "
                         "the target's support and f'(inf) = inf")
    iw = np.exp(logpi[rows, xs2] - lq_s)
    coef = iw * (reward_values(fm, ell) - b) / m
    grad = -pi * coef.sum(axis=-1, keepdims=True)
    np.add.at(grad, (np.broadcast_to(rows, xs2.shape), xs2), coef)
    return grad.reshape(th.shape).astype(dt, copy=False)


# ---------------------------------------------------------------------- DPH-RL
@operation(backends={"numpy": None})
def dphrl_loss(f, logp, ref_logp, *, reduction="mean", return_grad=False, params=None):
    r"""DPH-RL's generator-form loss on reference samples: :math:`F(u) = f(u) - f'(1)(u-1)`.

    With :math:`y \sim \pi_{ref}` and :math:`u = \exp(\text{logp} - \text{ref\_logp}) =
    \pi_\theta(y)/\pi_{ref}(y)`, :math:`\mathbb E_{\pi_{ref}}[F(u)] = D_f(\pi_\theta\|\pi_{ref})`
    (policy first; Li et al. 2025). DPH-RL's "forward KL" loss
    :math:`u - \log u - 1` is ``f = "reverse_kl"``; its "JS" loss is twice ``f = "js"``.

    Parameters
    ----------
    f : str, theory.fdiv.Family or theory.fdiv.FDivergence
    logp, ref_logp : array_like
        :math:`\log\pi_\theta(y)` and :math:`\log\pi_{ref}(y)` of the samples (same shape);
        each sample is one row of the reduction.
    reduction : {"none", "sum", "mean", "batchmean"}, keyword-only
        Per-sample values, their sum, their mean (default), or the sum divided by the size
        of the first dimension (docs/conventions.md).
    return_grad : bool, keyword-only
        Also return :math:`\partial L/\partial\,\text{logp}` of the reduced loss, per
        sample; the derivative in ``ref_logp`` is its negative.
    params : dict, optional, keyword-only
        Parameter values of the family, as floats.

    Returns
    -------
    loss : numpy.ndarray
        The inputs' floating dtype (float64 for integers); 0-d unless ``"none"``.
    grad : numpy.ndarray, optional
        :math:`u\,(f'(u) - f'(1))` per sample, times the reduction's scale.

    Examples
    --------
    >>> import numpy as np
    >>> bool(abs(dphrl_loss("reverse_kl", np.log(2.0), 0.0) - (1 - np.log(2))) < 1e-15)
    True
    """
    check_options("dphrl_loss", reduction=reduction, return_grad=return_grad, params=params)
    fm = forms(f, **(params or {}))
    dt = _out_dtype(as_numpy_input(logp, "logp"), as_numpy_input(ref_logp, "ref_logp"))
    lp = _float_array(logp, "logp")
    lr = _float_array(ref_logp, "ref_logp")
    if lp.shape != lr.shape:
        raise ValueError(f"logp and ref_logp must have the same shape, got {lp.shape} and "
                         f"{lr.shape}")
    if not (np.isfinite(lp).all() and np.isfinite(lr).all()):
        raise ValueError("logp and ref_logp must be finite (samples come from pi_ref and the "
                         "policy's log-probabilities of them)")
    ell = (lp - lr).reshape(-1)
    loss = _element(fm, fm.loss, ell).reshape(lp.shape)
    grad_form = fm.grad_teacher_near if fm.grad_teacher_near is not None else fm.grad_teacher
    scale = reduction_scale(reduction, lp.size, lp.shape[0] if lp.ndim else 1)
    out = loss if reduction == "none" else np.asarray(loss.sum() * scale)
    if not return_grad:
        return np.asarray(out).astype(dt)
    grad = _element(fm, grad_form, ell).reshape(lp.shape) * scale
    return np.asarray(out).astype(dt), grad.astype(dt)


# ---------------------------------------------------------------------- D²O
@operation(backends={"numpy": None})
def d2o_loss(logp_samples, ref_logp_samples, logp_negative, ref_logp_negative, *, beta, alpha,
             reduction="mean", return_grad=False):
    r"""The D²O loss from negatives only (Duan et al. 2024).

    .. math::

        L = -\log\sigma\Big(\frac{\beta}{K}\sum_{i=1}^K \ell_i - \alpha\,\ell^-\Big),\quad
        \ell_i = \log\frac{\pi_\theta(y_i)}{\pi_r^-(y_i)},\quad
        \ell^- = \log\frac{\pi_\theta(y_l)}{\pi_r^+(y_l)},

    :math:`y_i \sim \pi_r` self-generated, :math:`y_l` the labelled negative.
    :func:`theory.alignment.d2o_distributional_loss` is the bound it tightens (Jensen).

    Parameters
    ----------
    logp_samples, ref_logp_samples : array_like, shape (..., K)
        :math:`\log\pi_\theta(y_i)` and :math:`\log\pi_r^-(y_i)`.
    logp_negative, ref_logp_negative : array_like, shape (...)
        :math:`\log\pi_\theta(y_l)` and :math:`\log\pi_r^+(y_l)`.
    beta, alpha : float, keyword-only
        > 0.
    reduction : {"none", "sum", "mean", "batchmean"}, keyword-only
        Over the rows (the batch shape ``...``): per-row losses, their sum, their mean
        (default), or the sum divided by the size of the first batch dimension.
    return_grad : bool, keyword-only
        Also return the derivatives of the reduced loss in ``logp_samples`` and
        ``logp_negative``.

    Returns
    -------
    loss : numpy.ndarray
        0-d unless ``"none"`` (then shape (...)); the inputs' floating dtype.
    (grad_samples, grad_negative) : optional
        :math:`-\sigma(-z)\beta/K` per sample and :math:`\sigma(-z)\alpha`, times the
        reduction's scale.

    Examples
    --------
    >>> import numpy as np
    >>> loss = d2o_loss(np.zeros(3), np.zeros(3), 0.0, 0.0, beta=0.1, alpha=1.0)
    >>> bool(abs(loss - np.log(2)) < 1e-15)
    True
    """
    b = _beta(beta)
    a = _beta(alpha, "alpha")
    check_options("d2o_loss", reduction=reduction, return_grad=return_grad)
    dt = _out_dtype(*[as_numpy_input(x, n) for x, n in (
        (logp_samples, "logp_samples"), (ref_logp_samples, "ref_logp_samples"),
        (logp_negative, "logp_negative"), (ref_logp_negative, "ref_logp_negative"))])
    ls = _float_array(logp_samples, "logp_samples")
    rs = _float_array(ref_logp_samples, "ref_logp_samples")
    ln = _float_array(logp_negative, "logp_negative")
    rn = _float_array(ref_logp_negative, "ref_logp_negative")
    if ls.shape != rs.shape or ls.ndim == 0 or ls.shape[-1] == 0:
        raise ValueError(f"logp_samples and ref_logp_samples must have the same shape (..., K) "
                         f"with K ≥ 1, got {ls.shape} and {rs.shape}")
    if ln.shape != rn.shape or ln.shape != ls.shape[:-1]:
        raise ValueError(f"logp_negative and ref_logp_negative must have shape {ls.shape[:-1]} "
                         f"(the samples' batch shape), got {ln.shape} and {rn.shape}")
    for arr, name in ((ls, "logp_samples"), (rs, "ref_logp_samples"), (ln, "logp_negative"),
                      (rn, "ref_logp_negative")):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite")
    K = ls.shape[-1]
    z = b * np.mean(ls - rs, axis=-1) - a * (ln - rn)
    loss = np.logaddexp(0.0, -z)
    scale = reduction_scale(reduction, loss.size, loss.shape[0] if loss.ndim else 1)
    out = np.asarray(loss if reduction == "none" else loss.sum() * scale).astype(dt)
    if not return_grad:
        return out
    s = expit(-z) * scale
    gs = np.broadcast_to((-s * b / K)[..., None], ls.shape).astype(dt)
    return out, (gs, np.asarray(s * a).astype(dt))


# ---------------------------------------------------------------------- Nash-MP
def _game(preference, ref, beta):
    Pm = _float_array(preference, "preference")
    if Pm.ndim != 2 or Pm.shape[0] != Pm.shape[1] or Pm.shape[0] < 2:
        raise ValueError(f"preference must be a square n × n matrix with n ≥ 2, got shape "
                         f"{Pm.shape}")
    if not np.isfinite(Pm).all() or (Pm < 0).any() or (Pm > 1).any():
        raise ValueError("preference is not a preference matrix: entries must be "
                         "probabilities in [0, 1]")
    dev = np.abs(Pm + Pm.T - 1).max()
    if dev > GAME_TOL:
        raise ValueError(f"preference is not a preference matrix: P + P^T must be 1 "
                         f"(P(y_i ≻ y_j) + P(y_j ≻ y_i) = 1), max deviation {dev:.3g}")
    r = _float_array(ref, "ref")
    if r.shape != (Pm.shape[0],):
        raise ValueError(f"ref must have shape ({Pm.shape[0]},) to match preference, got {r.shape}")
    if not np.isfinite(r).all() or (r <= 0).any() or abs(r.sum() - 1) > GAME_TOL:
        raise ValueError("ref must be a positive probability vector summing to 1")
    return Pm, np.log(r), _beta(beta)


def _init(init, n, log_ref):
    if init is None:
        return log_ref.copy()
    x = _float_array(init, "init")
    if x.shape != (n,) or not np.isfinite(x).all() or (x <= 0).any() or abs(x.sum() - 1) > GAME_TOL:
        raise ValueError(f"init must be a positive probability vector of length {n}")
    return np.log(x)


def _prox(Pm, log_ref, beta, eta, log_anchor, against):
    z = (eta * (Pm @ against) + eta * beta * log_ref + log_anchor) / (1 + eta * beta)
    return z - logsumexp(z)


def _steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    return int(steps)


@operation(backends={"numpy": None})
def nash_mirror_prox(preference, ref, *, beta, steps, eta=2.0, init=None):
    r"""Nash mirror-prox iterates :math:`\pi_0, \ldots, \pi_{steps}` (Tiapkin et al. 2025).

    .. math::

        \pi_{k+1/2} \propto \exp\Big(\frac{\eta\,\mathbf P\pi_k + \eta\beta\log\pi_{ref}
            + \log\pi_k}{1 + \eta\beta}\Big),\quad
        \pi_{k+1} \propto \exp\Big(\frac{\eta\,\mathbf P\pi_{k+1/2} + \eta\beta\log\pi_{ref}
            + \log\pi_k}{1 + \eta\beta}\Big),

    computed in log space; two preference queries per iteration. The stated rate is
    :math:`KL(\pi^*\|\pi_k) \le (1+\eta\beta)^{-k} KL(\pi^*\|\pi_0)`, i.e.
    :math:`(1+2\beta)^{-N/2}` after N = 2k queries at η = 1/L = 2
    (Tiapkin et al. 2025; :class:`theory.alignment.PreferenceGame`).

    Parameters
    ----------
    preference : array_like, (n, n)
        :math:`P_{ij} = \mathcal P(y_i \succ y_j) \in [0, 1]` with :math:`P + P^\top = 1`.
    ref : array_like, (n,)
        :math:`\pi_{ref} > 0`, sums to 1.
    beta : float, keyword-only
        β > 0.
    steps : int, keyword-only
    eta : float, keyword-only
        Step size (default 2 = 1/L).
    init : array_like, optional, keyword-only
        :math:`\pi_0` (default :math:`\pi_{ref}`).

    Returns
    -------
    numpy.ndarray, shape (steps + 1, n)

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[0.5, 0.9], [0.1, 0.5]])
    >>> it = nash_mirror_prox(P, [0.5, 0.5], beta=0.5, steps=40)
    >>> bool(abs(it[-1, 0] - 1 / (1 + np.exp(-0.4 / 0.5))) < 1e-12)
    True
    """
    Pm, log_ref, b = _game(preference, ref, beta)
    e = _beta(eta, "eta")
    n = Pm.shape[0]
    steps = _steps(steps)
    lp = _init(init, n, log_ref)
    out = np.empty((steps + 1, n))
    out[0] = np.exp(lp)
    for k in range(steps):
        half = _prox(Pm, log_ref, b, e, lp, np.exp(lp))
        lp = _prox(Pm, log_ref, b, e, lp, np.exp(half))
        out[k + 1] = np.exp(lp)
    return out


@operation(backends={"numpy": None})
def online_mirror_descent(preference, ref, *, beta, steps, eta, init=None):
    r"""Online mirror descent (one query per step) on the regularised preference game.

    :math:`\pi_{k+1} \propto \exp\big((\eta_k\mathbf P\pi_k + \eta_k\beta\log\pi_{ref} +
    \log\pi_k)/(1 + \eta_k\beta)\big)`: the first half-step of :func:`nash_mirror_prox`
    applied as the full step. With decaying steps of order :math:`1/(\beta k)` (Nash-MD,
    Munos et al. 2024; divkit's claims use :math:`\eta_k = 2/(\beta(k+2))`) the rate is only
    polynomial.

    Parameters
    ----------
    preference, ref, beta, steps, init
        As :func:`nash_mirror_prox`.
    eta : float or callable, keyword-only
        A constant step, or ``eta(k) -> float`` for step k = 0, 1, ...

    Returns
    -------
    numpy.ndarray, shape (steps + 1, n)
    """
    Pm, log_ref, b = _game(preference, ref, beta)
    schedule: Callable[[int], float]
    if callable(eta):
        schedule = eta
    else:
        const = _beta(eta, "eta")

        def schedule(k):
            return const
    n = Pm.shape[0]
    steps = _steps(steps)
    lp = _init(init, n, log_ref)
    out = np.empty((steps + 1, n))
    out[0] = np.exp(lp)
    for k in range(steps):
        e = _beta(schedule(k), f"eta({k})")
        lp = _prox(Pm, log_ref, b, e, lp, np.exp(lp))
        out[k + 1] = np.exp(lp)
    return out
