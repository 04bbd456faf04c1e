r"""Scaling-law fits :math:`L(x) = L_\infty + (x_0/x)^{\alpha}` (Henighan et al. (2020), §13).

:math:`L_\infty` estimates the irreducible loss (the entropy of the data) and the power-law term
:math:`(x_0/x)^\alpha` the reducible loss, read as :math:`\mathrm{KL}(\text{true}\,\|\,\text{model})`.

The fit works in log space: parameters :math:`(L_\infty, \log x_0, \log\alpha)` with bounds
:math:`0 \le L_\infty < \min L` (times :math:`e^{5\max\sigma}` when the noise σ is given),
:math:`\alpha\in[10^{-3}, 10]`, and residuals
:math:`(\log L_i - \log\hat L(x_i))/\sigma_i` (relative noise σ), minimised by
``scipy.optimize.least_squares`` (trust-region reflective) from the best start of a grid over
:math:`L_\infty`. Intervals are Wald intervals from the Jacobian at the optimum,
:math:`\mathrm{cov} = s^2 (J^\top J)^{-1}` with :math:`s^2` the residual variance (or 1 when σ is
given), Student-t quantiles with m − 3 degrees of freedom, mapped through exp for
:math:`x_0` and α.

Ill-posed fits are refused with a ``ValueError`` that says why: fewer than 5 points, data that
are not non-increasing in x (beyond 3σ of noise), a parameter that ends on its bound (the data
do not determine it), or a Jacobian so ill-conditioned that the intervals are meaningless.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ScalingLawFit", "fit_scaling_law"]


@dataclass(frozen=True)
class ScalingLawFit:
    r"""Result of :func:`fit_scaling_law`.

    Attributes
    ----------
    l_inf, x0, alpha : float
        Fitted :math:`L_\infty`, :math:`x_0`, :math:`\alpha`.
    l_inf_interval, x0_interval, alpha_interval : (float, float)
        Wald intervals at ``confidence``.
    confidence : float
    residual_scale : float
        :math:`s`, the root-mean-square log residual (per degree of freedom).
    """

    l_inf: float
    x0: float
    alpha: float
    l_inf_interval: tuple
    x0_interval: tuple
    alpha_interval: tuple
    confidence: float
    residual_scale: float

    def predict(self, x):
        """:math:`L_\\infty + (x_0/x)^\\alpha`."""
        return self.l_inf + self.reducible(x)

    def reducible(self, x):
        """The reducible loss :math:`(x_0/x)^\\alpha`, read as KL(true ‖ model)."""
        x = np.asarray(x, dtype=float)
        if np.any(~(x > 0)):
            raise ValueError("x must be positive")
        return (self.x0 / x) ** self.alpha


def _model(theta, lx):
    l_inf, lx0, la = theta
    return l_inf + np.exp(np.exp(la) * (lx0 - lx))


def fit_scaling_law(x, loss, *, sigma=None, confidence: float = 0.95) -> ScalingLawFit:
    r"""Fit :math:`L(x) = L_\infty + (x_0/x)^\alpha` (see the module docstring).

    Parameters
    ----------
    x : sequence of float
        Positive sizes (parameters, compute or data), strictly increasing.
    loss : sequence of float
        Positive losses, non-increasing in x (up to the noise).
    sigma : float or sequence of float, optional, keyword-only
        Relative (log-space) noise of each loss; also the tolerance of the monotonicity check.
    confidence : float, keyword-only
        Level of the intervals.

    Raises
    ------
    ValueError
        Fewer than 5 points, non-positive or non-finite values, x not increasing, loss not
        non-increasing, or an ill-posed fit (parameter on its bound, singular Jacobian).

    >>> x = np.logspace(6, 10, 12)
    >>> fit = fit_scaling_law(x, 1.7 + (2e5 / x) ** 0.35)
    >>> round(fit.l_inf, 6), round(fit.alpha, 6)
    (1.7, 0.35)
    """
    from scipy import optimize
    from scipy.special import stdtrit

    xs = np.asarray(x, dtype=float)
    ls = np.asarray(loss, dtype=float)
    if xs.ndim != 1 or xs.shape != ls.shape:
        raise ValueError(f"x and loss must be 1-d of the same length, got {xs.shape} and {ls.shape}")
    if xs.size < 5:
        raise ValueError(f"ill-posed: {xs.size} points cannot determine 3 parameters with an "
                         "interval; give at least 5")  # fmt: skip
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ls))):
        raise ValueError("x and loss must be finite")
    if np.any(xs <= 0) or np.any(ls <= 0):
        raise ValueError("x and loss must be positive")
    if np.any(np.diff(xs) <= 0):
        raise ValueError("x must be strictly increasing")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    sig = np.zeros_like(ls) if sigma is None else np.broadcast_to(np.asarray(sigma, dtype=float), ls.shape)
    if np.any(~(sig >= 0)):
        raise ValueError("sigma must be ≥ 0")
    if sigma is not None and np.any(sig == 0):
        raise ValueError("sigma must be positive where given")
    lys = np.log(ls)
    tol = 3 * np.sqrt(sig[1:] ** 2 + sig[:-1] ** 2)
    rises = np.diff(lys) > tol
    if np.any(rises):
        i = int(np.argmax(rises))
        raise ValueError(f"loss is not non-increasing in x: it rises from {ls[i]:.6g} at x={xs[i]:.6g} "
                         f"to {ls[i + 1]:.6g} at x={xs[i + 1]:.6g} (beyond 3σ of noise); a scaling law "
                         "L∞ + (x0/x)^α cannot fit it")  # fmt: skip
    if ls[-1] >= ls[0]:
        raise ValueError("ill-posed: the loss does not decrease over the range of x")
    w = 1.0 / sig if sigma is not None else np.ones_like(ls)
    lx = np.log(xs)
    lmin = float(ls.min())
    # with noise the floor may sit above the smallest observed loss; allow 5 noise levels
    hi_linf = lmin * (float(np.exp(5 * sig.max())) if sigma is not None else 1 - 1e-9)
    lo_b = [0.0, lx[0] - 60.0, np.log(1e-3)]
    hi_b = [hi_linf, lx[-1] + 60.0, np.log(10.0)]

    def resid(theta):
        return w * (lys - np.log(_model(theta, lx)))

    best = None
    for frac in (0.0, 0.5, 0.9):
        l0 = frac * lmin
        yy = np.log(np.maximum(ls - l0, 1e-300))
        slope, icpt = np.polyfit(lx, yy, 1)
        a0 = float(np.clip(-slope, 2e-3, 9.0))
        start = np.clip([l0, icpt / a0, np.log(a0)], np.add(lo_b, 1e-9), np.subtract(hi_b, 1e-9))
        r = optimize.least_squares(resid, start, bounds=(lo_b, hi_b), method="trf", x_scale="jac",
                                   xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=500)  # fmt: skip
        if best is None or r.cost < best.cost:
            best = r
    theta = best.x
    names = ("L∞", "log x0", "log α")
    for i, nm in enumerate(names):
        span = hi_b[i] - lo_b[i]
        if theta[i] - lo_b[i] < 1e-6 * span or hi_b[i] - theta[i] < 1e-6 * span:
            raise ValueError(f"ill-posed: {nm} ended on its bound ({theta[i]:.6g}); the data do not "
                             "determine it (the curve shows no floor, or no curvature, over this "
                             "range of x — extend the range or fix L∞)")  # fmt: skip
    jac = best.jac
    dof = xs.size - 3
    jtj = jac.T @ jac
    if np.linalg.cond(jtj) > 1e14:
        raise ValueError("ill-posed: the Jacobian is singular at the optimum, so the parameters "
                         "are not identifiable from these points")  # fmt: skip
    rss = float((best.fun**2).sum())
    s2 = rss / dof if sigma is None else 1.0
    cov = np.linalg.inv(jtj) * s2
    tq = float(stdtrit(dof, 0.5 + confidence / 2))
    se = np.sqrt(np.diag(cov))
    lo, hi = theta - tq * se, theta + tq * se
    if se[2] > 2.0:
        raise ValueError(f"ill-posed: the interval of α spans a factor e^{2 * tq * se[2]:.3g}; the "
                         "data do not determine the exponent")  # fmt: skip
    return ScalingLawFit(
        l_inf=float(theta[0]), x0=float(np.exp(theta[1])), alpha=float(np.exp(theta[2])),
        l_inf_interval=(float(lo[0]), float(hi[0])),
        x0_interval=(float(np.exp(lo[1])), float(np.exp(hi[1]))),
        alpha_interval=(float(np.exp(lo[2])), float(np.exp(hi[2]))),
        confidence=confidence, residual_scale=float(np.sqrt(rss / dof)),
    )  # fmt: skip
