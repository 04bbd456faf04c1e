"""Expression printers: numpy (array namespace), C (host) and CUDA (device).

A printer is a table of function names plus a few ``_print_<Node>`` methods, as in
``sympy.printing``; everything not in a table is an error (:class:`UnsupportedFunctionError`),
never a silent fallback to a scalar ``math.*`` function.

* :class:`NumpyPrinter` prints for any array namespace ``xp`` (numpy, cupy, the
  array-api-compat wrappers): only ``xp.*`` functions, Python float literals (weak scalars,
  so float32 arrays stay float32), and ``Piecewise`` as *masked evaluation* — each branch
  (and each condition) is evaluated only on the elements where it is reached.
* :class:`CPrinter` prints C99 for ``float`` or ``double``: literals correctly rounded to
  the dtype (``0.33333334f``), float-suffixed math functions (``expf``, ``log1pf``) for
  float32, nested ternaries for ``Piecewise`` (only the taken branch runs).
* :class:`CudaPrinter` prints the same as :class:`CPrinter` (the host C of a kernel is the
  CUDA body), with non-finite constants written as bit patterns that NVRTC accepts.

Examples
--------
>>> import sympy
>>> from numeric.codegen.printers import CPrinter, NumpyPrinter
>>> x, y = sympy.symbols("x y", real=True)
>>> NumpyPrinter().doprint(sympy.exp(x) / 3 + y**2)
'y*y + xp.exp(x)/3.0'
>>> CPrinter("float32").doprint(sympy.exp(x) / 3 + y**2)
'y*y + expf(x)/3.0f'
>>> CPrinter("float64").doprint(sympy.Piecewise((sympy.log(x), x > 0), (0, True)))
'(x > 0.0 ? log(x) : 0.0)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import mpmath
import numpy as np
import sympy
from sympy.logic.boolalg import BooleanFalse, BooleanTrue

__all__ = [
    "CodegenError",
    "UnsupportedFunctionError",
    "NumpyPrinter",
    "CPrinter",
    "CudaPrinter",
    "DTYPES",
]

#: The dtypes the C/CUDA printers know: name → (C type, mantissa bits, math suffix).
DTYPES: dict[str, tuple[str, int, str]] = {
    "float32": ("float", 24, "f"),
    "float64": ("double", 53, ""),
}

# Precedence levels (higher binds tighter).
_ATOM = 100
_POW = 70
_MUL = 50
_NEG = 45
_ADD = 40
_REL = 30
_NOT = 28
_AND = 20
_OR = 15
_COND = 10


class CodegenError(ValueError):
    """An expression that the code generator cannot turn into code."""


class UnsupportedFunctionError(CodegenError):
    """A function (or node) that has no implementation for the requested target."""


def _func_name(expr) -> str:
    return type(expr).__name__


class _BasePrinter:
    """Shared printing of arithmetic; subclasses give the tables and the syntax."""

    target = "base"
    #: sympy function name → target function name (unary or n-ary, same arity)
    functions: Mapping[str, str] = {}
    #: sympy function name → helper name (emitted with the generated code)
    helpers: Mapping[str, str] = {}

    def __init__(self, names: Mapping[sympy.Symbol, str] | None = None):
        self.names = dict(names or {})
        self.helpers_used: set[str] = set()

    # -- entry point --------------------------------------------------------------------

    def doprint(self, expr) -> str:
        """The target source of ``expr`` as one expression."""
        return self._print(sympy.sympify(expr))[0]

    def _print(self, expr) -> tuple[str, int]:
        if isinstance(expr, (BooleanTrue, BooleanFalse)):
            return self._print_bool(bool(expr)), _ATOM
        if isinstance(expr, sympy.Symbol):
            return self.names.get(expr, expr.name), _ATOM
        if isinstance(expr, sympy.Expr) and expr.is_number:
            return self._print_number(expr)
        for cls in type(expr).__mro__:
            method = getattr(self, "_print_" + cls.__name__, None)
            if method is not None:
                return method(expr)
        if isinstance(expr, sympy.Function):
            return self._print_Function(expr)
        raise UnsupportedFunctionError(f"{self.target}: cannot print a {type(expr).__name__} node ({expr})")

    def _wrap(self, printed: tuple[str, int], level: int) -> str:
        text, prec = printed
        return f"({text})" if prec < level else text

    # -- numbers ------------------------------------------------------------------------

    def _print_number(self, expr) -> tuple[str, int]:
        if expr is sympy.S.NaN or expr is sympy.zoo:
            return self._nonfinite("nan"), _ATOM
        if expr is sympy.S.Infinity:
            return self._nonfinite("inf"), _ATOM
        if expr is sympy.S.NegativeInfinity:
            return "-" + self._nonfinite("inf"), _NEG
        if expr.is_Integer or expr.is_Rational:
            return self._print_rational(sympy.Rational(expr))
        value = sympy.N(expr, 40)
        if not value.is_real:
            raise CodegenError(f"{self.target}: complex constant {expr} cannot be printed")
        if value.is_infinite:
            inf = self._nonfinite("inf")
            return (inf, _ATOM) if value > 0 else ("-" + inf, _NEG)
        text = self._float_literal(value)
        return (text, _NEG) if text.startswith("-") else (text, _ATOM)

    def _print_rational(self, r: sympy.Rational) -> tuple[str, int]:
        if r.q == 1 or max(abs(r.p), r.q) > 2**53:
            text = self._float_literal(r)
            return (text, _NEG) if text.startswith("-") else (text, _ATOM)
        # p/q prints as a division: one correct rounding instead of two.
        num = self._float_literal(sympy.Integer(r.p))
        den = self._float_literal(sympy.Integer(r.q))
        return f"{num}/{den}", _MUL if r.p > 0 else _NEG

    def _float_literal(self, value) -> str:
        raise NotImplementedError

    def _nonfinite(self, which: str) -> str:
        raise NotImplementedError

    def _print_bool(self, value: bool) -> str:
        raise NotImplementedError

    # -- arithmetic ---------------------------------------------------------------------

    def _print_Add(self, expr) -> tuple[str, int]:
        terms = list(expr.args)
        parts: list[str] = []
        for i, term in enumerate(terms):
            negative = term.could_extract_minus_sign()
            shown = -term if negative else term
            text = self._wrap(self._print(shown), _ADD + 1)
            if i == 0:
                parts.append(("-" + self._wrap(self._print(shown), _MUL)) if negative else text)
            else:
                parts.append((" - " if negative else " + ") + text)
        return "".join(parts), _ADD

    def _print_Mul(self, expr) -> tuple[str, int]:
        if expr.could_extract_minus_sign():
            inner = self._print(-expr)
            return "-" + self._wrap(inner, _MUL), _NEG
        coeff, rest = expr.as_coeff_Mul()
        num: list[str] = []
        den: list[str] = []
        if coeff != 1:
            if coeff.is_Rational and coeff.q != 1 and max(abs(coeff.p), coeff.q) <= 2**53:
                if coeff.p != 1:
                    num.append(self._float_literal(sympy.Integer(coeff.p)))
                den.append(self._float_literal(sympy.Integer(coeff.q)))
            else:
                num.append(self._wrap(self._print(coeff), _MUL))
        for factor in sympy.Mul.make_args(rest):
            if (
                isinstance(factor, sympy.Pow)
                and factor.exp.is_number
                and factor.exp.is_negative
                and not isinstance(factor, sympy.exp)
            ):
                if factor.exp == -1:
                    positive = factor.base
                else:
                    positive = sympy.Pow(factor.base, -factor.exp, evaluate=False)
                den.append(self._wrap(self._print(positive), _MUL + 1))
            else:
                num.append(self._wrap(self._print(factor), _MUL))
        numerator = "*".join(num) if num else self._float_literal(sympy.Integer(1))
        if not den:
            return numerator, _MUL
        denominator = den[0] if len(den) == 1 else "(" + "*".join(den) + ")"
        return f"{numerator}/{denominator}", _MUL

    def _print_Pow(self, expr) -> tuple[str, int]:
        base, exponent = expr.args
        if exponent == sympy.S.Half:
            return self._call("sqrt", [base]), _ATOM
        if exponent == -sympy.S.Half:
            one = self._float_literal(sympy.Integer(1))
            return f"{one}/{self._call('sqrt', [base])}", _MUL
        if exponent.is_Integer and 1 <= abs(int(exponent)) <= 4:
            b = self._wrap(self._print(base), _MUL + 1)
            product = "*".join([b] * abs(int(exponent)))
            if exponent > 0:
                return product, _MUL
            one = self._float_literal(sympy.Integer(1))
            return (f"{one}/{product}" if exponent == -1 else f"{one}/({product})"), _MUL
        return self._print_power(base, exponent)

    def _print_power(self, base, exponent) -> tuple[str, int]:
        raise NotImplementedError

    def _print_exp(self, expr) -> tuple[str, int]:
        return self._call("exp", expr.args), _ATOM

    def _print_Function(self, expr) -> tuple[str, int]:
        return self._call(_func_name(expr), expr.args), _ATOM

    def _print_MinMaxBase(self, expr) -> tuple[str, int]:
        # Max(a, b, c) → max(max(a, b), c), in sympy's argument order.
        name = _func_name(expr)
        args = list(expr.args)
        text = self._print(args[0])[0]
        for a in args[1:]:
            text = self._call(name, [sympy.Dummy(), a], first=text)
        return text, _ATOM

    def _call(self, name: str, args, *, first: str | None = None) -> str:
        printed = [self._print(a)[0] for a in args]
        if first is not None:
            printed[0] = first
        if name in self.functions:
            return f"{self.functions[name]}({', '.join(printed)})"
        if name in self.helpers:
            self.helpers_used.add(name)
            return self._helper_call(self.helpers[name], printed)
        raise UnsupportedFunctionError(
            f"{self.target}: no implementation of the function {name!r}; supported: "
            f"{sorted(set(self.functions) | set(self.helpers))}"
        )

    def _helper_call(self, helper: str, printed: list[str]) -> str:
        return f"{helper}({', '.join(printed)})"

    # -- logic --------------------------------------------------------------------------

    _relations = {
        "Equality": "==",
        "Unequality": "!=",
        "StrictLessThan": "<",
        "LessThan": "<=",
        "StrictGreaterThan": ">",
        "GreaterThan": ">=",
    }

    def _print_Relational(self, expr) -> tuple[str, int]:
        op = self._relations.get(type(expr).__name__)
        if op is None:  # pragma: no cover - every sympy relational is in the table
            raise UnsupportedFunctionError(f"{self.target}: relation {type(expr).__name__}")
        lhs = self._wrap(self._print(expr.lhs), _REL + 1)
        rhs = self._wrap(self._print(expr.rhs), _REL + 1)
        return f"{lhs} {op} {rhs}", _REL


class NumpyPrinter(_BasePrinter):
    """Array-namespace printer: ``xp.<function>``, masked ``Piecewise``.

    The printed code assumes a name ``xp`` (the array namespace) in scope, and, for
    ``Piecewise`` and the helpers, the functions that :func:`numeric.codegen.source` emits
    with it (``_piecewise``, ``_xlogy``, …).
    """

    target = "numpy"
    functions = {
        "exp": "xp.exp",
        "log": "xp.log",
        "log1p": "xp.log1p",
        "expm1": "xp.expm1",
        "sqrt": "xp.sqrt",
        "Abs": "xp.abs",
        "sign": "xp.sign",
        "sin": "xp.sin",
        "cos": "xp.cos",
        "tan": "xp.tan",
        "asin": "xp.asin",
        "acos": "xp.acos",
        "atan": "xp.atan",
        "atan2": "xp.atan2",
        "sinh": "xp.sinh",
        "cosh": "xp.cosh",
        "tanh": "xp.tanh",
        "asinh": "xp.asinh",
        "acosh": "xp.acosh",
        "atanh": "xp.atanh",
        "floor": "xp.floor",
        "ceiling": "xp.ceil",
        "logaddexp": "xp.logaddexp",
        "Max": "xp.maximum",
        "Min": "xp.minimum",
    }
    helpers = {
        "xlogy": "_xlogy",
        "xlog1py": "_xlog1py",
        "log1mexp": "_log1mexp",
        "softplus": "_softplus",
    }

    def __init__(self, names=None):
        super().__init__(names)
        self.piecewise_count = 0

    def _float_literal(self, value) -> str:
        f = float(value)
        if math.isinf(f):
            return "-math.inf" if f < 0 else "math.inf"
        return repr(f)

    def _nonfinite(self, which: str) -> str:
        return f"math.{which}"

    def _print_bool(self, value: bool) -> str:
        return "True" if value else "False"

    def _helper_call(self, helper: str, printed: list[str]) -> str:
        return f"{helper}(xp, {', '.join(printed)})"

    def _print_power(self, base, exponent):
        b = self._wrap(self._print(base), _POW + 1)
        e = self._wrap(self._print(exponent), _POW)
        return f"{b}**{e}", _POW

    def _print_And(self, expr):
        return " & ".join(self._wrap(self._print(a), _ATOM) for a in expr.args), _AND

    def _print_Or(self, expr):
        return " | ".join(self._wrap(self._print(a), _ATOM) for a in expr.args), _OR

    def _print_Not(self, expr):
        return "~" + self._wrap(self._print(expr.args[0]), _ATOM), _NOT

    def _print_Piecewise(self, expr):
        # Masked evaluation: condition k is evaluated only where conditions 0..k-1 were
        # false, branch k only where condition k holds (see _piecewise in the preamble).
        self.helpers_used.add("Piecewise")
        symbols = sorted(expr.free_symbols, key=lambda s: s.name)
        params = ", ".join(self.names.get(s, s.name) for s in symbols)
        pieces = []
        for value, cond in expr.args:
            c = self._print(cond)[0]
            v = self._print(value)[0]
            pieces.append(f"(lambda {params}: {c}, lambda {params}: {v})")
        args = ", ".join(self.names.get(s, s.name) for s in symbols)
        return f"_piecewise(xp, ({args},), ({', '.join(pieces)},))", _ATOM


class CPrinter(_BasePrinter):
    """C99 printer for ``float`` (``dtype="float32"``) or ``double`` (``"float64"``)."""

    target = "c"
    _c_functions = {
        "exp": "exp",
        "log": "log",
        "log1p": "log1p",
        "expm1": "expm1",
        "sqrt": "sqrt",
        "Abs": "fabs",
        "sin": "sin",
        "cos": "cos",
        "tan": "tan",
        "asin": "asin",
        "acos": "acos",
        "atan": "atan",
        "atan2": "atan2",
        "sinh": "sinh",
        "cosh": "cosh",
        "tanh": "tanh",
        "asinh": "asinh",
        "acosh": "acosh",
        "atanh": "atanh",
        "floor": "floor",
        "ceiling": "ceil",
        "Max": "fmax",
        "Min": "fmin",
    }
    _c_helpers = ("xlogy", "xlog1py", "log1mexp", "softplus", "logaddexp", "sign")

    def __init__(self, dtype: str = "float64", names=None):
        super().__init__(names)
        if dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {sorted(DTYPES)}, got {dtype!r}")
        self.dtype = dtype
        self.ctype, self.bits, self.suffix = DTYPES[dtype]
        self.functions = {k: v + self.suffix for k, v in self._c_functions.items()}
        self.helpers = {k: f"divkit_{k}{self.suffix}" for k in self._c_helpers}

    def _round(self, value) -> float:
        """``value`` correctly rounded to the dtype (round to nearest even)."""
        value = sympy.sympify(value)
        if not isinstance(value, sympy.Rational):
            value = sympy.N(value, 40)
        if isinstance(value, sympy.Rational):
            with mpmath.workprec(self.bits):
                return float(mpmath.fdiv(value.p, value.q))
        with mpmath.workprec(self.bits):
            return float(mpmath.mpf(value._mpf_))

    def _float_literal(self, value) -> str:
        f = self._round(value)
        if math.isinf(f):
            inf = self._nonfinite("inf")
            return "-" + inf if f < 0 else inf
        if self.dtype == "float32":
            return _shortest_float32(f) + "f"
        return repr(f)

    def _nonfinite(self, which: str) -> str:
        cast = f"({self.ctype})"
        return f"{cast}INFINITY" if which == "inf" else f"{cast}NAN"

    def _print_bool(self, value: bool) -> str:
        return "1" if value else "0"

    def _print_power(self, base, exponent):
        return f"pow{self.suffix}({self._print(base)[0]}, {self._print(exponent)[0]})", _ATOM

    def _print_And(self, expr):
        return " && ".join(self._wrap(self._print(a), _ATOM) for a in expr.args), _AND

    def _print_Or(self, expr):
        return " || ".join(self._wrap(self._print(a), _ATOM) for a in expr.args), _OR

    def _print_Not(self, expr):
        return "!" + self._wrap(self._print(expr.args[0]), _ATOM), _NOT

    def _print_Piecewise(self, expr):
        # Nested ternaries: only the branch whose condition holds is evaluated.
        *pairs, (last_value, last_cond) = expr.args
        if last_cond == sympy.true:
            text = self._print(last_value)[0]
        else:
            cond = self._print(last_cond)[0]
            text = f"({cond} ? {self._print(last_value)[0]} : {self._nonfinite('nan')})"
        for value, cond in reversed(pairs):
            text = f"({self._print(cond)[0]} ? {self._print(value)[0]} : {text})"
        return text, _ATOM


class CudaPrinter(CPrinter):
    """CUDA device-code printer: the C printer with NVRTC-safe non-finite constants."""

    target = "cuda"

    def _nonfinite(self, which: str) -> str:
        if self.dtype == "float32":
            return "__int_as_float(0x7f800000)" if which == "inf" else "__int_as_float(0x7fffffff)"
        return (
            "__longlong_as_double(0x7ff0000000000000LL)"
            if which == "inf"
            else "__longlong_as_double(0x7fffffffffffffffLL)"
        )


def _shortest_float32(f: float) -> str:
    """The shortest decimal string that reads back as the float32 ``f``."""
    if f == 0 or 1e-4 <= abs(f) < 1e16:
        text = np.format_float_positional(np.float32(f), unique=True, trim="0")
    else:
        text = np.format_float_scientific(np.float32(f), unique=True, trim="0")
    if "e" not in text and "." not in text:
        text += ".0"
    if text.endswith("."):
        text += "0"
    return text
