r"""Cauchy–Schwarz divergence: Gaussian-mixture closed forms, Parzen estimators, CS-QMI.

:math:`D_{CS}(p\|q) = \log\int p^2 + \log\int q^2 - 2\log\int pq` (symmetric; see
:mod:`theory.cauchy_schwarz` for the derivations). The closed forms evaluate the pairwise
log-overlaps :math:`\log\mathcal N(m_i; n_j, S_i + T_j)` — for diagonal covariances with
the element function generated from ``theory.cauchy_schwarz.log_overlap_element()`` by
:mod:`numeric.codegen`, for full covariances with a Cholesky factor — and combine them with
log-sum-exps, so far-apart components do not underflow.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from numeric._backend import namespace
from numeric.registry import operation

__all__ = ["cs_divergence_gaussian_mixtures", "cs_divergence_samples", "cs_qmi"]

_TILE = 1 << 16


@functools.cache
def _element():
    from numeric import codegen
    from theory import cauchy_schwarz as tcs

    return codegen.numpy_function(tcs.log_overlap_element(), [tcs.delta, tcs.s])


def _mixture(xp, w, m, c, name):
    w = xp.astype(xp.asarray(w), xp.float64)
    m = xp.astype(xp.asarray(m), xp.float64)
    c = xp.astype(xp.asarray(c), xp.float64)
    if w.ndim != 1:
        raise ValueError(f"weights_{name} must have shape (K,), got {tuple(w.shape)}")
    k = w.shape[0]
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2 or m.shape[0] != k:
        raise ValueError(f"means_{name} must have shape (K, d) with K = {k}, got {tuple(m.shape)}")
    d = m.shape[1]
    if c.ndim == 1 and d == 1:
        c = c[:, None]
    if c.shape == (k, d):
        diag = True
    elif c.shape == (k, d, d):
        diag = False
    else:
        raise ValueError(f"covs_{name} must have shape (K,), (K, d) or (K, d, d) with K = {k}, "
                         f"d = {d}; got {tuple(c.shape)}")
    for arr, what in ((w, "weights"), (m, "means"), (c, "covs")):
        if not bool(xp.all(xp.isfinite(arr))):
            raise ValueError(f"{what}_{name} must be finite, found NaN or inf")
    if bool(xp.any(w < 0)) or abs(float(xp.sum(w)) - 1.0) > 1e-9:
        raise ValueError(f"weights_{name} must be nonnegative and sum to 1")
    if diag and bool(xp.any(c <= 0)):
        raise ValueError(f"covs_{name}: variances must be positive")
    return w, m, c, diag


def _log_overlaps(xp, m1, c1, d1, m2, c2, d2):
    """(K1, K2) matrix of log N(m1_i; m2_j, C1_i + C2_j)."""
    dm = m1[:, None, :] - m2[None, :, :]
    if d1 and d2:
        return xp.sum(_element()(dm, c1[:, None, :] + c2[None, :, :]), axis=-1)
    dim = m1.shape[1]
    full1 = c1 if not d1 else c1[:, :, None] * xp.eye(dim)[None]
    full2 = c2 if not d2 else c2[:, :, None] * xp.eye(dim)[None]
    s = full1[:, None] + full2[None, :]
    try:
        chol = xp.linalg.cholesky(s)
    except ValueError:  # numpy's LinAlgError is a ValueError
        raise ValueError("covs_p/covs_q: covariances must be symmetric positive definite") from None
    diag = xp.linalg.diagonal(chol)
    if not bool(xp.all(xp.isfinite(diag))) or not bool(xp.all(diag > 0)):
        raise ValueError("covs_p/covs_q: covariances must be symmetric positive definite")
    z = xp.linalg.solve(chol, dm[..., None])[..., 0]
    logdet = 2.0 * xp.sum(xp.log(diag), axis=-1)
    return -0.5 * (dim * math.log(2 * math.pi) + logdet + xp.sum(z * z, axis=-1))


def _lse_all(xp, t):
    m = xp.max(t)
    return m + xp.log(xp.sum(xp.exp(t - m)))


@operation(backends={"array-api": None})
def cs_divergence_gaussian_mixtures(weights_p, means_p, covs_p, weights_q, means_q, covs_q):
    r"""Closed-form :math:`D_{CS}(p\|q)` between Gaussian mixtures (one component: Gaussians).

    .. math::
        \int pq = \sum_{i,j} w_i v_j\,\mathcal N(m_i; n_j, S_i + T_j), \qquad
        D_{CS} = \log\int p^2 + \log\int q^2 - 2\log\int pq

    Parameters
    ----------
    weights_p : array_like, shape (K,)
        Mixture weights of p (nonnegative, summing to 1).
    means_p : array_like, shape (K, d) (or (K,) for d = 1)
    covs_p : array_like, shape (K, d, d), (K, d) diagonal, or (K,) variances for d = 1
    weights_q, means_q, covs_q : the same for q.

    Returns
    -------
    float 0-d array (natural log; divide by log 2 for the bits of the CS-IB code).

    Examples
    --------
    >>> import numpy as np
    >>> float(cs_divergence_gaussian_mixtures([1.0], [0.0], [1.0], [1.0], [2.0], [1.0]))
    2.0
    """
    xp = namespace(weights_p, means_p, covs_p, weights_q, means_q, covs_q)
    wp, mp, cp, dp = _mixture(xp, weights_p, means_p, covs_p, "p")
    wq, mq, cq, dq = _mixture(xp, weights_q, means_q, covs_q, "q")
    if mp.shape[1] != mq.shape[1]:
        raise ValueError(f"p and q must have the same dimension, got {mp.shape[1]} and "
                         f"{mq.shape[1]}")

    def log_int(w1, m1, c1, d1, w2, m2, c2, d2):
        with np.errstate(divide="ignore"):
            lw = xp.log(w1)[:, None] + xp.log(w2)[None, :]
        return _lse_all(xp, lw + _log_overlaps(xp, m1, c1, d1, m2, c2, d2))

    pp = log_int(wp, mp, cp, dp, wp, mp, cp, dp)
    qq = log_int(wq, mq, cq, dq, wq, mq, cq, dq)
    pq = log_int(wp, mp, cp, dp, wq, mq, cq, dq)
    return pp + qq - 2.0 * pq


# --------------------------------------------------------------------------- estimators

def _samples(xp, x, name):
    arr = xp.astype(xp.asarray(x), xp.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} must have shape (n,) or (n, d) with n ≥ 1, got {tuple(arr.shape)}")
    if not bool(xp.all(xp.isfinite(arr))):
        raise ValueError(f"{name} must be finite, found NaN or inf")
    return arr


def _bandwidth(sigma):
    try:
        v = float(sigma)
    except (TypeError, ValueError):
        raise TypeError(f"bandwidth must be a positive number, got {sigma!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"bandwidth must be a finite positive number, got {sigma!r}")
    return v


def _gram_tiles(xp, x, y, sigma):
    """Yield (r0, r1, tile) with tile = -|x_i - y_j|^2 / (2 sigma^2), memory one tile."""
    n, m = x.shape[0], y.shape[0]
    rows = max(1, _TILE // max(m, 1))
    x2 = xp.sum(x * x, axis=1)
    y2 = xp.sum(y * y, axis=1)
    c = -1.0 / (2.0 * sigma * sigma)
    for r0 in range(0, n, rows):
        r1 = min(r0 + rows, n)
        d2 = x2[r0:r1, None] + y2[None, :] - 2.0 * (x[r0:r1] @ y.T)
        yield r0, r1, xp.maximum(d2, 0.0) * c


def _log_gram_sum(xp, x, y, sigma):
    """log Σ_ij κ_σ(x_i − y_j), online log-sum-exp over tiles."""
    m_run, s_run = -math.inf, 0.0
    for _, _, t in _gram_tiles(xp, x, y, sigma):
        mt = float(xp.max(t))
        if mt > m_run:
            s_run = s_run * math.exp(m_run - mt) if m_run > -math.inf else 0.0
            m_run = mt
        s_run += float(xp.sum(xp.exp(t - m_run)))
    return m_run + math.log(s_run)


def _center(xp, x, y):
    c = (xp.sum(x, axis=0) + xp.sum(y, axis=0)) / (x.shape[0] + y.shape[0])
    return x - c, y - c


@operation(backends={"array-api": None})
def cs_divergence_samples(x, y, *, bandwidth):
    r"""Parzen (kernel) estimate of :math:`D_{CS}(p\|q)` from samples ``x`` ∼ p, ``y`` ∼ q.

    With the Gaussian kernel :math:`\kappa_\sigma(z) = e^{-|z|^2/(2\sigma^2)}` (Yu et al.,
    CS-IB, the V-statistic of their slides and code):

    .. math::
        \hat D = \log\frac{1}{M^2}\sum_{i,j}\kappa_\sigma(x_i - x_j)
               + \log\frac{1}{N^2}\sum_{i,j}\kappa_\sigma(y_i - y_j)
               - 2\log\frac{1}{MN}\sum_{i,j}\kappa_\sigma(x_i - y_j).

    **Bias.** The three averages are unbiased (up to the i = j terms) for the integrals of
    the *smoothed* densities :math:`p_\sigma = p * \mathcal N(0, \tfrac{\sigma^2}{2} I)`,
    :math:`q_\sigma` likewise (the kernel constants cancel), so :math:`\hat D \to
    D_{CS}(p_\sigma\|q_\sigma)` as M, N → ∞: a deterministic smoothing bias
    :math:`D_{CS}(p_\sigma\|q_\sigma) - D_{CS}(p\|q) = O(\sigma^2)` (it shrinks the
    divergence), plus a finite-sample bias :math:`O(1/(M\sigma^d) + 1/(N\sigma^d))` from the
    diagonal terms :math:`\kappa(0) = 1` and the logs; the fluctuations are
    :math:`O(M^{-1/2} + N^{-1/2})`. For Gaussians, the limit is
    ``cs_divergence_gaussian_mixtures`` with each covariance increased by σ²/2.

    Parameters
    ----------
    x : array_like, shape (M,) or (M, d)
        Samples of p.
    y : array_like, shape (N,) or (N, d)
        Samples of q (same d).
    bandwidth : float
        σ > 0 (the CS-IB code: σ = 1 for its loss; its QMI default is 10 × the median
        squared pairwise distance).

    Returns
    -------
    float (natural log). Memory is linear in M + N (tiled Gram sums).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=200)
    >>> float(cs_divergence_samples(x, x, bandwidth=0.5))
    0.0
    """
    xp = namespace(x, y)
    px, py = _samples(xp, x, "x"), _samples(xp, y, "y")
    if px.shape[1] != py.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {px.shape[1]} and "
                         f"{py.shape[1]}")
    sigma = _bandwidth(bandwidth)
    px, py = _center(xp, px, py)
    m, n = px.shape[0], py.shape[0]
    lxx = _log_gram_sum(xp, px, px, sigma) - 2 * math.log(m)
    lyy = _log_gram_sum(xp, py, py, sigma) - 2 * math.log(n)
    lxy = _log_gram_sum(xp, px, py, sigma) - math.log(m) - math.log(n)
    return lxx + lyy - 2.0 * lxy


@operation(backends={"array-api": None})
def cs_qmi(x, y, *, bandwidth, bandwidth_y=None):
    r"""CS quadratic mutual information :math:`I_{CS}(X;Y) = D_{CS}(p_{XY}\|p_X p_Y)` from
    paired samples (the CS-IB estimator, Yu et al. ICLR 2024, ``CS_QMI``).

    With Gram matrices :math:`K^x_{ij} = \kappa_{\sigma}(x_i - x_j)`,
    :math:`K^y_{ij} = \kappa_{\sigma_y}(y_i - y_j)`:

    .. math::
        \hat I = \log\frac{\operatorname{tr}(K^x K^y)}{N^2}
               + \log\frac{\mathbf 1^\top K^x\mathbf 1\;\mathbf 1^\top K^y\mathbf 1}{N^4}
               - 2\log\frac{\mathbf 1^\top K^x K^y\mathbf 1}{N^3}.

    **Bias.** As for :func:`cs_divergence_samples`, the estimator converges to
    :math:`I_{CS}` of the smoothed pair :math:`(X + \tfrac{\sigma}{\sqrt2}Z_1,
    Y + \tfrac{\sigma_y}{\sqrt2}Z_2)` (independent standard normal :math:`Z_1, Z_2`):
    smoothing bias :math:`O(\sigma^2)`, finite-sample bias :math:`O(1/(N\sigma^{d}))` from
    the diagonal terms, fluctuations :math:`O(N^{-1/2})`. Natural log (the authors' code
    uses log2: divide by log 2). :math:`\hat I \ge 0` by Cauchy–Schwarz.

    Parameters
    ----------
    x : array_like, shape (N,) or (N, dx)
    y : array_like, shape (N,) or (N, dy), paired with ``x``
    bandwidth : float
        σ for x (and y unless ``bandwidth_y`` is given).
    bandwidth_y : float, optional

    Returns
    -------
    float. Memory linear in N (Gram matrices are formed one tile at a time).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1); x = rng.normal(size=300); y = rng.normal(size=300)
    >>> 0.0 <= float(cs_qmi(x, y, bandwidth=1.0)) < 0.02
    True
    """
    xp = namespace(x, y)
    px, py = _samples(xp, x, "x"), _samples(xp, y, "y")
    if px.shape[0] != py.shape[0]:
        raise ValueError(f"x and y must be paired (same number of samples), got {px.shape[0]} "
                         f"and {py.shape[0]}")
    sx = _bandwidth(bandwidth)
    sy = sx if bandwidth_y is None else _bandwidth(bandwidth_y)
    px = px - xp.mean(px, axis=0)
    py = py - xp.mean(py, axis=0)
    n = px.shape[0]
    rx = xp.zeros((n,), dtype=xp.float64)
    ry = xp.zeros((n,), dtype=xp.float64)
    tr = 0.0
    tiles = zip(_gram_tiles(xp, px, px, sx), _gram_tiles(xp, py, py, sy), strict=True)
    for (r0, r1, tx), (_, _, ty) in tiles:
        kx, ky = xp.exp(tx), xp.exp(ty)
        rx[r0:r1] = xp.sum(kx, axis=1)
        ry[r0:r1] = xp.sum(ky, axis=1)
        tr += float(xp.sum(kx * ky))
    s1 = math.log(tr) - 2 * math.log(n)
    s2 = math.log(float(xp.sum(rx))) + math.log(float(xp.sum(ry))) - 4 * math.log(n)
    c = math.log(float(xp.sum(rx * ry))) - 3 * math.log(n)
    return s1 + s2 - 2.0 * c
