"""Numerical rewrite passes: naive sympy forms → stable nodes, before printing.

The design follows ``sympy.codegen.rewriting``: every pass is a named object that maps one
expression node to a replacement (or leaves it alone); :func:`rewrite` walks the tree
bottom-up once per pass, in a fixed order. Each pass is tested on its own at a point where
the naive form is badly wrong in floating point and the rewritten form is within a few ulps
of an mpmath reference (tests/numeric/test_codegen_rewrite.py).

The default order matters: ``log(1 + exp(x))`` must become ``softplus(x)`` before the
``log1p`` pass could turn it into ``log1p(exp(x))`` (which overflows for large ``x``), and
``log(1 - exp(x))`` must become ``log1mexp(x)`` for the same reason.

Examples
--------
>>> import sympy
>>> from numeric.codegen import rewrite
>>> x, y = sympy.symbols("x y", real=True)
>>> rewrite(sympy.log(1 + x) + sympy.exp(2 * x) - 1)
expm1(2*x) + log1p(x)
>>> rewrite(sympy.log(sympy.exp(x) + sympy.exp(y)))
logaddexp(x, y)
>>> rewrite(x * sympy.log(y))
xlogy(x, y)
>>> [p.name for p in DEFAULT_PASSES]  # doctest: +NORMALIZE_WHITESPACE
['expand_xlogy', 'softplus', 'softplus_shift', 'logaddexp', 'log1mexp', 'log1p', 'powm1',
 'expm1', 'xlogy', 'xlog1py']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sympy

from numeric.codegen.nodes import expm1, log1mexp, log1p, logaddexp, softplus, xlog1py, xlogy

__all__ = [
    "Pass",
    "DEFAULT_PASSES",
    "PASSES",
    "rewrite",
    "expand_xlogy_pass",
    "softplus_pass",
    "softplus_shift_pass",
    "logaddexp_pass",
    "log1mexp_pass",
    "log1p_pass",
    "powm1_pass",
    "expm1_pass",
    "xlogy_pass",
    "xlog1py_pass",
]


@dataclass(frozen=True)
class Pass:
    """One named rewrite: ``transform(node)`` returns a replacement or ``None``.

    Parameters
    ----------
    name : str
        Short name, used in :data:`PASSES` and in ``rewrite(expr, passes=[...])``.
    transform : callable
        Called on every node (after its arguments were rewritten); returns the new node,
        or ``None`` to keep the node.
    doc : str
        What the pass does, with the identity it relies on.
    """

    name: str
    transform: Callable[[sympy.Basic], sympy.Basic | None]
    doc: str

    def __call__(self, expr: sympy.Basic) -> sympy.Basic:
        """Apply this pass alone to every node of ``expr``, bottom-up."""
        return _bottom_up(sympy.sympify(expr), self.transform)


def _bottom_up(expr: sympy.Basic, transform) -> sympy.Basic:
    if not isinstance(expr, sympy.Basic) or expr.is_Atom:
        return expr
    args = tuple(_bottom_up(a, transform) for a in expr.args)
    if args != expr.args:
        expr = expr.func(*args)
        if not isinstance(expr, sympy.Basic) or expr.is_Atom:
            return expr
    new = transform(expr)
    if new is None or new == expr:
        return expr
    # The replacement may expose a new opportunity for the same pass (nested patterns).
    return _bottom_up(new, transform)


def _split_number(add: sympy.Add) -> tuple[sympy.Expr, sympy.Expr]:
    """``add`` = number + rest."""
    number, rest = add.as_coeff_Add()
    return number, rest


def _exp_term(term: sympy.Expr) -> sympy.Expr | None:
    """The exponent a of a term c·exp(a) with c > 0 a number (as a + log c), else None."""
    coeff, factor = term.as_coeff_Mul()
    if isinstance(factor, sympy.exp) and coeff.is_positive:
        return factor.args[0] if coeff == 1 else factor.args[0] + sympy.log(coeff)
    return None


# -- expand_xlogy -----------------------------------------------------------------------


def _expand_xlogy(expr):
    if isinstance(expr, xlogy):
        return expr.args[0] * sympy.log(expr.args[1])
    if isinstance(expr, xlog1py):
        return expr.args[0] * log1p(expr.args[1])
    return None


expand_xlogy_pass = Pass(
    "expand_xlogy",
    _expand_xlogy,
    "xlogy(x, y) → x·log(y), xlog1py(x, y) → x·log1p(y), so that the passes below see the "
    "logarithm's argument (xlogy(c, 1 + exp(z)) must become c·softplus(z)); the xlogy and "
    "xlog1py passes at the end restore the 0·log 0 = 0 convention.",
)


# -- softplus ---------------------------------------------------------------------------


def _softplus(expr):
    if not isinstance(expr, sympy.log):
        return None
    arg = expr.args[0]
    if not isinstance(arg, sympy.Add):
        return None
    number, rest = _split_number(arg)
    if number != 1 or isinstance(rest, sympy.Add):
        return None
    if isinstance(rest, sympy.exp):
        return softplus(rest.args[0])
    return None


softplus_pass = Pass(
    "softplus",
    _softplus,
    "log(1 + exp(x)) → softplus(x): no overflow of exp for large x, exact for x → -∞.",
)


# -- softplus_shift ---------------------------------------------------------------------


def _softplus_shift(expr):
    if not isinstance(expr, sympy.Add):
        return None
    terms = list(expr.args)
    for i, term in enumerate(terms):
        coeff, factor = term.as_coeff_Mul()
        if not isinstance(factor, softplus):
            continue
        x = factor.args[0]
        partner = -coeff * x
        for k, other in enumerate(terms):
            if k != i and other == partner:
                rest = [t for n, t in enumerate(terms) if n not in (i, k)]
                return sympy.Add(coeff * softplus(-x), *rest)
    return None


softplus_shift_pass = Pass(
    "softplus_shift",
    _softplus_shift,
    "c·softplus(x) − c·x → c·softplus(−x): softplus(x) − x cancels for large x "
    "(log(1 + e^x) − x = log(1 + e^{−x})).",
)


# -- logaddexp --------------------------------------------------------------------------


def _logaddexp(expr):
    if not isinstance(expr, sympy.log):
        return None
    arg = expr.args[0]
    if not isinstance(arg, sympy.Add):
        return None
    exponents = []
    for term in sympy.Add.make_args(arg):
        if term.is_number:
            if not term.is_positive:
                return None
            exponents.append(sympy.log(term))
            continue
        a = _exp_term(term)
        if a is None:
            return None
        exponents.append(a)
    if len(exponents) < 2:
        return None
    exponents.sort(key=sympy.default_sort_key)
    value = exponents[0]
    for a in exponents[1:]:
        value = logaddexp(value, a)
    return value


logaddexp_pass = Pass(
    "logaddexp",
    _logaddexp,
    "log(Σ c_i·exp(a_i)) with c_i > 0 → nested logaddexp(a_i + log c_i, …): "
    "log(e^a + e^b) = max(a, b) + log1p(e^{-|a-b|}) never overflows.",
)


# -- log1mexp ---------------------------------------------------------------------------


def _log1mexp(expr):
    if not isinstance(expr, sympy.log):
        return None
    arg = expr.args[0]
    if isinstance(arg, sympy.Add):
        number, rest = _split_number(arg)
        if number != 1 or isinstance(rest, sympy.Add):
            return None
        coeff, factor = rest.as_coeff_Mul()
        if coeff == -1 and isinstance(factor, sympy.exp):
            return log1mexp(factor.args[0])
        return None
    coeff, factor = arg.as_coeff_Mul()
    if coeff == -1 and isinstance(factor, expm1):
        return log1mexp(factor.args[0])
    return None


log1mexp_pass = Pass(
    "log1mexp",
    _log1mexp,
    "log(1 - exp(x)) and log(-expm1(x)) → log1mexp(x): exact both near x = 0 "
    "(where 1 - e^x cancels) and for x → -∞ (where log(1 - tiny) rounds to 0).",
)


# -- log1p ------------------------------------------------------------------------------


def _log1p(expr):
    if not isinstance(expr, sympy.log):
        return None
    arg = expr.args[0]
    if not isinstance(arg, sympy.Add):
        return None
    number, rest = _split_number(arg)
    if number != 1:
        return None
    return log1p(rest)


log1p_pass = Pass(
    "log1p",
    _log1p,
    "log(1 + x) → log1p(x): 1 + x rounds x away when |x| < eps.",
)


# -- powm1 ------------------------------------------------------------------------------


def _minus_one_terms(expr, match):
    """Rewrite c·F − c inside an Add, where ``match(term)`` gives F's stable F − 1."""
    if not isinstance(expr, sympy.Add):
        return None
    number, rest = _split_number(expr)
    if number == 0:
        return None
    terms = list(sympy.Add.make_args(rest))
    candidates = []
    for i, term in enumerate(terms):
        coeff, factor = term.as_coeff_Mul()
        replacement = match(factor)
        if replacement is None:
            continue
        if coeff == -number:
            # exact: c·F − c → c·(F − 1)
            return sympy.Add(coeff * replacement, *(terms[:i] + terms[i + 1 :]))
        candidates.append((i, coeff, replacement))
    # Opportunistic (as sympy's FuncMinusOneOptim): a single candidate whose coefficient
    # has the opposite sign of the number term, c·F + n → c·(F − 1) + (n + c): the part of
    # the cancellation between F and 1 is now exact, what is left is n + c.
    if len(candidates) == 1:
        i, coeff, replacement = candidates[0]
        if (coeff * number).is_negative:
            others = terms[:i] + terms[i + 1 :]
            return sympy.Add(coeff * replacement, number + coeff, *others)
    return None


def _powm1_factor(factor):
    if isinstance(factor, sympy.Pow) and not isinstance(factor, sympy.exp):
        base, exponent = factor.args
        if base is sympy.E or (exponent.is_Integer and abs(exponent) <= 2):
            return None
        if base.is_number and exponent.is_number:
            return None
        return expm1(exponent * sympy.log(base))
    return None


powm1_pass = Pass(
    "powm1",
    lambda e: _minus_one_terms(e, _powm1_factor),
    "c·x**y − c → c·expm1(y·log x): x**y − 1 cancels when x**y ≈ 1 "
    "(the (u^α − 1) of α- and power divergences near u = 1); also c·x**y + n with n of "
    "the other sign → c·expm1(y·log x) + (n + c).",
)


# -- expm1 ------------------------------------------------------------------------------


def _expm1_factor(factor):
    if isinstance(factor, sympy.exp):
        return expm1(factor.args[0])
    return None


expm1_pass = Pass(
    "expm1",
    lambda e: _minus_one_terms(e, _expm1_factor),
    "c·exp(x) − c → c·expm1(x): exp(x) − 1 cancels for |x| ≪ 1; also c·exp(x) + n with "
    "n of the other sign → c·expm1(x) + (n + c).",
)


# -- xlogy / xlog1py --------------------------------------------------------------------


def _x_times(expr, node_type, build):
    if not isinstance(expr, sympy.Mul):
        return None
    coeff, rest = expr.as_coeff_Mul()
    factors = list(sympy.Mul.make_args(rest))
    hits = [f for f in factors if isinstance(f, node_type)]
    if len(hits) != 1:
        return None
    target = hits[0]
    if not target.args[0].free_symbols:
        return None  # x·log(3) is a plain product: no 0·log 0 can occur
    others = [f for f in factors if f is not target]
    x = sympy.Mul(*others)
    if x.is_number or not x.free_symbols:
        return None
    return coeff * build(x, target.args[0])


xlogy_pass = Pass(
    "xlogy",
    lambda e: _x_times(e, sympy.log, xlogy),
    "x·log(y) → xlogy(x, y): the 0·log 0 = 0 convention of every divergence "
    "(0·(-inf) is NaN in floating point).",
)

xlog1py_pass = Pass(
    "xlog1py",
    lambda e: _x_times(e, log1p, xlog1py),
    "x·log1p(y) → xlog1py(x, y): 0 where x = 0 even where log1p(y) = -inf.",
)

#: Every pass in its default order.
DEFAULT_PASSES: tuple[Pass, ...] = (
    expand_xlogy_pass,
    softplus_pass,
    softplus_shift_pass,
    logaddexp_pass,
    log1mexp_pass,
    log1p_pass,
    powm1_pass,
    expm1_pass,
    xlogy_pass,
    xlog1py_pass,
)

#: The passes by name.
PASSES: dict[str, Pass] = {p.name: p for p in DEFAULT_PASSES}


def rewrite(expr, passes: Sequence[Pass | str] | None = None):
    """Apply numerical rewrite passes to ``expr`` (or to each of a tuple of expressions).

    Parameters
    ----------
    expr : sympy.Expr or tuple of sympy.Expr
        The expression(s) to rewrite.
    passes : sequence of Pass or str, optional
        The passes, by object or by name, applied in the given order; default
        :data:`DEFAULT_PASSES`.

    Returns
    -------
    sympy.Expr or tuple of sympy.Expr
        The same value, written with the stable nodes of :mod:`numeric.codegen.nodes`.

    Raises
    ------
    ValueError
        If a pass name is unknown.
    """
    chosen = resolve_passes(passes)
    if isinstance(expr, (tuple, list)):
        return tuple(rewrite(e, chosen) for e in expr)
    out = sympy.sympify(expr)
    for p in chosen:
        out = p(out)
    return out


def resolve_passes(passes: Iterable[Pass | str] | None) -> tuple[Pass, ...]:
    if passes is None:
        return DEFAULT_PASSES
    chosen = []
    for p in passes:
        if isinstance(p, Pass):
            chosen.append(p)
        elif p in PASSES:
            chosen.append(PASSES[p])
        else:
            raise ValueError(f"passes: unknown rewrite pass {p!r}; known: {sorted(PASSES)}")
    return tuple(chosen)


# -- small parameter ----------------------------------------------------------------------


def small_parameter(expr, eps: sympy.Symbol):
    r"""Rewrite ``expr`` for a parameter ``eps`` near 0, so that no O(1) terms cancel.

    The forms of a family near a special parameter value :math:`\theta_0` are written in
    :math:`\varepsilon = \theta - \theta_0`. Each factor that tends to a finite non-zero
    value as :math:`\varepsilon \to 0` is split into that value and an exact remainder:

    - :math:`e^{X} \to e^{X_0}\,(1 + \operatorname{expm1}(X - X_0))`,
      :math:`X_0 = X|_{\varepsilon=0}` (powers :math:`b^{e}` with :math:`\varepsilon` in
      the exponent first become :math:`e^{e \log b}`);
    - :math:`\log A \to \log A_0 + \operatorname{log1p}((A - A_0)/A_0)`;

    then the expression is expanded, so that the :math:`\varepsilon`-free parts cancel
    symbolically; what is left are terms that carry :math:`\varepsilon` explicitly or
    through an ``expm1``/``log1p`` of a small argument, accurate to a few ulps relative
    as :math:`\varepsilon \to 0` (a divisor :math:`\varepsilon` then divides exact small
    quantities).

    >>> x, e = sympy.symbols("x e", real=True)
    >>> small_parameter((sympy.exp((1 - e) * x) - sympy.exp(x)) / e, e)
    exp(x)*expm1(-e*x)/e
    """
    expr = sympy.sympify(expr)
    if not expr.has(eps):
        return expr

    def powers(e):
        if e.is_Pow and e.exp.has(eps) and not e.base.is_number:
            return sympy.exp(e.exp * sympy.log(e.base))
        return None

    expr = _bottom_up(expr, powers)

    def split(e):
        if isinstance(e, sympy.exp) and e.args[0].has(eps):
            x = sympy.expand(e.args[0])
            x0 = x.subs(eps, 0)
            rest = sympy.expand(x - x0)
            if rest == 0:
                return None
            return sympy.exp(x0) * (1 + expm1(rest))
        if isinstance(e, sympy.log) and e.args[0].has(eps):
            a = sympy.expand(e.args[0])
            a0 = sympy.simplify(a.subs(eps, 0))
            if a0 == 0 or a0.has(sympy.nan, sympy.zoo):
                return None
            rest = sympy.expand(a - a0)
            return sympy.expand_log(sympy.log(a0), force=True) + log1p(
                sympy.expand(sympy.powsimp(rest / a0, combine="exp")))
        return None

    out = _bottom_up(expr, split)
    return sympy.powsimp(sympy.expand(out), combine="exp")
