r"""Per-element log-space expressions every divergence kernel evaluates, derived once per family.

This module is the interface between :mod:`theory.fdiv` (a :class:`~theory.fdiv.Family` of
generators :math:`f(u;\theta)`) and the code generators (:mod:`numeric.codegen` prints
these same expressions for numpy, C and CUDA). Derivations are symbolic in the parameters
:math:`\theta`: one derivation, and one compiled kernel per (family, dtype, target), serve
every parameter value, which the kernels take at run time.

Setting
-------
A row of teacher logits and a row of student logits give log-probabilities
:math:`a_i = \log p_i` and :math:`b_i = \log q_i`. Per element the kernels see the
log-ratio and the two probabilities

.. math::  \ell = a - b = \log r,\qquad p = e^{a},\qquad q = e^{b},

as the symbols :data:`ELL`, :data:`P`, :data:`Q`. :math:`D_f(P\|Q) = \sum_i q_i f(p_i/q_i)`,
P first. Three per-element quantities, each :math:`q\,X(r)`:

``loss``          :math:`X = F(u) = f(u) - f'(1)(u - 1)` (standardised, :math:`\ge 0`);
``grad_student``  :math:`X = \hat g(u) = f(u) - u f'(u) - c_g`, with
                  :math:`\partial D/\partial b_j = q_j(\hat g_j - \sum_i q_i \hat g_i)`;
``grad_teacher``  :math:`X = u\,\hat h(u)`, :math:`\hat h = f'(u) - c_h`, with
                  :math:`\partial D/\partial a_j = p_j(\hat h_j - \sum_i p_i \hat h_i)`.

The constants cancel in the gradients; they are chosen so that the terms vanish where the
mass sits: :math:`c_g = g(0^+)` and :math:`c_h = f'(\infty)` where those limits are finite
(derived symbolically in :math:`\theta`, and checked finite at run time for the values
given), else :math:`c_g = g(1)`, :math:`c_h = f'(1)` (the ``*_near`` forms, which nearly
equal rows use in any case).

How each element is evaluated (rules, not a search):

- :math:`|\ell| < \ell_s`: the Taylor polynomial in :math:`\ell` of :math:`X(e^{\ell})`
  (:mod:`numeric._series`; coefficients computed per parameter value at 40 digits), so
  nothing cancels near :math:`r = 1`;
- otherwise ``lo`` = :math:`q\,X(e^{\ell})` for :math:`\ell \le 0` and
  ``hi`` = :math:`p\,vX(1/v)`, :math:`v = e^{-\ell}`, for :math:`\ell > 0` (no exponential
  overflows), each written by the rewrite passes of :mod:`numeric.codegen` (log1p, expm1,
  softplus, xlogy, ...) after a fixed normalisation (logs split, exponentials merged);
- zero mass: :math:`q\,X(0^+)` where :math:`p = 0 < q`, :math:`p \lim_{u\to\infty} X(u)/u`
  where :math:`q = 0 < p`, 0 where both vanish (the zero-mass rules); the limits are
  computed per parameter value (:func:`zero_mass_limit`).
- at a singular parameter value (α = 0 of the α-divergence, where the general expression
  is 0/0), the family's endpoint generator (:meth:`theory.fdiv.Family.endpoint_generator`)
  has its own forms.

Examples
--------
>>> fm = forms("kl")
>>> fm.grad_student.per_q
-u
>>> fm.loss.at_q_zero, fm.loss.at_p_zero
(inf, 1.0)
>>> forms("js").grad_student.per_q     # -(1 - β) log(1 + βu/(1 - β)), symbolic in β
(beta - 1)*log1p(-beta*u/(beta - 1))
>>> forms("js", beta=0.25).theta
(0.25,)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import mpmath
import sympy

from numeric._series import taylor
from theory import u

__all__ = ["ELL", "P", "Q", "LOG_P", "LOG_Q", "ElementForm", "FamilyForms", "BoundForms",
           "forms", "resolve", "resolve_family", "zero_mass_limit", "const_float",
           "log_weighted", "NEAR_FACTOR", "DivergenceForms"]

#: log-ratio :math:`\ell = \log p - \log q`.
ELL = sympy.Symbol("ell", real=True)
#: teacher probability :math:`p = e^{a}`.
P = sympy.Symbol("p", nonnegative=True)
#: student probability :math:`q = e^{b}`.
Q = sympy.Symbol("q", nonnegative=True)
#: log-weights of the careful branches, :math:`\log p` and :math:`\log q`
#: (:data:`theory.fdiv.RESERVED_NAMES` keeps user parameters off these names).
LOG_P = sympy.Symbol("log_p", real=True)
LOG_Q = sympy.Symbol("log_q", real=True)
_V = sympy.Symbol("dk_v", positive=True)

#: Rows with D below NEAR_FACTOR·(ĝ(1) − ĝ(0+))² use the gradient forms that vanish at r = 1.
NEAR_FACTOR = 1e-3

_NAMES = ("loss", "raw", "grad_student", "grad_teacher", "grad_student_near",
          "grad_teacher_near")


@dataclass(frozen=True)
class ElementForm:
    r"""One per-element quantity :math:`q\,X(p/q)`, symbolic in the family's parameters.

    Attributes
    ----------
    name : str
    per_q : sympy.Expr
        :math:`X(u)` in :data:`theory.u` and the parameters.
    lo : sympy.Expr
        :math:`q\,X(e^{\ell})` in (``ELL``, ``Q``, parameters), for :math:`\ell \le 0`.
    hi : sympy.Expr
        :math:`p\,vX(1/v)`, :math:`v = e^{-\ell}`, in (``ELL``, ``P``, parameters).
    near : sympy.Expr
        :math:`X(e^{\ell})` unweighted, whose Taylor series the kernels use near 0.
    lo_only : bool
        ``lo`` holds for :math:`\ell \le 0` only (a kink at :math:`u = 1` resolved on
        the branch, as TV's ``Abs``); otherwise it is exact for every :math:`\ell`.
    """

    name: str
    per_q: sympy.Expr
    lo: sympy.Expr
    hi: sympy.Expr
    near: sympy.Expr
    lo_only: bool = False


@dataclass(frozen=True)
class BoundElement:
    """An :class:`ElementForm` at parameter values: the run-time constants of one kernel.

    ``at_p_zero`` (:math:`X(0^+)`) and ``at_q_zero`` (:math:`\\lim X(u)/u`) are floats
    (``inf`` allowed); ``series`` is ``(coefficients, radius)`` or ``None``.
    """

    form: ElementForm
    at_p_zero: float
    at_q_zero: float
    series: tuple | None

    def __getattr__(self, item):
        return getattr(self.form, item)


# --------------------------------------------------------------------------- resolution
def resolve(f):
    """An :class:`theory.fdiv.FDivergence` from a catalog name or an FDivergence.

    Raises
    ------
    TypeError
        If ``f`` is neither.
    """
    from theory import fdiv

    if isinstance(f, str):
        return fdiv.get(f)
    if isinstance(f, fdiv.FDivergence):
        return f
    raise TypeError(
        f"f must be a catalog name (see theory.fdiv.names()), a theory.fdiv.Family or a "
        f"theory.fdiv.FDivergence, got {type(f).__name__}"
    )


def resolve_family(f, params=None):
    """``(family, values)``: the parametric family of ``f`` and float parameter values.

    ``f`` is a catalog name, a :class:`~theory.fdiv.Family` or an
    :class:`~theory.fdiv.FDivergence`; ``params`` (``{name: float}``) overrides the
    values (defaults: those of the FDivergence, else the family's defaults). A plain
    generator is a family without parameters. No sympy work per value: this is the hot
    path of a parameter schedule.
    """
    from theory import fdiv

    if isinstance(f, str):
        key = f.strip().lower().replace("-", "_")
        fam = fdiv.family(key)
        base = {}
    elif isinstance(f, fdiv.Family):
        fam, base = f, {}
    elif isinstance(f, fdiv.FDivergence):
        fam = f.family
        if fam is None:
            fam = _plain_family(f)
            base = {}
        else:
            base = dict(f.params)
    else:
        resolve(f)  # raises the TypeError
        raise AssertionError  # pragma: no cover
    params = dict(params or {})
    unknown = set(params) - {p.name for p in fam.parameters}
    if unknown:
        allowed = ", ".join(p.name for p in fam.parameters) or "none"
        raise ValueError(f"{fam.name} has no parameter(s) {', '.join(sorted(unknown))}; "
                         f"allowed: {allowed}")
    values = []
    for p in fam.parameters:
        v = params.get(p.name, base.get(p.name, p.default))
        if isinstance(v, bool):
            raise TypeError(f"parameter {p.name!r} must be a real number, got {v!r} (a bool)")
        if not isinstance(v, (int, float, sympy.Expr)):
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"parameter {p.name!r} must be a real number, got {v!r}") from None
        fv = float(v)
        if not math.isfinite(fv):
            raise ValueError(f"parameter {p.name!r} must be finite, got {fv}")
        _check_value(fam, p.name, fv, p.name in params and isinstance(v, float))
        values.append(fv)
    return fam, tuple(values)


@functools.lru_cache(maxsize=4096)
def _check_value(fam, pname: str, value: float, given_float: bool) -> None:
    """The domain and range checks of one parameter value, once per (family, value): a
    schedule that revisits values, or a loop that passes the same ``params`` every step,
    pays them once (they cost sympy work, milliseconds)."""
    par = fam._param(pname)
    if given_float:
        par.check(sympy.Rational(repr(value)))
    else:
        par.check(sympy.nsimplify(value, rational=True))
    _check_supported(fam, par, value)


#: Parameter ranges the float64 kernels are verified on (against 50-digit mpmath): beyond
#: them the closed forms cancel catastrophically near r = 1 (alpha = 50: 7e5 relative error
#: on rows 1e-3 apart) or every term overflows; such values are refused, not guessed.
SUPPORTED_RANGES = {("alpha", "alpha"): (-30.0, 30.0), ("power", "alpha"): (0.0, 30.0)}
#: A parameter closer than this (but not equal) to a special value of its family (an endpoint
#: or a singular value) is refused: the forms derived there divide by the distance, which
#: becomes a subnormal float with a few bits (alpha = 5e-324 gave NaN).
MIN_SPECIAL_DISTANCE = 1e-300


def _check_supported(fam, par, value: float) -> None:
    lo_hi = SUPPORTED_RANGES.get((fam.name, par.name))
    if lo_hi is not None and not lo_hi[0] <= value <= lo_hi[1]:
        raise ValueError(
            f"{fam.name}: parameter {par.name}={value!r} is outside the range the kernels "
            f"support, [{lo_hi[0]:g}, {lo_hi[1]:g}] (beyond it float64 cannot hold the terms "
            f"accurately); use a value in that range")
    try:
        specials = [float(t) for t in special_values(fam, par.name)]
    except (TypeError, ValueError, AttributeError):  # pragma: no cover - exotic families
        return
    for t0 in specials:
        if 0.0 < abs(value - t0) < MIN_SPECIAL_DISTANCE:
            raise ValueError(
                f"{fam.name}: parameter {par.name}={value!r} is within {MIN_SPECIAL_DISTANCE:g} "
                f"of the special value {t0:g} but not equal to it, which float64 kernels cannot "
                f"resolve; pass {par.name}={t0:g} itself or a value with |{par.name} - {t0:g}| "
                f">= {MIN_SPECIAL_DISTANCE:g}")


@functools.lru_cache(maxsize=256)
def _plain_family(fd):
    from theory import fdiv

    return fdiv.Family(fd.name, fd.f, (), key=("plain", sympy.srepr(fd.f)),
                       convexity=fd.convexity_check)


# --------------------------------------------------------------------------- derivation
def _split_log(arg: sympy.Expr) -> sympy.Expr:
    """``log(arg)`` of a positive ``arg`` as a sum of logs of its factors, signs paired so
    that no ``log(-x)`` (and no ``I*pi``) appears; unsplit when the signs do not pair."""
    arg = sympy.factor(sympy.together(arg))
    coeff, factors = arg.as_coeff_mul()
    sign = 1 if coeff > 0 else -1
    out = [sympy.log(abs(coeff))] if abs(coeff) != 1 else []
    for fct in factors:
        base, e = fct.as_base_exp()
        if base.is_Add and base.could_extract_minus_sign():
            if not e.is_integer:
                return sympy.log(arg)
            base = -base
            sign *= (-1) ** int(e)
        if isinstance(base, sympy.exp):
            out.append(e * base.args[0])
        else:
            out.append(e * sympy.log(base))
    if sign < 0:
        return sympy.log(arg)
    return sympy.Add(*out)


def _split_logs(expr: sympy.Expr) -> sympy.Expr:
    """Logs of quotients and products split: ``log(1/2 + 1/(2v))`` → ``log(v+1) - log 2 - log v``."""
    expr = sympy.sympify(expr)
    return expr.replace(lambda e: isinstance(e, sympy.log), lambda e: _split_log(e.args[0]))


def _nonneg_at_probes(x: sympy.Expr, probes: dict) -> bool:
    pts = [sympy.Rational(1, 1000), sympy.Rational(1, 2), 2, 1000]
    try:
        for pt in pts:
            for sub in probes:
                val = sympy.N(x.subs(sub).subs(u, pt))
                if not (val.is_real and val >= 0):
                    return False
    except (TypeError, ValueError):  # pragma: no cover - symbolic leftovers
        return False
    return True


def _merge_constant_logs(expr: sympy.Expr, probes=({},)) -> sympy.Expr:
    """``c·log(A) − c·log(B) − c·log(K)…`` (equal and opposite coefficients) →
    ``c·log1p((A − BK)/(BK))`` when ``A − BK`` expands to something smaller than ``A``: a
    gradient term shifted by its limit (JS: ``log(βu + 1 − β) − log(1 − β)``) keeps its
    small size instead of appearing as a difference of O(1) logs."""
    from numeric.codegen.nodes import log1p

    def merge(add):
        groups, rest = {}, []
        for term in add.args:
            c, f = term.as_independent(sympy.log, as_Add=False)
            if not isinstance(f, sympy.log):
                rest.append(term)
                continue
            sg = -1 if c.could_extract_minus_sign() else 1
            groups.setdefault(sg * c, []).append((sg, f.args[0]))
        out = list(rest)
        for c, items in groups.items():
            num = [a for sg, a in items if sg > 0]
            den = [a for sg, a in items if sg < 0]
            if num and den:
                n_, d_ = sympy.Mul(*num), sympy.Mul(*den)
                diff = sympy.expand(n_ - d_)
                if sympy.count_ops(diff) < sympy.count_ops(sympy.expand(n_)) or \
                        not diff.has(u) or not d_.has(u):
                    # log(N/D) = log1p((N - D)/D) = -log1p((D - N)/N): the orientation
                    # whose argument is nonnegative (no log1p near -1)
                    x1 = sympy.factor_terms(sympy.cancel(diff / d_))
                    x2 = sympy.factor_terms(sympy.cancel(-diff / n_))
                    if not _nonneg_at_probes(x1, probes) and _nonneg_at_probes(x2, probes):
                        out.append(-c * log1p(x2))
                    else:
                        out.append(c * log1p(x1))
                    continue
            out += [sg * c * sympy.log(a) for sg, a in items]
        return sympy.Add(*out)

    return expr.replace(lambda e: e.is_Add and e.has(sympy.log), merge)


def _log1p_of_exp(expr: sympy.Expr, probes) -> sympy.Expr:
    """``log1p(c·exp(x))`` with ``c > 0`` (at the probe values) → ``softplus(x + log c)``:
    finite where ``exp(x)`` overflows."""
    from numeric.codegen.nodes import softplus

    def fix(e):
        arg = sympy.powsimp(e.args[0], combine="exp")
        c, rest = arg.as_independent(ELL, as_Add=False)
        if not isinstance(rest, sympy.exp) or c.has(ELL):
            return e
        if not _nonneg_at_probes(c, probes) or c == 0:
            return e
        return softplus(rest.args[0] + sympy.log(c))

    return expr.replace(lambda e: type(e).__name__ == "log1p" and e.args[0].has(ELL), fix)


def _in_ell(expr: sympy.Expr, var, value, small=None, probes=({},)) -> sympy.Expr:
    """``expr`` with ``var = value`` (an exponential of ELL), logs of exponentials folded,
    exponentials merged, then the codegen rewrite passes."""
    from numeric.codegen.rewrite import rewrite, small_parameter

    out = sympy.powsimp(expr.subs(var, value), combine="exp")
    # exponentials in a term's denominator merged into its numerator (e^-x / (a e^-y - e^-y)
    # underflows to x/0 where e^(y - x)/(a - 1) is finite)
    out = sympy.Add(*[sympy.powsimp(sympy.factor_terms(t), combine="exp")
                      for t in sympy.Add.make_args(out)])
    if small is not None:
        out = small_parameter(out, small)
    out = _log1p_of_exp(out, probes)
    out = rewrite(out)
    from numeric.codegen.nodes import expm1

    # sign(e^x - 1) = sign(x): the form that cannot overflow
    return out.replace(lambda e: isinstance(e, sympy.sign) and isinstance(e.args[0], expm1),
                       lambda e: sympy.sign(e.args[0].args[0]))


def _branch_cheap(expr: sympy.Expr, sign: int) -> sympy.Expr:
    """On a branch where ``sign*ell >= 0``, ``softplus(x)`` with ``x <= 0`` there becomes
    ``log1p(exp(x))`` (exact, and shares ``exp`` with the rest after cse); a
    ``logaddexp(A, c)`` with a constant ``c`` is first written ``c + softplus(A - c)``."""
    from numeric.codegen.nodes import log1p, logaddexp, softplus

    def fix_lae(node):
        a, b = node.args
        if b.is_number:
            return b + softplus(a - b)
        if a.is_number:
            return a + softplus(b - a)
        return node

    expr = expr.replace(lambda e: isinstance(e, logaddexp), fix_lae)

    def fix_sp(node):
        arg = sympy.expand(node.args[0])
        coeff = arg.coeff(ELL)
        rest = sympy.expand(arg - coeff * ELL)
        if rest.has(ELL) or not coeff.is_number or not rest.is_number:
            return node
        if (-sign * coeff >= 0) and rest <= 0:
            return log1p(sympy.exp(arg))
        return node

    return expr.replace(lambda e: isinstance(e, softplus), fix_sp)


def _resolve_kinks(expr: sympy.Expr, side: str) -> sympy.Expr:
    """``Abs(x)`` and ``sign(x)`` replaced by ``±x`` and ``±1`` where ``x`` (a function of
    ``u`` alone) keeps one sign on the branch (``side="lo"``: 0 < u < 1, ``"hi"``: u > 1)."""
    probes = ([sympy.Rational(1, 1000), sympy.Rational(1, 10), sympy.Rational(1, 2),
               sympy.Rational(999, 1000)] if side == "lo" else
              [sympy.Rational(1001, 1000), 2, 10, 1000])

    def sign_on_branch(x):
        if x.free_symbols != {u}:
            return None
        signs = {sympy.sign(sympy.N(x.subs(u, pt))) for pt in probes}
        return signs.pop() if len(signs) == 1 and signs <= {1, -1} else None

    def fix(e):
        s = sign_on_branch(e.args[0])
        if s is None:
            return e
        return s * e.args[0] if isinstance(e, sympy.Abs) else s

    return expr.replace(lambda e: isinstance(e, (sympy.Abs, sympy.sign)), fix)


def _element(name: str, per_q: sympy.Expr, small=None, probes=({},)) -> ElementForm:
    per_q = _split_logs(per_q)
    logs = sorted(per_q.atoms(sympy.log), key=sympy.default_sort_key)
    if logs:
        per_q = _merge_constant_logs(sympy.collect(sympy.expand(per_q), logs), probes)
    lo = _in_ell(_resolve_kinks(per_q, "lo"), u, sympy.exp(ELL), small, probes)
    hv = sympy.expand(_V * _resolve_kinks(per_q, "hi").subs(u, 1 / _V))
    try:  # rational parts over a common denominator in v: no 1/(1 + 1/v) that overflows
        hv = sympy.cancel(hv)
    except (sympy.PolynomialError, NotImplementedError):  # pragma: no cover - sympy gaps
        pass
    hv = _split_logs(hv)
    hi = _in_ell(hv, _V, sympy.exp(-ELL), small, probes)
    near = _split_logs(per_q.subs(u, sympy.exp(ELL)))
    return ElementForm(name=name, per_q=per_q, lo=Q * _branch_cheap(lo, -1),
                       hi=P * _branch_cheap(hi, +1), near=near,
                       lo_only=_resolve_kinks(per_q, "lo") != per_q)


def _simp(expr: sympy.Expr) -> sympy.Expr:
    """``sympy.simplify``, except with ``Abs``/``sign`` (it makes Piecewise of them)."""
    expr = sympy.sympify(expr)
    return expr if expr.has(sympy.Abs, sympy.sign) else sympy.simplify(expr)


def _clean(val) -> bool:
    """A symbolic limit usable as a constant: finite-looking, no Piecewise/Limit/oo."""
    return (isinstance(val, sympy.Expr) and not val.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan,
                                                         sympy.Limit, sympy.Piecewise,
                                                         sympy.AccumBounds) and not val.has(u))


def _sym_limit(expr, point):
    try:
        val = sympy.limit(expr, u, point, "+" if point == 0 else "-")
    except (NotImplementedError, ValueError, TypeError, RecursionError):
        return None
    return val if _clean(val) else None


class FamilyForms:
    """The element forms of one family, symbolic in its parameters (derived on access).

    ``region = (name, theta0)`` derives them for the parameter ``name`` near the special
    value ``theta0``, in :math:`\varepsilon = \theta - \theta_0` (the symbol
    ``eps_<name>`` in :attr:`theta`), through
    :func:`numeric.codegen.rewrite.small_parameter`: no O(1) terms cancel as
    :math:`\varepsilon \to 0` (the α-divergence at α = 1e-12, JS at β = 1 − 1e-7).
    """

    def __init__(self, family, region=None):
        self.family = family
        self.region = region
        self.small = None
        self._gen = family.generator
        self.theta = family.symbols
        if region is not None:
            pname, t0 = region
            par = family._param(pname)
            self.small = sympy.Symbol(f"eps_{pname}", real=True)
            self._gen = family.generator.subs(par.symbol, t0 + self.small)
            self.theta = tuple(self.small if s == par.symbol else s for s in family.symbols)

    @functools.cached_property
    def _probes(self) -> tuple:
        """Parameter values at which a rule may test the sign of a term (defaults; ±1e-3
        for a small parameter)."""
        base = {p.symbol: p.default for p in self.family.parameters}
        if self.small is None:
            return (base,)
        par = self.family._param(self.region[0])
        base.pop(par.symbol, None)
        t0 = self.region[1]
        return tuple({**base, self.small: s} for s in (sympy.Rational(1, 1000),
                                                         -sympy.Rational(1, 1000))
                     if par.domain.contains(t0 + s) is sympy.true)

    def __repr__(self) -> str:
        where = f", near {self.region[0]}={self.region[1]}" if self.region else ""
        return f"FamilyForms({self.family.name!r}{where})"

    @functools.cached_property
    def _df(self):
        return sympy.diff(self._gen, u)

    @property
    def df(self):
        """:math:`f'(u)` in :data:`theory.u` and :attr:`theta`."""
        return self._df

    @functools.cached_property
    def df_at_one(self):
        return _simp(self._df.subs(u, 1))

    @functools.cached_property
    def _g(self):
        return _simp(_split_logs(self._gen - u * self._df))

    @functools.cached_property
    def g_at_zero(self):
        """:math:`g(0^+)` in the parameters, or ``None`` (infinite, or not derivable)."""
        return _sym_limit(self._g, 0)

    @functools.cached_property
    def df_at_infinity(self):
        """:math:`f'(\\infty)` in the parameters, or ``None``."""
        return _sym_limit(self._df, sympy.oo)

    @functools.cached_property
    def loss(self) -> ElementForm:
        return _element("loss", self._gen - self.df_at_one * (u - 1), self.small,
                        self._probes)

    @functools.cached_property
    def raw(self) -> ElementForm:
        """:math:`q f(r)` itself, for weights that are not normalised (probability input)."""
        return _element("raw", self._gen, self.small,
                        self._probes)

    @functools.cached_property
    def grad_student_near(self) -> ElementForm:
        return _element("grad_student_near", _simp(self._g + self.df_at_one), self.small,
                        self._probes)

    @functools.cached_property
    def grad_teacher_near(self) -> ElementForm:
        return _element("grad_teacher_near", _simp(u * (self._df - self.df_at_one)), self.small,
                        self._probes)

    @functools.cached_property
    def grad_student(self) -> ElementForm:
        if self.g_at_zero is None:
            return self.grad_student_near
        return _element("grad_student", _simp(self._g - self.g_at_zero), self.small,
                        self._probes)

    @functools.cached_property
    def grad_teacher(self) -> ElementForm:
        if self.df_at_infinity is None:
            return self.grad_teacher_near
        return _element("grad_teacher", _simp(u * (self._df - self.df_at_infinity)), self.small,
                        self._probes)

    @functools.cached_property
    def reward(self):
        """:math:`f'(e^{\\ell})` in ``ELL`` and the parameters (the f-DPO logit), written for
        :math:`\\ell \\le 0` (no exponential overflows there); near a special parameter
        value in its small-parameter form."""
        return _in_ell(_split_logs(self._df), u, sympy.exp(ELL), self.small, self._probes)

    @functools.cached_property
    def _slope_u(self):
        slope = _simp(u * sympy.diff(self._df, u))
        return slope.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)

    @functools.cached_property
    def reward_slope(self):
        """:math:`e^{\\ell} f''(e^{\\ell})`, written for :math:`\\ell \\le 0`."""
        return _in_ell(_split_logs(self._slope_u), u, sympy.exp(ELL), self.small, self._probes)

    def _in_v(self, expr, cancel_terms=False):
        hv = sympy.expand(expr.subs(u, 1 / _V))
        try:
            hv = sympy.cancel(hv)
        except (sympy.PolynomialError, NotImplementedError):  # pragma: no cover - sympy gaps
            pass
        out = _in_ell(_split_logs(hv), _V, sympy.exp(-ELL), self.small, self._probes)
        if not cancel_terms:
            return out
        # c*(ell + x) - c*ell: the ell terms cancel symbolically, not in floating point
        return sympy.Add(*[sympy.expand_mul(t, deep=False) for t in sympy.Add.make_args(out)])

    @functools.cached_property
    def reward_hi(self):
        """:attr:`reward` written for :math:`\\ell > 0`, in :math:`v = e^{-\\ell}`."""
        return self._in_v(self._df, cancel_terms=True)

    @functools.cached_property
    def reward_slope_hi(self):
        """:attr:`reward_slope` written for :math:`\\ell > 0`, in :math:`v = e^{-\\ell}`."""
        return self._in_v(self._slope_u)

    def element(self, name: str) -> ElementForm:
        if name not in _NAMES:
            raise ValueError(f"unknown element {name!r}")
        return getattr(self, name)


@functools.lru_cache(maxsize=256)
def family_forms(family, region=None) -> FamilyForms:
    """The (cached) :class:`FamilyForms` of a family (near a special value: ``region``)."""
    return FamilyForms(family, region)


#: A parameter within this distance of a special value uses the forms derived around it.
REGION_RADIUS = 0.25


def special_values(family, pname: str) -> list:
    """Singular values of the parameter and the finite ends of its domain."""
    par = family._param(pname)
    out = set(family.singular_values(pname))
    dom = par.domain
    if isinstance(dom, sympy.Interval):
        out |= {e for e in (dom.inf, dom.sup) if e.is_finite}
    return sorted(out, key=float)


def _merged(term):
    """One product with its exponentials merged."""
    return sympy.powsimp(term, combine="exp")


def log_weighted(expr, weight, log_weight, *, elementary=False):
    """``expr`` with its weight written ``exp(log_weight)`` and exponentials merged term by
    term, so that ``p * exp(ell)`` is ``exp(a + ell)``: no 0·inf where p underflows and
    exp(ell) does not fit a float. ``elementary`` first writes expm1 as exp − 1 (and the
    other stable nodes elementary), so that every exponential meets the weight: the
    fallback where a weighted expm1 overflows."""
    from numeric.codegen.nodes import StableFunction

    body = expr / weight
    if elementary:
        body = body.replace(lambda e: isinstance(e, StableFunction) and type(e).__name__ == "expm1",
                            lambda e: e.as_elementary())
    terms = sympy.Add.make_args(sympy.expand(body, deep=False))
    return sympy.Add(*[_merged(sympy.exp(log_weight) * t) for t in terms])



# --------------------------------------------------------------------------- run time
def const_float(value) -> float:
    """A sympy (or plain) number as a float, ``oo``/``-oo`` as ±inf."""
    if value is sympy.oo:
        return math.inf
    if value is -sympy.oo:
        return -math.inf
    return float(value)


def zero_mass_limit(expr_u: sympy.Expr, theta: dict, point: str) -> float:
    """:math:`\\lim_{u\\to 0^+} X(u)` (``point="zero"``) or :math:`\\lim_{u\\to\\infty} X(u)/u`
    (``"infinity"``) at parameter values, numerically with mpmath.

    Evaluated at :math:`u = 10^{\\mp 10^{E}}` and :math:`10^{\\mp 10^{E+1}}`, :math:`E = 20 + k`,
    :math:`k = \\max(0, \\lceil\\log_{10}(1/\\min_i|\\theta_i|)\\rceil)`, at 80 + k digits
    (mpmath's exponents are unbounded): power terms :math:`u^{s}` with
    :math:`|s| \\ge 10^{5-E}` have decayed or exploded, so two equal values are the limit
    and two values that grow are ±inf.
    """
    from theory.fdiv import _mp_function  # noqa: F401  (same lambdify conventions)

    fn = sympy.lambdify([u, *theta.keys()], expr_u if point == "zero" else expr_u / u,
                        modules="mpmath")
    # a power u^s with a small exponent (s = alpha = 1e-300 in a form derived near alpha = 0)
    # decays only once |s log u| is large: the probe exponent grows with 1/min|theta|
    # (and 1 - alpha must not round to 1: as many more digits as the parameter is small)
    small = [abs(float(v)) for v in theta.values() if float(v) != 0.0]
    k = max([0] + [math.ceil(-math.log10(x)) for x in small if x < 1])
    e0 = 20 + k
    with mpmath.workdps(80 + k):  # log u ~ 1e21 costs up to 22 digits to cancellation
        args = [mpmath.mpf(sympy.Rational(repr(float(v))) if isinstance(v, float) else v)
                if not isinstance(v, sympy.Expr) else mpmath.mpf(sympy.N(v, 45))
                for v in theta.values()]
        vals = []
        for e in (e0, e0 + 1):
            x = mpmath.mpf(10) ** (-(10**e) if point == "zero" else 10**e)
            try:
                y = fn(x, *args)
            except (ZeroDivisionError, ValueError, OverflowError):
                return math.nan
            if isinstance(y, mpmath.mpc):
                if abs(y.imag) > mpmath.mpf(10) ** -30 * (1 + abs(y.real)):
                    return math.nan
                y = y.real
            vals.append(mpmath.mpf(y))
        a, b = vals
        if abs(b - a) <= mpmath.mpf(10) ** -25 * (1 + abs(b)):
            return 0.0 if abs(b) < mpmath.mpf(10) ** -(70 + k) else float(b)
        if abs(b) > abs(a) and abs(b) > 10**15:
            return math.inf if b > 0 else -math.inf
        return math.nan


class BoundForms:
    """:class:`FamilyForms` at parameter values: what a kernel call needs.

    Attributes
    ----------
    family_forms : FamilyForms
        The forms actually used (the endpoint family's at a singular value).
    theta : tuple of float
        The run-time parameter values, in the order of ``family_forms.theta``.
    fdiv : theory.fdiv.FDivergence
        The member (exact values), built on first access (for the alignment maps).
    """

    def __init__(self, family, values: tuple):
        self.family = family
        self.values = values
        fam = family
        exact = {p.name: sympy.Rational(repr(v)) for p, v in zip(family.parameters, values,
                                                                  strict=True)}
        for p in family.parameters:
            if exact[p.name] in family.singular_values(p.name):
                from theory import fdiv

                gen = family.endpoint_generator(p.name, exact[p.name])
                rest = {q.symbol: exact[q.name] for q in family.parameters if q is not p}
                fam = fdiv.Family(f"{family.name} at {p.name}={exact[p.name]}", gen.subs(rest),
                                  (), key=("endpoint", family.key, p.name, str(exact[p.name])))
                break
        self._exact = exact
        region, shift = None, {}
        if fam is family:
            for p, v in zip(family.parameters, values, strict=True):
                near = [t0 for t0 in special_values(family, p.name)
                        if abs(v - float(t0)) <= REGION_RADIUS]
                if near:
                    t0 = min(near, key=lambda t: abs(v - float(t)))
                    region, shift = (p.name, t0), {p.name: float(t0)}
                    break
        self.family_forms = family_forms(fam, region)
        self._region = region
        # the run-time values: eps = theta - theta0 (exact in float64 near theta0)
        self.theta = tuple(v - shift.get(p.name, 0.0)
                           for p, v in zip(family.parameters, values, strict=True)
                           if p.name in shift or p.symbol in self.family_forms.theta)

    def __repr__(self) -> str:
        vals = ", ".join(f"{p.name}={v!r}" for p, v in zip(self.family.parameters, self.values,
                                                           strict=True))
        return f"BoundForms({self.family.name!r}{', ' + vals if vals else ''})"

    @functools.cached_property
    def general(self):
        """The same values through the family's general forms (``None`` outside a region):
        the careful kernels' fallback where a region form overflows at extreme ratios."""
        if self._region is None:
            return None
        return BoundForms.__new__(BoundForms)._init_general(self)

    def _init_general(self, other):
        self.family = other.family
        self.values = other.values
        self._exact = other._exact
        self._region = None
        self.family_forms = family_forms(other.family, None)
        self.theta = tuple(other.values)
        return self

    @property
    def symbols(self) -> tuple:
        return self.family_forms.theta

    @functools.cached_property
    def _subs(self) -> dict:
        return dict(zip(self.symbols, self.theta, strict=True))

    @functools.cached_property
    def fdiv(self):
        from theory import fdiv

        if self.family.key[0] == "plain":
            return fdiv.FDivergence(self.family.generator, name=self.family.name,
                                    _convexity=self.family.convexity)
        vals = {p.name: self._exact[p.name] for p in self.family.parameters}
        return self.family.at(**vals) if self.family.key[0] != "endpoint" else fdiv.FDivergence(
            self.family_forms.family.generator)

    def _bind(self, name: str) -> BoundElement:
        el = self.family_forms.element(name)
        theta = dict(self._subs)
        series = taylor(el.near, ELL, theta)
        if series is not None and abs(series[0][0]) > 1e-3 * max(abs(c) for c in series[0][1:4]):
            series = None  # X(1) != 0: nothing cancels near r = 1, the closed form is exact
        return BoundElement(el, zero_mass_limit(el.per_q, theta, "zero"),
                            zero_mass_limit(el.per_q, theta, "infinity"), series)

    @functools.cached_property
    def loss(self) -> BoundElement:
        return self._bind("loss")

    @functools.cached_property
    def raw(self) -> BoundElement:
        return self._bind("raw")

    def _variant(self, gname: str, anchor) -> str:
        """``gname`` when its anchor constant (g(0+) or f'(∞)) is finite at these values,
        else the form anchored at r = 1 (``gname + "_near"``)."""
        if anchor is None:
            return gname + "_near"
        val = complex(sympy.N(anchor.subs(self._subs)))
        ok = math.isfinite(val.real) and abs(val.imag) < 1e-300
        return gname if ok else gname + "_near"

    @functools.cached_property
    def _student_variant(self) -> str:
        return self._variant("grad_student", self.family_forms.g_at_zero)

    @functools.cached_property
    def _teacher_variant(self) -> str:
        return self._variant("grad_teacher", self.family_forms.df_at_infinity)

    @functools.cached_property
    def grad_student(self) -> BoundElement:
        return self._bind(self._student_variant)

    @functools.cached_property
    def grad_teacher(self) -> BoundElement:
        return self._bind(self._teacher_variant)

    @functools.cached_property
    def grad_student_near(self) -> BoundElement | None:
        return None if self._student_variant.endswith("near") else self._bind("grad_student_near")

    @functools.cached_property
    def grad_teacher_near(self) -> BoundElement | None:
        return None if self._teacher_variant.endswith("near") else self._bind("grad_teacher_near")

    @functools.cached_property
    def df_at_one(self) -> float:
        return float(sympy.N(self.family_forms.df_at_one.subs(self._subs)))

    @functools.cached_property
    def near_threshold(self) -> dict:
        """Per gradient, the divergence below which a row uses the ``*_near`` form."""
        out = {}
        ff = self.family_forms
        for gname, c0, c1 in (("grad_student", ff.g_at_zero, -ff.df_at_one),
                              ("grad_teacher", ff.df_at_infinity, ff.df_at_one)):
            near = getattr(self, gname + "_near")
            if near is None or c0 is None:
                out[gname] = 0.0
            else:
                out[gname] = float(sympy.N((c0 - c1).subs(self._subs))) ** 2 * NEAR_FACTOR
        return out

    @property
    def reward(self):
        return self.family_forms.reward.subs(self._subs_exact)

    @property
    def reward_slope(self):
        return self.family_forms.reward_slope.subs(self._subs_exact)

    @functools.cached_property
    def _subs_exact(self) -> dict:
        return {s: sympy.Rational(repr(v)) for s, v in zip(self.symbols, self.theta, strict=True)}


@functools.lru_cache(maxsize=1024)
def _bound(family, values: tuple) -> BoundForms:
    return BoundForms(family, values)


def forms(f, **params) -> BoundForms:
    """The per-element forms of ``f`` at parameter values, cached per (family, values).

    Parameters
    ----------
    f : str, theory.fdiv.Family or theory.fdiv.FDivergence
    **params : float
        Parameter values (override those of an FDivergence; defaults otherwise).

    Returns
    -------
    BoundForms
    """
    fam, values = resolve_family(f, params)
    return _bound(fam, values)


#: The name the kernels and alignment maps use for the bound forms.
DivergenceForms = BoundForms
