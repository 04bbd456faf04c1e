"""Whitelist parser for expressions that arrive as text (CLI, config, REPL strings).

Untrusted text never reaches ``sympify`` or ``eval``. A tokenizer accepts only

* numbers (``12``, ``0.5``, ``1e-3``; decimals become exact rationals),
* the names the caller declares (symbols, constants, functions),
* the operators ``+ - * / ** ^`` (``^`` is a power), parentheses and, inside function
  calls, commas,

and refuses anything else — attribute access, underscores, quotes, brackets, ``lambda``,
unknown names — with a :class:`ParseError` (a ``ValueError``) naming the offending token.
A recursive-descent parser then builds the sympy tree directly, with limits on length,
nesting depth, literal size and the size of exact numeric powers, so hostile input such
as ``9**9**9`` is refused instead of hanging.

>>> from theory.parsing import parse_expression
>>> from theory import u
>>> parse_expression("(sqrt(u) - 1)**2", symbols={"u": u})
(sqrt(u) - 1)**2
>>> parse_expression("u.__class__", symbols={"u": u})
Traceback (most recent call last):
...
theory.parsing.ParseError: refused token 'u.' at position 0 in 'u.__class__': attribute access ...
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sympy

__all__ = ["ParseError", "parse_expression", "parse_number", "DEFAULT_FUNCTIONS"]

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_LITERAL_DIGITS = 60
MAX_DECIMAL_EXPONENT = 400
MAX_POWER_BITS = 4096


class ParseError(ValueError):
    """Raised for text that is not a well-formed whitelisted expression."""


def _log(*args):
    if len(args) == 1:
        return sympy.log(args[0])
    if len(args) == 2:
        return sympy.log(args[0], args[1])
    raise ParseError("log takes one or two arguments (value, base)")


def _fixed(fn: Callable, n: int, name: str) -> Callable:
    def call(*args):
        if len(args) != n:
            raise ParseError(f"{name} takes {n} argument(s), got {len(args)}")
        return fn(*args)

    return call


def _variadic(fn: Callable, name: str) -> Callable:
    def call(*args):
        if len(args) < 1:
            raise ParseError(f"{name} needs at least one argument")
        return fn(*args)

    return call


#: Functions allowed in expressions unless the caller passes its own table.
DEFAULT_FUNCTIONS: dict[str, Callable] = {
    "log": _log,
    "ln": _fixed(sympy.log, 1, "ln"),
    "exp": _fixed(sympy.exp, 1, "exp"),
    "sqrt": _fixed(sympy.sqrt, 1, "sqrt"),
    "cbrt": _fixed(sympy.cbrt, 1, "cbrt"),
    "abs": _fixed(sympy.Abs, 1, "abs"),
    "Abs": _fixed(sympy.Abs, 1, "Abs"),
    "sign": _fixed(sympy.sign, 1, "sign"),
    "min": _variadic(sympy.Min, "min"),
    "max": _variadic(sympy.Max, "max"),
    "sinh": _fixed(sympy.sinh, 1, "sinh"),
    "cosh": _fixed(sympy.cosh, 1, "cosh"),
    "tanh": _fixed(sympy.tanh, 1, "tanh"),
    "asinh": _fixed(sympy.asinh, 1, "asinh"),
    "atan": _fixed(sympy.atan, 1, "atan"),
    "atanh": _fixed(sympy.atanh, 1, "atanh"),
    "sin": _fixed(sympy.sin, 1, "sin"),
    "cos": _fixed(sympy.cos, 1, "cos"),
    "erf": _fixed(sympy.erf, 1, "erf"),
}

DEFAULT_CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z][A-Za-z0-9]*)
  | (?P<op>\*\*|[-+*/^(),])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str, allowed: Mapping[str, object]) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            hint = ""
            if ch == "_":
                hint = " (underscores are never allowed)"
            elif ch in "'\"":
                hint = " (quotes are never allowed)"
            elif ch == ".":
                hint = " (attribute access is never allowed)"
            elif ch in "[]{}":
                hint = " (brackets are not part of the expression language)"
            raise ParseError(
                f"refused character {ch!r} at position {pos} in {_clip(text)!r}{hint}; "
                "allowed: numbers, declared names, + - * / ** ^ ( ) ,"
            )
        kind = m.lastgroup
        tok = m.group()
        if kind == "name":
            # a name glued to an underscore or dot is refused above; here only whole names
            nxt = text[m.end() : m.end() + 1]
            if nxt in ("_", "."):
                raise ParseError(
                    f"refused token {tok + nxt!r} at position {pos} in {_clip(text)!r}: "
                    "attribute access and underscores are never allowed"
                )
            if tok not in allowed:
                raise ParseError(
                    f"unknown name {tok!r} at position {pos} in {_clip(text)!r}; "
                    f"allowed names: {', '.join(sorted(allowed))}"
                )
        if kind == "number":
            digits = re.sub(r"[eE].*$", "", tok).replace(".", "")
            if len(digits) > MAX_LITERAL_DIGITS:
                raise ParseError(f"number literal {tok[:20]!r}... is too long")
            if "e" in tok.lower():
                exponent = int(re.sub(r"^.*[eE]", "", tok))
                if abs(exponent) > MAX_DECIMAL_EXPONENT:
                    raise ParseError(f"number literal {tok!r} has an exponent out of range")
        if kind != "ws":
            tokens.append(_Tok(kind, tok, pos))
        pos = m.end()
    return tokens


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n] + "..."


def _safe_pow(base: sympy.Expr, exp: sympy.Expr) -> sympy.Expr:
    """``base**exp`` with a cap on exact numeric powers (``9**9**9`` must not hang)."""
    if base.is_Number and exp.is_Number:
        if exp.is_Integer or exp.is_Rational:
            b = abs(base)
            bits = float(sympy.log(b, 2)) if b not in (0, 1) else 0.0
            size = abs(bits) * abs(float(exp))
            if size > MAX_POWER_BITS or abs(exp) > 10**6:
                raise ParseError(
                    f"numeric power {base}**{exp} is too large to evaluate exactly "
                    f"(about 2**{size:.3g}); rewrite it"
                )
    elif exp.is_Number and abs(exp) > 10**6:
        raise ParseError(f"exponent {exp} is too large")
    return sympy.Pow(base, exp)


class _Parser:
    def __init__(self, text, tokens, symbols, functions, constants):
        self.text = text
        self.toks = tokens
        self.i = 0
        self.symbols = symbols
        self.functions = functions
        self.constants = constants
        self.depth = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, text: str | None = None) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise ParseError(f"unexpected end of expression in {_clip(self.text)!r}")
        if text is not None and tok.text != text:
            raise ParseError(
                f"expected {text!r} at position {tok.pos}, found {tok.text!r} "
                f"in {_clip(self.text)!r}"
            )
        self.i += 1
        return tok

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"expression nests deeper than {MAX_DEPTH} levels")

    # expr := term (('+'|'-') term)*
    def expr(self):
        self.enter()
        left = self.term()
        while (tok := self.peek()) is not None and tok.text in "+-" and tok.kind == "op":
            self.take()
            right = self.term()
            left = left + right if tok.text == "+" else left - right
        self.depth -= 1
        return left

    # term := unary (('*'|'/') unary)*
    def term(self):
        left = self.unary()
        while (tok := self.peek()) is not None and tok.text in ("*", "/"):
            self.take()
            right = self.unary()
            if tok.text == "*":
                left = left * right
            else:
                if right == 0:
                    raise ParseError(f"division by zero at position {tok.pos}")
                left = left / right
        return left

    # unary := ('+'|'-') unary | power
    def unary(self):
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text in "+-":
            self.take()
            self.enter()
            val = self.unary()
            self.depth -= 1
            return -val if tok.text == "-" else val
        return self.power()

    # power := atom (('**'|'^') unary)?      (right associative, binds tighter than unary -)
    def power(self):
        base = self.atom()
        tok = self.peek()
        if tok is not None and tok.text in ("**", "^"):
            self.take()
            self.enter()
            exp = self.unary()
            self.depth -= 1
            return _safe_pow(base, exp)
        return base

    def atom(self):
        tok = self.take()
        if tok.kind == "number":
            return sympy.Rational(tok.text)
        if tok.kind == "name":
            nxt = self.peek()
            if tok.text in self.functions:
                if nxt is None or nxt.text != "(":
                    raise ParseError(f"function {tok.text!r} at position {tok.pos} needs '('")
                self.take("(")
                self.enter()
                args = [self.expr()]
                while (p := self.peek()) is not None and p.text == ",":
                    self.take(",")
                    args.append(self.expr())
                self.take(")")
                self.depth -= 1
                try:
                    return self.functions[tok.text](*args)
                except ParseError:
                    raise
                except (TypeError, ValueError) as exc:
                    raise ParseError(f"cannot apply {tok.text}: {exc}") from None
            if nxt is not None and nxt.text == "(":
                raise ParseError(f"{tok.text!r} at position {tok.pos} is not a function")
            if tok.text in self.symbols:
                return self.symbols[tok.text]
            return self.constants[tok.text]
        if tok.text == "(":
            self.enter()
            val = self.expr()
            self.take(")")
            self.depth -= 1
            return val
        raise ParseError(f"unexpected {tok.text!r} at position {tok.pos} in {_clip(self.text)!r}")


def parse_expression(
    text: str,
    *,
    symbols: Mapping[str, sympy.Basic],
    functions: Mapping[str, Callable] | None = None,
    constants: Mapping[str, sympy.Basic] | None = None,
) -> sympy.Expr:
    """Parse untrusted ``text`` into a sympy expression through a whitelist.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"(sqrt(u) - 1)**2"``.
    symbols : mapping of str to sympy.Symbol
        The only variable names allowed, mapped to the symbols they stand for.
    functions : mapping of str to callable, optional
        Allowed function names; defaults to :data:`DEFAULT_FUNCTIONS`.
    constants : mapping of str to sympy object, optional
        Allowed constant names; defaults to ``pi`` and ``E``.

    Returns
    -------
    sympy.Expr

    Raises
    ------
    ParseError
        (a ``ValueError``) naming the refused token or the limit that was hit.
    """
    if not isinstance(text, str):
        raise TypeError(f"expression must be a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise ParseError("empty expression")
    functions = DEFAULT_FUNCTIONS if functions is None else dict(functions)
    constants = DEFAULT_CONSTANTS if constants is None else dict(constants)
    for name in symbols:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
            raise ValueError(f"declared symbol name {name!r} is not a plain identifier")
    allowed = {**constants, **functions, **symbols}
    tokens = _tokenize(text, allowed)
    parser = _Parser(text, tokens, dict(symbols), functions, constants)
    try:
        value = parser.expr()
    except RecursionError:
        raise ParseError("expression nests too deeply") from None
    rest = parser.peek()
    if rest is not None:
        raise ParseError(
            f"unexpected {rest.text!r} at position {rest.pos} in {_clip(text)!r}"
        )
    if isinstance(value, sympy.Basic) and value.has(sympy.zoo, sympy.nan):
        raise ParseError(f"{_clip(text)!r} evaluates to an undefined value")
    return value


def parse_number(text: str) -> sympy.Expr:
    """Parse a numeric constant such as ``"1/3"``, ``"0.25"`` or ``"sqrt(2)"``.

    >>> parse_number("1/3")
    1/3
    """
    value = parse_expression(text, symbols={})
    if not (isinstance(value, sympy.Expr) and value.is_number and value.is_finite):
        raise ParseError(f"{_clip(text)!r} is not a finite number")
    if value.is_real is False:
        raise ParseError(f"{_clip(text)!r} is not a real number")
    if math.isnan(float(value)):
        raise ParseError(f"{_clip(text)!r} is not a finite number")
    return value
