r"""The universality lens: regret of Bayesian mixtures through the weight of the truth's KL ball.

(Feder, Urbanke & Fogel (2025); Barron's index of resolvability.)
For a class :math:`\{P_\theta\}` with prior w and the mixture
:math:`Q(x^n) = \sum_\theta w(\theta)P_\theta(x^n)`, the cumulative log-loss regret against the
truth :math:`\theta_0` is :math:`n R_o = D(P_{\theta_0}^n\|Q)` (nats) and, with the weight
:math:`W_\varepsilon = w\{\theta : D(P_{\theta_0}\|P_\theta)\le\varepsilon\}`,

.. math::

    n R_o \le \min_{\varepsilon\ge 0}\bigl[n\varepsilon - \log W_\varepsilon\bigr]

(restrict the mixture to the ball and apply Jensen). The minimum over ε is attained at one of
the KL values of the class, so it is exact on a finite class. For the Bernoulli model the
regret depends on the data only through the count k, so it is a finite sum over k
(:func:`bernoulli_mixture_regret`), exact for classes of :math:`10^6` hypotheses.

For the Krichevsky–Trofimov (Jeffreys, Dirichlet(½)) and Laplace (uniform) mixtures the regret
is :math:`\frac k2\log\frac{n}{2\pi e} + \log\frac{\sqrt{\det I(\theta_0)}}{w(\theta_0)} + o(1)`
(Clarke & Barron (1990, 1994)); for Dirichlet(½) on m symbols the constant is
:math:`\log(\Gamma(1/2)^m/\Gamma(m/2))`, i.e. :math:`\log\pi` for m = 2.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, xlogy

__all__ = ["bernoulli_mixture_regret", "weight_bound", "dirichlet_mixture_regret",
           "clarke_barron_constant"]  # fmt: skip


def _n(n) -> int:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be an integer ≥ 1, got {n!r}")
    return int(n)


def _class(thetas, weights):
    th = np.asarray(thetas, dtype=float)
    if th.ndim != 1 or th.size < 1 or np.any(~((th > 0) & (th < 1))):
        raise ValueError("thetas must be a 1-d array of Bernoulli parameters in (0, 1)")
    if weights is None:
        lw = np.full(th.size, -np.log(th.size))
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != th.shape or np.any(~(w >= 0)) or not w.sum() > 0:
            raise ValueError("weights must be nonnegative, one per theta, with a positive sum")
        with np.errstate(divide="ignore"):
            lw = np.log(w / w.sum())
    return th, lw


def _theta0(theta0) -> float:
    t = float(theta0)
    if not 0 < t < 1:
        raise ValueError(f"theta0 must be in (0, 1), got {theta0!r}")
    return t


def _bern_kl(a, b):
    return a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))


def bernoulli_mixture_regret(thetas, theta0, n, *, weights=None, chunk: int = 20_000) -> float:
    r"""Exact :math:`D(P_{\theta_0}^n\|Q)` in nats for the Bernoulli mixture over ``thetas``
    (uniform prior unless ``weights``), as a sum over the count k (float64, log-space).

    >>> round(bernoulli_mixture_regret([0.5], 0.5, 10), 12)
    0.0
    """
    th, lw = _class(thetas, weights)
    t0, n = _theta0(theta0), _n(n)
    k = np.arange(n + 1)
    lbin = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    lp0 = k * np.log(t0) + (n - k) * np.log1p(-t0)
    # log Q(k-sequence) = log Σ_j w_j θ_j^k (1-θ_j)^(n-k); every term is at most the
    # maximum likelihood exp(m_k), m_k = k log(k/n) + (n-k) log(1-k/n), so the shifted
    # exponentials cannot overflow and two matrix products do the work
    m = xlogy(k, k / n) + xlogy(n - k, 1 - k / n)
    basis = np.vstack([k, n - k]).astype(float)
    acc = np.zeros(n + 1)
    logs = np.stack([np.log(th), np.log1p(-th)], axis=1)
    wt = np.exp(lw)
    for i in range(0, th.size, chunk):
        e = logs[i:i + chunk] @ basis
        e -= m
        np.exp(e, out=e)
        acc += wt[i:i + chunk] @ e
    lq = np.log(acc) + m
    pk = np.exp(lbin + lp0)
    return float((pk * (lp0 - lq)).sum())


def weight_bound(thetas, theta0, n, *, weights=None) -> tuple[float, float]:
    r"""The optimised weight bound :math:`\min_\varepsilon[n\varepsilon - \log W_\varepsilon]` (nats)
    and the minimising ε, with :math:`W_\varepsilon` the prior mass of
    :math:`\{\theta: D(\mathrm{Ber}(\theta_0)\|\mathrm{Ber}(\theta))\le\varepsilon\}`.

    >>> b, eps = weight_bound([0.5, 0.9], 0.5, 100)
    >>> round(b, 6), eps
    (0.693147, 0.0)
    """
    th, lw = _class(thetas, weights)
    t0, n = _theta0(theta0), _n(n)
    kl = np.maximum(_bern_kl(t0, th), 0.0)
    order = np.argsort(kl, kind="stable")
    kls = kl[order]
    logw = np.logaddexp.accumulate(lw[order])
    vals = n * kls - logw
    i = int(np.argmin(vals))
    return float(vals[i]), float(kls[i])


def dirichlet_mixture_regret(theta0, n, *, concentration: float = 0.5) -> float:
    r"""Exact expected regret :math:`D(P_{\theta_0}^n\|Q)` (nats) of the Dirichlet(a) mixture
    over the m-symbol simplex (m = len(theta0), m ∈ {2, 3}; a = ½ is KT, a = 1 Laplace), by
    summing over the count vectors."""
    p = np.asarray(theta0, dtype=float)
    if p.ndim != 1 or p.size not in (2, 3) or np.any(~(p > 0)) or abs(p.sum() - 1) > 1e-12:
        raise ValueError("theta0 must be a probability vector of 2 or 3 positive entries")
    n = _n(n)
    a = float(concentration)
    if not a > 0:
        raise ValueError(f"concentration must be positive, got {concentration!r}")
    m = p.size
    if m == 2:
        ks = np.arange(n + 1)[:, None]
        counts = np.hstack([ks, n - ks]).astype(float)
    else:
        i, j = np.triu_indices(n + 1)
        counts = np.stack([i, j - i, n - j], axis=1).astype(float)
    lmult = gammaln(n + 1) - gammaln(counts + 1).sum(axis=1)
    lp = (counts * np.log(p)).sum(axis=1)
    lq = (gammaln(counts + a).sum(axis=1) - gammaln(n + m * a)
          + gammaln(m * a) - m * gammaln(a))  # fmt: skip
    return float((np.exp(lmult + lp) * (lp - lq)).sum())


def clarke_barron_constant(theta0, *, concentration: float = 0.5) -> float:
    r"""The O(1) term :math:`\log(\sqrt{\det I(\theta_0)}/w(\theta_0)) - \frac k2\log(2\pi e)` of
    the Dirichlet(a) mixture's regret, so that regret − (k/2) log n → this value."""
    p = np.asarray(theta0, dtype=float)
    m, a = p.size, float(concentration)
    k = m - 1
    # Fisher information of the free coordinates: det I = 1/prod(p); Dirichlet density
    logdet = -np.log(p).sum()
    logw = gammaln(m * a) - m * gammaln(a) + ((a - 1) * np.log(p)).sum()
    return float(logdet / 2 - logw - k / 2 * np.log(2 * np.pi * np.e))
