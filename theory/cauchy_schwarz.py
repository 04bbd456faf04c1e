r"""The Cauchy–Schwarz divergence and its closed forms for Gaussians and Gaussian mixtures.

.. math::
    D_{CS}(p\,\|\,q) = -\log\frac{\big(\int pq\big)^2}{\int p^2\int q^2}
                     = \log\int p^2 + \log\int q^2 - 2\log\int pq \;\ge 0,

symmetric in p and q, zero iff p = q, and invariant under invertible affine maps of the
space (the Jacobians cancel). Used by the CS divergence information bottleneck
(Yu et al., ICLR 2024). Everything here is sympy; :mod:`numeric` evaluates it.

The building block is the Gaussian overlap (product integral)

.. math::
    \int \mathcal N(x; m_1, S_1)\,\mathcal N(x; m_2, S_2)\,dx = \mathcal N(m_1; m_2, S_1 + S_2),

so for Gaussians
:math:`D_{CS} = \Delta^\top (S_p+S_q)^{-1}\Delta + \log\det(S_p+S_q)
- \tfrac12\log\det S_p - \tfrac12\log\det S_q - d\log 2`, and for mixtures every integral is a
double sum of overlaps.

>>> import sympy
>>> from theory import cauchy_schwarz as cs
>>> m1, m2 = sympy.symbols("m1 m2", real=True)
>>> v1, v2 = sympy.symbols("v1 v2", positive=True)
>>> sympy.simplify(cs.gaussian(m1, v1, m2, v2) - cs.gaussian(m2, v2, m1, v1))
0
"""

from __future__ import annotations

import functools

import sympy

__all__ = ["divergence", "overlap", "log_overlap_element", "gaussian", "mixture",
           "delta", "s"]

#: Element symbols of the 1-D log-overlap: the mean difference and the summed variance.
delta = sympy.Symbol("delta", real=True)
s = sympy.Symbol("s", positive=True)
_x = sympy.Symbol("x", real=True)


def divergence(p, q, x, *, domain=(-sympy.oo, sympy.oo)):
    r""":math:`D_{CS}(p\|q)` of two sympy densities in ``x`` by symbolic integration.

    The generic (slow) route; the closed forms below are checked against it.
    """
    lo, hi = domain
    i_pq = sympy.integrate(p * q, (x, lo, hi))
    i_pp = sympy.integrate(p * p, (x, lo, hi))
    i_qq = sympy.integrate(q * q, (x, lo, hi))
    return sympy.log(i_pp) + sympy.log(i_qq) - 2 * sympy.log(i_pq)


@functools.cache
def log_overlap_element():
    r""":math:`\log\int \mathcal N(x; m_1, v_1)\mathcal N(x; m_2, v_2)\,dx` as a function of
    ``delta`` = :math:`m_1 - m_2` and ``s`` = :math:`v_1 + v_2`, derived by completing the
    square in the exponent (checked against quadrature in the tests).

    >>> log_overlap_element()
    -delta**2/(2*s) - log(s)/2 - log(pi)/2 - log(2)/2
    """
    a, b = sympy.symbols("a b", positive=True)
    # N(x; delta, a) N(x; 0, b) = exp(-A x^2 + B x + C) / (2 pi sqrt(a b)); complete the square:
    # the integral of exp(-A x^2 + B x + C) over the line is sqrt(pi/A) exp(B^2/(4A) + C).
    expo = sympy.expand(-(_x - delta) ** 2 / (2 * a) - _x ** 2 / (2 * b))
    qa, qb, qc = -expo.coeff(_x, 2), expo.coeff(_x, 1), expo.coeff(_x, 0)
    log_val = (sympy.log(sympy.pi / qa) / 2 + qb ** 2 / (4 * qa) + qc
               - sympy.log(2 * sympy.pi) - sympy.log(a * b) / 2)
    log_val = sympy.simplify(log_val.subs(b, s - a))
    return sympy.expand(sympy.expand_log(log_val, force=True))


def _as_matrix(v):
    return v if isinstance(v, sympy.MatrixBase) else sympy.Matrix([[v]])


def overlap(mean1, cov1, mean2, cov2):
    r""":math:`\int\mathcal N(x; m_1, S_1)\,\mathcal N(x; m_2, S_2)\,dx = \mathcal N(m_1; m_2, S_1+S_2)`.

    Scalars (mean, variance) or sympy matrices (column mean, covariance).
    """
    m1, m2 = _as_matrix(mean1), _as_matrix(mean2)
    sm = _as_matrix(cov1) + _as_matrix(cov2)
    d = sm.shape[0]
    dm = m1 - m2
    quad = (dm.T * sm.inv() * dm)[0, 0]
    return sympy.exp(-quad / 2) / sympy.sqrt((2 * sympy.pi) ** d * sm.det())


def gaussian(mean_p, cov_p, mean_q, cov_q):
    r"""Closed-form :math:`D_{CS}(\mathcal N(m_p, S_p)\,\|\,\mathcal N(m_q, S_q))`.

    .. math:: \Delta^\top(S_p+S_q)^{-1}\Delta + \log\det(S_p+S_q) - \tfrac12\log\det S_p
              - \tfrac12\log\det S_q - d\log 2

    Scalars are mean and variance (d = 1).
    """
    sp_, sq_ = _as_matrix(cov_p), _as_matrix(cov_q)
    dm = _as_matrix(mean_p) - _as_matrix(mean_q)
    sm = sp_ + sq_
    d = sm.shape[0]
    quad = (dm.T * sm.inv() * dm)[0, 0]
    return (quad + sympy.log(sm.det()) - sympy.log(sp_.det()) / 2 - sympy.log(sq_.det()) / 2
            - d * sympy.log(2))


def mixture(weights_p, means_p, covs_p, weights_q, means_q, covs_q):
    r"""Closed-form :math:`D_{CS}` between Gaussian mixtures :math:`\sum_i w_i\mathcal N(m_i, S_i)`
    and :math:`\sum_j v_j\mathcal N(n_j, T_j)`:

    .. math::
        \int pq = \sum_{i,j} w_i v_j\,\mathcal N(m_i; n_j, S_i + T_j),\quad
        D_{CS} = \log\int p^2 + \log\int q^2 - 2\log\int pq.
    """
    def cross(w1, m1, c1, w2, m2, c2):
        return sum(a * b * overlap(x1, s1, x2, s2)
                   for a, x1, s1 in zip(w1, m1, c1, strict=True)
                   for b, x2, s2 in zip(w2, m2, c2, strict=True))

    pp = cross(weights_p, means_p, covs_p, weights_p, means_p, covs_p)
    qq = cross(weights_q, means_q, covs_q, weights_q, means_q, covs_q)
    pq = cross(weights_p, means_p, covs_p, weights_q, means_q, covs_q)
    return sympy.log(pp) + sympy.log(qq) - 2 * sympy.log(pq)
