r"""Launchers of the alignment maps (f-DPO loss, KKT policy from reward).

The expressions (:math:`f'(e^{\ell})`, :math:`e^{\ell} f''(e^{\ell})`, the policy map
:math:`(f')^{-1}`) come from :mod:`numeric._forms` / :mod:`theory.fdiv` through
:mod:`numeric.codegen`; this module only iterates and reduces.

Normaliser of the KKT policy, per row: with :math:`\Phi = (f')^{-1}` extended by 0 below
:math:`f'(0^+)` and by :math:`+\infty` above :math:`f'(\infty)`,
:math:`\psi(\lambda) = \sum_i \pi_{ref,i}\,\Phi((r_i-\lambda)/\beta) - 1` is decreasing, with
the bracket

* :math:`\lambda_{lo} = \max_i\big(r_i - \beta f'(1/\pi_{ref,i})\big)`: there one term alone
  reaches 1, so :math:`\psi \ge 0`, and every argument stays below :math:`f'(\infty)`;
* :math:`\lambda_{hi} = \max_i r_i - \beta f'(1)`: every :math:`\Phi \le 1`, so
  :math:`\psi \le 0`.

Newton steps on :math:`\lambda` (:math:`\psi' = -\beta^{-1}\sum_i \pi_{ref,i}\Phi'`) are taken
when they stay strictly inside the current bracket, bisection otherwise. A row has converged
when :math:`|\psi| \le` ``tol``, or when the bracket has shrunk to adjacent floats with
:math:`|\psi| \le 10^{-8}` (the conditioning of :math:`\Phi` near :math:`f'(\infty)`); the
latter is then divided out.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import sympy

from numeric._compile import compile_numpy
from numeric._forms import ELL, DivergenceForms
from numeric._kernels import _const

__all__ = ["PolicyResult", "fdpo", "policy"]

_T = sympy.Symbol("t", real=True)

#: Largest |sum(pi) - 1| accepted (then divided out) once the bracket on lambda has shrunk
#: to adjacent floats.
_COLLAPSED_TOL = 1e-8


class PolicyResult(NamedTuple):
    """Result of :func:`numeric.policy_from_reward`.

    Attributes
    ----------
    policy : numpy.ndarray
        :math:`\\pi^*`, NaN on rows that did not converge.
    normalizer : numpy.ndarray
        :math:`\\lambda` per row (float64).
    converged : numpy.ndarray of bool
        Per row.
    iterations : int
        Iterations used by the slowest row.
    """

    policy: np.ndarray
    normalizer: np.ndarray
    converged: np.ndarray
    iterations: int


def _reward_fn(fm: DivergenceForms):
    return compile_numpy([fm.reward, fm.reward_slope], [ELL], name="reward_and_slope")


def fdpo(fm: DivergenceForms, lpw, lpl, rlpw, rlpl, *, beta: float, grad: bool):
    """f-DPO loss (and d/d logp_chosen, d/d logp_rejected) on float64 arrays."""
    fn = _reward_fn(fm)
    with np.errstate(all="ignore"):
        rw, sw = fn(lpw - rlpw)
        rl, sl = fn(lpl - rlpl)
        rw, sw, rl, sl = (np.broadcast_to(np.asarray(x, dtype=np.float64), lpw.shape)
                          for x in (rw, sw, rl, sl))
        z = beta * (rw - rl)
        loss = np.logaddexp(0.0, -z)
    if not grad:
        return loss
    from scipy.special import expit

    w = expit(-z) * beta
    return loss, -w * sw, w * sl


# ---------------------------------------------------------------------- policy map
def _closed_inverse(fm: DivergenceForms):
    """Callable t -> (Φ(t), Φ'(t)) from f.policy_map, or None when there is none."""
    pm = getattr(fm.fdiv, "policy_map", None)
    if pm is None:
        return None
    tsym = next((s for s in pm.free_symbols if s.name == "t"), None)
    if tsym is not None and tsym != _T:
        pm = pm.subs(tsym, _T)
    try:
        fn = compile_numpy([pm, sympy.diff(pm, _T)], [_T], name="policy_map",
                          rewritten=False)
        with np.errstate(all="ignore"):
            fn(np.zeros(1))
    except Exception:  # noqa: BLE001 - the code generator refuses the closed form
        return None
    return fn


def _numeric_inverse(fm: DivergenceForms, t, t_lo, t_hi, iters=200):
    """Φ(t) and Φ'(t) by bracketed Newton/bisection on s = log u, vectorised."""
    fn = _reward_fn(fm)
    lo = np.full(t.shape, -745.0)
    hi = np.full(t.shape, 709.0)
    s = np.zeros(t.shape)
    for _ in range(iters):
        with np.errstate(all="ignore"):
            val, slope = (np.broadcast_to(np.asarray(x, np.float64), t.shape) for x in fn(s))
        diff = val - t
        lo = np.where(diff < 0, s, lo)
        hi = np.where(diff >= 0, s, hi)
        with np.errstate(all="ignore"):
            newton = s - diff / slope
        inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
        s_new = np.where(inside, newton, 0.5 * (lo + hi))
        if np.all(np.abs(s_new - s) <= 4 * np.finfo(float).eps * np.maximum(1, np.abs(s))):
            s = s_new
            break
        s = s_new
    u = np.exp(s)
    with np.errstate(all="ignore"):
        _, slope = (np.broadcast_to(np.asarray(x, np.float64), t.shape) for x in fn(s))
        du = u / slope
    return u, du


def _phi(fm, closed, t, t_lo, t_hi):
    """Extended inverse Φ(t) (0 below f'(0+), inf above f'(∞)) and Φ'(t)."""
    u = np.zeros(t.shape)
    du = np.zeros(t.shape)
    inner = (t > t_lo) & (t < t_hi)
    u[t >= t_hi] = np.inf
    if inner.any():
        ti = t[inner]
        if closed is not None:
            with np.errstate(all="ignore"):
                a, b = closed(ti)
            a = np.broadcast_to(np.asarray(a, np.float64), ti.shape)
            b = np.broadcast_to(np.asarray(b, np.float64), ti.shape)
        else:
            a, b = _numeric_inverse(fm, ti, t_lo, t_hi)
        u[inner] = a
        du[inner] = b
    return u, du


def policy(fm: DivergenceForms, r, lref, *, beta: float, tol, max_iter: int) -> PolicyResult:
    """KKT policy rows for float64 (rows, K) rewards and reference log-probabilities."""
    fd = fm.fdiv
    if not getattr(fd, "strictly_convex", True):
        raise ValueError(f"{fd.name}: f is not strictly convex, so f' has no inverse and the "
                         "KKT policy is not unique")
    t_lo = _const(fd.df_at_zero)
    t_hi = _const(fd.slope_at_infinity)
    closed = _closed_inverse(fm)
    tol = 1e-13 if tol is None else float(tol)
    support = ~np.isneginf(lref)
    pref = np.exp(lref)
    rfn = _reward_fn(fm)
    with np.errstate(all="ignore"):
        df_inv_pref = np.asarray(rfn(-lref)[0], np.float64) * np.ones_like(lref)
    df1 = float(fm.df_at_one)
    cand = np.where(support, r - beta * df_inv_pref, -np.inf)
    lam_lo = np.max(cand, axis=-1)
    lam_hi = np.max(np.where(support, r, -np.inf), axis=-1) - beta * df1
    lam = 0.5 * (lam_lo + lam_hi)
    n = r.shape[0]
    done = np.zeros(n, dtype=bool)
    it = 0
    while it < max_iter:
        it += 1
        t = (r - lam[:, None]) / beta
        u, du = _phi(fm, closed, t, t_lo, t_hi)
        with np.errstate(invalid="ignore"):
            psi = np.sum(np.where(support, pref * u, 0.0), axis=-1) - 1.0
            dpsi = -np.sum(np.where(support, pref * du, 0.0), axis=-1) / beta
        done = np.abs(psi) <= tol
        if done.all():
            break
        lam_lo = np.where(psi > 0, lam, lam_lo)
        lam_hi = np.where(psi < 0, lam, lam_hi)
        with np.errstate(all="ignore"):
            newton = lam - psi / dpsi
        inside = np.isfinite(newton) & (newton > lam_lo) & (newton < lam_hi)
        step = np.where(inside, newton, 0.5 * (lam_lo + lam_hi))
        lam = np.where(done, lam, step)
        stuck = (lam_hi - lam_lo) <= 2 * np.finfo(float).eps * np.maximum(1.0, np.abs(lam))
        if np.all(done | stuck):
            break
    t = (r - lam[:, None]) / beta
    u, _ = _phi(fm, closed, t, t_lo, t_hi)
    pol = np.where(support, pref * u, 0.0)
    total = pol.sum(axis=-1)
    err = np.abs(total - 1.0)
    collapsed = (lam_hi - lam_lo) <= 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(lam))
    converged = np.isfinite(total) & ((err <= tol) | (collapsed & (err <= _COLLAPSED_TOL)))
    # bracket at adjacent floats: the rest of |sum - 1| is the conditioning of (f')^-1
    # near f'(inf); divide it out (a relative change <= _COLLAPSED_TOL)
    fix = converged & (err > tol)
    pol[fix] /= total[fix, None]
    if not converged.all():
        pol[~converged] = np.nan
        warnings.warn(f"policy_from_reward: {int((~converged).sum())} row(s) did not converge "
                      "(their policy is NaN; see PolicyResult.converged)", RuntimeWarning,
                      stacklevel=3)
    return PolicyResult(policy=pol, normalizer=lam, converged=converged, iterations=it)
