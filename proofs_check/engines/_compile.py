"""Compile sympy expressions into evaluators for three number systems.

One tree walk turns a sympy expression into a Python closure; a *backend* supplies the
arithmetic. Three backends exist:

``mpmath``
    multiprecision floats at the precision of the enclosing ``mpmath.workdps`` context;
``arb``
    python-flint balls (``flint.arb``) at ``flint.ctx.prec``: every result is a ball that
    rigorously contains the exact value of the expression for every input in the input
    balls (or NaN when that cannot be guaranteed, e.g. the log of a ball touching 0);
``numpy``
    float64 arrays, vectorised over many points (used only to screen points quickly;
    nothing is concluded from it).

Constants are created when the closure runs, never when it is built, so the closure
follows the precision of the context it is called in. Exact sympy numbers (Integer,
Rational) enter Arb as exact rationals; sympy Floats enter as their exact binary value.

Relational conditions (inside ``Piecewise``) evaluate to ``True``/``False`` with mpmath,
to boolean arrays with numpy, and to ``True``/``False``/``None`` (undecided) with Arb; an
undecided Piecewise returns the union of every branch that may be active.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flint
import mpmath
import numpy as np
import sympy
from flint import arb, fmpq

__all__ = ["UnsupportedExpression", "compile_expr", "compile_many", "BACKENDS", "is_piecewise_smooth"]


class UnsupportedExpression(ValueError):
    """Raised when an expression contains a node a backend cannot evaluate."""


def _fmpq(value: sympy.Rational) -> fmpq:
    return fmpq(int(value.p), int(value.q))


# --------------------------------------------------------------------------- backends
class _MpmathBackend:
    name = "mpmath"

    @staticmethod
    def precision_key():
        return mpmath.mp.prec

    @staticmethod
    def rational(value: sympy.Rational):
        p, q = int(value.p), int(value.q)
        return mpmath.mpf(p) if q == 1 else mpmath.mpf(p) / q

    @staticmethod
    def constant(name: str):
        return {
            "pi": lambda: +mpmath.pi,
            "E": lambda: mpmath.e(),
            "EulerGamma": lambda: +mpmath.euler,
            "oo": lambda: mpmath.inf,
            "-oo": lambda: -mpmath.inf,
            "Catalan": lambda: +mpmath.catalan,
        }[name]

    @staticmethod
    def ipow(base, n: int):
        return base**n

    @staticmethod
    def pow(base, expo):
        return mpmath.power(base, expo)

    @staticmethod
    def sqrt(x):
        return mpmath.sqrt(x)

    functions: dict[str, Callable] = {
        "exp": mpmath.exp,
        "log": mpmath.log,
        "Abs": mpmath.fabs,
        "sin": mpmath.sin,
        "cos": mpmath.cos,
        "tan": mpmath.tan,
        "atan": mpmath.atan,
        "sinh": mpmath.sinh,
        "cosh": mpmath.cosh,
        "tanh": mpmath.tanh,
        "asinh": mpmath.asinh,
        "erf": mpmath.erf,
        "erfc": mpmath.erfc,
        "gamma": mpmath.gamma,
        "loggamma": mpmath.loggamma,
        "digamma": mpmath.digamma,
        "LambertW": mpmath.lambertw,
        "log1p": mpmath.log1p,
        "expm1": mpmath.expm1,
        "sign": mpmath.sign,
    }

    @staticmethod
    def minimum(args):
        return min(args)

    @staticmethod
    def maximum(args):
        return max(args)

    @staticmethod
    def compare(op: str, a, b):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[
            op
        ]

    @staticmethod
    def piecewise(branches, values):
        for expr_fn, cond_fn in branches:
            if cond_fn(values):
                return expr_fn(values)
        return mpmath.nan

    @staticmethod
    def integral(integrand_fn, var_index, lo_fn, hi_fn, values):
        lo, hi = lo_fn(values), hi_fn(values)

        def g(x):
            vals = list(values)
            vals[var_index] = x
            return integrand_fn(vals)

        return mpmath.quad(g, [lo, hi])


class _ArbBackend:
    name = "arb"

    @staticmethod
    def precision_key():
        return flint.ctx.prec

    @staticmethod
    def rational(value: sympy.Rational):
        return arb(_fmpq(value))

    @staticmethod
    def constant(name: str):
        return {
            "pi": arb.pi,
            "E": arb.const_e,
            "EulerGamma": arb.const_euler,
            "oo": arb.pos_inf,
            "-oo": arb.neg_inf,
            "Catalan": arb.const_catalan,
        }[name]

    @staticmethod
    def ipow(base, n: int):
        return base**n

    @staticmethod
    def pow(base, expo):
        return base**expo

    @staticmethod
    def sqrt(x):
        return x.sqrt()

    @staticmethod
    def _sign(x):
        if x > 0:
            return arb(1)
        if x < 0:
            return arb(-1)
        if x == 0:
            return arb(0)
        return arb(0, 1)

    functions: dict[str, Callable] = {
        "exp": arb.exp,
        "log": arb.log,
        "Abs": abs,
        "sin": arb.sin,
        "cos": arb.cos,
        "tan": arb.tan,
        "atan": arb.atan,
        "sinh": arb.sinh,
        "cosh": arb.cosh,
        "tanh": arb.tanh,
        "asinh": arb.asinh,
        "erf": arb.erf,
        "erfc": arb.erfc,
        "gamma": arb.gamma,
        "loggamma": arb.lgamma,
        "digamma": arb.digamma,
        "LambertW": arb.lambertw,
        "log1p": arb.log1p,
        "expm1": arb.expm1,
    }

    @staticmethod
    def minimum(args):
        out = args[0]
        for a in args[1:]:
            out = out.min(a)
        return out

    @staticmethod
    def maximum(args):
        out = args[0]
        for a in args[1:]:
            out = out.max(a)
        return out

    @staticmethod
    def compare(op: str, a, b):
        # tri-state: True when certain, False when certainly not, None when undecided
        if op == "<":
            yes, no = a < b, a >= b
        elif op == "<=":
            yes, no = a <= b, a > b
        elif op == ">":
            yes, no = a > b, a <= b
        elif op == ">=":
            yes, no = a >= b, a < b
        elif op == "==":
            yes, no = a == b, a != b
        else:
            yes, no = a != b, a == b
        if yes:
            return True
        if no:
            return False
        return None

    @staticmethod
    def piecewise(branches, values):
        result = None
        for expr_fn, cond_fn in branches:
            c = cond_fn(values)
            if c is False:
                continue
            val = expr_fn(values)
            result = val if result is None else result.union(val)
            if c is True:
                return result
        return arb.nan() if result is None else result

    @staticmethod
    def integral(integrand_fn, var_index, lo_fn, hi_fn, values):
        raise UnsupportedExpression("Integral has no Arb evaluation here")


def _np_sign(x):
    return np.sign(x)


class _NumpyBackend:
    name = "numpy"

    @staticmethod
    def precision_key():
        return 53

    @staticmethod
    def rational(value: sympy.Rational):
        return float(value.p) / float(value.q) if value.q != 1 else float(value.p)

    @staticmethod
    def constant(name: str):
        return {
            "pi": lambda: np.pi,
            "E": lambda: np.e,
            "EulerGamma": lambda: float(mpmath.euler),
            "oo": lambda: np.inf,
            "-oo": lambda: -np.inf,
            "Catalan": lambda: float(mpmath.catalan),
        }[name]

    @staticmethod
    def ipow(base, n: int):
        return np.power(np.asarray(base, dtype=float), float(n))

    @staticmethod
    def pow(base, expo):
        return np.power(np.asarray(base, dtype=float), expo)

    @staticmethod
    def sqrt(x):
        return np.sqrt(x)

    functions: dict[str, Callable] = {
        "exp": np.exp,
        "log": np.log,
        "Abs": np.abs,
        "sin": np.sin,
        "cos": np.cos,
        "tan": np.tan,
        "atan": np.arctan,
        "sinh": np.sinh,
        "cosh": np.cosh,
        "tanh": np.tanh,
        "asinh": np.arcsinh,
        "log1p": np.log1p,
        "expm1": np.expm1,
        "sign": _np_sign,
    }

    @staticmethod
    def minimum(args):
        return np.minimum.reduce(np.broadcast_arrays(*args))

    @staticmethod
    def maximum(args):
        return np.maximum.reduce(np.broadcast_arrays(*args))

    @staticmethod
    def compare(op: str, a, b):
        return {
            "<": np.less,
            "<=": np.less_equal,
            ">": np.greater,
            ">=": np.greater_equal,
            "==": np.equal,
            "!=": np.not_equal,
        }[op](a, b)

    @staticmethod
    def piecewise(branches, values):
        conds, vals = [], []
        taken = None
        for expr_fn, cond_fn in branches:
            c = np.asarray(cond_fn(values), dtype=bool)
            if taken is not None:
                c = c & ~taken
            taken = c if taken is None else (taken | c)
            conds.append(c)
            vals.append(expr_fn(values))
        shapes = np.broadcast_shapes(*[np.shape(v) for v in vals + conds])
        return np.select(
            [np.broadcast_to(c, shapes) for c in conds],
            [np.broadcast_to(np.asarray(v, dtype=float), shapes) for v in vals],
            default=np.nan,
        )

    @staticmethod
    def integral(integrand_fn, var_index, lo_fn, hi_fn, values):
        raise UnsupportedExpression("Integral has no vectorised evaluation here")


BACKENDS = {"mpmath": _MpmathBackend, "arb": _ArbBackend, "numpy": _NumpyBackend}

_ArbBackend.functions["sign"] = _ArbBackend._sign

_REL_OPS = {
    sympy.StrictLessThan: "<",
    sympy.LessThan: "<=",
    sympy.StrictGreaterThan: ">",
    sympy.GreaterThan: ">=",
    sympy.Equality: "==",
    sympy.Unequality: "!=",
}

_CONSTANTS = {
    sympy.pi: "pi",
    sympy.E: "E",
    sympy.EulerGamma: "EulerGamma",
    sympy.oo: "oo",
    -sympy.oo: "-oo",
    sympy.Catalan: "Catalan",
}


def _function_name(expr: sympy.Basic) -> str:
    return type(expr).__name__


def compile_expr(
    expr: sympy.Basic, symbols: Sequence[sympy.Symbol], backend: str
) -> Callable[[Sequence], object]:
    """Compile ``expr`` into ``fn(values)`` where ``values[i]`` is the value of ``symbols[i]``.

    Parameters
    ----------
    expr : sympy.Basic
        Expression or boolean condition built from numbers, the given symbols, ``+ * **``,
        ``exp, log, sqrt, Abs, Min, Max, Piecewise`` and a few special functions.
    symbols : sequence of sympy.Symbol
        The free symbols, in the order in which values are passed.
    backend : {"mpmath", "arb", "numpy"}

    Raises
    ------
    UnsupportedExpression
        For a node the backend cannot evaluate (the message names it), or a free symbol
        that is not listed.
    """
    try:
        be = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; expected one of {sorted(BACKENDS)}") from None
    index = {s: i for i, s in enumerate(symbols)}
    return _compile(sympy.sympify(expr) if not isinstance(expr, sympy.Basic) else expr, index, be)


def compile_many(
    exprs: Sequence[sympy.Basic], symbols: Sequence[sympy.Symbol], backend: str
) -> Callable[[Sequence], list]:
    """Compile several expressions sharing common subexpressions (``sympy.cse``).

    Returns ``fn(values) -> [value of exprs[0], value of exprs[1], ...]``; each shared
    subexpression is evaluated once per call.
    """
    be = BACKENDS[backend]
    if any(isinstance(e, sympy.Basic) and e.has(sympy.Integral) for e in exprs):
        # cse would hoist integrand pieces out of the integral: compile one by one
        singles = [compile_expr(e, symbols, backend) for e in exprs]
        return lambda values: [fn(values) for fn in singles]
    replacements, reduced = sympy.cse(list(exprs), order="none")
    index = {s: i for i, s in enumerate(symbols)}
    steps = []
    for sym, sub in replacements:
        steps.append(_compile(sub, index, be))
        index[sym] = len(index)
    outs = [_compile(e, index, be) for e in reduced]

    def run(values):
        vals = list(values)
        for step in steps:
            vals.append(step(vals))
        return [o(vals) for o in outs]

    return run


def _compile(expr, index, be):  # noqa: C901 - a dispatch table on node types
    if isinstance(expr, sympy.Symbol):
        if expr not in index:
            raise UnsupportedExpression(f"symbol {expr} has no value")
        i = index[expr]
        return lambda v: v[i]
    if expr in _CONSTANTS:
        factory = be.constant(_CONSTANTS[expr])
        return lambda v: factory()
    if isinstance(expr, sympy.Rational | sympy.Float):
        return _constant(sympy.Rational(expr), be)
    if expr is sympy.true or expr is sympy.false:
        flag = bool(expr)
        return lambda v: flag
    if isinstance(expr, sympy.Add):
        parts = [_compile(a, index, be) for a in expr.args]

        def add(v, parts=parts):
            acc = parts[0](v)
            for p in parts[1:]:
                acc = acc + p(v)
            return acc

        return add
    if isinstance(expr, sympy.Mul):
        num, den = [], []
        for a in expr.args:
            if isinstance(a, sympy.Pow) and a.exp.is_Integer and a.exp < 0:
                den.append(_compile(a.base**-a.exp, index, be))
            elif isinstance(a, sympy.Rational) and not a.is_Integer:
                num.append(_compile(sympy.Integer(a.p), index, be))
                den.append(_compile(sympy.Integer(a.q), index, be))
            else:
                num.append(_compile(a, index, be))

        def mul(v, num=num, den=den):
            acc = num[0](v) if num else be.rational(sympy.Integer(1))
            for p in num[1:]:
                acc = acc * p(v)
            for d in den:
                acc = acc / d(v)
            return acc

        return mul
    if isinstance(expr, sympy.Pow):
        base = _compile(expr.base, index, be)
        e = expr.exp
        if expr.base is sympy.E:
            ex = _compile(e, index, be)
            f = be.functions["exp"]
            return lambda v: f(ex(v))
        if e.is_Integer:
            n = int(e)
            if n < 0:
                one = sympy.Integer(1)
                return lambda v: be.rational(one) / be.ipow(base(v), -n)
            return lambda v: be.ipow(base(v), n)
        if e == sympy.S.Half:
            return lambda v: be.sqrt(base(v))
        if e == -sympy.S.Half:
            one = sympy.Integer(1)
            return lambda v: be.rational(one) / be.sqrt(base(v))
        ex = _compile(e, index, be)
        return lambda v: be.pow(base(v), ex(v))
    if isinstance(expr, sympy.Piecewise):
        branches = [(_compile(e, index, be), _compile(c, index, be)) for e, c in expr.args]
        return lambda v: be.piecewise(branches, v)
    if isinstance(expr, sympy.core.relational.Relational):
        op = _REL_OPS.get(type(expr))
        if op is None:
            raise UnsupportedExpression(f"relational {type(expr).__name__} is not supported")
        lhs, rhs = _compile(expr.lhs, index, be), _compile(expr.rhs, index, be)
        return lambda v: be.compare(op, lhs(v), rhs(v))
    if isinstance(expr, sympy.And | sympy.Or | sympy.Not):
        parts = [_compile(a, index, be) for a in expr.args]
        kind = type(expr)
        return _logic(kind, parts, be)
    if isinstance(expr, sympy.Min | sympy.Max):
        parts = [_compile(a, index, be) for a in expr.args]
        red = be.minimum if isinstance(expr, sympy.Min) else be.maximum
        return lambda v: red([p(v) for p in parts])
    if isinstance(expr, sympy.log):
        if len(expr.args) != 1:
            raise UnsupportedExpression("log with a base: rewrite as log(x)/log(b)")
    if isinstance(expr, sympy.Integral):
        if len(expr.limits) != 1 or len(expr.limits[0]) != 3:
            raise UnsupportedExpression("only single definite integrals are supported")
        if be.name != "mpmath":
            raise UnsupportedExpression(f"Integral has no {be.name} evaluation here")
        var, lo, hi = expr.limits[0]
        inner = dict(index)
        k = len(inner)
        inner[var] = k
        integrand = _compile(expr.function, inner, be)
        lo_fn, hi_fn = _compile(lo, index, be), _compile(hi, index, be)

        def integral(v):
            vals = list(v) + [None]
            return be.integral(integrand, k, lo_fn, hi_fn, vals)

        return integral
    if isinstance(expr, sympy.Function):
        name = _function_name(expr)
        fn = be.functions.get(name)
        if fn is None or len(expr.args) != 1:
            raise UnsupportedExpression(f"function {name} has no {be.name} evaluation")
        arg = _compile(expr.args[0], index, be)
        return lambda v: fn(arg(v))
    raise UnsupportedExpression(f"cannot evaluate {type(expr).__name__} node {expr}")


def _constant(value: sympy.Rational, be):
    """A closure returning the constant at the current precision, cached per precision."""
    cache: dict = {}
    key_of = be.precision_key

    def const(v):
        key = key_of()
        try:
            return cache[key]
        except KeyError:
            out = cache[key] = be.rational(value)
            return out

    return const


def _logic(kind, parts, be):
    if be.name == "numpy":
        if kind is sympy.Not:
            return lambda v: np.logical_not(parts[0](v))
        red = np.logical_and if kind is sympy.And else np.logical_or
        return lambda v: red.reduce([np.asarray(p(v), dtype=bool) for p in parts])
    if kind is sympy.Not:

        def not_(v):
            r = parts[0](v)
            return None if r is None else (not r)

        return not_
    if kind is sympy.And:

        def and_(v):
            undecided = False
            for p in parts:
                r = p(v)
                if r is False:
                    return False
                if r is None:
                    undecided = True
            return None if undecided else True

        return and_

    def or_(v):
        undecided = False
        for p in parts:
            r = p(v)
            if r is True:
                return True
            if r is None:
                undecided = True
        return None if undecided else False

    return or_


_SMOOTH_FUNCTIONS = {
    "exp", "log", "sin", "cos", "tan", "atan", "sinh", "cosh", "tanh", "asinh", "erf", "erfc",
    "gamma", "loggamma", "digamma", "LambertW", "log1p", "expm1", "Abs",
}  # fmt: skip


def is_piecewise_smooth(expr: sympy.Basic) -> bool:
    """True when ``expr`` is continuous wherever it is finite (no Piecewise, sign, ...).

    Only such expressions may use the mean-value form in branch-and-bound: ``Abs``, ``Min``
    and ``Max`` are Lipschitz (their generalized gradients are enclosed by the derivative
    rules used), while ``Piecewise`` and ``sign`` may jump.
    """
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Piecewise | sympy.Integral):
            return False
        if isinstance(node, sympy.Function) and not isinstance(node, sympy.Min | sympy.Max):
            if _function_name(node) not in _SMOOTH_FUNCTIONS:
                return False
    return True
