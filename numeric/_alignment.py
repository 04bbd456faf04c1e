r"""Launchers of the alignment maps (f-DPO loss, KKT policy from reward).

The expressions (:math:`f'(e^{\ell})`, :math:`e^{\ell} f''(e^{\ell})`, the policy map
:math:`(f')^{-1}`) come from :mod:`numeric._forms` / :mod:`theory.fdiv` through
:mod:`numeric.codegen`; this module only iterates and reduces.

KKT policy
----------
For :math:`\max_\pi \mathbb E_\pi[r] - \beta D_f(\pi\|\pi_{ref})` on one row the optimum is
:math:`\pi_i = \pi_{ref,i}\,\Phi(t_i)`, :math:`t_i = (r_i - \lambda)/\beta`, with
:math:`\Phi = (f')^{-1}` extended by 0 at or below :math:`a = f'(0^+)` (complementary
slackness) and by :math:`+\infty` at or above :math:`b = f'(\infty)`, and :math:`\lambda` the
root of the decreasing :math:`P(\lambda) = \sum_i \pi_{ref,i}\Phi(t_i) = 1`. The reference is
normalised over its support first and the rewards are shifted by their row maximum (both
leave the policy unchanged). Three ways to get :math:`\Phi`, fastest first:

* :math:`f'(u) = c\log u + d` (``kl``, ``alpha(0)``, ``power(1)``):
  :math:`\pi = \mathrm{softmax}(\log\pi_{ref} + r/(c\beta))`, one pass, no iteration;
* ``f.policy_map`` from :mod:`theory.fdiv` when the code generator prints it and it passes a
  self-check (:math:`f'(\Phi(t)) = t` on a grid spanning :math:`(a, b)`);
* otherwise an exact numeric inverse in :math:`s = \log u`: safeguarded Newton steps on the
  local model :math:`h(s+\delta) \approx h + h'(e^{m\delta} - 1)/m`, :math:`m = h''/h'`,
  of :math:`h(s) = f'(e^s)`, which is exact for :math:`f' = A + B u^m` and for
  :math:`f' = A + B\log u`, the asymptotic forms of every catalog generator at both ends;
  a bracket in :math:`s` and bisection keep it safe. 2–4 steps per element typically.

The normaliser: Newton steps on the Box–Cox transform :math:`B_k(P) = (1 - P^{-k})/k`
(:math:`\log P` at :math:`k = 0`), with :math:`k` the tail exponent of :math:`f'` at
:math:`u \to \infty` (:math:`b - f'(u) \sim u^{-k}`, or :math:`f'(u) \sim u^{-k}`), so that a
row whose mass sits on one action is solved in one step (exactly so for KL, reverse KL,
Hellinger, α). The iteration starts from the bracket end

* :math:`\lambda_{lo} = \max_i\big(r_i - \beta f'(1/\pi_{ref,i})\big)`: one term alone is 1,
  every term is at most 1, so :math:`1 \le P \le K`;
* :math:`\lambda_{hi} = \max_i r_i - \beta f'(1)`: every :math:`\Phi \le 1`, so :math:`P \le 1`;

and a step leaving the current bracket is replaced by bisection. Typically 3–6 iterations
(measured by ``benchmarks/cpu_policy.py``); rows leave the iteration as they converge.

A row has converged when :math:`|P - 1| \le` ``tol`` (or :math:`\le 10^{-10}` once the step on
:math:`\lambda` is below its float resolution), and every :math:`\pi_i > 0` solves
:math:`f'(\pi_i/\pi_{ref,i}) = t_i` to a relative :math:`10^{-12}` in :math:`u`; the policy is
then divided by :math:`P`. Anything else is reported, never silently NaN.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import mpmath
import numpy as np
import sympy

from numeric._compile import compile_numpy
from numeric._forms import ELL, DivergenceForms, const_float
from theory import u

__all__ = ["PolicyResult", "fdpo", "policy"]

_T = sympy.Symbol("t", real=True)
_EPS = np.finfo(np.float64).eps

#: Largest |sum(pi) - 1| accepted (then divided out) once the step on lambda is below the
#: float resolution of lambda (the conditioning of the inverse of f' near f'(inf)).
_COLLAPSED_TOL = 1e-10
#: Relative accuracy in u = pi/pi_ref that a converged row guarantees for pi_i > 0.
INVERSE_RTOL = 1e-12
#: A Newton step on log u below this (relative) is the last one (the error after it is
#: of its square, checked again by the final exactness test).
_LAST_STEP = 1e-8
#: Largest |log u| the numeric inverse of f' searches.
_S_MAX = 800.0


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


# ---------------------------------------------------------------------- the inverse of f'


def _as_float_array(x, shape):
    return np.broadcast_to(np.asarray(x, dtype=np.float64), shape)


class _Inverse:
    """Everything the KKT solver needs about one generator (built once, cached)."""

    def __init__(self, fm: DivergenceForms):
        fd = fm.fdiv
        self.name = fd.name
        self.a = const_float(fd.df_at_zero)
        self.b = const_float(fd.slope_at_infinity)
        self.df1 = float(fm.df_at_one)
        self._h = _reward_fn(fm)
        self._h2 = compile_numpy([sympy.diff(fm.reward_slope, ELL)], [ELL], name="reward_curvature",
                                 rewritten=False)
        self.log_linear = self._log_linear(fd)
        self.k = self._tail_exponent(fd)
        self.s_lo, self.s_hi = self._finite_range()
        self.closed = self._closed_inverse(fd) if self.log_linear is None else None

    # -- generator facts
    @staticmethod
    def _log_linear(fd):
        """(c, d) when f'(u) = c log u + d with c > 0, else None."""
        try:
            c = sympy.simplify(u * sympy.diff(fd.df, u))
        except Exception:  # noqa: BLE001 - sympy may fail on exotic generators
            return None
        if not (c.is_number and c.is_positive):
            return None
        d = sympy.simplify(fd.df - c * sympy.log(u))
        if not d.is_number:
            return None
        return float(c), float(d)

    def _tail_exponent(self, fd) -> float:
        """k with b - f'(u) ~ u^-k (finite b) or f'(u) ~ u^-k (b = oo); 0 for log growth."""
        df = sympy.lambdify(u, fd.df, "mpmath")
        try:
            with mpmath.workdps(60):
                b = mpmath.mpf(sympy.N(fd.slope_at_infinity, 70)) if np.isfinite(self.b) else None
                y = []
                for s in (20, 30):
                    v = mpmath.re(df(mpmath.exp(s)))
                    y.append(mpmath.log(b - v) if b is not None else mpmath.log(v))
                k = float(-(y[1] - y[0]) / 10)
        except (ValueError, TypeError, ZeroDivisionError):
            return 0.0
        if not np.isfinite(k) or abs(k) < 0.1:
            return 0.0
        return float(np.clip(k, -4.0, 4.0))

    def _finite_range(self):
        """The interval of s = log u on which h(s) = f'(e^s) and h'(s) evaluate finitely."""
        grid = np.arange(-_S_MAX, _S_MAX + 1.0)
        with np.errstate(all="ignore"):
            hv, hd = (_as_float_array(x, grid.shape) for x in self._h(grid))
        ok = np.isfinite(hv) & np.isfinite(hd) & (hd > 0)
        zero = int(np.argmin(np.abs(grid)))
        if not ok[zero]:
            raise ValueError(f"{self.name}: f'(u) cannot be evaluated at u = 1")
        bad_lo = np.flatnonzero(~ok[:zero])
        bad_hi = np.flatnonzero(~ok[zero:])
        s_lo = grid[bad_lo[-1] + 1] if bad_lo.size else grid[0]
        s_hi = grid[zero + bad_hi[0] - 1] if bad_hi.size else grid[-1]
        return float(s_lo), float(s_hi)

    def _closed_inverse(self, fd):
        """Callable t -> (Φ(t), Φ'(t)) from f.policy_map when it is printable and correct."""
        pm = fd.policy_map
        if pm is None or pm.has(sympy.LambertW):
            return None
        tsym = next((s for s in pm.free_symbols if s.name == "t"), None)
        if tsym is not None and tsym != _T:
            pm = pm.subs(tsym, _T)
        try:
            fn = compile_numpy([pm, sympy.diff(pm, _T), sympy.diff(pm, _T, 2)], [_T],
                               name="policy_map", rewritten=False)
        except Exception:  # noqa: BLE001 - the code generator refuses the closed form
            return None
        # self-check on t = f'(e^s), s on a grid: log Φ(t) recovers s (forward), or
        # f'(Φ(t)) recovers t to rounding (backward: t near a finite end cannot resolve s)
        s = np.linspace(max(self.s_lo, -300.0), min(self.s_hi, 300.0), 601)
        t, _ = self.h(s)
        inner = (t > self.a) & (t < self.b)
        t, s = t[inner], s[inner]
        with np.errstate(all="ignore"):
            uu, du, _ = (_as_float_array(x, t.shape) for x in fn(t))
            back, _ = self.h(np.log(uu))
            forward = np.abs(np.log(uu) - s) <= 1e-6 * np.maximum(1.0, np.abs(s))
        ends = np.abs([e for e in (self.a, self.b) if np.isfinite(e)] + [0.0]).max()
        backward = np.abs(back - t) <= 64 * _EPS * np.maximum(np.abs(t), ends)
        good = np.isfinite(uu) & (uu >= 0) & (forward | backward)
        if not good.all() or not np.all(np.isfinite(du) & (du >= 0)):
            return None
        return fn

    # -- evaluation
    def h(self, s):
        with np.errstate(all="ignore"):
            hv, hd = self._h(s)
        return _as_float_array(hv, s.shape), _as_float_array(hd, s.shape)

    def solve_s(self, t, s0=None, max_steps=80):
        """s = log Φ(t) for t strictly inside (a, b), and whether each element converged.

        Newton steps on the local model h(s + δ) = h + h'(e^{mδ} - 1)/m, m = h''/h', kept
        inside a bracket in s (bisection otherwise); rows of work shrink as elements converge.
        """
        shape = t.shape
        t = t.ravel()
        s = np.zeros(t.shape) if s0 is None else np.clip(np.nan_to_num(s0.ravel()),
                                                          self.s_lo, self.s_hi)
        lo = np.full(t.shape, self.s_lo)
        hi = np.full(t.shape, self.s_hi)
        ok = np.zeros(t.shape, dtype=bool)
        idx = None
        for _ in range(max_steps):
            si, ti = (s, t) if idx is None else (s[idx], t[idx])
            hv, hd = self.h(si)
            with np.errstate(all="ignore"):
                hdd = _as_float_array(self._h2(si)[0], si.shape)
                res = ti - hv
                lo_i = np.where(res > 0, si, lo if idx is None else lo[idx])
                hi_i = np.where(res < 0, si, hi if idx is None else hi[idx])
                newton = res / hd
                m = hdd / hd
                x = m * newton
                model = np.where(np.abs(x) < 1e-6, newton * (1 - x / 2 + x * x / 3),
                                 np.log1p(x) / m)
                step = np.where(np.isfinite(model), model, newton)
                cand = si + step
                scale = np.maximum(1.0, np.abs(si))
                # a step below _LAST_STEP (relative) is the last one: the step converges at
                # least quadratically, so the error after it is below the float resolution
                # (rounding may put it an ulp outside the bracket); otherwise a step must
                # stay inside the bracket, or we bisect
                tiny = np.abs(step) <= _LAST_STEP * scale
                inside = (cand >= lo_i) & (cand <= hi_i)
                new = np.where(inside | tiny, cand, 0.5 * (lo_i + hi_i))
                # or f'(e^s) = t to the rounding of t and f' (conditioning of the inverse)
                done = tiny | (np.abs(res) <= 4 * _EPS * np.maximum(np.abs(ti), np.abs(hv)))
                done |= (hi_i - lo_i) <= 4 * _EPS * scale
            if idx is None:
                s, lo, hi, ok, d1, d2 = new, lo_i, hi_i, done, hd, hdd
                d1 = d1 if d1.flags.writeable else d1.copy()
                d2 = d2 if d2.flags.writeable else d2.copy()
                idx = np.flatnonzero(~done)
            else:
                s[idx], lo[idx], hi[idx], d1[idx], d2[idx] = new, lo_i, hi_i, hd, hdd
                ok[idx[done]] = True
                idx = idx[~done]
            if idx.size == 0:
                break
        # at an end of the finite range the root lies beyond it: not converged
        ok &= (s > self.s_lo) & (s < self.s_hi)
        return s.reshape(shape), ok.reshape(shape), d1.reshape(shape), d2.reshape(shape)

    def phi(self, t, s0=None):
        """Extended Φ(t), Φ'(t), Φ''(t) for an array t; for the numeric inverse also
        s = log Φ(t) and h'(s) (NaN off the interior), else None, None."""
        inner_all = bool(t.min() > self.a) and bool(t.max() < self.b)
        inner = None if inner_all else (t > self.a) & (t < self.b)
        if self.closed is not None:
            with np.errstate(all="ignore"):
                uu, du, d2u = (_as_float_array(x, t.shape) for x in self.closed(t))
            s = hd = None
        else:
            # h' and h'' at the last Newton point (within 1e-8 of s): for the derivatives
            if inner_all:
                s, _, hd, hdd = self.solve_s(t, s0)
            else:
                s, hd, hdd = (np.full(t.shape, np.nan) for _ in range(3))
                s[inner], _, hd[inner], hdd[inner] = self.solve_s(
                    t[inner], None if s0 is None else s0[inner])
            with np.errstate(all="ignore"):
                uu = np.exp(s)
                du = uu / hd
                # d/dt (e^s / h'(s)) with ds/dt = 1/h'
                d2u = du * (hd - hdd) / (hd * hd)
        if not inner_all:
            uu = np.where(inner, uu, np.where(t >= self.b, np.inf, 0.0))
            du = np.where(inner, du, np.where(t >= self.b, np.inf, 0.0))
            d2u = np.where(inner, d2u, np.where(t >= self.b, np.inf, 0.0))
            if s is not None:
                s = np.where(inner, s, np.where(t >= self.b, np.inf, -np.inf))
        return uu, du, d2u, s, hd

    def _exact(self, t, s):
        """Whether s solves f'(e^s) = t to INVERSE_RTOL in u, or to the rounding of t."""
        hv, hd = self.h(s)
        with np.errstate(all="ignore"):
            corr = np.abs((t - hv) / hd)
            backward = np.abs(t - hv) <= 16 * _EPS * np.maximum(np.abs(t), np.abs(hv))
        return (corr <= INVERSE_RTOL) | backward

    def polish(self, t, s):
        """log Φ(t) checked on the interior entries, re-solved numerically where the check
        fails (e.g. a closed form that lost u to cancellation near f'(0+)); returns s and
        whether each entry is exact (True off the interior)."""
        inner_all = bool(t.min() > self.a) and bool(t.max() < self.b)
        if inner_all:
            ok = self._exact(t, s)
        else:
            inner = (t > self.a) & (t < self.b)
            ok = np.ones(t.shape, dtype=bool)
            ok[inner] = self._exact(t[inner], s[inner])
        bad = ~ok
        if bad.any():
            s = s.copy()
            tb = t[bad]
            s0 = s[bad]
            s[bad], conv, _, _ = self.solve_s(tb, np.where(np.isfinite(s0), s0, 0.0))
            ok[bad] = conv & self._exact(tb, s[bad])
        return s, ok


_CACHE: dict[str, _Inverse] = {}


def _inverse(fm: DivergenceForms) -> _Inverse:
    key = sympy.srepr(fm.fdiv.f)
    inv = _CACHE.get(key)
    if inv is None:
        inv = _CACHE[key] = _Inverse(fm)
    return inv


# ---------------------------------------------------------------------- the normaliser
def _lse(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return (np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m)[..., 0]


def _softmax_policy(c, d, r, lref, beta):
    """f'(u) = c log u + d: the tilted softmax, one pass."""
    with np.errstate(all="ignore"):
        z = lref + r * (1.0 / (beta * c))
    if not np.isfinite(np.max(z, axis=-1)).all():
        z = lref + (r - np.max(r, axis=-1, keepdims=True)) * (1.0 / (beta * c))
        shift = np.max(r, axis=-1)
    else:
        shift = 0.0
    m = np.max(z, axis=-1, keepdims=True)
    e = np.exp(z - m)
    tot = np.sum(e, axis=-1, keepdims=True)
    pol = e / tot
    lam = shift + beta * c * (np.log(tot[:, 0]) + m[:, 0] - _lse(lref)) - beta * d
    return PolicyResult(policy=pol, normalizer=lam, converged=np.ones(r.shape[0], dtype=bool),
                        iterations=1)


def policy(fm: DivergenceForms, r, lref, *, beta: float, tol, max_iter: int) -> PolicyResult:
    """KKT policy rows for float64 (rows, K) rewards and reference log-probabilities."""
    fd = fm.fdiv
    if not getattr(fd, "strictly_convex", True):
        raise ValueError(f"{fd.name}: f is not strictly convex, so f' has no inverse and the "
                         "KKT policy is not unique")
    inv = _inverse(fm)
    tol = 1e-13 if tol is None else float(tol)
    if inv.log_linear is not None:
        return _softmax_policy(*inv.log_linear, r, lref, beta)
    support = ~np.isneginf(lref)
    lref = lref - _lse(lref)[:, None]  # the reference, normalised over its support
    rmax = np.max(np.where(support, r, -np.inf), axis=-1)
    with np.errstate(invalid="ignore", over="ignore"):
        rs = np.where(support, r - rmax[:, None], -np.inf)
    pref = np.exp(lref)
    n = r.shape[0]
    # bracket: P(lam_lo) >= 1 >= P(lam_hi)
    hinv, _ = inv.h(np.where(support, -lref, 0.0))
    usable = support & np.isfinite(hinv) & (hinv < inv.b)
    with np.errstate(invalid="ignore"):
        lam_lo = np.max(np.where(usable, rs - beta * hinv, -np.inf), axis=-1)
    lam_b = -beta * inv.b if np.isfinite(inv.b) else -np.inf  # P = inf at and below it
    lam_lo = np.maximum(lam_lo, lam_b)
    lo, hi = lam_lo.copy(), np.full(n, -beta * inv.df1)
    lam = lam_lo.copy()
    k0 = inv.k
    converged = np.zeros(n, dtype=bool)
    allow = np.zeros(n)
    numeric_inv = inv.closed is None
    s_all = np.zeros(r.shape) if numeric_inv else None
    u_all = None if numeric_inv else np.zeros(r.shape)
    idx = None  # active rows (None: all)
    s_prev = hd_prev = dlam = None
    it = 0
    while it < max_iter:
        it += 1
        li = lam if idx is None else lam[idx]
        R, PR = (rs, pref) if idx is None else (rs[idx], pref[idx])
        t = (R - li[:, None]) * (1.0 / beta)
        s0 = None
        if numeric_inv and s_prev is not None:
            # first-order predictor: t moved by -dlam/beta on the whole row
            with np.errstate(all="ignore"):
                s0 = s_prev - (dlam[:, None] / beta) / hd_prev
        uu, du, d2u, s_now, hd_now = inv.phi(t, s0)
        with np.errstate(all="ignore"):
            P = np.einsum("ij,ij->i", PR, uu)
            dP = np.einsum("ij,ij->i", PR, du) * (-1.0 / beta)
            d2P = np.einsum("ij,ij->i", PR, d2u) * (1.0 / (beta * beta))
            # Newton on B_k(P) = (1 - P^-k)/k with k making B_k(P(lam)) flat to second
            # order here (cubic convergence); k = 0 is log P
            k = np.clip(np.nan_to_num(P * d2P / (dP * dP) - 1.0, nan=k0), -2.0, 4.0)
            logP = np.log(P)
            bk = np.where(np.abs(k) < 1e-8, logP, np.expm1(k * logP) / k)
            cand = li - P * bk / dP
        err = P - 1.0
        lo_i = np.where(err > 0, li, lo if idx is None else lo[idx])
        hi_i = np.where(err < 0, li, hi if idx is None else hi[idx])
        scale = np.maximum(np.abs(li), beta)
        with np.errstate(invalid="ignore"):
            stalled = np.abs(cand - li) <= 8 * _EPS * scale
            ok = (cand >= lo_i) & (cand <= hi_i) & ~stalled
            # how close to 1 any float lambda can bring P (a few ulps of lambda)
            floor = np.maximum(_COLLAPSED_TOL, 16 * _EPS * scale * np.abs(dP))
        new = np.where(ok, cand, 0.5 * (lo_i + hi_i))
        collapsed = (hi_i - lo_i) <= 4 * _EPS * scale
        good = (np.abs(err) <= tol) | ((stalled | collapsed) & (np.abs(err) <= floor))
        done = good | collapsed
        nxt = np.where(done, li, new)
        if idx is None:
            lo, hi, lam = lo_i, hi_i, nxt
            converged, allow = good, np.where(good, floor, 0.0)
            if numeric_inv:
                s_all = s_now if s_now.flags.writeable else s_now.copy()
            else:
                u_all = uu if uu.flags.writeable else uu.copy()
            keep = ~done
            idx = np.flatnonzero(keep)
        else:
            lo[idx], hi[idx], lam[idx] = lo_i, hi_i, nxt
            converged[idx], allow[idx] = good, np.where(good, floor, 0.0)
            if numeric_inv:
                s_all[idx] = s_now
            else:
                u_all[idx] = uu
            keep = ~done
            idx = idx[keep]
        if idx.size == 0:
            break
        if numeric_inv:
            s_prev, hd_prev = s_now[keep], hd_now[keep]
            dlam = (nxt - li)[keep]
    if idx is None:
        idx = np.arange(n)
    # final policy from the converged lambda, exact inverse, divided by its sum
    t = (rs - lam[:, None]) * (1.0 / beta)
    if not numeric_inv:
        if idx.size:  # rows stopped by max_iter: u at their last lambda
            u_all[idx] = inv.phi(t[idx])[0]
        with np.errstate(divide="ignore"):
            s_all = np.log(u_all)
    s, exact = inv.polish(t, s_all)
    with np.errstate(over="ignore", invalid="ignore"):
        pol = np.exp(lref + s)
    # rows whose root sits within float resolution of lam_b: the actions with the largest
    # reward are at f'(u) = f'(inf) to rounding and take the mass the others leave
    if np.isfinite(lam_b):
        edge = ~converged & ((lam - lam_b) <= 8 * _EPS * np.maximum(np.abs(lam), beta))
        if edge.any():
            top = support & (rs == 0.0) & edge[:, None]
            rest = np.where(top, 0.0, pol).sum(axis=-1)
            share = pref * top
            share = share / np.maximum(share.sum(axis=-1, keepdims=True), np.finfo(float).tiny)
            fill = edge & (rest <= 1.0) & np.all(exact | top | (pol == 0.0), axis=-1)
            pol = np.where(top & fill[:, None], share * (1.0 - rest)[:, None], pol)
            exact = exact | (top & fill[:, None])
            converged |= fill
            allow = np.where(fill, 1e3 * tol, allow)
    total = pol.sum(axis=-1)
    # rows whose P(lambda) cannot reach 1 at a float lambda (|P - 1| above 1e3 tol, up to
    # the float resolution of lambda): move every pi along d pi/d lambda to the sub-ulp
    # root, first order, instead of scaling them all alike
    off = np.flatnonzero(converged & (np.abs(total - 1.0) > 1e3 * tol))
    if off.size:
        so = s[off]
        _, hd = inv.h(np.where(np.isfinite(so), so, 0.0))
        with np.errstate(all="ignore"):
            dpi = np.where(np.isfinite(so) & (pol[off] > 0), pol[off] / hd, 0.0)  # d pi/d t
            shift = (1.0 - total[off]) / dpi.sum(axis=-1)  # in t units, same on the row
        shift = np.where(np.isfinite(shift), shift, 0.0)
        pol[off] = np.maximum(pol[off] + dpi * shift[:, None], 0.0)
        lam[off] -= beta * shift
        total[off] = pol[off].sum(axis=-1)
    exact_rows = np.all(exact | (pol == 0.0) | ~support, axis=-1)
    converged &= np.isfinite(total) & (total > 0) & exact_rows
    converged &= np.abs(total - 1.0) <= np.maximum(allow, 1e3 * tol)
    with np.errstate(invalid="ignore", divide="ignore"):
        pol = pol / total[:, None]
    lam = lam + rmax
    if not converged.all():
        pol[~converged] = np.nan
        warnings.warn(f"policy_from_reward: {int((~converged).sum())} row(s) did not converge "
                      "(their policy is NaN; see PolicyResult.converged)", RuntimeWarning,
                      stacklevel=3)
    return PolicyResult(policy=pol, normalizer=lam, converged=converged, iterations=it)
