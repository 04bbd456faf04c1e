r"""The KKT maps of f-regularised alignment on arrays: the f-DPO loss (the reward map f' at
the log-ratios) and the policy from reward (the KKT policy solver, the inverse map with its
per-row normaliser).

The expressions (:math:`f'(e^{\ell})`, :math:`e^{\ell} f''(e^{\ell})`, the policy map
:math:`(f')^{-1}`) come from :mod:`numeric._forms` / :mod:`theory.fdiv` through
:mod:`numeric.codegen`; this module only iterates and reduces.

Parameters at run time
----------------------
Everything symbolic is derived once per family (:class:`numeric._forms.FamilyForms`: the
parameters are symbols; next to a special value such as α → 0 the family's small-parameter
forms, in :math:`\varepsilon = \theta - \theta_0`) and compiled with the parameters as
arguments: :class:`_Reward` (f-DPO) and :class:`_FamilyInverse` (the KKT solver). A parameter
value only binds numbers (:class:`_Inverse`: :math:`f'(0^+)`, :math:`f'(\infty)`, the finite
range of :math:`\log u`, the tail exponent and the guess table, from mpmath and numpy in
milliseconds); no sympy work, search or code generation runs per value.

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
* ``f.policy_map`` from :mod:`theory.fdiv` (for a family without parameters, or at the
  family's default values: solved once per family) when the code generator prints it and it
  passes,
  on a dense grid of :math:`t` across :math:`(a, b)`, the exactness test of the numeric
  inverse below; :math:`\Phi'` and :math:`\Phi''` are its :math:`t`-derivatives or
  :math:`1/f''(u)` and :math:`-f'''(u)/f''(u)^3` at :math:`u = \Phi(t)`, whichever is cheaper
  (``(u + 1)**3/8`` for ``le_cam`` rather than a fractional power of :math:`1 - t`);
* otherwise (``jeffreys``, ``softened_rkl``, user generators) a numeric inverse in
  :math:`s = \log u` of :math:`h(s) = f'(e^s)`. The terms :math:`h`, :math:`1/h'`,
  :math:`h''/(2h')` are written in :math:`s` and :math:`E = e^{-s}` (one exponential per
  evaluation) in the cheapest form that agrees with a 40-digit mpmath evaluation on a grid,
  chosen once per family at a few parameter values (:func:`_probe_values`).
  The starting point comes from a table of local models
  :math:`h(c + \delta) = h + h'(e^{m\delta} - 1)/m`, :math:`m = h''/h'`, anchored at a few
  :math:`s` (exact for :math:`f' = A + Bu^m` and :math:`f' = A + B\log u`, the asymptotic
  forms of the catalog generators; on the benchmark rows 90% within 1e-2 of the root,
  median 5e-4); then Halley steps on the whole array, and bracketed model steps on the stragglers
  only. Between outer iterations the inverse is warm-started (:math:`t` moves by
  :math:`-\Delta\lambda/\beta` on the whole row: a Halley step in :math:`s`, the local model
  for larger moves, the table beyond 0.3). It is loose while :math:`|P - 1|` is far from
  converging (inexact Newton: 0.03 and 3e-3 in :math:`\log u`) and exact once the next
  evaluation may converge the row: an element is accepted when the Newton correction
  :math:`|t - h(s)|/h'(s)` at its last evaluation is at most 1e-6 (the Halley step taken from
  there leaves an error of its cube, ~1e-18) or :math:`|t - h(s)|` is at the rounding of
  :math:`t`. Measured: 1–2 evaluations of :math:`h` per element and outer iteration, 3.2–4
  per call on the benchmark rows (``jeffreys``, ``softened_rkl``).

The normaliser: Newton steps on the Box–Cox transform :math:`B_k(P) = (1 - P^{-k})/k`
(:math:`\log P` at :math:`k = 0`) with :math:`k = PP''/P'^2 - 1`, which makes
:math:`B_k(P(\lambda))` flat to second order (cubic convergence; :math:`k` falls back to the
tail exponent of :math:`f'`), inside the bracket

* :math:`\lambda_{lo} = \max_i\big(r_i - \beta f'(1/\pi_{ref,i})\big)`: one term alone is 1,
  every term is at most 1, so :math:`1 \le P \le K`; the iteration starts there;
* :math:`\lambda_{hi} = \max_i r_i - \beta f'(1)`: every :math:`\Phi \le 1`, so :math:`P \le 1`.

A step leaving the bracket is a bisection. A step below the float resolution of
:math:`\lambda` is no proof of convergence (:math:`P` may be steep there and flat beyond, next
to :math:`f'(\infty)`): unless :math:`|P - 1| \le 10^{-10}` the row probes a few ulps towards
the root (four times further after each probe that does not cross it) and bisects once a probe
would leave the bracket. A row whose next step moves no :math:`u` by more than 1e-5
(relative) takes it without another evaluation: :math:`u` there is the second-order Taylor
expansion in :math:`t` (error ~1e-15), and the row converges if :math:`P` does. Measured on
the 65536×16 benchmark rows and on 10^5 random rows (ties, excluded actions, rewards up to
7σ, :math:`\beta` = 0.01 and 1): 2–3.5 outer iterations per row on average (``kl``: 1), the
slowest row 4–13. Rows leave the iteration as they converge; all elementwise work runs on
blocks of rows of about 2^17 elements (cache-sized: whole-array passes run from memory).

A row has converged when :math:`|P - 1| \le` ``tol`` (or :math:`\le 10^{-10}` once the step on
:math:`\lambda` is below its float resolution, or, once the bracket has collapsed to a few
ulps, up to what the float resolution of :math:`\lambda` allows), and every
:math:`\pi_i > 0` solves :math:`f'(\pi_i/\pi_{ref,i}) = t_i` to a relative :math:`10^{-12}`
in :math:`u` or to the rounding of :math:`t_i` (numeric inverse: checked per element;
closed form: checked on its grid when it is built; Taylor step: its error bound); the policy
is then divided by :math:`P`. Anything else is reported, never silently NaN.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import mpmath
import numpy as np
import sympy

from numeric._compile import compile_numpy
from numeric._forms import ELL, DivergenceForms
from theory import u

__all__ = ["PolicyResult", "fdpo", "policy"]

_T = sympy.Symbol("t", real=True)
_EPS = np.finfo(np.float64).eps

#: Largest |sum(pi) - 1| accepted (then divided out) once the step on lambda is below the
#: float resolution of lambda (the conditioning of the inverse of f' near f'(inf)).
_COLLAPSED_TOL = 1e-10
#: Relative accuracy in u = pi/pi_ref that a converged row guarantees for pi_i > 0.
INVERSE_RTOL = 1e-12
#: An element of the numeric inverse is accepted when the Newton correction on log u at the
#: last evaluated point is at most this: the Halley step taken from there is third order,
#: so the error it leaves is of the order of this cubed (1e-18, times the method's error
#: constant, which is O(1) in log u for the asymptotic forms of f').
_ACCEPT = 1e-6
_TINY = 1e-300
#: Largest move of log u (first order) that the warm start predicts with the local model;
#: beyond it the starting point comes from the guess table.
_PREDICT_MAX = 0.3
#: The inexact-Newton schedule of the numeric inverse: its accuracy (Newton correction on
#: log u) at the first iteration, at later ones while |P - 1| > _STRICT_BELOW, and _ACCEPT
#: once |P - 1| <= _STRICT_BELOW (cubic convergence: the next evaluation may converge).
_LOOSE_FIRST = 0.03
_LOOSE = 3e-3
_STRICT_BELOW = 3e-2
#: ... and at most this many loose iterations (P may stay far from 1, e.g. infinite at
#: f'(inf), where only an exact evaluation lets the row finish)
_LOOSE_ITERATIONS = 3
#: Warm start: a Halley step (no logarithm) while every predicted move of log u is below
#: _PREDICT_HALLEY.
_PREDICT_HALLEY = 0.05
#: A row with |P - 1| <= _TAYLOR_EPS after an exact evaluation takes its last Newton step
#: without another one when no u moves by more than _TAYLOR_REL (relative): u there is the
#: second-order Taylor expansion, whose error is of order _TAYLOR_REL^3 = 1e-15.
_TAYLOR_EPS = 1e-6
_TAYLOR_REL = 1e-5
#: At most this many Halley steps on the whole array before the stragglers are taken apart.
_FAST_STEPS_MAX = 4
#: Where the local model h + h'(e^{m δ} - 1)/m cannot reach t (1 + m n <= 0, beyond its
#: asymptote), its step is the one to 1 + m n = _W_MIN: far into the tail, where the model
#: at the new point is accurate.
_W_MIN = 1e-30
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


#: Above this magnitude f'(e^l) or e^l f''(e^l) is evaluated with mpmath (the float forms
#: overflow, or a difference of two such values cancels beyond float range).
_HUGE = 1e300


class _Reward:
    """:math:`h(\\ell) = f'(e^{\\ell})` and :math:`s(\\ell) = e^{\\ell} f''(e^{\\ell})` of one
    family, compiled once with the parameters as arguments: the ``lo`` forms of
    :class:`numeric._forms.FamilyForms` for :math:`\\ell \\le 0` (in :math:`e^{\\ell}`), the
    ``hi`` forms for :math:`\\ell > 0` (in :math:`e^{-\\ell}`), so no exponential overflows
    where the value itself fits a float; and an mpmath function for the rest."""

    def __init__(self, ff):
        syms = list(ff.theta)
        self.lo = compile_numpy([ff.reward, ff.reward_slope], [ELL, *syms], name="reward_lo")
        self.hi = compile_numpy([ff.reward_hi, ff.reward_slope_hi], [ELL, *syms],
                                name="reward_hi")
        # one form serves both signs of l (kl: l + 1)
        self.one = ff.reward == ff.reward_hi and ff.reward_slope == ff.reward_slope_hi
        d1 = ff.df
        d2 = sympy.diff(d1, u).replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)
        try:  # u f''(u) without the cancellation of u (1/(2u) - (sqrt(u) - 1)/(2 u^(3/2)))
            slope = sympy.simplify(u * d2)
        except Exception:  # noqa: BLE001 - sympy may fail on exotic generators
            slope = u * d2
        self.mp = sympy.lambdify([u, *syms], [d1, slope], modules="mpmath")

    def __call__(self, ell, theta):
        """(h, s) as float64 arrays of ell's shape (NaN/inf where the forms overflow)."""
        neg = ell <= 0
        with np.errstate(all="ignore"):
            if self.one or neg.all() or not neg.any():  # one branch: no masks
                fn = self.lo if self.one or neg.all() else self.hi
                return tuple(_as_float_array(x, ell.shape) for x in fn(ell, *theta))
            # both branches on the whole array (each at its side of 0), then selected:
            # cheaper than gathering and scattering through boolean masks
            lo = [_as_float_array(x, ell.shape) for x in self.lo(np.minimum(ell, 0.0), *theta)]
            hi = [_as_float_array(x, ell.shape) for x in self.hi(np.maximum(ell, 0.0), *theta)]
            return tuple(np.where(neg, a, b) for a, b in zip(lo, hi, strict=True))

    def exact(self, ell, theta):
        """(h, s) at one log-ratio ``ell`` (an mpf), in the caller's mpmath precision."""
        x = mpmath.exp(ell)
        h, s = (mpmath.re(v) for v in self.mp(x, *theta))
        return h, s


_REWARDS: dict = {}


def _reward(ff) -> _Reward:
    fn = _REWARDS.get(ff)
    if fn is None:
        fn = _REWARDS[ff] = _Reward(ff)
    return fn


_LIMITS: dict = {}


def reward_limits(fm: DivergenceForms) -> tuple:
    """(f'(0+), f'(inf)) at the parameter values of ``fm``, numerically (cached)."""
    from numeric._forms import zero_mass_limit

    ff = fm.family_forms
    key = (ff, tuple(float(v) for v in fm.theta))
    out = _LIMITS.get(key)
    if out is None:
        values = dict(zip(ff.theta, key[1], strict=True))
        out = _LIMITS[key] = (zero_mass_limit(ff.df, values, "zero"),
                              zero_mass_limit(u * ff.df, values, "infinity"))
        while len(_LIMITS) > _CACHE_MAX:  # (a parameter schedule must not grow it)
            _LIMITS.pop(next(iter(_LIMITS)))
    return out


def reward_values(fm: DivergenceForms, ell: np.ndarray) -> np.ndarray:
    """:math:`f'(e^{\\ell})` elementwise (float64), with :math:`f'(0^+)` at
    :math:`\\ell = -\\infty` and :math:`f'(\\infty)` at :math:`+\\infty`; the forms of
    :class:`_Reward` (family-compiled, parameters at run time), mpmath where they leave the
    float range."""
    fn = _reward(fm.family_forms)
    theta = tuple(float(v) for v in fm.theta)
    ell = np.asarray(ell, dtype=np.float64)
    out = np.empty(ell.shape)
    fin = np.isfinite(ell)
    if fin.any():
        h, _ = fn(ell[fin], theta)
        bad = ~(np.abs(h) <= _HUGE)
        if bad.any():
            with mpmath.workdps(50):
                th = [mpmath.mpf(v) for v in theta]
                h[bad] = [_to_float(fn.exact(mpmath.mpf(float(x)), th)[0])
                          for x in ell[fin][bad]]
        out[fin] = h
    if not fin.all():
        a, b = reward_limits(fm)
        out[ell == np.inf] = b
        out[ell == -np.inf] = a
    return out


def fdpo(fm: DivergenceForms, lpw, lpl, rlpw, rlpl, *, beta: float, grad: bool):
    """Per-pair f-DPO loss (and d/d logp_chosen, d/d logp_rejected) on float64 arrays.

    z = beta (h(l_w) - h(l_l)), loss softplus(-z), gradients -/+ sigmoid(-z) beta s(l):
    the products in log space where sigmoid(-z) underflows; pairs whose h or s leave the
    float range (|f'| > 1e300: power-like f' at |l| of several hundred) from mpmath at
    50 digits, with the log-ratios exact."""
    fn = _reward(fm.family_forms)
    theta = tuple(float(v) for v in fm.theta)
    shape = np.shape(lpw)
    lpw, lpl, rlpw, rlpl = (np.ravel(x) for x in (lpw, lpl, rlpw, rlpl))
    with np.errstate(all="ignore"):
        lw = lpw - rlpw
        ll = lpl - rlpl
        hw, sw = fn(lw, theta)
        hl, sl = fn(ll, theta)
        z = hw - hl
        z *= beta
        # pairs for mpmath: f' (or u f'') beyond 1e300 or not finite, z not finite
        bad = None
        peaks = [np.abs(hw).max(initial=0.0), np.abs(hl).max(initial=0.0)]
        if grad:
            peaks += [sw.max(initial=0.0), sl.max(initial=0.0),
                      -sw.min(initial=0.0), -sl.min(initial=0.0)]
        # (np.max, not max: a NaN among the peaks must make the test fail)
        if not (np.max(peaks) <= _HUGE and np.isfinite(z).all()):
            bad = ~(np.abs(hw) <= _HUGE) | ~(np.abs(hl) <= _HUGE) | ~np.isfinite(z)
            if grad:
                bad |= ~(sw <= _HUGE) | ~(sl <= _HUGE) | (sw < 0) | (sl < 0)
            z[bad] = 0.0
        loss = np.logaddexp(0.0, -z)
        if grad:
            from scipy.special import expit

            w = expit(-z)
            w *= beta
            gw = w * sw
            np.negative(gw, out=gw)
            gl = np.multiply(w, sl, out=w)
            # where sigmoid(-z) underflows: the products from log space, exact
            small = np.flatnonzero(expit(-z) < 1e-280) if z.max(initial=0.0) > 600 else []
            if len(small):
                zs = z[small]
                logw = np.log(beta) - np.logaddexp(0.0, zs)
                gw[small] = -np.exp(logw + np.log(sw[small]))
                gl[small] = np.exp(logw + np.log(sl[small]))
    for i in (np.flatnonzero(bad) if bad is not None else ()):
        vals = _fdpo_exact(fn, theta, lpw[i], lpl[i], rlpw[i], rlpl[i], beta)
        loss[i] = vals[0]
        if grad:
            gw[i], gl[i] = vals[1], vals[2]
    if not grad:
        return loss.reshape(shape)
    return loss.reshape(shape), gw.reshape(shape), gl.reshape(shape)


def _fdpo_exact(fn, theta, a, b, c, d, beta):
    """One pair of :func:`fdpo` with mpmath (loss, d/d logp_chosen, d/d logp_rejected):
    50 digits plus those that e^(-|l|) needs next to O(1) terms (to the float range)."""
    ells = [abs(float(x) - float(y)) for x, y in ((a, c), (b, d))]
    with mpmath.workdps(50 + int(min(max(ells), 745.0) / 2.3)):
        th = [mpmath.mpf(float(v)) for v in theta]
        hw, sw = fn.exact(mpmath.mpf(float(a)) - mpmath.mpf(float(c)), th)
        hl, sl = fn.exact(mpmath.mpf(float(b)) - mpmath.mpf(float(d)), th)
        bt = mpmath.mpf(beta)
        loss, log_sig = _softplus_mp(-bt * (hw - hl))
        out = [loss]
        for sign, slope in ((-1, sw), (1, sl)):
            x = log_sig + mpmath.log(bt * slope) if slope > 0 else -mpmath.inf
            out.append(sign * mpmath.exp(x) if x > -800 else mpmath.mpf(0))
        return tuple(_to_float(v) for v in out)


def _softplus_mp(x):
    """(softplus(x), log sigmoid(x)) in mpmath; beyond |x| = 800 the terms below 1e-347
    are dropped (mpmath's exp of a huge argument is slow, and they do not reach a float)."""
    if x > 800:
        return x, mpmath.mpf(0)
    if x < -800:
        return mpmath.mpf(0), x
    sp = x + mpmath.log1p(mpmath.exp(-x)) if x > 0 else mpmath.log1p(mpmath.exp(x))
    return sp, x - sp


def _to_float(v) -> float:
    """An mpf as the nearest float (overflow to +-inf, underflow to +-0; NaN stays NaN)."""
    if mpmath.isnan(v):
        return math.nan
    if abs(v) > mpmath.mpf(np.finfo(np.float64).max):
        return math.copysign(math.inf, float(mpmath.sign(v)))
    return float(v)


# ---------------------------------------------------------------------- the inverse of f'


def _as_float_array(x, shape):
    return np.broadcast_to(np.asarray(x, dtype=np.float64), shape)


#: Rough cost of one numpy evaluation per element, in units of a multiplication (measured
#: on the benchmark machine: exp and log ~5, sqrt ~1, expm1/log1p ~13, pow ~17).
def _cost(expr) -> int:
    """Rough evaluation cost of ``expr`` (to rank equivalent forms: cheapest first)."""
    total = 0
    for node in sympy.preorder_traversal(expr):
        if node.is_Pow:
            e = node.exp
            if e.is_Integer or e == sympy.S.Half or e == -sympy.S.Half:
                total += 1 + (abs(int(2 * e)) // 2 if e.is_Rational else 0)
            else:
                total += 17
        elif isinstance(node, (sympy.exp, sympy.log)):
            total += 5
        elif isinstance(node, sympy.Function):
            total += 13  # expm1, log1p, softplus, xlog1py, LambertW, ...
        elif node.is_Add or node.is_Mul:
            total += len(node.args) - 1
    return total


def _h_candidates(ff) -> list:
    """f'(e^s) in the variable ``ELL`` in equivalent forms: logs combined and their arguments
    expanded (``log(1/2 + exp(-s)/2)`` rather than ``log(exp(s) + 1) - s``), the plain
    expansion, and :attr:`DivergenceForms.reward` (the rewritten f-DPO form, accurate by
    construction, with the slower log1p/expm1/softplus)."""
    out = []
    e = sympy.exp(ELL)
    try:
        c = sympy.logcombine(sympy.expand_log(sympy.expand(ff.df), force=True), force=True)
        c = c.replace(sympy.log, lambda arg: sympy.log(sympy.expand(arg)))
        out.append(c.subs(u, e))
    except Exception:  # noqa: BLE001 - sympy may fail on exotic generators
        pass
    try:
        out.append(sympy.expand(ff.df.subs(u, e)))
    except Exception:  # noqa: BLE001
        pass
    out.append(ff.reward)
    return [c for i, c in enumerate(out) if c not in out[:i]]


#: E = exp(-s): every exp(k s) of the inverse's terms is a power of E (one exponential per
#: evaluation; exp(s) is 1/E).
_E = sympy.Symbol("E", positive=True)


def _in_e(expr):
    """``expr`` with exp(k*ELL), k rational, written as E**(-k)."""
    def fix(arg):
        k = sympy.simplify(arg / ELL)
        return _E ** (-k) if k.is_Rational else sympy.exp(arg)

    return expr.replace(sympy.exp, fix)


def _d_ds(expr):
    """d/ds of an expression of s (``ELL``) and E = exp(-s)."""
    return sympy.diff(expr, ELL) - _E * sympy.diff(expr, _E)


def _forms_of(expr) -> list:
    """A few equivalent forms of ``expr`` (in E): as it is, cancelled, factored, together,
    expanded."""
    expr = _in_e(expr)
    forms = [expr]
    for fn in (sympy.cancel, sympy.factor, sympy.together, sympy.expand):
        try:
            forms.append(fn(expr))
        except Exception:  # noqa: BLE001 - sympy may fail on exotic forms
            pass
    return [f for i, f in enumerate(forms) if f not in forms[:i]]


def _writable(x, shape):
    """x as a writable float64 array of ``shape`` (no copy when it already is one)."""
    if (isinstance(x, np.ndarray) and x.shape == shape and x.dtype == np.float64
            and x.flags.writeable):
        return x
    return np.array(_as_float_array(x, shape))


class _ClosedMap:
    """t -> (Φ(t), Φ'(t), Φ''(t)) as writable float64 arrays of t's shape: one generated
    function of t, or Φ(t) and then the derivatives as functions of u = Φ(t)."""

    def __init__(self, fn, slopes=None):
        self.fn, self.slopes = fn, slopes

    def __call__(self, t):
        out = self.fn(t)
        if self.slopes is None:
            return tuple(_writable(x, t.shape) for x in out)
        uu = _writable(out[0], t.shape)
        du, d2u = (_writable(x, t.shape) for x in self.slopes(uu))
        return uu, du, d2u


def _probe_values(ff) -> list:
    """Parameter values (tuples in the order of ``ff.theta``) at which the inverse's forms
    are chosen, once per family: the defaults and a few values away from the special ones
    (near a special value: the small parameter at +-1e-3 and +-0.1)."""
    from numeric._forms import special_values

    fam, syms = ff.family, tuple(ff.theta)
    if not syms:
        return [()]
    defaults = {p.symbol: float(p.default) for p in fam.parameters}
    if ff.region is not None:
        pname, t0 = ff.region
        par = next(p for p in fam.parameters if p.name == pname)
        out = []
        for e in (1e-3, -1e-3, 0.1, -0.1):
            if par.domain.contains(t0 + sympy.Rational(repr(e))) is sympy.true:
                out.append(tuple(e if x == ff.small else defaults[x] for x in syms))
        return out
    per = []
    for p in fam.parameters:
        special = [float(x) for x in special_values(fam, p.name)]
        vals = []
        for v in (float(p.default), -1.5, -0.6, 0.5, 1.5, 2.5, 5.0):
            if (v not in vals and all(abs(v - x) > 0.3 for x in special)
                    and p.domain.contains(sympy.Rational(repr(v))) is sympy.true):
                vals.append(v)
        per.append(vals[:3] or [float(p.default)])
    base = tuple(v[0] for v in per)
    return [base] + [base[:i] + (v,) + base[i + 1:] for i, vals in enumerate(per)
                     for v in vals[1:]]


class _FamilyInverse:
    """What the KKT solver derives once per family, with the parameters as symbols (the
    forms of :class:`numeric._forms.FamilyForms`, near a special value in its small
    parameter): f' and f'' for mpmath, the log-linear test, and the code-generated terms of
    the numeric inverse, chosen by :meth:`_fast_terms` at :func:`_probe_values`. Parameter
    values enter at run time (:class:`_Inverse`): no sympy work per value."""

    def __init__(self, ff):
        self.ff = ff
        self.name = ff.family.name
        self.syms = tuple(ff.theta)
        df = ff.df
        self.d2f = sympy.diff(df, u)
        self.kinked = self.d2f.has(sympy.DiracDelta, sympy.Heaviside, sympy.sign)
        self.mp_df = sympy.lambdify([u, *self.syms], df, modules="mpmath")
        self.log_linear = None if self.kinked else self._log_linear(df)
        self.closed = {}  # the closed inverse at the family's default values (if any)
        if self.kinked or self.log_linear is not None:
            return
        self.terms, self.h_form = self._fast_terms(ff)
        self.h_only = compile_numpy([_in_e(self.h_form)], [ELL, _E, *self.syms],
                                    name="reward_inverse_h")

    def _log_linear(self, df):
        """(c, d) as functions of the parameters when f'(u) = c log u + d, else None."""
        try:
            c = sympy.simplify(u * sympy.diff(df, u))
        except Exception:  # noqa: BLE001 - sympy may fail on exotic generators
            return None
        if c.has(u):
            return None
        d = sympy.simplify(df - c * sympy.log(u))
        if d.has(u):
            return None
        return (sympy.lambdify(self.syms, c, modules="math"),
                sympy.lambdify(self.syms, d, modules="math"))

    def _fast_terms(self, ff):
        """The cheapest forms of h, 1/h' and h''/(2h') in s and E = exp(-s) (every
        exp(k s) a power of E: one exponential per evaluation) that agree with 40-digit
        mpmath values of f'(u) and u f''(u) on a grid of s, wherever u = e^s and h'(s) are
        normal floats and the rewritten forms of :mod:`numeric._forms` are finite (h: to
        8 ulps of h or to 1e-13 h', a relative 1e-13 in u; h': to 64 ulps; h''/(2h'):
        finite). Candidates: the forms of :func:`_h_candidates` and their derivatives in a few
        simplified forms, then the rewritten f-DPO forms.
        The test runs at every parameter value of :func:`_probe_values` (once per family).
        Returns one code-generated function (s, E, *theta) -> (h, 1/h', h''/(2h')) and h's
        form."""
        grid = np.unique(np.concatenate([np.linspace(-40.0, 40.0, 161),
                                         np.arange(-_S_MAX, -40.0, 20.0),
                                         np.arange(60.0, _S_MAX + 1.0, 20.0)]))
        syms = self.syms
        d2f = sympy.lambdify([u, *syms], self.d2f, "mpmath")
        base = compile_numpy([ff.reward, ff.reward_slope], [ELL, *syms], name="reward_and_slope")
        probes = []
        for theta in _probe_values(ff):
            ref = np.full((2, grid.size), np.nan)
            with mpmath.workdps(40):
                th = [mpmath.mpf(v) for v in theta]
                for i, s in enumerate(grid):
                    x = mpmath.exp(mpmath.mpf(float(s)))
                    for j, fn in enumerate((self.mp_df, d2f)):
                        try:
                            v = fn(x, *th) if j == 0 else x * fn(x, *th)
                            if isinstance(v, mpmath.mpc):
                                v = (v.real if abs(v.imag) <= 1e-30 * (1 + abs(v.real))
                                     else mpmath.nan)
                            ref[j, i] = float(v)
                        except (ValueError, TypeError, ZeroDivisionError, OverflowError):
                            pass
            with np.errstate(all="ignore"):
                hv, h1 = (_as_float_array(x, grid.shape) for x in base(grid, *theta))
                covered = np.isfinite(ref).all(axis=0) & np.isfinite(hv) & np.isfinite(h1)
                covered &= (np.abs(grid) <= 700.0) & (h1 > 0) & (ref[1] >= 1e-300)
                covered &= np.abs(ref[0]) <= 1e300
                e_grid = np.exp(-grid[covered])
            probes.append((theta, grid[covered], e_grid, ref[0, covered], ref[1, covered],
                           h1[covered]))

        def values(expr):
            try:
                fn = compile_numpy([_in_e(expr)], [ELL, _E, *syms], name="reward_inverse_check")
                out = []
                with np.errstate(all="ignore"):
                    for theta, g, e_grid, *_ in probes:
                        out.append(_as_float_array(fn(g, e_grid, *theta)[0], g.shape))
                return out
            except Exception:  # noqa: BLE001 - the code generator refuses a form
                return None

        def h_ok(expr):
            vs = values(expr)
            if vs is None:
                return False
            for v, (_, _, _, ref0, _, h1) in zip(vs, probes, strict=True):
                err = np.abs(v - ref0)
                if not np.all((err <= 8 * _EPS * np.abs(ref0)) | (err <= 1e-13 * h1)):
                    return False
            return True

        def r1_ok(expr):
            vs = values(expr)
            if vs is None:
                return False
            with np.errstate(all="ignore"):
                return all(bool(np.all(np.abs(1 / v - p[4]) <= 64 * _EPS * p[4]))
                           for v, p in zip(vs, probes, strict=True))

        def hm_ok(expr):
            vs = values(expr)
            return vs is not None and all(bool(np.all(np.isfinite(v))) for v in vs)

        def cheapest(cands, ok):
            for c in sorted(cands, key=lambda c: _cost(_in_e(c))):
                if ok(c):
                    return c
            return None

        slope = ff.reward_slope
        h = cheapest(_h_candidates(ff), h_ok) or ff.reward
        # 1/h' = 1/(u f2(u)) and h''/(2h') = (1 + u f3(u)/f2(u))/2 from theory's f2 = f'',
        # then from the derivatives of h, then the rewritten forms
        e = sympy.exp(ELL)
        try:
            d2f = sympy.cancel(self.d2f)
            in_u = [sympy.cancel(1 / (u * d2f)).subs(u, e),
                    sympy.cancel((1 + u * sympy.diff(d2f, u) / d2f) / 2).subs(u, e)]
        except Exception:  # noqa: BLE001 - sympy may fail on exotic generators
            in_u = [1 / slope, sympy.diff(slope, ELL) / (2 * slope)]
        r1 = (cheapest(_forms_of(in_u[0]), r1_ok)
              or cheapest(_forms_of(1 / _d_ds(_in_e(h))) + _forms_of(1 / slope), r1_ok)
              or 1 / slope)
        hm = (cheapest(_forms_of(in_u[1]), hm_ok)
              or cheapest(_forms_of(_d_ds(_in_e(1 / r1)) * r1 / 2), hm_ok)
              or sympy.diff(slope, ELL) / (2 * slope))
        fn = compile_numpy([_in_e(h), _in_e(r1), _in_e(hm)], [ELL, _E, *syms],
                           name="reward_inverse_terms")
        return fn, h


class _Inverse:
    """Everything the KKT solver needs about one generator at parameter values: the
    family's compiled forms (:class:`_FamilyInverse`) bound to the values, and the numbers
    of this member (f'(0+), f'(inf), the finite range of log u, the tail exponent, the
    guess table), computed numerically.

    ``terms(s)`` evaluates :math:`h(s) = f'(e^s)`, :math:`h'(s)` and :math:`h''(s)` together
    (one code-generated function, common subexpressions shared).
    """

    def __init__(self, fam: _FamilyInverse, fm: DivergenceForms):
        from numeric._forms import zero_mass_limit

        theta = tuple(float(v) for v in fm.theta)
        self.name, self.theta = fam.name, theta
        if fam.kinked:
            raise ValueError(f"{fam.name}: f is not strictly convex, so f' has no inverse and "
                             "the KKT policy is not unique")
        values = dict(zip(fam.syms, theta, strict=True))
        df = fam.ff.df
        self.a = zero_mass_limit(df, values, "zero")
        self.b = zero_mass_limit(u * df, values, "infinity")
        self.df1 = float(fm.df_at_one)
        self.log_linear = None
        if fam.log_linear is not None:
            c, d = (float(g(*theta)) for g in fam.log_linear)
            if not (c > 0 and math.isfinite(d)):
                raise ValueError(f"{fam.name}: f'(u) = c log u + d with c = {c} <= 0 is not "
                                 "strictly increasing")
            self.log_linear = (c, d)
            return
        self._fam = fam
        self.terms = lambda s, e: fam.terms(s, e, *theta)
        self._h_only = lambda s, e: fam.h_only(s, e, *theta)
        self.h_form = fam.h_form
        self.s_lo, self.s_hi = self._finite_range()
        self.k = self._tail_exponent(fam)
        self.closed, self.clamp = None, None
        if _closed_form_known(fm):
            key = theta
            if key not in fam.closed:
                fam.closed[key] = self._closed_inverse(fam.ff.family.at())
            self.closed, self.clamp = fam.closed[key]
        self.table = self._guess_table() if self.closed is None else None

    def _tail_exponent(self, fam) -> float:
        """k with b - f'(u) ~ u^-k (finite b) or f'(u) ~ u^-k (b = oo); 0 for log growth."""
        try:
            with mpmath.workdps(60):
                th = [mpmath.mpf(v) for v in self.theta]
                b = None
                if np.isfinite(self.b):  # f'(inf) at 60 digits
                    b = mpmath.re(fam.mp_df(mpmath.mpf(10) ** (10**21), *th))
                y = []
                for s in (20, 30):
                    v = mpmath.re(fam.mp_df(mpmath.exp(s), *th))
                    y.append(mpmath.log(b - v) if b is not None else mpmath.log(v))
                k = float(-(y[1] - y[0]) / 10)
        except (ValueError, TypeError, ZeroDivisionError):
            return 0.0
        if not np.isfinite(k) or abs(k) < 0.1:
            return 0.0
        return float(np.clip(k, -4.0, 4.0))

    def _finite_range(self):
        """The interval of s = log u on which h, h' and h'' evaluate finitely (h' > 0)."""
        grid = np.arange(-_S_MAX, _S_MAX + 1.0)
        hv, r1, hm = self.eval(grid)
        ok = np.isfinite(hv) & np.isfinite(r1) & np.isfinite(hm) & (r1 > 0)
        zero = int(np.argmin(np.abs(grid)))
        if not ok[zero]:
            raise ValueError(f"{self.name}: f'(u) cannot be evaluated at u = 1")
        bad_lo = np.flatnonzero(~ok[:zero])
        bad_hi = np.flatnonzero(~ok[zero:])
        s_lo = grid[bad_lo[-1] + 1] if bad_lo.size else grid[0]
        s_hi = grid[zero + bad_hi[0] - 1] if bad_hi.size else grid[-1]
        return float(s_lo), float(s_hi)

    def _closed_inverse(self, fd):
        """t -> (Φ(t), Φ'(t), Φ''(t)) from f.policy_map when it is printable and passes the
        same exactness test as the numeric inverse on a dense grid; and how to evaluate it
        at or below a = f'(0+): ``"none"`` (a = -inf), ``"clamp"`` (at max(t, a): Φ(a) = 0
        and finite derivatives there) or ``"where"``.

        Φ is printed as it is or after the codegen rewrite passes; Φ' and Φ'' are its
        t-derivatives or, from u = Φ(t) by the inverse-function rule, 1/f''(u) and
        -f'''(u)/f''(u)**3 (``(u + 1)**3/8`` for le_cam rather than ``(1 - t)**(-3/2)``): the
        cheapest combination that passes the test is used."""
        pm = fd.policy_map
        if pm is None or pm.has(sympy.LambertW):
            return None, None
        tsym = next((s for s in pm.free_symbols if s.name == "t"), None)
        if tsym is not None and tsym != _T:
            pm = pm.subs(tsym, _T)
        in_t = [sympy.diff(pm, _T), sympy.diff(pm, _T, 2)]
        try:
            g1 = sympy.cancel(1 / fd.d2f)
            in_u = [min((g, sympy.factor(g)), key=_cost)
                    for g in (g1, sympy.cancel(-sympy.diff(fd.d2f, u) * g1**3))]
        except Exception:  # noqa: BLE001 - sympy may fail on exotic generators
            in_u = None
        options = []
        for rewritten in (True, False):
            options.append((_cost(pm) + sum(map(_cost, in_t)), rewritten, None))
            if in_u is not None:
                options.append((_cost(pm) + sum(map(_cost, in_u)) + 1, rewritten, in_u))
        # u on the grid in the normal float range (below it, u is 0 to float resolution)
        s = np.arange(max(self.s_lo, -700.0), min(self.s_hi, 700.0), 1 / 64)
        t, _, _ = self.eval(s)
        t = np.unique(t[(t > self.a) & (t < self.b)])
        for _, rewritten, derivs in sorted(options, key=lambda o: o[0]):
            try:
                if derivs is None:
                    fn = _ClosedMap(compile_numpy([pm, *in_t], [_T], name="policy_map",
                                                  rewritten=rewritten))
                else:
                    fn = _ClosedMap(compile_numpy([pm], [_T], name="policy_map",
                                                  rewritten=rewritten),
                                    compile_numpy(derivs, [u], name="policy_map_slopes"))
            except Exception:  # noqa: BLE001 - the code generator refuses the closed form
                continue
            if self._closed_ok(fn, t):
                break
        else:
            return None, None
        if not np.isfinite(self.a):
            return fn, "none"
        with np.errstate(all="ignore"):
            at_a = [float(x[0]) for x in fn(np.array([self.a]))]
        clamp = at_a[0] == 0.0 and all(np.isfinite(at_a))
        return fn, ("clamp" if clamp else "where")

    def _closed_ok(self, fn, t):
        """The exactness test of the numeric inverse, and usable derivatives, on t."""
        with np.errstate(all="ignore"):
            uu, du, d2u = fn(t)
            exact = self.exact(t, np.log(uu))
            # an underflow to 0 is exact where t is within rounding of f'(0+)
            exact |= (uu == 0) & (np.abs(t - self.a) <= 16 * _EPS * np.abs(t))
            # derivatives: no NaN, Φ' >= 0, finite for u in [1e-100, 1e100] (beyond, h'(s)
            # may under- or overflow: the normaliser then bisects)
            slopes = ~np.isnan(du) & (du >= 0) & ~np.isnan(d2u)
            slopes &= (np.isfinite(du) & np.isfinite(d2u)) | ~((uu <= 1e100) & (uu >= 1e-100))
        return bool(exact.all() and slopes.all())

    def _guess_table(self):
        """Anchors c_j of the starting guess of the numeric inverse: the local model
        h(c + δ) = h + h'(e^{mδ} - 1)/m, m = h''/h', at c_j, used for t between the values of
        h at the midpoints around c_j. The model is exact for f' = A + B u^m and for
        f' = A + B log u, the asymptotic forms of the catalog generators."""
        anchors = np.array([c for c in (-24.0, -8.0, -3.0, -1.0, 0.0, 1.0, 3.0, 8.0, 24.0)
                            if self.s_lo + 1 < c < self.s_hi - 1])
        hv, r1, hm = self.eval(anchors)
        m = 2 * hm
        m = np.where(np.abs(m) < 1e-9, np.where(m < 0, -1e-9, 1e-9), m)
        mids, _, _ = self.eval(0.5 * (anchors[1:] + anchors[:-1]))
        return mids, anchors, hv, 1 / (r1 * m), m

    # -- evaluation
    def eval(self, s):
        """h(s), 1/h'(s) and h''(s)/(2h'(s)) as writable float64 arrays of the shape of s."""
        with np.errstate(all="ignore"):
            return tuple(_writable(x, s.shape) for x in self.terms(s, np.exp(-s)))

    def h_only(self, s, e=None):
        """h(s) alone (``e``: exp(-s) when the caller has it)."""
        with np.errstate(all="ignore"):
            return _writable(self._h_only(s, np.exp(-s) if e is None else e)[0], s.shape)

    def guess(self, t):
        """A starting point in s = log Φ(t) (within about 0.1 of the root)."""
        mids, c, hc, scale, m = self.table
        j = np.zeros(t.shape, dtype=np.uint8)
        for v in mids:
            j += t > v
        with np.errstate(all="ignore"):
            w = t - hc.take(j)
            w /= scale.take(j)
            w += 1.0
            np.maximum(w, _W_MIN, out=w)
            np.log(w, out=w)
            w /= m.take(j)
            w += c.take(j)
        return np.clip(w, self.s_lo, self.s_hi, out=w)

    def model_step(self, s, n, m):
        """s + log(1 + m n)/m: the step to t = h(s) + n h'(s) on the local model
        h(s + δ) = h + h'(e^{mδ} - 1)/m, m = h''/h' (exact for f' = A + B u^m and for
        f' = A + B log u); where 1 + m n < _W_MIN (beyond the model's asymptote) the step
        is that to 1 + m n = _W_MIN. Clipped to the finite range."""
        with np.errstate(all="ignore"):
            w = m * n
            w += 1.0
            np.maximum(w, _W_MIN, out=w)
            d = w - 1.0  # exact: log(w)/(w - 1) is log1p(x)/x to rounding (Kahan)
            d += _TINY
            np.log(w, out=w)
            w += _TINY
            w /= d
            w *= n
            w += s
        return np.clip(w, self.s_lo, self.s_hi, out=w)

    def step(self, t, s):
        """One safeguarded Halley step on h(s) = t from s (the whole array, no masks).

        Returns the new point, the Newton correction (t - h(s))/h'(s) at s, the residual
        t - h(s), h(s), 1/h'(s) and h''(s)/(2h'(s))."""
        hv, r1, hm = self.eval(s)
        with np.errstate(all="ignore"):
            res = t - hv
            n = res * r1
            den = hm * n
            den += 1.0
            np.maximum(den, 0.5, out=den)  # at most twice the Newton step (beyond the model)
            new = n / den
            new += s
            np.clip(new, self.s_lo, self.s_hi, out=new)
        return new, n, res, hv, r1, hm

    def exact(self, t, s):
        """Whether s solves f'(e^s) = t to INVERSE_RTOL in u, or to the rounding of t."""
        hv, r1, _ = self.eval(s)
        with np.errstate(all="ignore"):
            res = np.abs(t - hv)
            return (res * r1 <= INVERSE_RTOL) | (res <= 16 * _EPS * np.maximum(np.abs(t),
                                                                               np.abs(hv)))

    def solve(self, t, s, steps, acc=_ACCEPT):
        """log Φ(t) for t strictly inside (a, b), from s: ``steps`` Halley steps on the whole
        array (more while over 1/64 of the elements move), then safeguarded model steps on
        the elements not yet accepted.

        An element is accepted when the Newton correction :math:`|t - h(s)|/h'(s)` at the
        last evaluated point is at most ``acc`` (a scalar or one value per row; _ACCEPT for
        the final answer: the step taken from there leaves an error of its cube), or when
        :math:`|t - h(s)|` is at the rounding of t and h (then s is kept); a root below the
        finite range of s is u = 0 (u < e^{s_lo} is 0 to float resolution).

        Returns s, 1/h'(s) and h''(s)/(2h'(s)) (at the last evaluated point) and the
        accepted mask."""
        if steps == 0:
            _, r1, hm = self.eval(s)
            return s, r1, hm, self.exact(t, s)
        acc = acc if np.ndim(acc) == 0 else np.asarray(acc)[:, None]
        for i in range(_FAST_STEPS_MAX):
            new, n, res, hv, r1, hm = self.step(t, s)
            s_prev, s = s, new
            ok = np.abs(n) <= acc
            # whole-array steps while more than 1/64 of the elements still move
            if i + 1 >= steps and np.count_nonzero(ok) >= ok.size - (ok.size >> 6):
                break
        if ok.all():
            return s, r1, hm, ok
        bad = np.flatnonzero(~ok.ravel())
        flat = [x.ravel() for x in (s, r1, hm, ok)]
        acc_b = acc if np.ndim(acc) == 0 else np.broadcast_to(acc, t.shape).ravel()[bad]
        sb, r1b, hmb, okb = self._stragglers(t.ravel()[bad], s_prev.ravel()[bad],
                                             res.ravel()[bad], hv.ravel()[bad],
                                             r1.ravel()[bad], hm.ravel()[bad], s.ravel()[bad],
                                             acc_b)
        for x, v in zip(flat, (sb, r1b, hmb, okb), strict=True):
            x[bad] = v
        return s, r1, hm, ok

    def _stragglers(self, t, s, res, hv, r1, hm, s_next, acc, max_steps=100):
        """The elements that ``solve``'s whole-array steps left: model steps (exact in the
        tails) kept inside a bracket in s, bisection otherwise; the work shrinks as elements
        are accepted. ``s``: the last evaluated point, (res, hv, r1, hm) there, ``s_next``
        the step taken from it."""
        out_s, out_r1, out_hm = s_next.copy(), r1.copy(), hm.copy()
        ok = np.zeros(t.shape, dtype=bool)
        lo = np.full(t.shape, self.s_lo)
        hi = np.full(t.shape, self.s_hi)
        idx = np.arange(t.size)
        ti = t
        acc = np.broadcast_to(acc, t.shape)
        for it in range(max_steps):
            if it:
                hv, r1, hm = self.eval(s)
                res = ti - hv
            with np.errstate(all="ignore"):
                n = res * r1
                rounding = np.abs(res) <= 16 * _EPS * np.maximum(np.abs(ti), np.abs(hv))
                lo = np.where(res > 0, s, lo)
                hi = np.where(res < 0, s, hi)
                cand = self.model_step(s, n, 2 * hm)
                inside = (cand > lo) & (cand < hi)
                nxt = np.where(inside, cand, 0.5 * (lo + hi))
                accept = np.abs(n) <= acc
            below = (s <= self.s_lo) & (res < 0)  # u < e^{s_lo}: 0 to float resolution
            done = accept | rounding | below | ((hi - lo) <= 4 * _EPS * np.maximum(1, np.abs(s)))
            done &= ~np.isnan(res)
            fin = idx[done]
            out_s[fin] = np.where(rounding, s, np.where(below, -np.inf, cand))[done]
            out_r1[fin], out_hm[fin] = r1[done], hm[done]
            ok[fin] = (accept | rounding | below)[done]
            keep = ~done
            if not keep.any():
                break
            idx, ti, s, lo, hi = idx[keep], ti[keep], nxt[keep], lo[keep], hi[keep]
            acc = acc[keep]
        return out_s, out_r1, out_hm, ok

    def phi(self, t, state=None, steps=None, bounds=None, acc=_ACCEPT):
        """Extended Φ(t), Φ'(t), Φ''(t) on an array t (rows of one policy), each element's
        exactness (None: all exact) and the state of the numeric inverse (s, 1/h'(s),
        h''(s)/(2h'(s))).

        ``state``: a starting point in s (None: :meth:`guess`); ``bounds``: (min t, max t)
        when the caller knows them."""
        a, b = self.a, self.b
        tmin, tmax = (t.min(), t.max()) if bounds is None else bounds
        lo_all = not np.isfinite(a) or bool(tmin > a)
        hi_all = not np.isfinite(b) or bool(tmax < b)
        if self.closed is not None:
            ok = None
            with np.errstate(all="ignore"):
                if lo_all or self.clamp == "none":
                    uu, du, d2u = self.closed(t)
                elif self.clamp == "clamp":  # (Φ, Φ', Φ'' finite at a)
                    above = t > a
                    uu, du, d2u = self.closed(np.maximum(t, a))
                    du *= above
                    d2u *= above
                else:
                    above = t > a
                    uu, du, d2u = (np.where(above, x, 0.0) for x in self.closed(t))
            new_state = None
        else:
            tt = t
            if not (lo_all and hi_all):  # keep the solver inside (a, b); fixed below
                tt = np.clip(t, np.nextafter(a, np.inf), np.nextafter(b, -np.inf))
            if state is None:
                s0, steps = self.guess(tt), 2 if steps is None else steps
            else:
                s0, steps = state, 1 if steps is None else steps
            s, r1, hm, ok = self.solve(tt, s0, steps, acc)
            with np.errstate(all="ignore"):
                uu = np.exp(s)
                du = uu * r1
                # d/dt (e^s / h'(s)) with ds/dt = 1/h': du (1 - h''/h') / h'
                d2u = hm * -2.0
                d2u += 1.0
                d2u *= r1
                d2u *= du
            if not lo_all:  # u = 0 at and below f'(0+)
                below = t <= a
                for x in (uu, du, d2u):
                    np.copyto(x, 0.0, where=below)
                ok |= below
            new_state = (s, r1, hm)
        if not hi_all:
            top = t >= b
            uu, du, d2u = (np.where(top, np.inf, x) for x in (uu, du, d2u))
            if ok is not None:
                ok |= top
        return uu, du, d2u, ok, new_state


_FAMILIES: dict = {}
#: Bound inverses per (family forms, parameter values), most recent last.
_CACHE: dict = {}
_CACHE_MAX = 256


def _closed_form_known(fm: DivergenceForms) -> bool:
    """Whether ``f.policy_map`` (a ``sympy.solve``) may be asked for: a generator without
    parameters, or a family at its default values (the catalog member, solved once per
    family). At any other value the exact numeric inverse answers: solving f'(u) = t for
    one member can run for hours (JS at beta = 3/10, alpha at a float made rational)."""
    ff = fm.family_forms
    if not ff.theta:
        return True
    if ff.region is not None or ff.family is not fm.family:
        return False
    defaults = tuple(float(p.default) for p in fm.family.parameters)
    return tuple(fm.values) == defaults


def _family_inverse(ff) -> _FamilyInverse:
    fam = _FAMILIES.get(ff)
    if fam is None:
        fam = _FAMILIES[ff] = _FamilyInverse(ff)
    return fam


def _inverse(fm: DivergenceForms) -> _Inverse:
    ff = fm.family_forms
    key = (ff, tuple(float(v) for v in fm.theta), _closed_form_known(fm))
    inv = _CACHE.pop(key, None)
    if inv is None:
        inv = _Inverse(_family_inverse(ff), fm)
    _CACHE[key] = inv
    while len(_CACHE) > _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    return inv


# ---------------------------------------------------------------------- the normaliser
#: Elements per block of rows: every elementwise step runs block by block, on arrays that
#: stay in the CPU cache (about twice as fast as whole-array numpy passes at 10^6 elements).
_BLOCK = 1 << 17


def _blocks(n, K, rows=None):
    """Slices of ``_BLOCK`` elements' worth of rows, or chunks of the index array ``rows``."""
    size = max(1, _BLOCK // max(K, 1))
    if rows is None:
        for start in range(0, n, size):
            yield slice(start, min(n, start + size))
    else:
        for start in range(0, rows.size, size):
            yield rows[start:start + size]


def _rows_all(ok):
    """ok.all(axis=-1) for a 2-d bool array, by counting."""
    if ok.all():
        return np.ones(ok.shape[0], dtype=bool)
    return np.einsum("ij->i", (~ok).view(np.uint8)) == 0


def _log_normaliser(lref, lmax):
    """exp(lref - c) per row, its row sums Z and the row log-normalisers c + log Z of the
    reference over its support, with the one shift c = max(lref) (a row whose sum falls
    below 1e-250 gets its own); refuses a row without support."""
    e = np.subtract(lref, lmax)
    np.exp(e, out=e)
    z = e @ np.ones(e.shape[-1])
    low = z < 1e-250
    if low.any():
        rows = np.flatnonzero(low)
        m = lref[rows].max(axis=-1)
        if np.isneginf(m).any():
            raise ValueError("ref_logp has a row with no support (all -inf)")
        er = np.exp(lref[rows] - m[:, None])
        e[rows] = er
        z[rows] = er.sum(axis=-1)
        lz = np.log(z) + lmax
        lz[rows] = m + np.log(z[rows])
    else:
        lz = np.log(z)
        lz += lmax
    return e, z, lz


def _softmax_policy(c, d, r, lref, lmax, beta):
    """f'(u) = c log u + d: the tilted softmax, one pass per block of rows."""
    n, K = r.shape
    scale = 1.0 / (beta * c)
    pol = np.empty((n, K))
    lam = np.empty(n)
    ones = np.ones(K)
    for rows in _blocks(n, K):
        z = pol[rows]
        R = r[rows]
        with np.errstate(over="ignore", invalid="ignore"):
            # r shifted by its row maximum first (exact where the rewards are close): the
            # policy is shift-invariant, and r/(c beta) + log pi_ref would round away the
            # reference at large rewards (r + 1e15)
            shift = R.max(axis=-1)
            np.subtract(R, shift[:, None], out=z)
            z *= scale
            z += lref[rows]
            m = z.max(axis=-1)
        _, _, lz = _log_normaliser(lref[rows], lmax)
        z -= m[:, None]
        np.exp(z, out=z)
        tot = z @ ones
        z /= tot[:, None]
        lb = np.log(tot)
        lb += m
        lb -= lz
        lb *= beta * c
        lb += shift - beta * d
        lam[rows] = lb
    return PolicyResult(policy=pol, normalizer=lam, converged=np.ones(n, dtype=bool),
                        iterations=1)


class _Rows:
    """The per-row state of the normaliser iteration and the per-element arrays it keeps."""

    def __init__(self, inv, r, lref, lmax, beta):
        n, K = r.shape
        self.n, self.K, self.beta = n, K, beta
        self.rb = np.empty((n, K))  # (r - max r)/beta; off the support the row's minimum
        self.pref = np.empty((n, K))  # the reference, normalised over its support
        self.lnorm = np.empty(n)  # log of the reference's normaliser
        self.rmax = np.empty(n)
        self.lam_lo = np.empty(n)
        self.holes = self.tiny_ref = False
        ib = 1.0 / beta
        lam_b = -beta * inv.b if np.isfinite(inv.b) else -np.inf  # P = inf at and below it
        self.lam_b = lam_b
        for rows in _blocks(n, K):
            L = lref[rows]
            e, z, lz = _log_normaliser(L, lmax)
            pref = np.divide(e, z[:, None], out=self.pref[rows])
            self.lnorm[rows] = lz
            sigma = np.subtract(lz[:, None], L)  # -log pref
            smax = sigma.max()
            R = r[rows]
            rb = self.rb[rows]
            if np.isinf(smax):
                self.holes = True
                support = ~np.isneginf(L)
                rmax = np.where(support, R, -np.inf).max(axis=-1)
                rmin = np.where(support, R, np.inf).min(axis=-1)
                np.copyto(rb, np.where(support, R, rmin[:, None]))
                rb -= rmax[:, None]
            else:
                rmax = R.max(axis=-1)
                np.subtract(R, rmax[:, None], out=rb)
            rb *= ib
            self.rmax[rows] = rmax
            self.tiny_ref |= bool(smax > 700.0)
            # lam_lo: one action alone has mass 1 there (t_i = f'(1/pref_i)), every other
            # at most its own; so P(lam_lo) >= 1
            out = smax > inv.s_hi  # off the support, or f'(1/pref) beyond the finite range
            # h(sigma) with exp(-sigma) = pref
            hinv = (inv.h_only(np.minimum(sigma, inv.s_hi)) if out else
                    inv.h_only(sigma, pref))
            # (where f'(1/pref) rounds to f'(inf), that action cannot have mass 1 alone)
            at_b = (hinv >= inv.b) if np.isfinite(inv.b) and hinv.max() >= inv.b else None
            cand = np.subtract(rb, hinv, out=hinv)
            if out:
                cand[sigma > inv.s_hi] = -np.inf
            if at_b is not None:
                cand[at_b] = -np.inf
            self.lam_lo[rows] = np.maximum(cand.max(axis=-1) * beta, lam_b)

    def t(self, rows, lam):
        return self.rb[rows] - (lam * (1.0 / self.beta))[:, None]


def _newton_rows(P, dP, d2P, exact, sure, la, lo, hi, beta, tol, k0, probed):
    """One safeguarded step on lambda for rows with P(la) = P and its derivatives; ``exact``:
    P is exact (the row may converge), ``sure``: the sign of P - 1 is (the bracket may move);
    None: all rows; ``probed``: the size of the row's last probe step, 0 if none (updated
    in place).
    Returns the next lambda, the bracket, and per row: done, good (converged) and the
    accepted |P - 1| (floor)."""
    with np.errstate(all="ignore"):
        # Newton on B_k(P) = (1 - P^-k)/k with k making B_k(P(lam)) flat to second order
        # here (cubic convergence); k = 0 is log P
        k = np.clip(np.nan_to_num(P * d2P / (dP * dP) - 1.0, nan=k0), -2.0, 4.0)
        logP = np.log(P)
        bk = np.where(np.abs(k) < 1e-8, logP, np.expm1(k * logP) / k)
        cand = la - P * bk / dP
    err = P - 1.0
    # the bracket moves only where the sign of P - 1 is certain
    above, below = err > 0, err < 0
    if sure is not None:
        above &= sure
        below &= sure
    lo = np.where(above, la, lo)
    hi = np.where(below, la, hi)
    scale = np.maximum(np.abs(la), beta)
    with np.errstate(invalid="ignore"):
        stalled = np.abs(cand - la) <= 8 * _EPS * scale
        inside = (cand > lo) & (cand < hi) & ~stalled  # (P is known at lo and hi)
        # how close to 1 any float lambda can bring P (a few ulps of lambda)
        floor = np.maximum(_COLLAPSED_TOL, 16 * _EPS * scale * np.abs(dP))
    new = np.where(inside, cand, 0.5 * (lo + hi))
    collapsed = (hi - lo) <= 4 * _EPS * scale
    # a Newton step below the float resolution of lambda is no proof that the root is there
    # (P may be steep here and flat beyond, e.g. next to lam_b): it ends the iteration only
    # for |P - 1| <= _COLLAPSED_TOL; else the row bisects until its bracket collapses
    good = (np.abs(err) <= tol) | (stalled & (np.abs(err) <= _COLLAPSED_TOL))
    good |= collapsed & (np.abs(err) <= floor)
    done = good | collapsed
    # such a row probes towards the root, a few ulps of lambda and four times further after
    # each probe that did not cross it (the bracket collapses where the root is within
    # float resolution), and bisects once a probe would leave the bracket
    stuck = stalled & ~done
    if exact is not None:
        stuck &= exact
    step = np.maximum(np.maximum(2 * np.abs(cand - la), 2 * _EPS * scale), 4 * probed)
    at = la + np.where(err > 0, step, -step)
    probe = stuck & (at > lo) & (at < hi)
    new = np.where(probe, at, new)
    probed[:] = np.where(probe, step, 0.0)
    if exact is not None:
        good &= exact
        done &= exact
        # a row whose P is approximate takes its Newton step, bisects where the sign of
        # P - 1 is certain and the step is not below float resolution, and otherwise stays
        # (its next evaluation is exact where |P - 1| is small)
        new = np.where(exact | inside | (sure & ~stalled), new, la)
    return np.where(done, la, new), lo, hi, done, good, floor


def policy(fm: DivergenceForms, r, lref, *, beta: float, tol, max_iter: int,
           lmax=None) -> PolicyResult:
    """KKT policy rows for float64 (rows, K) rewards and reference log-probabilities
    (``lmax``: max(lref), when the caller has it)."""
    inv = _inverse(fm)
    tol = 1e-13 if tol is None else float(tol)
    if lmax is None:
        lmax = float(lref.max())
    if inv.log_linear is not None:
        return _softmax_policy(*inv.log_linear, r, lref, lmax, beta)
    n, K = r.shape
    st = _Rows(inv, r, lref, lmax, beta)
    ib = 1.0 / beta
    lam = st.lam_lo.copy()
    lo, hi = st.lam_lo.copy(), np.full(n, -beta * inv.df1)
    converged, allow, probed = np.zeros(n, dtype=bool), np.zeros(n), np.zeros(n)
    active = None  # a mask of the rows still iterating; None: all
    numeric_inv = inv.closed is None
    u_all = np.empty((n, K))
    if numeric_inv:  # s = log u, 1/h'(s), h''/(2h') of the last iteration, the last step
        S, H1, H2, dlam = np.empty((n, K)), np.empty((n, K)), np.empty((n, K)), np.zeros(n)
        eps = np.full(n, np.inf)  # |P - 1| at the last iteration
    it = 0
    while True:
        it += 1
        todo = np.ones(n, dtype=bool) if active is None else active
        for rows in _blocks(n, K, None if active is None else np.flatnonzero(active)):
            la = lam[rows]
            t = st.t(rows, la)
            state = None
            if numeric_inv and it > 1:
                # warm start: t moved by -dlam/beta on the whole row; s by the local
                # model's step from the last point (first order for small moves)
                s_prev, r1_prev, hm_prev = S[rows], H1[rows], H2[rows]
                dt = dlam[rows] * (-ib)
                with np.errstate(all="ignore"):
                    ds = dt[:, None] * r1_prev
                    reach = max(ds.max(), -ds.min())
                    if reach <= _PREDICT_HALLEY:  # a Halley step: error ~ ds^3
                        den = hm_prev * ds
                        den += 1.0
                        ds /= den
                        ds += s_prev
                        state = np.clip(ds, inv.s_lo, inv.s_hi, out=ds)
                    else:
                        state = inv.model_step(s_prev, ds, 2 * hm_prev)
                        if reach > _PREDICT_MAX:  # beyond the reach of the model: the guess
                            big = np.abs(ds) > _PREDICT_MAX
                            state[big] = inv.guess(t[big])
            acc = _ACCEPT
            if numeric_inv:
                # the accuracy of the inverse: loose while |P - 1| is far from converging
                # (inexact Newton), _ACCEPT once this evaluation may converge the row
                acc = (np.full(la.shape, _LOOSE_FIRST) if it == 1 else
                       _ACCEPT if it > _LOOSE_ITERATIONS else
                       np.where(eps[rows] <= _STRICT_BELOW, _ACCEPT, _LOOSE))
            uu, du, d2u, ok, new_state = inv.phi(t, state, steps=1, acc=acc)
            PR = st.pref[rows]
            with np.errstate(all="ignore"):
                P = np.einsum("ij,ij->i", PR, uu)
                dP = np.einsum("ij,ij->i", PR, du) * (-ib)
                d2P = np.einsum("ij,ij->i", PR, d2u) * (ib * ib)
            exact = sure = None
            if ok is not None:
                exact = _rows_all(ok)
                strict = acc <= _ACCEPT
                # P is within ~acc^3 (relative) of its value: the sign of P - 1 is certain
                # where |P - 1| is well above that
                sure = exact & (strict | (np.abs(P - 1.0) > 100 * acc**3))
                exact &= strict
                eps[rows] = np.abs(P - 1.0)
            probing = probed[rows]
            nxt, lo[rows], hi[rows], done, good, floor = _newton_rows(
                P, dP, d2P, exact, sure, la, lo[rows], hi[rows], beta, tol, inv.k, probing)
            probed[rows] = probing
            # rows a tiny step from the root: u there by second-order Taylor, no evaluation
            near = ~done & (np.abs(P - 1.0) <= _TAYLOR_EPS)
            if exact is not None:
                near &= exact
            if near.any():
                fin, u_fin = _taylor_finish(uu, du, d2u, PR, la, nxt, near, ib, tol)
                if fin.size:
                    uu[fin] = u_fin
                    done[fin] = good[fin] = True
                    if numeric_inv:
                        with np.errstate(divide="ignore"):
                            new_state[0][fin] = np.log(u_fin)
            if it >= max_iter:
                done[:] = True  # rows stopped by max_iter: u at their last lambda
            if numeric_inv:
                S[rows], H1[rows], H2[rows] = new_state
                dlam[rows] = nxt - la
            lam[rows] = nxt  # (la may be a view of lam)
            converged[rows] = good
            allow[rows] = np.where(good, floor, 0.0)
            u_all[rows] = uu
            todo[rows] = ~done
        if not todo.any():
            break
        active = None if todo.all() else todo
    return _finish(inv, st, fm, u_all, S if numeric_inv else None, lam, converged, allow, tol,
                   it, lref)


def _taylor_finish(uu, du, d2u, PR, la, nxt, near, ib, tol):
    """The rows of ``near`` whose step to ``nxt`` moves every u = Φ(t) by at most _TAYLOR_REL
    (relative: |Φ'(t) dt| <= _TAYLOR_REL Φ(t)) and whose P there, with u from the
    second-order Taylor expansion in t (error ~ _TAYLOR_REL^3, below 1e-15 relative), is
    within ``tol`` of 1: their indices and their new u."""
    idx = np.flatnonzero(near)
    few = 2 * idx.size < near.size  # gather those rows, else work on the whole block
    dt = ((la - nxt) * ib)[idx if few else slice(None)][:, None]  # t' - t
    U, D1, D2 = (x[idx] for x in (uu, du, d2u)) if few else (uu, du, d2u)
    with np.errstate(all="ignore"):
        small = _rows_all(np.abs(dt) * D1 <= _TAYLOR_REL * U)
        if not few:
            small &= near
        if not small.any():
            return idx[:0], None
        sel = np.flatnonzero(small)
        dt, U, D1, D2 = dt[sel], U[sel], D1[sel], D2[sel]
        new = D2 * dt
        new *= 0.5
        new += D1
        new *= dt
        new += U
        rows = idx[sel] if few else sel
        P = np.einsum("ij,ij->i", PR[rows], new)
    fin = np.abs(P - 1.0) <= tol
    return rows[fin], new[fin]


def _finish(inv, st, fm, u_all, s_all, lam, converged, allow, tol, it, lref):
    """The policy from the converged lambda: pi = pref u, divided by its sum."""
    K, beta = st.K, st.beta
    pol = u_all
    # reference entries below the float range of pref (-log pref > 700): from log space
    if st.tiny_ref:
        sigma = st.lnorm[:, None] - lref
        far = np.isfinite(sigma) & (sigma > 700.0)
        with np.errstate(divide="ignore"):
            far_log_u = s_all[far] if s_all is not None else np.log(u_all[far])
    pol *= st.pref
    if st.tiny_ref:
        pol[far] = np.exp(far_log_u - sigma[far])
    # rows whose root sits within float resolution of lam_b: the actions with the largest
    # reward are at f'(u) = f'(inf) to rounding and take the mass the others leave
    if np.isfinite(st.lam_b):
        edge = ~converged & ((lam - st.lam_b) <= 8 * _EPS * np.maximum(np.abs(lam), beta))
        if edge.any():
            _fill_edge(inv, st, pol, edge, lam, lref, converged, allow, tol)
    total = pol @ np.ones(K)
    # rows whose P(lambda) cannot reach 1 at a float lambda (|P - 1| above 1e3 tol, up to
    # the float resolution of lambda): move every pi along d pi/d lambda to the sub-ulp
    # root, first order, instead of scaling them all alike
    off = np.flatnonzero(converged & (np.abs(total - 1.0) > 1e3 * tol))
    if off.size:
        t = st.t(off, lam[off])
        du = inv.phi(t, None if s_all is None else s_all[off], steps=0)[1]
        with np.errstate(all="ignore"):
            dpi = np.where(pol[off] > 0, st.pref[off] * du, 0.0)  # d pi/d t
            shift = (1.0 - total[off]) / dpi.sum(axis=-1)  # in t units, same on the row
        # only a move of lambda within its float resolution is such a correction
        sub_ulp = np.abs(beta * shift) <= 16 * _EPS * np.maximum(np.abs(lam[off]), beta)
        converged[off] &= sub_ulp
        shift = np.where(np.isfinite(shift) & sub_ulp, shift, 0.0)
        pol[off] = np.maximum(pol[off] + dpi * shift[:, None], 0.0)
        lam[off] -= beta * shift
        total[off] = pol[off].sum(axis=-1)
    converged &= np.isfinite(total) & (total > 0)
    converged &= np.abs(total - 1.0) <= np.maximum(allow, 1e3 * tol)
    with np.errstate(invalid="ignore", divide="ignore"):
        pol /= total[:, None]
    lam = lam + st.rmax
    if not converged.all():
        pol[~converged] = np.nan
        warnings.warn(f"policy_from_reward: {int((~converged).sum())} row(s) did not converge "
                      "(their policy is NaN; see PolicyResult.converged)", RuntimeWarning,
                      stacklevel=4)
    return PolicyResult(policy=pol, normalizer=lam, converged=converged, iterations=it)


def _fill_edge(inv, st, pol, edge, lam, lref, converged, allow, tol):
    """Rows at lam_b to float resolution: the top actions take the mass the others leave,
    when every other action is exact there (in place)."""
    rows = np.flatnonzero(edge)
    t = st.t(rows, lam[rows])
    ok = inv.phi(t, None, steps=8)[3]
    exact = np.ones(t.shape, dtype=bool) if ok is None else ok
    top = (st.rb[rows] == 0.0) & ~np.isneginf(lref[rows])
    p = pol[rows]
    rest = np.where(top, 0.0, p).sum(axis=-1)
    # they share it in proportion to pi_ref (from log space: pi_ref may be subnormal)
    lt = np.where(top, lref[rows], -np.inf)
    share = np.exp(lt - lt.max(axis=-1, keepdims=True))
    share /= share.sum(axis=-1, keepdims=True)
    fill = (rest <= 1.0) & np.all(exact | top | (p == 0.0), axis=-1)
    pol[rows] = np.where(top & fill[:, None], share * (1.0 - rest)[:, None], p)
    converged[rows] |= fill
    allow[rows] = np.where(fill, 1e3 * tol, allow[rows])
