r"""The risk of the maximum-likelihood estimator against the information projection.

Setting (Sheena 2021). The model is an exponential family
:math:`g(x;\theta) = h(x)\exp(\theta\cdot T(x) - \psi(\theta))`, :math:`\theta\in\mathbb R^p`;
the data are :math:`X_1,\dots,X_n` i.i.d. from a truth :math:`g` that need not lie in the model.

* Information projection: :math:`\theta^*` solves :math:`\nabla\psi(\theta^*) = \eta^* := E_g[T]`.
* MLE: :math:`\nabla\psi(\hat\theta) = \bar T`, the sample mean of :math:`T(X_i)`.
* Risk: :math:`R_n = E\,\mathrm{KL}(g_{\theta^*}\|g_{\hat\theta})`, with P = the projection first.

Derivation (one computation for every dimension p). With :math:`\varphi = \psi^*` the convex
conjugate, :math:`\mathrm{KL}(g_{\theta^*}\|g_{\hat\theta}) = \psi(\hat\theta) - \psi(\theta^*)
- \eta^*\cdot(\hat\theta-\theta^*) = \varphi(\eta^*) - \varphi(\bar T) - \nabla\varphi(\bar T)
\cdot(\eta^* - \bar T)`. Expanding in :math:`\delta = \bar T - \eta^*`,

.. math::

    \mathrm{KL} = \tfrac12\varphi_{ij}\delta_i\delta_j + \tfrac13\varphi_{ijk}\delta_i\delta_j
    \delta_k + \tfrac18\varphi_{ijkl}\delta_i\delta_j\delta_k\delta_l + O(|\delta|^5),

and the moments of a sample mean, :math:`E\delta_i\delta_j = \kappa_{ij}/n`,
:math:`E\delta_i\delta_j\delta_k = \kappa_{ijk}/n^2`, :math:`E\delta_i\delta_j\delta_k\delta_l =
(\kappa_{ij}\kappa_{kl}+\kappa_{ik}\kappa_{jl}+\kappa_{il}\kappa_{jk})/n^2 + O(n^{-3})`
(:math:`\kappa` the joint cumulants of :math:`T(X)` under the truth; fifth and sixth moments are
:math:`O(n^{-3})`), give :math:`R_n = c_1/n + c_2/n^2 + O(n^{-3})` with

.. math::

    c_1 = \tfrac12\operatorname{tr}(A\kappa_2),\qquad
    c_2 = \tfrac13\varphi_{ijk}\kappa_{ijk} + \tfrac38\varphi_{ijkl}\kappa_{ij}\kappa_{kl}.

The derivatives of :math:`\varphi` come from those of :math:`\psi` at :math:`\theta^*` by the
inverse-function rule, :math:`A = \varphi'' = (\psi'')^{-1}`,
:math:`\varphi_{ijk} = -\psi_{abc}A_{ai}A_{bj}A_{ck}`, which contracted with
:math:`B = A\kappa_2A` give

.. math::

    \varphi_{ijkl}\kappa_{ij}\kappa_{kl} = -\psi_{abcd}B_{ab}B_{cd}
    + 2A_{ad}\,\psi_{abc}\psi_{def}B_{be}B_{cf} + v^\top A v,\quad v_c = \psi_{abc}B_{ab}.

In a well-specified model :math:`\kappa_2 = \psi''(\theta^*)`, so :math:`c_1 = p/2`.

Boundary convention. For discrete families :math:`\bar T` hits the boundary of the mean space
with positive probability (e.g. all-zero Poisson counts), where the MLE does not exist and the
KL is +oo; the expansion describes the risk on the event that the MLE exists, whose complement
has probability exponentially small in n.

The p-n criterion (:func:`pn_criterion`) is divkit's own criterion built on this expansion
(the paper's exact inequality was not available); see docs/asymptotics.md.

>>> import sympy
>>> from sympy.stats import Gamma
>>> from theory import asymptotics
>>> k = sympy.Symbol("k", positive=True)
>>> r = asymptotics.mle_risk("exponential", truth=Gamma("X", k, 1/k))
>>> r.c1, r.c2
(1/(2*k), 11/(12*k**2))
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import mpmath
import sympy
import sympy.stats as sst
from sympy.polys.fields import FracElement, FracField
from sympy.polys.matrices import DomainMatrix
from sympy.stats.rv import RandomSymbol

from theory import expfam as _expfam
from theory.expfam import ExponentialFamily

__all__ = [
    "TruthCumulants",
    "RiskExpansion",
    "PNCriterion",
    "mle_risk",
    "pn_criterion",
    "cumulants_of_statistic",
    "n",
]

#: The sample-size symbol of :attr:`RiskExpansion.expression`.
n = sympy.Symbol("n", positive=True, integer=True)

_DPS = 50


# ============================================================================ cumulants
@dataclass(frozen=True)
class TruthCumulants:
    r"""Joint cumulants of :math:`T(X)` under the truth, up to order three.

    Attributes
    ----------
    mean : tuple
        :math:`\eta^* = E[T]` (length p).
    cov : sympy.Matrix
        :math:`\kappa_{ij}` (p × p, symmetric).
    third : sympy.Array
        :math:`\kappa_{ijk}` (p × p × p, symmetric).
    """

    mean: tuple
    cov: sympy.Matrix
    third: sympy.Array

    @classmethod
    def from_values(cls, mean, cov, third) -> TruthCumulants:
        """Validated cumulants from nested sequences (scalars allowed when p = 1)."""
        if not isinstance(mean, (list, tuple, sympy.Matrix)):
            mean, cov, third = [mean], [[cov]], [[[third]]]
        mean = tuple(_finite(v, "mean") for v in mean)
        p = len(mean)
        try:
            cov = sympy.Matrix(cov)
            third = sympy.Array(third)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"cumulants: cannot read cov/third: {exc}") from None
        if cov.shape != (p, p):
            raise ValueError(f"cumulants: cov must be {p}x{p}, got {cov.shape}")
        if third.shape != (p, p, p):
            raise ValueError(f"cumulants: third must be {p}x{p}x{p}, got {third.shape}")
        cov = cov.applyfunc(lambda v: _finite(v, "cov"))
        third = third.applyfunc(lambda v: _finite(v, "third"))
        for i, j in itertools.product(range(p), repeat=2):
            if sympy.simplify(cov[i, j] - cov[j, i]) != 0:
                raise ValueError("cumulants: cov must be symmetric")
        for idx in itertools.product(range(p), repeat=3):
            if sympy.simplify(third[idx] - third[tuple(sorted(idx))]) != 0:
                raise ValueError("cumulants: third must be a symmetric tensor")
        for i in range(p):
            if cov[i, i].is_number and cov[i, i] <= 0:
                raise ValueError(
                    f"cumulants: the variance of T_{i + 1} must be positive, got {cov[i, i]}"
                )
        return cls(mean, cov, third)


def _finite(value, what: str) -> sympy.Expr:
    v = sympy.sympify(value)
    if v.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) or v is sympy.nan:
        raise ValueError(f"the truth's {what} cumulant of T is undefined or infinite ({v})")
    return v


def _check_finite_moment(value, label: str) -> sympy.Expr:
    if value is None or not isinstance(value, sympy.Basic):
        raise ValueError(f"cannot compute {label} under the truth")
    if value.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        raise ValueError(
            f"{label} is undefined or infinite under the truth, so the cumulants of T "
            "that the expansion needs do not exist"
        )
    if value.has(sympy.Integral, sympy.Sum):
        raise ValueError(f"sympy could not evaluate {label} in closed form")
    return value


class _MomentEngine:
    """Moments E[X^a log(X)^m log(1-X)^l] of one sympy.stats random symbol (cached)."""

    def __init__(self, rv: RandomSymbol):
        self.rv = rv
        ps = sst.pspace(rv)
        self.set = ps.domain.set
        self.dist = getattr(ps, "distribution", None)
        self.finite = isinstance(ps, sst.frv.SingleFinitePSpace) or (
            self.set.is_finite_set is True
        )
        self.continuous = isinstance(ps, sst.crv.SingleContinuousPSpace)
        self._xs = sympy.Dummy("x", real=True)
        if self.finite:
            self._pdf = None
            self.numeric = not sympy.Tuple(*sst.density(rv).dict.values()).free_symbols
        else:
            self._pdf = sst.density(rv)(self._xs)
            self.numeric = not (self._pdf.free_symbols - {self._xs})
        self.cache: dict = {}
        self._mellin = None
        self._mellin_done = False
        self._log_mellin = None  # (log M, {(i, j): its derivatives}), see _log_moment
        self._log_mellin_done = False

    def _mellin_transform(self):
        r""":math:`E[X^s(1-X)^r]` in Dummies (s, r) for the common positive truths."""
        if self._mellin_done:
            return self._mellin
        self._mellin_done = True
        s, r = sympy.Dummy("s"), sympy.Dummy("r")
        d, args = self.dist, self.dist.args if self.dist is not None else ()
        name = type(d).__name__
        g = sympy.gamma
        m = None
        if name == "GammaDistribution":
            k, th = args
            m = th**s * g(k + s) / g(k)
        elif name == "ExponentialDistribution":
            (rate,) = args
            m = g(1 + s) / rate**s
        elif name == "ChiSquaredDistribution":
            (k,) = args
            m = 2**s * g(k / 2 + s) / g(k / 2)
        elif name == "ErlangDistribution":
            k, rate = args
            m = g(k + s) / (g(k) * rate**s)
        elif name == "LogNormalDistribution":
            mu, sig = args
            m = sympy.exp(mu * s + sig**2 * s**2 / 2)
        elif name == "WeibullDistribution":
            lam, k = args
            m = lam**s * g(1 + s / k)
        elif name == "BetaDistribution":
            a, b = args
            m = g(a + s) * g(b + r) * g(a + b) / (g(a) * g(b) * g(a + b + s + r))
        elif name == "UniformDistribution":
            lo, hi = args
            if lo == 0 and hi == 1:  # Beta(1, 1)
                m = g(1 + s) * g(1 + r) / g(2 + s + r)
            elif lo == 0 and hi.is_positive:
                m = hi**s / (s + 1)
            elif lo.is_positive and hi.is_positive:
                m = (hi ** (s + 1) - lo ** (s + 1)) / ((s + 1) * (hi - lo))
        # E[X^s (1-X)^r] on any other interval inside (0, 1) is a difference of two
        # hypergeometric functions whose derivatives sympy leaves unevaluated; the
        # (1-X) log-moments of such a truth come from quadrature (moment, numeric truths)
        if m is not None and not m.has(r):
            # (1-X) log-moments are only available from Beta-type transforms
            m = (m, s, None)
        elif m is not None:
            m = (m, s, r)
        self._mellin = m
        return m

    def _log_moment(self, a: int, mlog: int, mlog1: int):
        r""":math:`\partial_s^{m}\partial_r^{l} M(s, r)` at :math:`(a, 0)` from the
        logarithm :math:`K = \log M` (None when K is not a plain sum of log-gammas, logs and
        polynomials, e.g. a piecewise transform).

        Differentiating the product of gamma functions in M directly makes sympy expand
        products of polygammas at every order (seconds for the third log-moments of a Beta
        truth); the derivatives of K are single polygammas, and
        :math:`M(a+u, v) = M(a, 0)\exp(\sum_{i+j\ge1} K_{ij}u^iv^j/(i!j!))` gives the
        wanted derivative as :math:`m!\,l!\,M(a,0)` times the coefficient of
        :math:`u^mv^l` in the truncated exponential series.
        """
        expr, s, r = self._mellin
        if not self._log_mellin_done:
            self._log_mellin_done = True
            # M > 0 near the real axis, so log M splits into log-gammas and logs
            k = sympy.expand_log(sympy.log(expr), force=True)
            k = k.replace(
                lambda e: isinstance(e, sympy.log) and isinstance(e.args[0], sympy.gamma),
                lambda e: sympy.loggamma(e.args[0].args[0]),
            )
            if not k.has(sympy.Piecewise) and not any(
                e.args[0].has(sympy.gamma) for e in k.atoms(sympy.log)
            ):
                self._log_mellin = (k, {(0, 0): k})
        if self._log_mellin is None:
            return None
        derivs = self._log_mellin[1]

        def d(i, j):  # ∂_s^i ∂_r^j K, built up one derivative at a time
            if (i, j) not in derivs:
                derivs[i, j] = sympy.diff(d(i - 1, j), s) if i else sympy.diff(d(i, j - 1), r)
            return derivs[i, j]

        at = {s: a} if r is None else {s: a, r: 0}
        poly = {}
        for i in range(mlog + 1):
            for j in range(mlog1 + 1):
                if i + j:
                    poly[i, j] = d(i, j).subs(at) / (sympy.factorial(i) * sympy.factorial(j))
        series, term = {(0, 0): sympy.Integer(1)}, {(0, 0): sympy.Integer(1)}
        for order in range(1, mlog + mlog1 + 1):
            nxt: dict = {}
            for (i1, j1), c1 in term.items():
                for (i2, j2), c2 in poly.items():
                    i, j = i1 + i2, j1 + j2
                    if i <= mlog and j <= mlog1:
                        nxt[i, j] = nxt.get((i, j), 0) + c1 * c2 / order
            term = nxt
            for key, c in term.items():
                series[key] = series.get(key, 0) + c
        coeff = series.get((mlog, mlog1), sympy.Integer(0))
        base = expr.subs(at)
        return base * coeff * sympy.factorial(mlog) * sympy.factorial(mlog1)

    def moment(self, a: int, mlog: int, mlog1: int) -> sympy.Expr:
        key = (a, mlog, mlog1)
        if key in self.cache:
            return self.cache[key]
        label = f"E[X**{a} * log(X)**{mlog} * log(1-X)**{mlog1}]" if (mlog or mlog1) \
            else f"E[X**{a}]"
        val = None
        if self.finite:
            dens = sst.density(self.rv)
            items = dens.dict.items() if hasattr(dens, "dict") else dict(dens).items()
            val = sympy.Integer(0)
            for xv, pv in items:
                val += pv * xv**a * sympy.log(xv) ** mlog * sympy.log(1 - xv) ** mlog1
            val = _simplify_symbolic(val)
        else:
            mel = self._mellin_transform() if self.continuous else None
            if mel is not None and (mlog1 == 0 or mel[2] is not None):
                expr, s, r = mel
                dv = self._log_moment(a, mlog, mlog1) if (mlog or mlog1) else None
                if dv is None:
                    dv = sympy.diff(expr, s, mlog) if mlog else expr
                    if mlog1:
                        dv = sympy.diff(dv, r, mlog1)
                    dv = dv.subs(s, a)
                    if r is not None:
                        dv = dv.subs(r, 0)
                val = _simplify_symbolic(_expand_gamma(dv))
                if val.has(sympy.Derivative, sympy.Subs, sympy.Integral):
                    val = None  # not in closed form: quadrature below (numeric truths)
            elif mlog == 0 and mlog1 == 0:
                val = self._polynomial_moment(a)
            if val is None and self.numeric:
                val = self._numeric_moment(a, mlog, mlog1, label)
        self.cache[key] = _check_finite_moment(val, label)
        return self.cache[key]

    def _polynomial_moment(self, a: int):
        if a == 0:
            return sympy.Integer(1)
        try:
            return sympy.simplify(sst.E(self.rv**a))
        except (NotImplementedError, ValueError, TypeError):
            pass
        if not self.continuous:
            return None
        pdf, x = self._pdf, self._xs
        lo, hi = self.set.inf, self.set.sup
        parts = []
        for l_, h_ in ((lo, min(hi, 0)), (max(lo, 0), hi)) if lo < 0 else ((lo, hi),):
            if l_ == h_:
                continue
            part = sympy.integrate(x**a * pdf, (x, l_, h_), conds="none")
            if part.has(sympy.Integral):
                return None
            if part.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
                raise ValueError(
                    f"E[X**{a}] is undefined or infinite under the truth {self.rv} "
                    f"(heavy tails), so the cumulants of T that the expansion needs "
                    "do not exist"
                )
            parts.append(part)
        return sympy.simplify(sum(parts))

    def _numeric_moment(self, a, mlog, mlog1, label):
        pdf, x = self._pdf, self._xs
        integrand = x**a * sympy.log(x) ** mlog * sympy.log(1 - x) ** mlog1 * pdf
        fn = sympy.lambdify(x, integrand, modules="mpmath")
        lo, hi = self.set.inf, self.set.sup
        with mpmath.workdps(_DPS + 15):
            lo_m = mpmath.mpf(lo) if lo.is_finite else -mpmath.inf
            hi_m = mpmath.mpf(hi) if hi.is_finite else mpmath.inf
            try:
                if self.continuous:
                    pts = [lo_m, hi_m]
                    if lo_m < 0 < hi_m:
                        pts = [lo_m, 0, hi_m]
                    val, err = mpmath.quad(fn, pts, error=True)
                else:
                    val = mpmath.nsum(fn, [lo_m, hi_m])
                    err = mpmath.mpf(0)
            except (ZeroDivisionError, ValueError, OverflowError):
                raise ValueError(f"{label} could not be evaluated numerically") from None
            if not mpmath.isfinite(val) or err > mpmath.mpf(10) ** (-_DPS + 10) * (
                1 + abs(val)
            ):
                raise ValueError(
                    f"{label} does not converge under the truth {self.rv}: the cumulants "
                    "of T that the expansion needs are undefined"
                )
            return sympy.Float(val, _DPS)


def _random_symbols(truth) -> list[RandomSymbol]:
    rvs = list(truth) if isinstance(truth, (list, tuple)) else [truth]
    for r in rvs:
        if not isinstance(r, RandomSymbol):
            raise TypeError(
                "truth must be a sympy.stats random symbol (or one per coordinate), "
                f"a TruthCumulants, a cumulant dict or a parameter dict; got {r!r}"
            )
    if len({r.symbol for r in rvs}) != len(rvs):
        raise ValueError("truth: the coordinates need distinct (independent) random symbols")
    return rvs


def cumulants_of_statistic(family: ExponentialFamily | str, truth) -> TruthCumulants:
    r"""Joint cumulants of :math:`T(X)` (orders 1–3) under a sympy.stats truth.

    ``truth`` is one random symbol for a scalar observation, or a sequence of independent
    random symbols, one per coordinate of :math:`x` (diagonal_normal). Moments of
    :math:`T` are expanded into moments :math:`E[X^a\log^m X\log^l(1-X)]`, computed from the
    distribution's Mellin transform (Gamma, Exponential, ChiSquared, Erlang, LogNormal,
    Weibull, Beta, Uniform), sympy.stats (polynomial moments), exact sums (finite
    supports) or, for numeric truths only, mpmath quadrature at 50 digits.

    Raises
    ------
    ValueError
        for a support outside the family's, or moments that do not exist.
    """
    fam = _family(family)
    rvs = _random_symbols(truth)
    if len(rvs) != len(fam.variables):
        raise ValueError(
            f"{fam.name} observations have {len(fam.variables)} coordinate(s); "
            f"the truth gives {len(rvs)} random symbol(s)"
        )
    engines = []
    for rv, sup in zip(rvs, fam.support, strict=True):
        eng = _MomentEngine(rv)
        # a continuous truth may be given on the closure of the support (sympy's Gamma
        # lives on [0, oo)): endpoints have probability zero
        ok = (eng.set.closure.is_subset(sup.closure) if eng.continuous
              else eng.set.is_subset(sup))
        if ok is not True:
            raise ValueError(
                f"support mismatch: the truth {rv} takes values in {eng.set}, outside the "
                f"{fam.name} family's support {sup}"
            )
        if fam.discrete and eng.continuous:
            raise ValueError(
                f"support mismatch: the {fam.name} family is discrete but the truth {rv} "
                "is continuous"
            )
        engines.append(eng)
    p = fam.dim
    logs = [sympy.Dummy(f"L{i}") for i in range(len(rvs))]
    log1s = [sympy.Dummy(f"M{i}") for i in range(len(rvs))]
    subs = {}
    for v, lg, lg1 in zip(fam.variables, logs, log1s, strict=True):
        subs[sympy.log(v)] = lg
        subs[sympy.log(1 - v)] = lg1
    gens = [g for trip in zip(fam.variables, logs, log1s, strict=True) for g in trip]
    all_finite = all(e.finite for e in engines)
    cache: dict = {}

    def expect(idx: tuple) -> sympy.Expr:
        idx = tuple(sorted(idx))
        if idx in cache:
            return cache[idx]
        prod = sympy.Mul(*[fam.statistic[i] for i in idx])
        if all_finite:
            val = _finite_expectation(prod, fam.variables, rvs)
        else:
            poly = sympy.Poly(sympy.expand(prod.subs(subs)), *gens)
            val = sympy.Integer(0)
            for monom, coeff in poly.terms():
                term = coeff
                for v in range(len(rvs)):
                    a, m1, m2 = monom[3 * v : 3 * v + 3]
                    term *= engines[v].moment(a, m1, m2)
                val += term
        cache[idx] = _simplify_symbolic(val)
        return cache[idx]

    mean = tuple(expect((i,)) for i in range(p))
    cov = sympy.zeros(p, p)
    for i, j in itertools.combinations_with_replacement(range(p), 2):
        cov[i, j] = cov[j, i] = _simplify_symbolic(expect((i, j)) - mean[i] * mean[j])
    third = sympy.MutableDenseNDimArray.zeros(p, p, p)
    for i, j, k in itertools.combinations_with_replacement(range(p), 3):
        val = _simplify_symbolic(
            expect((i, j, k))
            - mean[i] * expect((j, k)) - mean[j] * expect((i, k)) - mean[k] * expect((i, j))
            + 2 * mean[i] * mean[j] * mean[k]
        )
        for perm in set(itertools.permutations((i, j, k))):
            third[perm] = val
    for i in range(p):
        if cov[i, i].is_number and cov[i, i] <= 0:
            raise ValueError(
                f"the truth makes T_{i + 1} = {fam.statistic[i]} almost surely constant; "
                "no information projection with finite parameters exists"
            )
    return TruthCumulants(mean, cov, sympy.ImmutableDenseNDimArray(third))


def _expand_gamma(expr: sympy.Expr) -> sympy.Expr:
    r"""``expand_func`` that keeps :math:`\psi^{(m)}` at non-integer rationals compact.

    ``expand_func`` rewrites ``polygamma(0, 3/10)`` with Gauss' digamma theorem into a sum
    of logs of nested radicals (hundreds of operations, whose numerical evaluation cancels
    catastrophically: tens of seconds for a Beta(3/10, 7) truth). Here
    :math:`\psi^{(m)}(f + k)` with :math:`0 < f < 1` and integer :math:`k` is first reduced
    by the recurrence :math:`\psi^{(m)}(x+1) = \psi^{(m)}(x) + (-1)^m m!\,x^{-m-1}` to
    :math:`\psi^{(m)}(f)`, which stays an atom, so shifted arguments still cancel exactly.
    """
    atoms: dict = {}

    def reduce(e):
        m, x = e.args
        if not (m.is_Integer and m >= 0 and x.is_Rational and not x.is_Integer):
            return e
        k = sympy.floor(x)
        f = x - k
        key = (m, f)
        if key not in atoms:
            atoms[key] = sympy.Dummy(f"psi{m}")
        sign = (-1) ** m * sympy.factorial(m)
        shift = sum((sign / (f + j) ** (m + 1) for j in range(int(k))), sympy.Integer(0)) \
            if k >= 0 else -sum((sign / (x + j) ** (m + 1) for j in range(int(-k))),
                                sympy.Integer(0))
        return atoms[key] + shift

    protected = expr.replace(lambda e: isinstance(e, sympy.polygamma), reduce)
    out = sympy.expand_func(protected)
    return out.xreplace({d: sympy.polygamma(m, f) for (m, f), d in atoms.items()})


def _simplify_symbolic(expr: sympy.Expr) -> sympy.Expr:
    """``simplify`` for expressions with free symbols; numeric constants are left as built
    (simplify on polygamma/log constants of a numeric truth such as Beta(3/10, 7) runs for
    minutes without changing the value)."""
    if not expr.free_symbols:
        return expr
    return sympy.simplify(expr)


def _finite_expectation(expr, variables, rvs) -> sympy.Expr:
    dicts = [sst.density(r).dict.items() for r in rvs]
    total = sympy.Integer(0)
    for combo in itertools.product(*dicts):
        prob = sympy.Mul(*[pv for _, pv in combo])
        vals = {v: xv for v, (xv, _) in zip(variables, combo, strict=True)}
        total += prob * expr.subs(vals)
    return total


def _cumulants_of_member(fam: ExponentialFamily, params: Mapping) -> TruthCumulants:
    """Cumulants of T under a member of the model: derivatives of ψ (well specified)."""
    theta = fam.to_natural(params)
    sub = dict(zip(fam.theta, theta, strict=True))
    p = fam.dim
    keys = [k for n_ in (1, 2, 3) for k in itertools.combinations_with_replacement(range(p), n_)]
    # rational functions of the parameters (categorical: polynomials in the probabilities)
    # are reduced in a field; ``simplify`` of the substituted derivatives takes seconds each
    converted = _to_field([fam.derivative(*k) for k in keys], bind=sub)
    if converted is not None:
        vals = {k: v.as_expr() for k, v in zip(keys, converted[1], strict=True)}
        # a rational function of polygammas of the parameters (Gamma, Beta) is as simple as
        # it gets; simplify would spend a second on the nine cumulants of a Beta member
        vals = {k: _simplify_symbolic(v)
                if any(not isinstance(f, sympy.polygamma) for f in v.atoms(sympy.Function))
                else v
                for k, v in vals.items()}
    else:
        vals = {k: sympy.simplify(fam.derivative(*k).subs(sub, simultaneous=True))
                for k in keys}

    def d(*idx):
        return vals[tuple(sorted(idx))]

    mean = tuple(d(i) for i in range(p))
    cov = sympy.Matrix(p, p, lambda i, j: d(i, j))
    third = sympy.MutableDenseNDimArray.zeros(p, p, p)
    for idx in itertools.product(range(p), repeat=3):
        third[idx] = d(*idx)
    return TruthCumulants(mean, cov, sympy.ImmutableDenseNDimArray(third))


def _family(family) -> ExponentialFamily:
    if isinstance(family, ExponentialFamily):
        return family
    if isinstance(family, str):
        return _expfam.get(family)
    raise TypeError(
        f"family must be an ExponentialFamily or a family name, got {type(family).__name__}"
    )


def _truth_cumulants(fam: ExponentialFamily, truth):
    """Return (cumulants, description, standard parameters when the truth is a member of
    the model, else None)."""
    if truth is None:
        raise ValueError(
            "truth is required: a sympy.stats random symbol, explicit cumulants "
            "(TruthCumulants or {'mean', 'cov', 'third'}) or a dict of the family's "
            "standard parameters"
        )
    if isinstance(truth, TruthCumulants):
        cum = truth
        desc = "explicit cumulants"
        member = None
    elif isinstance(truth, Mapping) and set(truth) >= {"mean", "cov", "third"}:
        extra = set(truth) - {"mean", "cov", "third"}
        if extra:
            raise ValueError(f"cumulant dict has unknown keys {sorted(extra)}")
        cum = TruthCumulants.from_values(truth["mean"], truth["cov"], truth["third"])
        desc = "explicit cumulants"
        member = None
    elif isinstance(truth, Mapping):
        cum = _cumulants_of_member(fam, truth)
        desc = f"{fam.name}({', '.join(f'{k}={v}' for k, v in truth.items())})"
        member = truth
    else:
        rvs = _random_symbols(truth)
        desc = ", ".join(f"{r} ~ {sst.pspace(r).distribution}" for r in rvs)
        member = _member_parameters(fam, truth)
        if member is not None:
            cum = _cumulants_of_member(fam, member)
        else:
            cum = cumulants_of_statistic(fam, truth)
    if len(cum.mean) != fam.dim:
        raise ValueError(
            f"the truth's cumulants have dimension {len(cum.mean)}, the {fam.name} family "
            f"has p = {fam.dim}"
        )
    return cum, desc, member


def _member_parameters(fam: ExponentialFamily, truth):
    r"""Standard parameters of a symbolic random-symbol truth that is a member of the
    model (``Beta("X", a, 2)`` for the Beta family, ``Exponential("X", lam)`` for Gamma),
    else None.

    Only where it matters: the mean map has no closed-form inverse and the truth has
    symbolic parameters, so that θ* would otherwise stay implicit (two digamma equations)
    and the contraction run on symbols θ*, for minutes. The truth is a member when its
    log-density, minus :math:`\log h(x)`, is affine in :math:`T(x)` with coefficients θ
    free of x, on the family's support; a normalised density of that form has constant
    term :math:`-\psi(	heta)`.
    """
    if not isinstance(truth, RandomSymbol) or len(fam.variables) != 1 \
            or fam.inverse_mean_map is not None:
        return None
    ps = sst.pspace(truth)
    if not isinstance(ps, sst.crv.SingleContinuousPSpace) or fam.discrete:
        return None
    if not ps.distribution.free_symbols or ps.domain.set.closure != fam.support[0].closure:
        return None
    x = fam.variables[0]
    try:
        dens = sst.density(truth)(x)
    except (NotImplementedError, ValueError, TypeError):
        return None
    if dens.has(sympy.Piecewise):
        return None
    logd = sympy.expand(sympy.expand_log(sympy.log(dens) - fam.log_base_measure, force=True))
    taus = [sympy.Dummy(f"T{i}") for i in range(fam.dim)]
    # log-type statistics first, so that T = x does not also replace the x inside log(x)
    order = sorted(range(fam.dim), key=lambda i: fam.statistic[i] == x)
    for i in order:
        logd = logd.subs(fam.statistic[i], taus[i])
    if logd.has(x):
        return None
    theta = [sympy.diff(logd, t) for t in taus]
    if any(th.has(x, *taus) for th in theta):
        return None
    if fam.in_domain(theta) is sympy.false:
        return None
    try:
        return fam.from_natural(theta)
    except (ValueError, TypeError):
        return None


# ============================================================================ projection
def _start_point(fam: ExponentialFamily) -> list:
    cands = [1, -1, sympy.Rational(1, 2), -sympy.Rational(1, 2), 2, -2, 0]
    if fam.dim <= 4:
        for pt in itertools.product(cands, repeat=fam.dim):
            if fam.in_domain(pt) is sympy.true:
                return list(pt)
    for c in cands:
        pt = [c] * fam.dim
        if fam.in_domain(pt) is sympy.true:
            return pt
    raise ValueError(f"{fam.name}: cannot find a point of the natural parameter space")


def _numeric_projection(fam: ExponentialFamily, eta: tuple) -> tuple:
    r"""Solve :math:`\nabla\psi(\theta)=\eta` numerically: damped Newton on the convex
    :math:`\psi(\theta)-\eta\cdot\theta`, kept inside :math:`\Theta`."""
    th = list(fam.theta)
    # η enters as symbols bound to its value: lambdify would otherwise re-evaluate the
    # (polygamma) expressions of η at every Newton step
    eta_syms = [sympy.Dummy(f"eta{i}") for i in range(len(eta))]
    eta_m = _mp_values(eta, _DPS + 20)
    obj = fam.log_partition - sum(e * t for e, t in zip(eta_syms, th, strict=True))
    f_obj = functools.partial(sympy.lambdify([*eta_syms, *th], obj, modules="mpmath"),
                              *eta_m)
    f_grad = functools.partial(
        sympy.lambdify([*eta_syms, *th], [sympy.diff(obj, t) for t in th], modules="mpmath"),
        *eta_m)
    f_hess = sympy.lambdify(th, fam.hessian.tolist(), modules="mpmath")
    dom = sympy.lambdify(th, fam.natural_domain, modules="mpmath") \
        if fam.natural_domain is not sympy.true else (lambda *a: True)
    with mpmath.workdps(_DPS + 20):
        x = mpmath.matrix([mpmath.mpf(v) for v in _start_point(fam)])
        tol = mpmath.mpf(10) ** (-(_DPS + 10))
        for _ in range(500):
            g = mpmath.matrix(f_grad(*x))
            if mpmath.norm(g) < tol:
                break
            h = mpmath.matrix(f_hess(*x))
            step = mpmath.lu_solve(h, g)
            if mpmath.norm(step) < mpmath.mpf(10) ** (-(_DPS + 5)) * (1 + mpmath.norm(x)):
                x = x - step  # quadratic convergence: the last step is below 50 digits
                break
            if mpmath.norm(g) < mpmath.mpf(10) ** -12 and dom(*(x - step)):
                x = x - step  # quadratic regime: ψ differences are below the resolution
                continue
            f0 = f_obj(*x)
            lam = mpmath.mpf(1)
            while lam > mpmath.mpf(10) ** -30:
                y = x - lam * step
                try:
                    if dom(*y) and mpmath.isfinite(f_obj(*y)) and f_obj(*y) <= f0:
                        break
                except (ValueError, ZeroDivisionError):
                    pass
                lam /= 2
            else:
                raise ValueError(
                    f"{fam.name}: the information projection does not exist for the mean "
                    f"of T {tuple(eta)} (Newton could not make progress)"
                )
            x = y
        else:
            raise ValueError(f"{fam.name}: the information projection did not converge")
        return tuple(sympy.Float(v, _DPS) for v in x)


def _projection(fam: ExponentialFamily, cum: TruthCumulants):
    """θ* (tuple) and, when θ* is implicit, its symbols and defining equations."""
    eta = cum.mean
    numeric = all(sympy.sympify(e).is_number for e in eta)
    inv = fam.inverse_mean_map
    if inv is not None:
        theta = fam.natural_from_mean(eta)
        if any(t.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) for t in theta):
            raise ValueError(
                f"{fam.name}: the truth's mean of T {eta} is on the boundary of the mean "
                "space; the information projection does not exist"
            )
        if fam.in_domain(theta) is sympy.false or (
            numeric and any(not sympy.sympify(t).is_real for t in theta)
        ):
            raise ValueError(
                f"{fam.name}: the truth's mean of T {eta} lies outside the model's mean "
                "space; the information projection does not exist"
            )
        return theta, None, None
    if numeric:
        return _numeric_projection(fam, tuple(sympy.sympify(e) for e in eta)), None, None
    syms = tuple(sympy.Symbol(f"theta{i + 1}_star", real=True) for i in range(fam.dim))
    sub = dict(zip(fam.theta, syms, strict=True))
    eqs = tuple(
        sympy.Eq(g.subs(sub, simultaneous=True), e)
        for g, e in zip(fam.gradient, eta, strict=True)
    )
    return syms, syms, eqs


# ============================================================================ expansion
def _coefficients(fam: ExponentialFamily, theta, cum: TruthCumulants, order: int):
    """c1 and c2 from the derivative tensors of ψ at θ* and the cumulants of T.

    Exact (sympy) when θ* and the cumulants are exact; otherwise evaluated with mpmath at
    70 digits and returned as 50-digit sympy Floats.
    """
    numeric = any(sympy.sympify(t).has(sympy.Float) for t in theta) or any(
        sympy.sympify(v).has(sympy.Float)
        for v in (*cum.mean, *cum.cov, *sympy.flatten(cum.third.tolist()))
    )
    if numeric:
        with mpmath.workdps(_DPS + 20):
            th_m = [mpmath.mpf(sympy.Float(t, _DPS + 20)) if sympy.sympify(t).is_Float
                    else mpmath.mpf(sympy.N(t, _DPS + 20)) for t in theta]
            if not all(sympy.sympify(v).is_number for v in
                       (*cum.cov, *sympy.flatten(cum.third.tolist()))):
                raise ValueError("cumulants must be numeric when θ* is computed numerically")

            entries = (*cum.cov, *sympy.flatten(cum.third.tolist()))
            values = dict(zip(entries, _mp_values(entries, _DPS + 20), strict=True))
            lambdas: dict = {}

            def num(v):
                return values[v]

            def deriv(*idx):
                key = tuple(sorted(idx))
                if key not in lambdas:
                    lambdas[key] = sympy.lambdify(fam.theta, fam.derivative(*key),
                                                  modules="mpmath")
                return lambdas[key](*th_m)

            c1, c2 = _contract(fam.dim, deriv, num, cum, order, mpmath.inverse)
            return (sympy.Float(c1, _DPS),
                    None if c2 is None else sympy.Float(c2, _DPS))
    sub = dict(zip(fam.theta, theta, strict=True))
    derivs: dict = {}

    def deriv_sym(*idx):
        key = tuple(sorted(idx))
        if key not in derivs:
            derivs[key] = fam.derivative(*key).subs(sub, simultaneous=True)
        return derivs[key]

    fast = None
    if fam.inverse_mean_map is not None:
        fast = _conjugate_coefficients(fam, cum, order)
    if fast is None:
        fast = _field_coefficients(fam.dim, deriv_sym, cum, order)
    if fast is not None:
        return fast

    def inv(m):
        return m.inv() if m.shape[0] > 1 else sympy.Matrix([[1 / m[0, 0]]])

    return _contract(fam.dim, deriv_sym, lambda v: v, cum, order,
                     lambda m: inv(sympy.Matrix(m)))


def _to_field(exprs, bind: Mapping | None = None):
    r"""``(field, elements)``: the expressions as elements of :math:`\mathbb Q(g_1,\dots,g_m)`,
    or None when one contains a Float.

    The generators are every subexpression that is not a sum, a product, an integer power
    or a rational number (symbols, ``log(2)``, ``polygamma(1, k)``, ``sqrt(x)``), taken as
    independent. The conversion runs bottom-up over the expression tree, each distinct
    subexpression once, so the intermediate results stay in lowest terms; ``sfield`` and
    ``cancel`` first expand the whole expression, which for the fourth derivatives of a
    categorical log-partition at θ* does not finish in minutes.

    ``bind`` maps symbols to expressions substituted during the conversion (θ ↦ θ*), which
    spares a ``subs`` on the long unsimplified expressions; a generator containing a bound
    symbol (``exp(theta1)``) is rebuilt with ``xreplace`` and converted in turn.
    """
    exprs = [sympy.sympify(e) for e in exprs]
    bind = {k: sympy.sympify(v) for k, v in (bind or {}).items()}
    gens: dict = {}
    alias: dict = {}
    seen: set = set()

    def scan(e):
        if e in seen or e.is_Rational:
            return True
        seen.add(e)
        if e in bind:
            return scan(bind[e])
        if e.is_Float:
            return False
        if e.is_Add or e.is_Mul:
            return all(scan(a) for a in e.args)
        if e.is_Pow and e.exp.is_Integer:
            return scan(e.base)
        if e.has(sympy.Float):
            return False
        if bind and e.free_symbols & bind.keys():
            alias[e] = e.xreplace(bind)
            return scan(alias[e])
        gens[e] = None
        return True

    if not all(scan(e) for e in exprs):
        return None
    symbols = sorted(gens, key=sympy.default_sort_key) or [sympy.Dummy("g")]
    field_ = FracField(tuple(symbols), sympy.QQ)
    memo = dict(zip(symbols, field_.gens, strict=True))

    def conv(e):
        if e in memo:
            return memo[e]
        if e.is_Rational:
            val = field_(e)
        elif e in bind:
            val = conv(bind[e])
        elif e in alias:
            val = conv(alias[e])
        elif e.is_Add:
            val = field_.zero
            for a in e.args:
                val += conv(a)
        elif e.is_Mul:
            val = field_.one
            for a in e.args:
                val *= conv(a)
        else:  # integer power
            val = conv(e.base) ** int(e.exp)
        memo[e] = val
        return val

    try:
        return field_, [conv(e) for e in exprs]
    except ZeroDivisionError:
        return None


def _conjugate_coefficients(fam: ExponentialFamily, cum: TruthCumulants, order: int):
    r"""c1 and c2 from the closed-form inverse mean map :math:`\theta(\eta)`, in a field of
    rational functions (None where the conversion fails).

    :math:`\nabla\varphi = \theta(\eta)` for the conjugate :math:`\varphi = \psi^*`, so
    :math:`\varphi_{ij} = \partial_j\theta_i`, :math:`\varphi_{ijk} = \partial_{jk}\theta_i`,
    :math:`\varphi_{ijkl} = \partial_{jkl}\theta_i` at :math:`\eta^*`, and

    .. math:: c_1 = \tfrac12\varphi_{ij}\kappa_{ij},\qquad
              c_2 = \tfrac13\varphi_{ijk}\kappa_{ijk}
              + \tfrac38\varphi_{ijkl}\kappa_{ij}\kappa_{kl}

    directly, without the inverse-function rule: these derivatives are small (for the
    categorical family :math:`\partial_j\theta_i = \delta_{ij}/\eta_i + 1/\eta_K`) where
    the tensors of ψ at θ* are long rational functions of the class probabilities.
    """
    p = fam.dim
    rng = range(p)
    inv, eta = fam.inverse_mean_map, fam.eta
    sub = dict(zip(eta, cum.mean, strict=True))
    derivs: dict = {}

    def d(key):  # ∂_{key[1:]} θ_{key[0]} in the eta symbols (φ is symmetric: sorted keys)
        if key not in derivs:
            # log(a/b) -> log(a) - log(b) changes θ by a locally constant (possibly
            # imaginary) term at most, so every derivative is unchanged, and much shorter
            derivs[key] = (sympy.expand_log(inv[key[0]], force=True) if len(key) == 1
                           else sympy.diff(d(key[:-1]), eta[key[-1]]))
        return derivs[key]

    keys = [k for n_ in range(2, 5 if order == 2 else 3)
            for k in itertools.combinations_with_replacement(rng, n_)]
    cum_entries = list(dict.fromkeys((*cum.cov, *sympy.flatten(cum.third.tolist()))))
    exprs = [d(k) for k in keys] + cum_entries
    converted = _to_field(exprs, bind=sub)
    if converted is None:
        return None
    elems = converted[1]
    phi = dict(zip(keys, elems[: len(keys)], strict=True))
    values = dict(zip(cum_entries, elems[len(keys):], strict=True))

    def ph(*idx):
        return phi[tuple(sorted(idx))]

    k2 = [[values[cum.cov[i, j]] for j in rng] for i in rng]
    dot = functools.partial(_dot, zero=converted[0].zero)
    c1 = dot((ph(i, j), k2[i][j]) for i in rng for j in rng) / 2
    if order == 1:
        return c1.as_expr(), None
    # sums over index tuples by symmetry: each sorted (multi)set once, times its count
    pairs = [(i, j, 1 if i == j else 2) for i, j in itertools.combinations_with_replacement(
        rng, 2)]
    s3 = dot((ph(*idx) * _multiplicity(idx), values[cum.third[idx]])
              for idx in itertools.combinations_with_replacement(rng, 3))
    s4 = dot((k2[i][j] * w, dot((ph(i, j, k, m) * v, k2[k][m]) for k, m, v in pairs))
              for i, j, w in pairs)
    c2 = s3 / 3 + s4 * 3 / 8
    return c1.as_expr(), c2.as_expr()


def _field_coefficients(p, deriv_sym, cum: TruthCumulants, order: int):
    r"""c1 and c2 from the tensors of ψ at θ* (:func:`_contract`) in a field of rational
    functions, or None where the conversion fails (Floats).

    Used when θ* has no closed form (Gamma or Beta model, symbolic truth: θ* is a pair of
    symbols). The inputs (derivatives of ψ at θ*, cumulants of T) become elements of
    :math:`\mathbb Q(g_1,\dots,g_m)` over their generators (symbols, and atoms such as
    ``polygamma(1, theta1_star)`` taken as independent), so every sum of the contraction is
    reduced to lowest terms as it is formed instead of ending as one nested expression for
    ``simplify`` (Gamma model, Gamma(k, 1) truth: 1.6 s instead of 3 s). Without it, the
    contraction for a categorical family is a nest of 5e3 (3 classes) to 6e5 (5 classes)
    operations that ``cancel`` does not finish in minutes.
    """
    rng = range(p)
    keys = [k for n_ in range(2, 5 if order == 2 else 3)
            for k in itertools.combinations_with_replacement(rng, n_)]
    cum_entries = list(dict.fromkeys((*cum.cov, *sympy.flatten(cum.third.tolist()))))
    exprs = [deriv_sym(*k) for k in keys] + cum_entries
    converted = _to_field(exprs)
    if converted is None:
        return None
    field_, elems = converted
    table = dict(zip(keys, elems[: len(keys)], strict=True))
    values = dict(zip(cum_entries, elems[len(keys):], strict=True))
    domain = field_.to_domain()

    def inverse(m):
        inv = DomainMatrix(m, (p, p), domain).inv().to_list()
        return {(i, j): inv[i][j] for i in rng for j in rng}

    c1, c2 = _contract(p, lambda *idx: table[tuple(sorted(idx))], values.__getitem__,
                       cum, order, inverse)
    return c1.as_expr(), None if c2 is None else c2.as_expr()


def _mp_tree(expr: sympy.Expr, memo: dict):
    """mpmath value of a numeric sympy expression at the current working precision.

    Each distinct subexpression (a ``polygamma(1, 3/10)`` that occurs in every cumulant) is
    evaluated once; functions and constants go through sympy's own evalf, one at a time.
    """
    if expr in memo:
        return memo[expr]
    if expr.is_Rational:
        val = mpmath.mpf(expr.p) / expr.q
    elif expr.is_Float:
        val = mpmath.mpf(expr._mpf_)
    elif expr.is_Add:
        val = mpmath.fsum(_mp_tree(a, memo) for a in expr.args)
    elif expr.is_Mul:
        val = mpmath.fprod(_mp_tree(a, memo) for a in expr.args)
    elif expr.is_Pow and expr.exp.is_Integer:
        val = _mp_tree(expr.base, memo) ** int(expr.exp)
    else:  # a function value, a constant, a radical: sympy's evalf, 10 guard digits
        val = mpmath.mpmathify(expr.evalf(mpmath.mp.dps + 10))
    if not isinstance(val, mpmath.mpf):
        raise ValueError(f"{expr} is not a real number")
    memo[expr] = val
    return val


def _mp_values(exprs, dps: int) -> list:
    """Real numeric sympy expressions as mpmath numbers correct to ``dps`` digits.

    Fixed-precision evaluation (:func:`_mp_tree`) at ``dps + 20`` and ``dps + 40`` digits;
    an entry where the two disagree beyond ``dps`` digits (cancellation) is evaluated by
    ``sympy.N`` instead, whose adaptive precision is reliable but slow (seconds per entry on
    the long polygamma expressions of a numeric truth: it re-evaluates every special
    function at each precision it tries).
    """
    out = []
    rows = []
    for extra in (20, 40):
        memo: dict = {}
        with mpmath.workdps(dps + extra):
            row = []
            for e in exprs:
                try:
                    row.append(_mp_tree(sympy.sympify(e), memo))
                except (ValueError, TypeError):
                    row.append(None)
            rows.append(row)
    with mpmath.workdps(dps):
        tol = mpmath.mpf(10) ** -dps
        for e, lo, hi in zip(exprs, *rows, strict=True):
            if lo is not None and hi is not None and (
                lo == hi or abs(lo - hi) <= tol * abs(hi)
            ):
                out.append(+hi)
            else:
                out.append(mpmath.mpf(sympy.N(e, dps)))
    return out


def _multiplicity(idx) -> int:
    """Number of distinct orderings of an index tuple."""
    out = math.factorial(len(idx))
    for c in collections.Counter(idx).values():
        out //= math.factorial(c)
    return out


def _dot(pairs, *, zero):
    """Σ x·y over the pairs, skipping zero factors; ``zero`` is the number type's zero
    (what an empty sum returns: an int 0 would turn ``0 / 3`` into a float)."""
    pairs = [(x, y) for x, y in pairs if x != 0 and y != 0]
    if pairs and isinstance(zero, FracElement):
        return _frac_dot(pairs)
    total = zero
    for x, y in pairs:
        total += x * y
    return total


def _frac_dot(pairs):
    """Σ x·y for rational functions with one reduction to lowest terms at the end.

    Adding fractions one by one takes a polynomial gcd per addition (the bulk of the time
    of the categorical contractions); here the products are formed without reduction,
    brought to the least common multiple of their (few distinct) denominators, added as
    polynomials, and the sum is reduced once.
    """
    field_ = pairs[0][0].field
    terms = []
    for x, y in pairs:
        x, y = field_(x), field_(y)
        terms.append((x.numer * y.numer, x.denom * y.denom))
    dens = list(dict.fromkeys(d for _, d in terms))
    lcm = dens[0]
    for d in dens[1:]:
        lcm = lcm.lcm(d)
    quotients = {d: lcm.exquo(d) for d in dens}
    numer = field_.ring.zero
    for n_, d in terms:
        numer += n_ * quotients[d]
    return field_.new(numer, lcm)


def _contract(p, deriv, conv, cum, order, inverse):
    """The tensor contractions of the module docstring, generic in the number type.

    Every contraction is done one index at a time, so the work is O(p^4) products (p^6
    for the naive sums over all indices at once).
    """
    rng = range(p)
    hess = [[deriv(i, j) for j in rng] for i in rng]
    if p == 1:
        a = [[1 / hess[0][0]]]
    else:
        mat = inverse(hess if inverse is not mpmath.inverse else mpmath.matrix(hess))
        a = [[mat[i, j] for j in rng] for i in rng]
    k2 = [[conv(cum.cov[i, j]) for j in rng] for i in rng]
    dot = functools.partial(_dot, zero=hess[0][0] * 0)
    c1 = dot((a[i][j], k2[j][i]) for i in rng for j in rng) / 2
    if order == 1:
        return c1, None
    idx3 = list(itertools.product(rng, repeat=3))
    psi3 = {idx: deriv(*idx) for idx in idx3}
    psi4 = {idx: deriv(*idx) for idx in itertools.product(rng, repeat=4)}
    # S3 = phi_ijk kappa_ijk = -psi_abc (A (x) A (x) A kappa3)_abc; A applied per axis
    t = {idx: conv(cum.third[idx]) for idx in idx3}
    for axis in range(3):
        t = {idx: dot((a[idx[axis]][i], t[idx[:axis] + (i,) + idx[axis + 1:]])
                       for i in rng)
             for idx in idx3}
    s3 = -dot((psi3[idx], t[idx]) for idx in idx3)
    # B = A kappa2 A
    ak = [[dot((a[i][x], k2[x][j]) for x in rng) for j in rng] for i in rng]
    bm = [[dot((ak[i][y], a[y][j]) for y in rng) for j in rng] for i in rng]
    term1 = -dot((ps, bm[x][y] * bm[z][w]) for (x, y, z, w), ps in psi4.items())
    v = [dot((psi3[x, y, c], bm[x][y]) for x in rng for y in rng) for c in rng]
    term3 = dot((v[c], dot((a[c][e], v[e]) for e in rng)) for c in rng)
    # A_ad W_ad with W_ad = psi_abc G_dbc, G_dbc = psi_def B_be B_cf = (B psi_d B)_bc
    h = {(e, b, cc): dot((bm[b][bb], psi3[e, bb, cc]) for bb in rng)
         for e, b, cc in idx3}
    g = {(e, b, c): dot((bm[c][cc], h[e, b, cc]) for cc in rng) for e, b, c in idx3}
    term2 = hess[0][0] * 0
    for x, e in itertools.product(rng, repeat=2):
        if a[x][e] != 0:
            term2 += a[x][e] * dot((psi3[x, b, c], g[e, b, c]) for b in rng for c in rng)
    s4 = term1 + 2 * term2 + term3
    c2 = s3 / 3 + s4 * 3 / 8
    return c1, c2


def _is_rational_function(expr: sympy.Expr) -> bool:
    """A ratio of polynomials in its (one or more) free symbols, without Floats."""
    return bool(expr.free_symbols) and not expr.has(sympy.Float) and \
        expr.is_rational_function()


def _is_rational_in_polygammas(expr: sympy.Expr) -> bool:
    """A ratio of polynomials in symbols and polygammas of them (the coefficients of the
    Gamma and Beta families), without Floats. simplify finds nothing on these beyond
    lowest terms, and takes seconds to find it."""
    if not expr.free_symbols or expr.has(sympy.Float):
        return False
    funcs = expr.atoms(sympy.Function)
    if not funcs or any(not isinstance(f, sympy.polygamma) for f in funcs):
        return False
    return expr.xreplace({f: sympy.Dummy() for f in funcs}).is_rational_function()


def _simplify(expr: sympy.Expr) -> sympy.Expr:
    """Simplify a coefficient, with effort bounded by its size.

    Rationals and Floats are returned as they are; ``simplify`` runs on small expressions
    only (it can take minutes on large exact numbers built from exp/log/gamma values).
    """
    if expr.is_Rational or expr.is_Float:
        return expr
    if _is_rational_function(expr):
        return sympy.factor(expr)  # what simplify would end with, without its search
    if _is_rational_in_polygammas(expr):
        return _lowest_terms(expr)  # the same, with polygammas as independent atoms
    if expr.is_number and sympy.count_ops(expr) > 30:
        return sympy.cancel(expr)
    if sympy.count_ops(expr) > 200:
        return _lowest_terms(expr)
    simple = sympy.simplify(expr)
    return simple if expr.is_number else sympy.factor(simple)


def _lowest_terms(expr: sympy.Expr) -> sympy.Expr:
    """``cancel``: one ratio of polynomials in lowest terms, the polynomials taken over the
    expression's atoms (symbols, ``polygamma(1, a)``, ``log(2)``); through
    :func:`_to_field`, which is several times faster than ``cancel`` on the long polygamma
    coefficients of the Gamma and Beta families. The numerator is expanded, the (short)
    denominator factored: for a Beta member it is a power of the Fisher determinant."""
    converted = _to_field([expr])
    if converted is None:
        return sympy.cancel(expr)
    elem = converted[1][0]
    return elem.numer.as_expr() / sympy.factor(elem.denom.as_expr())


@dataclass(frozen=True, eq=False)
class RiskExpansion:
    r"""The MLE risk :math:`E\,\mathrm{KL}(g_{\theta^*}\|g_{\hat\theta}) = c_1/n + c_2/n^2 +
    O(n^{-3})`, returned by :func:`mle_risk`.

    Attributes
    ----------
    family : ExponentialFamily
    truth : str
        Description of the truth.
    cumulants : TruthCumulants
        Cumulants of :math:`T(X)` under the truth.
    eta_star : tuple
        :math:`E_g[T]`.
    theta_star : tuple
        Natural parameter of the information projection (symbols ``theta1_star``, … when it
        has no closed form; see ``theta_star_equations``).
    theta_star_equations : tuple or None
        The equations :math:`\nabla\psi(\theta^*)=\eta^*` when :math:`\theta^*` is implicit.
    c1, c2 : sympy.Expr
        Coefficients of :math:`n^{-1}` and :math:`n^{-2}` (``c2`` is None for order 1).
    p : int
        Dimension of the model.
    order : int
    well_specified : bool
        True when the truth is a member of the family: given by its parameters, or a
        random symbol recognised as one (:func:`_member_parameters`).
    """

    family: ExponentialFamily
    truth: str
    cumulants: TruthCumulants
    eta_star: tuple
    theta_star: tuple
    theta_star_equations: tuple | None
    c1: sympy.Expr
    c2: sympy.Expr | None
    p: int
    order: int
    well_specified: bool = False
    _params: dict = field(default_factory=dict, repr=False)

    @property
    def projection(self) -> dict:
        """Standard parameters of the information projection (when θ* is explicit)."""
        return {k: (tuple(map(sympy.simplify, v)) if isinstance(v, tuple) else
                    sympy.simplify(v))
                for k, v in self.family.from_natural(self.theta_star).items()}

    @property
    def expression(self) -> sympy.Expr:
        r""":math:`c_1/n + c_2/n^2` in the symbol :data:`n`."""
        expr = self.c1 / n
        if self.c2 is not None:
            expr += self.c2 / n**2
        return expr

    def evaluate(self, n_value, *, terms: int | None = None):
        r"""Predicted risk at sample size ``n_value`` (> 0).

        ``terms=1`` keeps :math:`c_1/n` only; the default uses every computed term. Returns
        a sympy expression (exact when the coefficients are).
        """
        if isinstance(n_value, bool):
            raise TypeError("n must be a number")
        nv = sympy.sympify(n_value)
        if not nv.is_number or not nv.is_real:
            raise ValueError(f"n must be a positive real number, got {n_value!r}")
        if not nv > 0:
            raise ValueError(f"n must be positive, got {n_value!r}")
        terms = self.order if terms is None else terms
        if terms not in (1, 2) or terms > self.order:
            raise ValueError(f"terms must be 1 or (for order=2) 2, got {terms}")
        val = self.c1 / nv
        if terms == 2:
            val += self.c2 / nv**2
        if val.has(sympy.Float):
            return val
        if _is_rational_function(val):
            return sympy.factor(val)
        # simplify takes seconds per call on the long polygamma coefficients of a symbolic
        # Gamma or Beta member (20 s for the six rows of `divkit derive risk --family beta`)
        if _is_rational_in_polygammas(val) or sympy.count_ops(val) > 200:
            return _lowest_terms(val)
        return sympy.simplify(val)

    def latex(self) -> str:
        r"""LaTeX of :math:`E\,\mathrm{KL} = c_1/n + c_2/n^2 + O(n^{-3})`."""
        rest = "O(n^{-3})" if self.order == 2 else "O(n^{-2})"
        body = sympy.latex(self.c1) + r"\,n^{-1}"
        if self.c2 is not None:
            body = (
                r"\left(" + sympy.latex(self.c1) + r"\right) n^{-1} + \left("
                + sympy.latex(self.c2) + r"\right) n^{-2}"
            )
        return (r"\mathbb{E}\,\mathrm{KL}(g_{\theta^*}\,\|\,g_{\hat\theta}) = "
                + body + " + " + rest)

    def __repr__(self) -> str:
        return (f"RiskExpansion(family={self.family.name!r}, p={self.p}, c1={self.c1}, "
                f"c2={self.c2})")


def mle_risk(family, *, truth, order: int = 2) -> RiskExpansion:
    r"""Expansion of the MLE risk :math:`E\,\mathrm{KL}(g_{\theta^*}\|g_{\hat\theta})` to
    order :math:`n^{-2}` (see the module docstring for the derivation).

    Parameters
    ----------
    family : str or ExponentialFamily
        The model (a name accepted by :func:`theory.expfam.get` or a family object).
    truth : RandomSymbol, sequence of RandomSymbol, TruthCumulants or dict
        The data distribution: a sympy.stats random symbol (one per coordinate for
        diagonal_normal), explicit cumulants of :math:`T(X)` (``TruthCumulants`` or a dict
        with keys ``mean``, ``cov``, ``third``), or a dict of the family's standard
        parameters (a well-specified truth, cumulants from :math:`\psi`).
    order : {1, 2}
        Number of terms.

    Returns
    -------
    RiskExpansion

    Raises
    ------
    ValueError
        support mismatch, cumulants that do not exist, a mean of T outside the model's
        mean space, bad ``order``.

    Examples
    --------
    Well specified, the leading term is p/(2n):

    >>> import sympy
    >>> r = mle_risk("normal", truth={"loc": 0, "scale": 3})
    >>> r.c1, r.c2
    (1, 61/12)
    """
    if isinstance(order, bool) or order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    fam = _family(family)
    cum, desc, member = _truth_cumulants(fam, truth)
    if member is not None and fam.inverse_mean_map is None:
        # a member of the model is its own projection: θ* is its natural parameter, in
        # closed form, even where the mean map has no closed-form inverse (Gamma, Beta)
        theta, eqs = fam.to_natural(member), None
    else:
        theta, _implicit, eqs = _projection(fam, cum)
    c1, c2 = _coefficients(fam, theta, cum, order)
    c1 = _simplify(c1)
    c2 = _simplify(c2) if c2 is not None else None
    return RiskExpansion(
        family=fam, truth=desc, cumulants=cum, eta_star=cum.mean, theta_star=theta,
        theta_star_equations=eqs, c1=c1, c2=c2, p=fam.dim, order=order,
        well_specified=member is not None,
    )


# ============================================================================ criterion
@dataclass(frozen=True)
class PNCriterion:
    r"""Verdict of :func:`pn_criterion` at one sample size.

    Attributes
    ----------
    n : int
    p : int
    risk : mpmath.mpf
        Predicted :math:`E\,\mathrm{KL}` (the expansion, at the requested order).
    bayes_error : float
        The target ε: the equal-prior Bayes error of telling :math:`g_{\theta^*}` from
        :math:`g_{\hat\theta}` must be at least ε.
    kl_budget_pinsker, kl_budget_bh : mpmath.mpf
        Largest risk for which each bridge guarantees the target:
        :math:`2(1-2\varepsilon)^2` and :math:`-\log(1-(1-2\varepsilon)^2)`.
    tv_pinsker, tv_bh : mpmath.mpf
        Bounds on :math:`E\,\mathrm{TV}`: :math:`\min(1,\sqrt{R/2})` and
        :math:`\sqrt{1-e^{-R}}` (Jensen, both maps concave).
    bayes_error_pinsker, bayes_error_bh : mpmath.mpf
        Lower bounds :math:`(1-\mathrm{TV})/2` on the expected Bayes error.
    satisfied_pinsker, satisfied_bh, satisfied : bool
        Whether each bridge (and at least one) guarantees the target.
    n_required : int
        Smallest n at which the predicted risk is within the larger of the two budgets.
    """

    n: int
    p: int
    risk: mpmath.mpf
    bayes_error: float
    kl_budget_pinsker: mpmath.mpf
    kl_budget_bh: mpmath.mpf
    tv_pinsker: mpmath.mpf
    tv_bh: mpmath.mpf
    bayes_error_pinsker: mpmath.mpf
    bayes_error_bh: mpmath.mpf
    satisfied_pinsker: bool
    satisfied_bh: bool
    satisfied: bool
    n_required: int


def _n_required(c1, c2, budget) -> int:
    """Smallest positive integer n with c1/n + c2/n**2 <= budget (c1 > 0)."""
    if c2 is None or c2 == 0:
        nr = c1 / budget
    else:
        disc = c1**2 + 4 * budget * c2
        if disc < 0:
            return 1
        nr = (c1 + mpmath.sqrt(disc)) / (2 * budget)
    k = max(1, int(mpmath.ceil(nr)))
    # guard against rounding at the boundary: equality within 1e-40 counts as meeting it
    limit = budget * (1 + mpmath.mpf(10) ** -40)
    while k > 1 and c1 / (k - 1) + (c2 or 0) / (k - 1) ** 2 <= limit:
        k -= 1
    while c1 / k + (c2 or 0) / k**2 > limit:
        k += 1
    return k


def pn_criterion(model, n_samples, *, bayes_error, truth=None, order: int = 2) -> PNCriterion:
    r"""divkit's p-n criterion: is n large enough for a p-dimensional exponential model?

    The question asked is whether the MLE is statistically indistinguishable from the
    information projection at level ε: with equal priors, the Bayes error of deciding from
    one observation whether it came from :math:`g_{\theta^*}` or :math:`g_{\hat\theta}` is
    :math:`(1-\mathrm{TV})/2`, and we require its expectation to be at least ε ∈ (0, 1/2).
    From the risk :math:`R = E\,\mathrm{KL}(g_{\theta^*}\|g_{\hat\theta})` two bridges bound
    :math:`E\,\mathrm{TV}` (both maps are concave, so Jensen applies):

    * Pinsker: :math:`E\,\mathrm{TV} \le \sqrt{R/2}`, so :math:`R \le 2(1-2\varepsilon)^2`
      suffices;
    * Bretagnolle–Huber: :math:`E\,\mathrm{TV} \le \sqrt{1-e^{-R}}`, so
      :math:`R \le -\log(1-(1-2\varepsilon)^2)` suffices.

    R is replaced by the expansion :math:`c_1/n + c_2/n^2` (this is the asymptotic step:
    the verdict is as good as the expansion at this n). This is our own criterion — the
    paper's exact inequality was not available (docs/asymptotics.md).

    Parameters
    ----------
    model : RiskExpansion, ExponentialFamily, str or int
        A risk expansion; a family (then ``truth`` is required); or the dimension p,
        meaning a well-specified model at leading order, :math:`R = p/(2n)`.
    n_samples : int
        Sample size, > 0.
    bayes_error : float
        Target ε in (0, 1/2).
    truth : optional
        As in :func:`mle_risk`, when ``model`` is a family.
    order : {1, 2}
        Terms of the expansion used.

    Examples
    --------
    >>> v = pn_criterion(3, 100, bayes_error=0.45)
    >>> v.satisfied, v.n_required
    (True, 75)
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, sympy.Integer)):
        raise TypeError(f"n must be an integer, got {n_samples!r}")
    if n_samples <= 0:
        raise ValueError(f"n must be positive, got {n_samples}")
    if isinstance(bayes_error, bool):
        raise TypeError("bayes_error must be a number")
    eps = float(bayes_error)
    if not 0 < eps < 0.5:
        raise ValueError(f"bayes_error must lie in (0, 1/2), got {bayes_error}")
    if isinstance(order, bool) or order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    if isinstance(model, RiskExpansion):
        risk = model
    elif isinstance(model, (ExponentialFamily, str)):
        risk = mle_risk(model, truth=truth, order=order)
    elif isinstance(model, int) and not isinstance(model, bool):
        if model <= 0:
            raise ValueError(f"p must be a positive integer, got {model}")
        risk = None
    else:
        raise TypeError("model must be a RiskExpansion, a family, a family name or p (int)")
    with mpmath.workdps(_DPS):
        if risk is None:
            p, c1, c2 = model, mpmath.mpf(model) / 2, None
        else:
            p = risk.p
            if not risk.c1.is_number or (risk.c2 is not None and not risk.c2.is_number):
                raise ValueError(
                    "the p-n criterion needs numeric risk coefficients; give a truth "
                    "with numeric parameters"
                )
            c1 = mpmath.mpf(sympy.N(risk.c1, _DPS + 5))
            c2 = (mpmath.mpf(sympy.N(risk.c2, _DPS + 5))
                  if (risk.c2 is not None and order == 2) else None)
        nn = mpmath.mpf(int(n_samples))
        r_val = c1 / nn + (c2 / nn**2 if c2 is not None else 0)
        if r_val < 0:
            raise ValueError(
                f"the two-term expansion is negative at n = {n_samples} "
                f"(c1 = {c1}, c2 = {c2}): n is too small for the expansion to apply"
            )
        # a float target is read as the decimal the user typed (0.45, not its binary value)
        eps_m = (mpmath.mpf(repr(bayes_error)) if isinstance(bayes_error, float)
                 else mpmath.mpf(sympy.N(sympy.sympify(bayes_error), _DPS + 5)))
        gap = 1 - 2 * eps_m
        budget_p = 2 * gap**2
        budget_bh = -mpmath.log(1 - gap**2)
        tv_p = min(mpmath.mpf(1), mpmath.sqrt(r_val / 2))
        tv_bh = mpmath.sqrt(-mpmath.expm1(-r_val))
        be_p, be_bh = (1 - tv_p) / 2, (1 - tv_bh) / 2
        sat_p, sat_bh = bool(be_p >= eps_m), bool(be_bh >= eps_m)
        n_req = _n_required(c1, c2, max(budget_p, budget_bh))
        return PNCriterion(
            n=int(n_samples), p=p, risk=r_val, bayes_error=eps,
            kl_budget_pinsker=budget_p, kl_budget_bh=budget_bh,
            tv_pinsker=tv_p, tv_bh=tv_bh, bayes_error_pinsker=be_p, bayes_error_bh=be_bh,
            satisfied_pinsker=sat_p, satisfied_bh=sat_bh, satisfied=sat_p or sat_bh,
            n_required=n_req,
        )
