r"""Per-element log-space expressions every divergence kernel evaluates, derived from f.

This module is the interface between :mod:`theory.fdiv` (a generator :math:`f`) and the
code generators (:mod:`numeric.codegen` prints these same expressions for numpy, C and
CUDA). It contains no array code: every object here is a sympy expression.

Setting
-------
A row of teacher logits and a row of student logits give log-probabilities
:math:`a_i = \log p_i` and :math:`b_i = \log q_i` (row log-sum-exps subtracted). The kernels
see, per element, the log-ratio and the two probabilities

.. math::  \ell = a - b = \log r,\qquad p = e^{a},\qquad q = e^{b},

as the symbols :data:`ELL`, :data:`P`, :data:`Q` (``ell`` real, ``p`` and ``q``
nonnegative). :math:`D_f(P\|Q) = \sum_i q_i f(p_i/q_i)`, P first.

Three per-element quantities, each written as :math:`q\,X(r)` for a function :math:`X`
of the ratio (:attr:`ElementForm.per_q`):

``loss``
    :math:`q\,F(r)` with the standardised generator :math:`F(u) = f(u) - f'(1)(u-1)`.
    :math:`\sum_i q_i F(r_i) = D_f(P\|Q)` because :math:`\sum_i (p_i - q_i) = 0`, and
    every term is :math:`\ge 0`, so nothing cancels in the row sum.
``grad_student``
    :math:`q\,\hat g(r)` with :math:`\hat g(u) = f(u) - u f'(u) - c_g`. The student
    gradient (DESIGN.md) is :math:`\partial D/\partial b_j = q_j(\hat g_j -
    \sum_i q_i \hat g_i)`; a constant added to :math:`g` cancels, and
    :math:`c_g = g(0^+)` when finite (so :math:`\hat g` vanishes where the student's mass
    sits, on tokens the teacher does not support: :math:`-\tfrac12\log(1+r)` for JS), else
    :math:`c_g = g(1) = -f'(1)`.
``grad_teacher``
    :math:`p\,\hat h(r)` (i.e. :math:`X(u) = u\,\hat h(u)`) with
    :math:`\hat h(u) = f'(u) - c_h`; :math:`\partial D/\partial a_j = p_j(\hat h_j -
    \sum_i p_i \hat h_i)`. :math:`c_h = f'(\infty)` when finite (vanishes where the
    teacher's mass sits), else :math:`c_h = f'(1)`.

Each :class:`ElementForm` carries two equivalent branches, written with the stable nodes of
:mod:`numeric.codegen.nodes` (log1p, expm1, softplus, logaddexp, ...) after the codegen
rewrite passes:

``lo``  = :math:`q\,X(e^{\ell})`, in symbols (``ell``, ``q``): exact for :math:`\ell \le 0`
        (no exponential overflows there); the kernels also use it for moderate
        :math:`\ell > 0` and fall back to the branch pair when a row overflows.
``hi``  = :math:`p\,v\,X(1/v)` at :math:`v = e^{-\ell}`, in symbols (``ell``, ``p``): the
        same value, overflow-free for :math:`\ell > 0`.

and the zero-mass limits (sympy numbers, possibly ``oo``): where :math:`p = 0 < q` the term
is ``q * at_p_zero`` (:math:`X(0^+)`), where :math:`q = 0 < p` it is ``p * at_q_zero``
(:math:`\lim_{u\to\infty} X(u)/u`), and where both vanish it is 0. For ``loss`` these are
:math:`f(0^+) + f'(1)` and :math:`f'(\infty) - f'(1)`: the zero-mass rules
:math:`q f(0/q) = q f(0^+)` and :math:`0\cdot f(p/0) = p f'(\infty)` of DESIGN.md.

Among several algebraically equal normalisations of each branch (as derived, factored,
together, expanded, logs merged, and written around :math:`u = 1 + w` with
:math:`w = \operatorname{expm1}(\ell)`) the one with the smallest float64 error against mpmath on a grid of
log-ratios is kept, so e.g. :math:`(u-1)^2` stays factored (``expm1(ell)**2``) instead of
the cancelling :math:`u^2 - 2u + 1`.

For the alignment maps (:func:`forms` also returns them):

``reward``       :math:`f'(e^{\ell})` in ``ell`` (the f-DPO logit of one response),
``reward_slope`` :math:`\tfrac{d}{d\ell} f'(e^{\ell}) = e^{\ell} f''(e^{\ell})`.

Examples
--------
>>> from theory import fdiv
>>> fm = forms(fdiv.get("kl"))
>>> fm.grad_student.per_q
-u
>>> fm.loss.at_q_zero, fm.loss.at_p_zero
(oo, 1)
>>> forms(fdiv.get("js")).grad_student.per_q
-log(u + 1)/2
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy

from theory import u

__all__ = ["ELL", "P", "Q", "ElementForm", "DivergenceForms", "forms", "resolve"]

#: log-ratio :math:`\ell = \log p - \log q`.
ELL = sympy.Symbol("ell", real=True)
#: teacher probability :math:`p = e^{a}`.
P = sympy.Symbol("p", nonnegative=True)
#: student probability :math:`q = e^{b}`.
Q = sympy.Symbol("q", nonnegative=True)
_V = sympy.Symbol("v", positive=True)


@dataclass(frozen=True)
class ElementForm:
    """One per-element quantity :math:`q\\,X(p/q)` in its two stable branches.

    Attributes
    ----------
    name : str
        ``"loss"``, ``"grad_student"`` or ``"grad_teacher"``.
    per_q : sympy.Expr
        :math:`X(u)` in :data:`theory.u`.
    lo : sympy.Expr
        :math:`q\\,X(e^{\\ell})` in (``ELL``, ``Q``), for :math:`\\ell \\le 0`.
    hi : sympy.Expr
        :math:`p\\,v X(1/v)`, :math:`v = e^{-\\ell}`, in (``ELL``, ``P``), for :math:`\\ell > 0`.
    at_p_zero : sympy.Expr
        :math:`X(0^+)`: the term is ``q * at_p_zero`` where ``p = 0 < q``.
    at_q_zero : sympy.Expr
        :math:`\\lim_{u\\to\\infty} X(u)/u`: the term is ``p * at_q_zero`` where ``q = 0 < p``.
    """

    name: str
    per_q: sympy.Expr
    lo: sympy.Expr
    hi: sympy.Expr
    at_p_zero: sympy.Expr
    at_q_zero: sympy.Expr


class DivergenceForms:
    """Everything the kernels of one generator need (see the module docstring).

    Each attribute is derived on first access and cached (the alignment maps need only
    ``reward``/``reward_slope``, the divergence kernels only the element forms).

    Attributes
    ----------
    fdiv : theory.fdiv.FDivergence
    loss, grad_student, grad_teacher : ElementForm
    raw : ElementForm
        :math:`q f(r)` (not standardised), for :func:`numeric.divergence` on rows whose
        masses differ.
    grad_student_near, grad_teacher_near : ElementForm or None
        The same gradient terms with the constant chosen so that they vanish at
        :math:`r = 1` (:math:`c = g(1)`, resp. :math:`f'(1)`); ``None`` when that is
        already the main form's constant.
    near_threshold : dict
        Per gradient, the divergence below which a row uses the ``*_near`` form:
        ``NEAR_FACTOR * (c - c_near)**2``.
    shift_g, shift_h : sympy.Expr
        The constants :math:`c_g`, :math:`c_h` subtracted from :math:`g` and :math:`f'`.
    df_at_one : sympy.Expr
        :math:`f'(1)`.
    reward, reward_slope : sympy.Expr
        :math:`f'(e^{\\ell})` and :math:`e^{\\ell} f''(e^{\\ell})` in ``ELL``.
    """

    def __init__(self, fd):
        self.fdiv = fd

    def __repr__(self) -> str:
        return f"DivergenceForms({getattr(self.fdiv, 'name', self.fdiv)!r})"

    @functools.cached_property
    def _df(self):
        return sympy.diff(self.fdiv.f, u)

    @functools.cached_property
    def df_at_one(self):
        return _simp(self._df.subs(u, 1))

    @functools.cached_property
    def _g(self):
        return _simp(_tidy(self.fdiv.f - u * self._df))

    @functools.cached_property
    def _g_one(self):
        return _simp(self._g.subs(u, 1))

    @functools.cached_property
    def shift_g(self):
        g0 = _limit(self._g, 0)
        return g0 if _finite(g0) else self._g_one

    @functools.cached_property
    def shift_h(self):
        h_inf = _limit(self._df, sympy.oo)
        return h_inf if _finite(h_inf) else self.df_at_one

    @functools.cached_property
    def loss(self) -> ElementForm:
        return _element("loss", self.fdiv.f - self.df_at_one * (u - 1))

    @functools.cached_property
    def raw(self) -> ElementForm:
        """:math:`q f(r)` itself, for weights that are not normalised (probability input):
        no :math:`f'(1)(p - q)` terms to cancel against their row sum."""
        return _element("raw", self.fdiv.f)

    @functools.cached_property
    def grad_student(self) -> ElementForm:
        return _element("grad_student", _simp(self._g - self.shift_g))

    @functools.cached_property
    def grad_teacher(self) -> ElementForm:
        return _element("grad_teacher", _simp(u * (self._df - self.shift_h)))

    @functools.cached_property
    def grad_student_near(self) -> ElementForm | None:
        if _simp(self.shift_g - self._g_one) == 0:
            return None
        return _element("grad_student_near", _simp(self._g - self._g_one))

    @functools.cached_property
    def grad_teacher_near(self) -> ElementForm | None:
        if _simp(self.shift_h - self.df_at_one) == 0:
            return None
        return _element("grad_teacher_near",
                        _simp(u * (self._df - self.df_at_one)))

    @functools.cached_property
    def near_threshold(self) -> dict:
        return {
            "grad_student": float((self.shift_g - self._g_one) ** 2) * NEAR_FACTOR,
            "grad_teacher": float((self.shift_h - self.df_at_one) ** 2) * NEAR_FACTOR,
        }

    @functools.cached_property
    def reward(self):
        return _best_of(self._df)

    @functools.cached_property
    def reward_slope(self):
        slope = _tidy(_simp(u * sympy.diff(self._df, u)))
        return _best_of(slope.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero))


#: Rows with D below NEAR_FACTOR·(ĝ(1))² use the gradient forms shifted to vanish at r = 1.
NEAR_FACTOR = 1e-3


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
        f"f must be a catalog name (see theory.fdiv.names()) or a theory.fdiv.FDivergence, "
        f"got {type(f).__name__}"
    )


# --------------------------------------------------------------------------- helpers
def _limit(expr: sympy.Expr, point) -> sympy.Expr:
    """A sympy limit at 0+ or +oo, with complex infinity read as +oo only if real."""
    try:
        val = sympy.limit(expr, u, point, "+" if point == 0 else "-")
    except (NotImplementedError, ValueError, TypeError):  # pragma: no cover - sympy gaps
        val = sympy.nan
    if val is sympy.zoo or val.has(sympy.AccumBounds) or val is sympy.nan:
        raise ValueError(
            f"cannot derive the limit of {sympy.sstr(expr)} at u -> {point}; "
            "the kernels need it for the zero-mass rules"
        )
    return sympy.nsimplify(val) if val.is_Float else val


def _simp(expr: sympy.Expr) -> sympy.Expr:
    """sympy.simplify, except for expressions with Abs/sign (it turns them into Piecewise
    with overflowing ratios such as expm1(x)/Abs(expm1(x)))."""
    expr = sympy.sympify(expr)
    if expr.has(sympy.Abs, sympy.sign):
        return expr
    return sympy.simplify(expr)


def _finite(val: sympy.Expr) -> bool:
    return bool(val.is_finite)


def _tidy(expr: sympy.Expr) -> sympy.Expr:
    """Logs of quotients and products split: ``log(1/2 + 1/(2v))`` → ``log(v+1) - log 2 - log v``."""
    expr = sympy.sympify(expr)
    expr = expr.replace(lambda e: isinstance(e, sympy.log),
                        lambda e: sympy.log(sympy.factor(sympy.together(e.args[0]))))
    return sympy.expand_log(expr, force=True)


def _root_factor(expr: sympy.Expr) -> sympy.Expr:
    """Factor after u = w**k, k the lcm of the denominators of u's rational exponents."""
    dens = [pw.exp.q for pw in expr.atoms(sympy.Pow) if pw.base == u and pw.exp.is_Rational]
    k = int(np.lcm.reduce(dens)) if dens else 1
    if k == 1:
        return sympy.factor(expr)
    w = sympy.Symbol("w", positive=True)
    return sympy.factor(sympy.powsimp(expr.subs(u, w**k))).subs(w, u ** sympy.Rational(1, k))


def _log_combined(expr: sympy.Expr) -> sympy.Expr:
    """Logs with equal and opposite coefficients merged, ``c log a - c log b`` →
    ``c log(expand(a/b))`` (constant in the denominator), so that ``log(2 + w) - log 2``
    becomes ``log(1 + w/2)`` for the log1p pass."""

    def split(term):
        """``term = coeff * log(arg)`` with a sign-normalised coefficient, or None."""
        c, rest = term.as_independent(sympy.log, as_Add=False)
        if not isinstance(rest, sympy.log):
            return None
        sg = 1
        if c.could_extract_minus_sign():
            c, sg = -c, -1
        return c, sg, rest.args[0]

    def merge(add):
        groups: dict = {}
        rest = []
        logs_out = []
        for term in add.args:
            parts = split(term)
            if parts is None:
                rest.append(term)
            else:
                c, sg, a = parts
                groups.setdefault(c, []).append((sg, a))
        for mag, items in groups.items():
            k = sympy.Mul(*[a**sg for sg, a in items if a.is_number])
            live = [(sg, a) for sg, a in items if not a.is_number]
            for n, (sg, a) in enumerate(live):
                merged = sympy.expand(a * k**sg)
                if merged.as_coeff_Add()[0] == 1:
                    live[n] = (sg, merged)
                    k = sympy.S.One
                    break
            mag = sympy.factor(sympy.cancel(mag))
            logs_out += [mag * sg * sympy.log(a) for sg, a in live]
            if k != 1:
                logs_out.append(mag * sympy.log(k))
        plain = sympy.Add(*rest)
        if plain.free_symbols:
            plain = sympy.factor(sympy.cancel(plain))
        return plain + sympy.Add(*logs_out)

    logs = list(expr.atoms(sympy.log))
    if logs:
        expr = sympy.collect(sympy.expand(expr), logs)
    return expr.replace(lambda e: e.is_Add and e.has(sympy.log), merge)


def _abs_absorbed(expr: sympy.Expr) -> sympy.Expr:
    """Positive factors moved inside ``Abs``: ``v*Abs(1 - 1/v)`` → ``Abs(v - 1)`` (v > 0)."""

    def absorb(mul):
        inside = [f for f in mul.args if isinstance(f, sympy.Abs)]
        if len(inside) != 1:
            return mul
        rest = [f for f in mul.args if f is not inside[0]]
        pos = [f for f in rest if f.is_positive and not f.is_number]
        if not pos:
            return mul
        other = [f for f in rest if f not in pos]
        arg = sympy.factor(sympy.expand(inside[0].args[0] * sympy.Mul(*pos)))
        return sympy.Mul(*other) * sympy.Abs(arg)

    return expr.replace(lambda e: e.is_Mul and e.has(sympy.Abs), absorb)


def _sign_form(expr: sympy.Expr) -> sympy.Expr:
    """``x/Abs(x)`` → ``sign(x)``: no inf/inf where ``x`` overflows."""
    return expr.replace(
        lambda e: e.is_Pow and isinstance(e.base, sympy.Abs) and e.exp == -1,
        lambda e: sympy.sign(e.base.args[0]) / e.base.args[0])


def _candidates(expr: sympy.Expr) -> list[sympy.Expr]:
    out = [expr]
    for op in (sympy.factor, _root_factor, sympy.together, sympy.expand, _log_combined,
               _abs_absorbed, _sign_form):
        try:
            cand = op(expr) if op in (_log_combined, _abs_absorbed, _sign_form) \
                else _tidy(op(expr))
        except (NotImplementedError, sympy.PolynomialError):  # pragma: no cover
            continue
        if all(cand != c for c in out):
            out.append(cand)
    return out


def _rewrite(expr: sympy.Expr) -> sympy.Expr:
    from numeric.codegen.nodes import expm1
    from numeric.codegen.rewrite import rewrite

    out = rewrite(expr)
    # sign(e^x - 1) = sign(x): the form that cannot overflow
    return out.replace(lambda e: isinstance(e, sympy.sign) and isinstance(e.args[0], expm1),
                       lambda e: sympy.sign(e.args[0].args[0]))


_LO_GRID = [-1e4, -1e3, -745.0, -700.0, -300.0, -80.0, -30.0, -10.0, -3.0, -1.0, -0.3, -1e-2,
            -1e-4, -1e-7, -1e-10, 0.0, 1e-10, 1e-7, 1e-4, 1e-2, 0.3, 1.0, 3.0, 10.0, 30.0]


def _errors(values, grid, reference) -> float:
    worst = 0.0
    for x, g in zip(grid, values, strict=True):
        ref = reference(x)
        if ref is None:
            continue
        if mpmath.isinf(ref):
            err = 0.0 if (np.isinf(g) and (g > 0) == (ref > 0)) else float("inf")
        elif not np.isfinite(g):
            err = 0.0 if abs(ref) > 1e300 else float("inf")
        else:
            err = float(abs(mpmath.mpf(float(g)) - ref) / max(abs(ref), mpmath.mpf("1e-300")))
        worst = max(worst, err)
    return worst


def _evaluate(candidates, var, grid):
    """float64 values of each candidate on ``grid`` (one generated function for all)."""
    from numeric._compile import compile_numpy

    xs = np.asarray(grid, dtype=np.float64)
    try:
        fn = compile_numpy(candidates, [var], name="form_candidates")
        with np.errstate(all="ignore"):
            outs = fn(xs)
        return [np.broadcast_to(np.asarray(o, dtype=np.float64), xs.shape) for o in outs]
    except (TypeError, ValueError, NotImplementedError, FloatingPointError, OverflowError):
        if len(candidates) == 1:
            return [np.full(xs.shape, np.nan)]
        return [v for c in candidates for v in _evaluate([c], var, grid)]


def _best(candidates: list[sympy.Expr], var, reference, grid, _simplified=False) -> sympy.Expr:
    rewritten = []
    for c in candidates:
        r = _rewrite(c)
        if all(r != o for o in rewritten):
            rewritten.append(r)
    values = _evaluate(rewritten, var, grid)
    scores = [_errors(v, grid, reference) for v in values]
    best = min(range(len(rewritten)), key=lambda i: (_score_bucket(scores[i]),
                                                     sympy.count_ops(rewritten[i]),
                                                     sympy.srepr(rewritten[i])))
    if scores[best] > _GOOD_ENOUGH and not _simplified:
        # the cheap normalisations fell short: let sympy.simplify (slow) propose more
        extra = []
        for c in candidates:
            try:
                extra.append(_tidy(sympy.simplify(c)))
            except (NotImplementedError, TypeError):  # pragma: no cover - sympy gaps
                continue
        return _best(candidates + extra, var, reference, grid, _simplified=True)
    return rewritten[best]


def _score_bucket(err: float) -> float:
    """The worst error rounded to a factor-of-4 bucket, so that candidate choice (and the
    generated sources) does not depend on ulp-level differences between CPUs' exp/log."""
    if not math.isfinite(err):
        return math.inf
    return math.floor(math.log2(max(err, 2.0**-60)) / 2)


#: A branch form whose worst relative float64 error on the grid is below this is kept
#: without trying sympy.simplify.
_GOOD_ENOUGH = 1e-12


def _mp_reference(per_q: sympy.Expr, branch: str):
    fn = sympy.lambdify(u, per_q, modules="mpmath")

    def ref(x):
        with mpmath.workdps(40):
            x = mpmath.mpf(x)
            try:
                if branch == "lo":
                    val = fn(mpmath.exp(x))
                else:
                    v = mpmath.exp(-x)
                    val = v * fn(1 / v)
            except (ZeroDivisionError, ValueError, OverflowError):
                return None
            if isinstance(val, mpmath.mpc):
                return None
            return +mpmath.mpf(val)

    return ref


def _branch_cheap(expr: sympy.Expr, sign: int) -> sympy.Expr:
    """On a branch where ``sign*ell >= 0``, write softplus(x) as log1p(exp(x)) when x <= 0.

    ``softplus`` prints as a log-add-exp (an exp, a log1p and a select); where its argument
    is known to be nonpositive, ``log1p(exp(x))`` is exact and shares ``exp`` with the rest
    of the expression after cse. ``logaddexp(A, c)`` with a constant ``c`` is first written
    ``c + softplus(A - c)``.
    """
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
        poly = sympy.Poly(arg, ELL) if arg.free_symbols <= {ELL} else None
        if poly is None or poly.degree() > 1:
            return node
        c, d = (poly.all_coeffs() + [0])[:2] if poly.degree() == 1 else (0, poly.all_coeffs()[0])
        if (-sign * c >= 0) and d <= 0:
            return log1p(sympy.exp(arg))
        return node

    return expr.replace(lambda e: isinstance(e, softplus), fix_sp)


_W = sympy.Symbol("w", real=True)


def _near_one(expr: sympy.Expr, var: sympy.Symbol, sign: int) -> list[sympy.Expr]:
    """Candidates written around ratio 1: ``var = 1 + w`` with ``w = expm1(sign*ell)``.

    After the rewrite passes, ``log(1 + w)`` is ``log1p(w)`` (then ``sign*ell``) and
    ``log(1 + w/2)`` is ``log1p(w/2)``: values near ``u = 1`` keep their small size
    instead of appearing as differences of O(1) numbers.
    """
    from numeric.codegen.nodes import expm1, log1p, xlog1py

    out = []
    shifted = _tidy(expr.subs(var, 1 + _W))
    for c in _candidates(shifted):
        r = _rewrite(c)
        r = r.replace(lambda e: isinstance(e, log1p) and e.args[0] == _W,
                      lambda e: sign * ELL)
        r = r.replace(lambda e: isinstance(e, xlog1py) and e.args[1] == _W,
                      lambda e: e.args[0] * sign * ELL)
        r = r.subs(_W + 1, sympy.exp(sign * ELL)).subs(_W, expm1(sign * ELL))
        if r.free_symbols <= {ELL}:
            out.append(r)
            # distribute factors like exp(-ell) that would otherwise meet an overflowing
            # exp(ell) (0 * inf) at large |ell|
            out.append(sympy.powsimp(sympy.expand(r), combine="exp"))
    return out


def _branch_refined(expr: sympy.Expr, sign: int) -> list[sympy.Expr]:
    """On a branch where ``sign*ell > 0``: ``sign(c*ell)`` and ``Abs(expm1(c*ell))``
    resolved, then the elementary form expanded (so ``exp(ell)*exp(-ell)`` cancels) and
    rewritten again."""
    from numeric.codegen.nodes import StableFunction, expm1

    def lin(e):
        c = sympy.expand(e / ELL)
        return c if c.is_number and c != 0 else None

    def sgn(e):
        c = lin(e.args[0])
        return sympy.sign(c) * sign if c is not None else e

    def absval(e):
        a = e.args[0]
        if isinstance(a, expm1) and lin(a.args[0]) is not None:
            return sympy.sign(lin(a.args[0])) * sign * a
        return e

    out = expr.replace(lambda e: isinstance(e, sympy.sign), sgn)
    out = out.replace(lambda e: isinstance(e, sympy.Abs), absval)
    if out == expr:
        return []
    elem = out.replace(lambda e: isinstance(e, StableFunction), lambda e: e.as_elementary())
    return [out, _rewrite(sympy.powsimp(sympy.expand(elem), combine="exp"))]


def _element(name: str, per_q: sympy.Expr) -> ElementForm:
    per_q = _tidy(per_q)
    lo_cands = [_tidy(c.subs(u, sympy.exp(ELL))) for c in _candidates(per_q)]
    lo_cands += _near_one(per_q, u, 1)
    lo_x = _best(lo_cands, ELL, _mp_reference(per_q, "lo"), _LO_GRID)
    hi_cands = []
    for c in _candidates(per_q):
        hv = _tidy(_V * c.subs(u, 1 / _V))
        for hc in _candidates(hv):
            cand = _tidy(hc.subs(_V, sympy.exp(-ELL)))
            if all(cand != h for h in hi_cands):
                hi_cands.append(cand)
        hi_cands += _near_one(hv, _V, -1)
    hi_cands += [r for c in list(hi_cands) for r in _branch_refined(_rewrite(c), +1)]
    hi_grid = [-x for x in _LO_GRID if x < 0]
    hi_x = _best(hi_cands, ELL, _mp_reference(per_q, "hi"), hi_grid)
    return ElementForm(
        name=name,
        per_q=per_q,
        lo=Q * _branch_cheap(lo_x, -1),
        hi=P * _branch_cheap(hi_x, +1),
        at_p_zero=_limit(per_q, 0),
        at_q_zero=_limit(per_q / u, sympy.oo),
    )


_FULL_GRID = [-300.0, -30.0, -3.0, -0.3, -1e-4, -1e-9, 0.0, 1e-9, 1e-4, 0.3, 3.0, 30.0, 300.0]


def _best_of(expr_u: sympy.Expr) -> sympy.Expr:
    """The most accurate float64 form of ``expr_u`` at u = exp(ell), ell over the reals."""
    cands = [_tidy(c.subs(u, sympy.exp(ELL))) for c in _candidates(_tidy(expr_u))]
    return _best(cands, ELL, _mp_reference(expr_u, "lo"), _FULL_GRID)


@functools.lru_cache(maxsize=128)
def _forms_cached(fd) -> DivergenceForms:
    return DivergenceForms(fd)


def forms(f) -> DivergenceForms:
    """The per-element forms of ``f`` (catalog name or FDivergence), cached per generator.

    Parameters
    ----------
    f : str or theory.fdiv.FDivergence

    Returns
    -------
    DivergenceForms

    Raises
    ------
    ValueError
        If a zero-mass limit of the generator cannot be derived symbolically.
    """
    return _forms_cached(resolve(f))
