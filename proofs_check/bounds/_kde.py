r"""Kernel density estimation in large dimensions (Biroli & Mézard).

Setting: data :math:`y_1..y_n \sim \rho = N(0, I_d)`, :math:`n = e^{\alpha d}`, the Gaussian
kernel :math:`\hat\rho(x) = \frac1n\sum_i (2\pi h^2)^{-d/2} e^{-|x-y_i|^2/(2h^2)}`, evaluated at a
point with :math:`|x|^2 = d` (a typical point of ρ).

**Derived here** (large deviations; the random-energy-model argument of the paper, redone for
this case). With :math:`u = |x-y|^2/d`, the per-dimension log-MGF is
:math:`\Lambda(t) = -\frac12\log(1-2t) + t/(1-2t)`; the tilt :math:`t = -k/(2h^2)` that carries
the k-th moment of a kernel term sits at :math:`u = 1/s + 1/s^2`, :math:`s = 1 + k/h^2`, with rate
:math:`I = \frac12\log s - (s-1)/(2s^2)` (the Legendre transform of Λ). That saddle is populated
by the :math:`e^{\alpha d}` samples iff :math:`I \le \alpha`, hence

.. math::

    h_G:\ \alpha = \tfrac12\log(1+1/h^2) - \frac{h^2}{2(1+h^2)^2}\ (k = 1),\qquad
    h_{CLT}:\ \alpha = \tfrac12\log(1+2/h^2) - \frac{h^2}{(2+h^2)^2}\ (k = 2),

so :math:`h_{CLT} = \sqrt2\,h_G` exactly. The smallest normalised distance is
:math:`u_{min}(\alpha)` with :math:`I(u_{min}) = \alpha`, which is the k = 1 saddle at
:math:`h_G`. The KL divergence per dimension :math:`d^{-1}E[\log\rho(x) - \log\hat\rho(x)]` is
:math:`\frac12\log(1+h^2) - h^2/(2(1+h^2))` for :math:`h\ge h_G` (annealed) and
:math:`\alpha + \frac12\log h^2 + u_{min}/(2h^2) - \frac12` below (frozen), minimised at
:math:`h_*^2 = u_{min} = h_G^2(2h_G^2+1)/(1+h_G^2)^2 < h_G^2`: the KL-optimal bandwidth lies
below :math:`h_G` and hence below :math:`h_{CLT}`. Below :math:`h_G` the normalised weights of
the kernel terms follow a Poisson–Dirichlet law with parameter :math:`m = h^2/h_G^2` (Derrida's
REM), so the participation ratio :math:`Y_2 = \sum_i w_i^2` has limit :math:`1 - h^2/h_G^2`
there and 0 above.

**Measured** (:func:`kde_monte_carlo`): :math:`Y_2`, the smallest distance and
:math:`\log\hat\rho` at finite d by Monte Carlo.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np

__all__ = ["KDEThresholds", "kde_thresholds", "kde_kl_per_dimension", "kde_rate_function",
           "kde_monte_carlo", "kde_min_distance_exact"]  # fmt: skip


def _at(x, dps: int) -> mpmath.mpf:
    """``x`` rounded to ``dps`` digits (the number keeps that precision outside the context)."""
    with mpmath.workdps(dps):
        return +x


def _alpha(alpha) -> mpmath.mpf:
    try:
        a = mpmath.mpf(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"alpha must be a real number, got {alpha!r}") from None
    if not a > 0 or not mpmath.isfinite(a):
        raise ValueError(f"alpha = log(n)/d must be positive and finite, got {alpha!r}")
    return a


def kde_rate_function(u, *, dps: int = 30) -> mpmath.mpf:
    r"""Closed-form rate :math:`I(u) = \frac12\log s - (s-1)/(2s^2)`, :math:`s = (1+\sqrt{1+4u})/(2u)`
    (so that :math:`u = 1/s + 1/s^2`), for :math:`0 < u`; zero at the mean u = 2."""
    with mpmath.workdps(dps + 10):
        uu = mpmath.mpf(u)
        if not uu > 0:
            raise ValueError(f"u must be positive, got {u!r}")
        s = (1 + mpmath.sqrt(1 + 4 * uu)) / (2 * uu)
        out = mpmath.log(s) / 2 - (s - 1) / (2 * s**2)
    return _at(out, dps)


def _threshold(a, k):
    # α = ½ log s − (s − 1)/(2 s²), s = 1 + k/h², increasing in s for s > 1
    def g(s):
        return mpmath.log(s) / 2 - (s - 1) / (2 * s**2) - a

    lo, hi = mpmath.mpf(1) + mpmath.mpf(10) ** -30, mpmath.mpf(2)
    while g(hi) < 0:
        hi *= 2
    s = mpmath.findroot(g, (lo, hi), solver="anderson")
    return mpmath.sqrt(k / (s - 1)), s


@dataclass(frozen=True)
class KDEThresholds:
    """Derived thresholds at one α (mpmath numbers; see the module docstring)."""

    alpha: mpmath.mpf
    h_g: mpmath.mpf
    h_clt: mpmath.mpf
    h_opt: mpmath.mpf
    u_min: mpmath.mpf
    kl_opt: mpmath.mpf


def kde_thresholds(alpha, *, dps: int = 30) -> KDEThresholds:
    r""":math:`h_G(\alpha)`, :math:`h_{CLT}(\alpha)`, :math:`h_*(\alpha)`, :math:`u_{min}(\alpha)`
    and the optimal KL per dimension, each solved at ``dps`` digits.

    >>> th = kde_thresholds(0.25)
    >>> import mpmath
    >>> with mpmath.workdps(30):
    ...     print(mpmath.nstr((th.h_clt / th.h_g) ** 2, 25))
    2.0
    >>> bool(th.h_opt < th.h_g < th.h_clt)
    True
    """
    with mpmath.workdps(dps + 15):
        a = _alpha(alpha)
        h_g, s = _threshold(a, 1)
        h_clt, _ = _threshold(a, 2)
        u_min = 1 / s + 1 / s**2
        h_opt = mpmath.sqrt(u_min)
        kl_opt = a + mpmath.log(u_min) / 2  # α + ½ log h*² + u_min/(2h*²) − ½ at h*² = u_min
    vals = [_at(v, dps) for v in (a, h_g, h_clt, h_opt, u_min, kl_opt)]
    return KDEThresholds(*vals)


def kde_kl_per_dimension(h, alpha, *, dps: int = 30) -> mpmath.mpf:
    r"""Derived :math:`\lim d^{-1}E[\log\rho(x) - \log\hat\rho(x)]` (annealed above
    :math:`h_G`, frozen below)."""
    with mpmath.workdps(dps + 10):
        hh = mpmath.mpf(h)
        if not hh > 0:
            raise ValueError(f"bandwidth h must be positive, got {h!r}")
        th = kde_thresholds(alpha, dps=dps)
        if hh >= th.h_g:
            out = mpmath.log(1 + hh**2) / 2 - hh**2 / (2 * (1 + hh**2))
        else:
            out = th.alpha + mpmath.log(hh**2) / 2 + th.u_min / (2 * hh**2) - mpmath.mpf(1) / 2
    return _at(out, dps)


def kde_min_distance_exact(d: int, alpha) -> float:
    r"""Expected smallest normalised distance :math:`E\min_i |x-y_i|^2/d` at finite d for
    ``n = round(e^{αd})`` samples and :math:`|x|^2 = d`, by quadrature:
    :math:`\int_0^\infty \exp(n\log(1 - F(dv)))\,dv` with F the noncentral
    :math:`\chi^2_d(\lambda = d)` CDF (scipy, float64; adaptive quadrature to relative
    accuracy about 1e-10, far below the Monte Carlo's standard error it is compared with).

    >>> round(kde_min_distance_exact(40, 0.2), 4)   # the limit d → ∞ is u_min(0.2) = 0.7951
    0.8857
    """
    if isinstance(d, bool) or int(d) != d or d < 1:
        raise ValueError(f"d must be an integer ≥ 1, got {d!r}")
    a = float(_alpha(alpha))
    n = int(round(np.exp(a * d)))
    from scipy import integrate
    from scipy.stats import ncx2

    def surv(v):
        with np.errstate(divide="ignore"):  # F = 1 far above the minimum: survival 0
            return float(np.exp(n * np.log1p(-ncx2.cdf(v * d, d, d))))

    pts = np.linspace(0.0, 4.0, 9)
    total = 0.0
    for lo, hi in zip(pts[:-1], pts[1:], strict=True):
        total += integrate.quad(surv, lo, hi, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
    tail = integrate.quad(surv, 4.0, np.inf, epsabs=1e-13, limit=200)[0]
    return total + tail


def kde_monte_carlo(d: int, alpha, hs, *, reps: int, rng: np.random.Generator) -> dict:
    r"""Monte Carlo at dimension d: for ``reps`` independent (data set, x) pairs with
    :math:`n = \mathrm{round}(e^{\alpha d})`, :math:`|x|^2 = d`, returns per bandwidth the mean
    and standard error of the participation ratio :math:`Y_2`, of
    :math:`d^{-1}\log\hat\rho(x)`, and the mean and standard error of :math:`\min_i u_i`.

    It also returns ``clt_within``: the fraction of runs with
    :math:`|\hat\rho/E\hat\rho - 1| \le \sigma_{CLT}`, where :math:`E\hat\rho = E Z` and
    :math:`\sigma_{CLT}^2 = (E Z^2/(E Z)^2 - 1)/n` are exact at finite d
    (:math:`E Z^k = (2\pi h^2)^{-kd/2} e^{d\Lambda(-k/(2h^2))}`, Λ the log-MGF of the module
    docstring). It is :math:`2\Phi(1) - 1 = 0.6827` where the CLT holds and grows towards 1 where
    the variance is carried by samples that are not there (below :math:`h_{CLT}`).
    """
    if isinstance(d, bool) or int(d) != d or d < 1:
        raise ValueError(f"d must be an integer ≥ 1, got {d!r}")
    if isinstance(reps, bool) or int(reps) != reps or reps < 2:
        raise ValueError(f"reps must be an integer ≥ 2, got {reps!r}")
    a = float(_alpha(alpha))
    hs = np.atleast_1d(np.asarray(hs, dtype=float))
    if np.any(~(hs > 0)):
        raise ValueError(f"bandwidths must be positive, got {hs!r}")
    n = int(round(np.exp(a * d)))
    y2 = np.empty((reps, hs.size))
    logrho = np.empty((reps, hs.size))
    umin = np.empty(reps)

    def lam(t):
        return -np.log1p(-2 * t) / 2 + t / (1 - 2 * t)

    # per dimension: log E Z = −½ log(2πh²) + Λ(−1/(2h²)); relative CLT standard deviation
    log_mean = -np.log(2 * np.pi * hs * hs) / 2 + lam(-1 / (2 * hs * hs))
    clt_sd = np.sqrt(np.expm1(d * (lam(-1 / (hs * hs)) - 2 * lam(-1 / (2 * hs * hs)))) / n)
    for r in range(reps):
        x = rng.standard_normal(d)
        x *= np.sqrt(d) / np.linalg.norm(x)
        ys = rng.standard_normal((n, d))
        u = ((ys - x) ** 2).sum(axis=1) / d
        umin[r] = u.min()
        for j, h in enumerate(hs):
            e = -d * (u - umin[r]) / (2 * h * h)
            w = np.exp(e)
            tot = w.sum()
            y2[r, j] = ((w / tot) ** 2).sum()
            logrho[r, j] = (np.log(tot) - d * umin[r] / (2 * h * h) - np.log(n)
                            - d / 2 * np.log(2 * np.pi * h * h)) / d  # fmt: skip
    se = np.sqrt(reps)
    ratio = np.exp(d * (logrho - log_mean))
    within = (np.abs(ratio - 1) <= clt_sd).mean(0)
    return {"n": n, "y2": y2.mean(0), "y2_se": y2.std(0, ddof=1) / se,
            "clt_within": within, "clt_within_se": np.sqrt(np.maximum(within * (1 - within), 1e-12) / reps),
            "logrho": logrho.mean(0), "logrho_se": logrho.std(0, ddof=1) / se,
            "umin": float(umin.mean()), "umin_se": float(umin.std(ddof=1) / se)}  # fmt: skip
