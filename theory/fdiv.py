r"""f-divergences from their generators, with everything the theory derives from them.

Convention (the whole of divkit keeps it): for a convex generator :math:`f` on
:math:`(0, \infty)` with :math:`f(1) = 0`,

.. math::

    D_f(P \,\|\, Q) = \mathbb{E}_Q\!\left[f\!\left(\tfrac{dP}{dQ}\right)\right]
                    = \sum_i q_i \, f(p_i / q_i),

P first (target, teacher, or the policy in alignment papers), Q second. The ratio symbol is
``u = p/q``. Zero mass follows from the generator's own limits:
:math:`0 \cdot f(0/0) = 0`, :math:`q f(0/q) = q f(0^+)`, :math:`0 \cdot f(p/0) = p f'(\infty)`
with :math:`f'(\infty) = \lim_{u\to\infty} f(u)/u`.

>>> from theory import fdiv, u
>>> kl = fdiv.get("kl")
>>> kl.f, kl.df, kl.weighting
(u*log(u), log(u) + 1, u)
>>> kl.conjugate.expr
exp(t - 1)
>>> kl.reverse.f
-log(u)
>>> fdiv.get("js").f_at_zero
log(2)/2
>>> fdiv.FDivergence.from_string("(sqrt(u) - 1)**2").weighting
sqrt(u)/2

New catalog entries go in the registry at the end of this module: one decorated function
returning the generator, with the source cited in its docstring.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import mpmath
import sympy

from theory._symbols import t, u
from theory.parsing import ParseError, parse_expression, parse_number

__all__ = [
    "FDivergence",
    "Family",
    "Parameter",
    "family",
    "Conjugate",
    "RenyiDivergence",
    "get",
    "names",
    "renyi",
    "catalog_markdown",
    "facts",
    "FACT_DEFAULTS",
]

#: Log-grid used for numeric checks: 1e-12 … 1e12, 40 points per decade.
GRID_DECADES = (-12, 12)
GRID_PER_DECADE = 40
#: Working precision (decimal digits) of numeric checks.
CHECK_DPS = 50
#: Wall-clock bound (seconds) of validating a generator on construction (f(1) = 0 and
#: convexity, and the standardised generator shown in an error): a generator that cannot
#: be validated in time is refused with a ValueError that says so.
VALIDATION_SECONDS = 1.5
#: Grid of the numeric convexity check: 10^-30 … 10^30, 20 points per decade (f''(u) of
#: "u*log(u) - u**2/10**15" turns negative beyond u = 5e14, outside 10^±12).
CONVEXITY_DECADES = (-30, 30)
CONVEXITY_PER_DECADE = 20
#: Beyond the dense grid, f'' alone is checked at one point per decade out to 10^±this
#: (u*log(u) - u**2/10**40: f'' < 0 beyond u = 5e39).
CONVEXITY_FAR_DECADE = 300
#: The numeric convexity check stops walking away from u = 1 where |f| or |f''| exceeds
#: 2^(this many bits) (exp(exp(exp(u))) beyond u ≈ 10): mpmath would spend seconds there.
CONVEXITY_MAX_BITS = 100_000


class _Timeout(Exception):
    """A validation step ran past its share of :data:`VALIDATION_SECONDS`."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise :class:`_Timeout` inside the block after ``seconds`` (SIGALRM, main thread only).

    Elsewhere (another thread, a platform without ``setitimer``, or an outer timer already
    running) the block runs unbounded; the callers then skip the symbolic steps that can
    be slow (see :func:`_symbolic_is_cheap`) and bound the numeric loop by the clock.
    """
    usable = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_REAL)[0] == 0
              and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None))
    if not usable or seconds <= 0:
        if seconds <= 0:
            raise _Timeout
        yield False
        return

    def _raise(signum, frame):
        raise _Timeout

    old = signal.signal(signal.SIGALRM, _raise)
    # re-armed every 50 ms: a signal that lands in a finaliser (where the exception is
    # only reported, not raised) must not let the block run on unbounded
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _short(expr, n: int | None = 200) -> str:
    """``sympy.sstr(expr)``, clipped to ``n`` characters (``None``: not clipped)."""
    try:
        text = expr if isinstance(expr, str) else sympy.sstr(expr)
    except ValueError:       # an integer beyond Python's str conversion limit
        return "(an expression too large to print)"
    return text if n is None or len(text) <= n else text[: n - 3] + "..."


def _symbolic_is_cheap(expr: sympy.Expr) -> bool:
    """Whether sympy's assumption queries and simplification on ``expr`` are safe to run
    without a timer: small, and no rational exponents with huge denominators."""
    if sympy.count_ops(expr) > 40:
        return False
    return not any(r.q > SOLVE_MAX_DENOMINATOR for power in expr.atoms(sympy.Pow)
                   for r in power.exp.atoms(sympy.Rational))


def _readability_cost(expr: sympy.Basic) -> int:
    """Operation count, with a penalty for ``log(x**y)`` with symbolic y (hard to read)."""
    penalty = 0
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.log):
            penalty += sum(
                1 if p.exp.is_number else 10
                for p in sympy.preorder_traversal(node.args[0])
                if isinstance(p, sympy.Pow)
            )
    return int(sympy.count_ops(expr)) + penalty


#: Rationals with a numerator or denominator beyond this are left to the numbers: sympy's
#: simplify raises them to each other's powers (logcombine of β log β at β = 10⁻¹²).
TIDY_MAX_INTEGER = 10**6
#: A power u**(p/q) with q beyond this is left as it is: simplify treats it as a polynomial
#: in u**(1/q) of degree q (the α-divergence at α = 0.9999 took 11 s, a float with more
#: digits minutes).
TIDY_MAX_ROOT = 1000


def _tidy(expr: sympy.Expr) -> sympy.Expr:
    """Light, bounded simplification: the most readable of a few equivalent forms.

    Bounded in time whatever the numbers: expressions with more than 60 operations, with
    rationals beyond :data:`TIDY_MAX_INTEGER`, or with a fractional power whose denominator
    exceeds :data:`TIDY_MAX_ROOT` (a many-digit float parameter made rational) are returned
    unchanged."""
    if not isinstance(expr, sympy.Basic) or sympy.count_ops(expr) > 60:
        return expr
    if any(max(abs(r.p), abs(r.q)) > TIDY_MAX_INTEGER for r in expr.atoms(sympy.Rational)):
        return expr
    if any(p.exp.is_Rational and p.exp.q > TIDY_MAX_ROOT for p in expr.atoms(sympy.Pow)):
        return expr
    candidates = [expr]
    try:
        simple = sympy.simplify(expr)
        candidates += [simple, sympy.expand_log(simple, force=True), sympy.factor(simple)]
    except (NotImplementedError, TypeError, ValueError, RecursionError):  # pragma: no cover
        pass
    return min(candidates, key=_readability_cost)


_KINKS = (sympy.Max, sympy.Min, sympy.Abs, sympy.sign, sympy.Heaviside)


def _branch_near(expr: sympy.Expr, point) -> sympy.Expr:
    """``expr`` with every max/min/abs/sign/Heaviside replaced by the branch it takes near
    ``point`` (0+ or oo), decided at u = 1e-30 resp. 1e30: the generator is piecewise
    analytic, so one branch holds on a whole neighbourhood of the limit point."""
    probe = sympy.Rational(1, 10**30) if point == 0 else sympy.Integer(10) ** 30

    def value(e):
        return sympy.N(e.subs(u, probe), 40)

    def pick(node):
        if isinstance(node, (sympy.Max, sympy.Min)):
            vals = [value(a) for a in node.args]
            best = max if isinstance(node, sympy.Max) else min
            return node.args[vals.index(best(vals))]
        inner = value(node.args[0])
        if isinstance(node, sympy.Abs):
            return node.args[0] if inner >= 0 else -node.args[0]
        if isinstance(node, sympy.sign):
            return sympy.sign(inner)
        return sympy.Integer(1) if inner > 0 else sympy.Integer(0)  # Heaviside

    return expr.replace(lambda e: isinstance(e, _KINKS), pick)


def _safe_limit(expr: sympy.Expr, point, direction: str = "+") -> sympy.Expr | None:
    if point in (0, sympy.oo) and expr.has(*_KINKS):
        # sympy's limit fails (or hangs) on max(u, 1) - 1, Heaviside(u - 1) and the like:
        # take the branch that holds near the point
        expr = _branch_near(expr, point)
    try:
        val = sympy.limit(expr, u, point, direction)
    except (NotImplementedError, ValueError, TypeError, RecursionError):
        return None
    if isinstance(val, sympy.Limit) or val.has(sympy.AccumBounds) or val.has(sympy.nan):
        return None
    return _tidy(val)


#: Extra Python stack frames ``solve`` may use before we give up on a closed form; sympy's
#: solver recurses for a long time on equations it cannot solve (softened_rkl's f' = t).
SOLVE_STACK_BUDGET = 200


#: Largest denominator of a rational exponent handed to ``sympy.solve``: an exponent like
#: 3333333333333333/10^16 (a float parameter made exact) makes it build polynomials of that
#: degree and run for hours; such equations are left to the numeric inverse.
SOLVE_MAX_DENOMINATOR = 1000


#: Time bound of the closed-form search of :attr:`FDivergence.policy_map` (and so of the
#: conjugate), in seconds of the main thread.
POLICY_MAP_SECONDS = 1.5


def _bounded_solve(eq, var) -> list:
    """``sympy.solve`` with a bounded recursion depth: [] when it cannot finish (too deep,
    or exponents with denominators beyond :data:`SOLVE_MAX_DENOMINATOR`)."""
    for power in eq.atoms(sympy.Pow):
        if any(r.q > SOLVE_MAX_DENOMINATOR for r in power.exp.atoms(sympy.Rational)):
            return []
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + SOLVE_STACK_BUDGET)
    try:
        return list(sympy.solve(eq, var))
    except (NotImplementedError, ValueError, TypeError, RecursionError):
        return []
    finally:
        sys.setrecursionlimit(old)


#: Interior points u at which a candidate inverse of f' is checked.
_PROBES = (sympy.Rational(1, 7), sympy.Rational(4, 3), sympy.Integer(5))


def _log_grid() -> list[mpmath.mpf]:
    lo, hi = GRID_DECADES
    n = (hi - lo) * GRID_PER_DECADE
    with mpmath.workdps(CHECK_DPS + 10):
        return [mpmath.mpf(10) ** (lo + mpmath.mpf(k) / GRID_PER_DECADE) for k in range(n + 1)]


def _mp_function(expr: sympy.Expr, var: sympy.Symbol = u) -> Callable:
    """An mpmath-evaluable function of one variable (evaluated in the caller's precision)."""
    return sympy.lambdify(var, expr, modules=["mpmath"])


def _as_param(name: str, value) -> sympy.Expr:
    """Turn a user parameter into an exact sympy number (strings go through the parser)."""
    if isinstance(value, bool):
        raise TypeError(f"parameter {name!r} must be a number, got a bool")
    if isinstance(value, str):
        return parse_number(value)
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"parameter {name!r} must be finite, got {value!r}")
        return sympy.Rational(repr(value))
    if isinstance(value, sympy.Basic):
        return value
    raise TypeError(f"parameter {name!r} must be a number, got {type(value).__name__}")


_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


def _as_flag(name: str, value) -> bool:
    """A boolean parameter: a bool, 0/1, or the text true/false/yes/no/1/0 (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, (int, sympy.Integer)) and int(value) in (0, 1):
        return bool(int(value))
    raise ValueError(f"parameter {name!r} is true or false, got {value!r}")


@dataclass(frozen=True)
class Conjugate:
    r"""The convex conjugate :math:`f^*(t) = \sup_{u > 0} \, (t u - f(u))`.

    Attributes
    ----------
    expr : sympy.Expr or None
        Closed form in ``t``, valid on the interior of :attr:`interior` (the image of f');
        ``None`` when sympy could not find one (then evaluation is numeric).
    domain : sympy.Interval
        Effective domain: where :math:`f^*` is finite.
    interior : sympy.Interval
        The open interval :math:`(f'(0^+), f'(\infty))` on which ``expr`` holds.
    method : str
        ``"closed form"`` or ``"numeric Legendre transform"``.
    piecewise : sympy.Expr or None
        The extended-real function on all of ℝ: ``-f(0+)`` left of the image of f',
        ``expr`` on it, the limit value at a finite right end, ``oo`` beyond.
    """

    expr: sympy.Expr | None
    domain: sympy.Interval
    interior: sympy.Interval
    method: str
    piecewise: sympy.Expr | None
    _owner: FDivergence = field(repr=False, compare=False)

    def __call__(self, value, *, dps: int = CHECK_DPS):
        """Evaluate :math:`f^*` at ``value`` with mpmath at ``dps`` digits (``+inf`` outside)."""
        with mpmath.workdps(dps + 10):
            tv = mpmath.mpf(value) if not isinstance(value, sympy.Basic) else mpmath.mpf(
                sympy.N(value, dps + 10)
            )
            if self.piecewise is not None:
                out = _eval_mp(self.piecewise, t, tv, dps + 10)
            else:
                out = self._owner._legendre(tv)
        with mpmath.workdps(dps):
            return +out


def _eval_mp(expr: sympy.Expr, var: sympy.Symbol, value, dps: int):
    """Evaluate a sympy expression (Piecewise allowed) at an mpmath value."""
    arg = value if isinstance(value, sympy.Basic) else sympy.Float(value, dps)
    val = expr.subs(var, arg)
    val = sympy.N(val, dps)
    if val in (sympy.oo, sympy.zoo) or val == sympy.oo:
        return mpmath.inf
    if val == -sympy.oo:
        return mpmath.ninf
    return mpmath.mpf(sympy.re(val)) if val.is_real is not False else mpmath.mpf(val)


class FDivergence:
    r"""An f-divergence :math:`D_f(P\|Q) = \sum_i q_i f(p_i/q_i)` built from its generator.

    Parameters
    ----------
    f : sympy expression in :data:`theory.u` (or a plain symbol named ``u``)
        The generator. It must be convex on :math:`(0, \infty)` with :math:`f(1) = 0`
        exactly; both are checked on construction, within :data:`VALIDATION_SECONDS` of
        wall-clock time: first numerically on a log-grid :math:`10^{-30} \ldots 10^{30}`
        with mpmath (secant slopes of f non-decreasing, and f'' ≥ 0 beyond its rounding at
        90 digits where f'' has a closed form), then by sympy where that is cheap.
        :attr:`convexity_check` records which decided.
    name : str, optional
        Display name; catalog entries carry their catalog name.
    params : mapping, optional
        The parameters the generator was built with (for display and provenance).
    source : str, optional
        Where the generator comes from (paper, textbook).

    Raises
    ------
    ValueError
        If f(1) ≠ 0 (or cannot be shown to be exactly 0), f is not convex, or the checks do
        not finish in time; the message says which and, where it can be computed in time,
        shows the standardised generator f(u) − f(1) − f'(1)(u − 1).
    TypeError
        If ``f`` is not a sympy expression.

    Notes
    -----
    Derived quantities are cached properties returning sympy objects, so a REPL user can
    ``simplify``, ``latex`` or ``series`` them.
    """

    def __init__(
        self,
        f,
        *,
        name: str | None = None,
        params: Mapping[str, sympy.Expr] | None = None,
        source: str | None = None,
        _convexity: str | None = None,
    ):
        if isinstance(f, str):
            raise TypeError("FDivergence takes a sympy expression; use FDivergence.from_string(text)")
        if not isinstance(f, sympy.Expr):
            raise TypeError(f"generator must be a sympy expression in u, got {type(f).__name__}")
        # accept a plain Symbol('u') from the user and switch it to our positive u
        plain = [s for s in f.free_symbols if s.name == "u" and s != u]
        if plain:
            f = f.subs({s: u for s in plain})
        extra = sorted((s for s in f.free_symbols if s != u), key=str)
        self._f = f
        self.name = name or f"f(u) = {_short(f, None)}"
        self.params = dict(params or {})
        self.source = source
        if _convexity is not None:
            self.convexity_check = _convexity
            return
        start = time.monotonic()

        def left(share=1.0):
            return share * VALIDATION_SECONDS - (time.monotonic() - start)

        failures = []
        f1 = self._value_at_one(f, seconds=left(0.25))
        if f1 is not None:
            failures.append(f1 if isinstance(f1, str) else f"f(1) = {_short(f1)} ≠ 0")
        how = "not checked (f(1) ≠ 0)"
        if not failures:
            convex, how = self._check_convex(extra, deadline=start + 0.85 * VALIDATION_SECONDS)
            if not convex:
                failures.append(how)
        if failures:
            msg = f"invalid generator {_short(f)}: " + "; ".join(failures)
            std = self._standardised_text(f, seconds=min(left(), 0.2 * VALIDATION_SECONDS))
            if std is not None:
                msg += f". The standardised generator f(u) - f(1) - f'(1)*(u - 1) is {std}"
            raise ValueError(msg)
        self.convexity_check = how

    # ------------------------------------------------------------------ construction
    #: The :class:`Family` this divergence is a member of (``None`` for a plain generator).
    family = None

    @classmethod
    def from_string(cls, text: str, *, name: str | None = None, params=None,
                    **values) -> FDivergence:
        """Build from text through the whitelist parser (never ``sympify``).

        Names given as keywords become allowed symbols and are substituted by their values
        (a plain generator). ``params={"a": value}`` instead declares ``a`` a parameter:
        the result is the member at ``value`` of a :class:`Family` (``.family``), whose
        kernels take the value at run time.

        >>> FDivergence.from_string("u**a - 1 - a*(u - 1)", a=2).f
        u**2 - 2*u + 1
        >>> d = FDivergence.from_string("(u**a - 1 - a*(u - 1))/(a*(a - 1))", params={"a": "1/2"})
        >>> d.f, d.family.symbols
        (-4*sqrt(u) + 2*u + 2, (a,))
        """
        if params is not None:
            if values:
                raise TypeError("give parameters either as params={...} or as keywords, not both")
            fam = Family.from_string(text, params=params, name=name)
            return fam.at()
        params = values
        values = {k: _as_param(k, v) for k, v in params.items()}
        symbols = {"u": u, **{k: sympy.Symbol(k, real=True) for k in values}}
        expr = parse_expression(text, symbols=symbols)
        if not isinstance(expr, sympy.Expr):
            raise ParseError(f"{text!r} is not an expression")
        expr = expr.subs({symbols[k]: v for k, v in values.items()})
        if not expr.has(u):
            raise ValueError(f"generator {text!r} does not depend on u")
        return cls(expr, name=name, params=values)

    @staticmethod
    def _value_at_one(f: sympy.Expr, *, seconds: float = VALIDATION_SECONDS / 4):
        """None when f(1) = 0 exactly, else the offending value (or a message).

        Exactly zero is required, shown by sympy: a nonzero constant however small
        (1/10**60, the float 1e-60) is refused, and so is a constant that sympy cannot
        reduce to 0 within ``seconds`` (the message then says so, with its numeric size).
        Constants equal to 0 in disguise (log(6) - log(2) - log(3)) pass.
        """
        v = f.subs(u, 1)
        if v.is_zero:
            return None
        if v.is_zero is False:
            return v
        try:
            with _time_limit(max(seconds, 0.05)) as timed:
                if timed or _symbolic_is_cheap(v):
                    v = _tidy(v)
                    if v.is_zero or sympy.expand_log(v, force=True).is_zero:
                        return None
                    if v.is_zero is False:
                        return v
        except _Timeout:
            pass
        try:
            with mpmath.workdps(CHECK_DPS + 20):
                num = mpmath.mpmathify(_mp_function(v)(mpmath.mpf(1)))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            return v
        if abs(num) >= mpmath.mpf(10) ** (-CHECK_DPS):
            return v
        return (f"f(1) = {_short(v)} could not be shown to be exactly 0 (numerically "
                f"|f(1)| < 1e-{CHECK_DPS}); write the constant so that it cancels exactly")

    @staticmethod
    def _standardised_text(f: sympy.Expr, *, seconds: float = VALIDATION_SECONDS / 4
                           ) -> str | None:
        try:
            with _time_limit(max(seconds, 0.05)) as timed:
                f1 = f.subs(u, 1)
                d1 = sympy.diff(f, u).subs(u, 1)
                cheap = timed or _symbolic_is_cheap(f)
                if f1.is_zero and (d1.is_zero or (cheap and sympy.simplify(d1).is_zero)):
                    return None
                std = f - f1 - d1 * (u - 1)
                return _short(_tidy(std) if cheap else std)
        except (TypeError, ValueError, _Timeout):
            return None

    def _check_convex(self, extra, *, deadline: float | None = None) -> tuple[bool, str]:
        """Convexity on (0, oo): the numeric check first (it refuses a generator whose f''
        is negative somewhere on the grid), then sympy's proof where it is cheap."""
        if extra:
            names_ = ", ".join(map(str, extra))
            return False, (
                f"convexity could not be decided symbolically with free parameter(s) {names_}; "
                "substitute numeric values"
            )
        if deadline is None:
            deadline = time.monotonic() + 0.85 * VALIDATION_SECONDS
        d2 = None
        try:   # f'' for the pointwise test (sympy's diff can hang in its assumption queries)
            with _time_limit(min(0.2 * VALIDATION_SECONDS, deadline - time.monotonic())) as timed:
                if timed or _symbolic_is_cheap(self._f):
                    d2 = sympy.diff(self._f, u, 2)
        except _Timeout:
            d2 = None
        try:
            with _time_limit(deadline - time.monotonic()):
                convex, how = self._check_convex_numeric(deadline=deadline, d2=d2)
        except _Timeout:
            return False, (f"convexity could not be checked within {VALIDATION_SECONDS} s "
                           "(numeric check unfinished); simplify the generator")
        if convex is False:
            return False, how
        try:
            with _time_limit(deadline + 0.15 * VALIDATION_SECONDS - time.monotonic()) as timed:
                if not (timed or _symbolic_is_cheap(self._f)):
                    return bool(convex), how
                raw = sympy.diff(self._f, u, 2)
                verdict = raw.is_nonnegative
                d2 = raw if verdict is not None else _tidy(raw)
                if verdict is None:
                    verdict = d2.is_nonnegative
                if verdict is None and not d2.has(sympy.DiracDelta, sympy.Heaviside):
                    for form in (sympy.factor(d2), sympy.together(d2)):
                        verdict = form.is_nonnegative
                        if verdict is not None:
                            break
        except _Timeout:
            return bool(convex), how + " (the symbolic check did not finish in time)"
        if verdict is True:
            return True, f"symbolic: f''(u) = {_short(d2)} ≥ 0 on (0, oo)"
        if verdict is False:
            return False, f"f is not convex: f''(u) = {_short(d2)} is negative on (0, oo)"
        return bool(convex), how

    def _check_convex_numeric(self, *, deadline: float | None = None,
                              d2: sympy.Expr | None = None) -> tuple[bool, str]:
        """Numeric convexity on a log-grid, walking out from u = 1.

        Two tests at every grid point u_k (:data:`CONVEXITY_DECADES`,
        :data:`CONVEXITY_PER_DECADE`): the secant slopes of f must not decrease (kinks
        allowed: |u - 1|, max(...)), and where f'' has a closed form without Dirac deltas,
        f''(u_k) must not be negative beyond its own rounding error — f'' is evaluated at
        CHECK_DPS and at CHECK_DPS + 40 digits and a point fails when the more precise
        value is below −100 times their difference (scale-aware: a sum of large terms that
        cancels to 0 passes, 1/u − 2·10⁻¹⁵ at u = 10²⁰ fails, and so does
        1/u − sin(u − 1)/10⁸ where the sine is positive at u ≈ 10⁹, which the secants of
        f average away). The walk stops where |f| or |f''| exceeds 2^CONVEXITY_MAX_BITS
        or mpmath overflows (the range checked is reported).
        """
        if deadline is None:
            deadline = time.monotonic() + 0.85 * VALIDATION_SECONDS
        fn = _mp_function(self._f)
        d2fn = None
        if d2 is not None and not d2.has(sympy.DiracDelta, sympy.Heaviside, sympy.Derivative,
                                         sympy.Subs):
            try:
                d2fn = _mp_function(d2)
            except (TypeError, ValueError, NameError, SyntaxError):  # pragma: no cover
                d2fn = None
        lo, hi = CONVEXITY_DECADES
        per = CONVEXITY_PER_DECADE
        ks = list(range(lo * per, hi * per + 1))
        mid = ks.index(0)
        grid, vals = {}, {}

        def value(fun, x, dps):
            with mpmath.workdps(dps):
                y = mpmath.mpmathify(fun(x))
            if isinstance(y, mpmath.mpc):
                if abs(y.imag) > mpmath.mpf(10) ** (-CHECK_DPS) * (1 + abs(y.real)):
                    raise ValueError(f"not real ({mpmath.nstr(y, 5)})")
                y = y.real
            return y

        def huge(y):
            return mpmath.isinf(y) or (y != 0 and mpmath.mag(y) > CONVEXITY_MAX_BITS)

        stops = {}
        for direction in (1, -1):
            idx = mid if direction == 1 else mid - 1
            while 0 <= idx < len(ks):
                if time.monotonic() > deadline:
                    return False, (f"convexity could not be checked within {VALIDATION_SECONDS} s "
                                   "(numeric check unfinished); simplify the generator")
                k = ks[idx]
                with mpmath.workdps(CHECK_DPS + 50):
                    x = mpmath.mpf(10) ** (mpmath.mpf(k) / per)
                try:
                    if d2fn is not None:
                        hi_p = value(d2fn, x, CHECK_DPS + 40)
                        if huge(hi_p):
                            break
                        if not mpmath.isfinite(hi_p):
                            return False, (f"f'' is not real and finite at u = "
                                           f"{mpmath.nstr(x, 5)} ({hi_p})")
                        if hi_p < 0:
                            lo_p = value(d2fn, x, CHECK_DPS)
                            if lo_p < 0 and -hi_p > 100 * abs(hi_p - lo_p):
                                return False, (
                                    f"f is not convex: f''(u) = {mpmath.nstr(hi_p, 6)} < 0 at "
                                    f"u = {mpmath.nstr(x, 6)} (numeric check, "
                                    f"{CHECK_DPS + 40} digits)")
                    if d2fn is None or k % 4 == 0:    # with f'' checked, secants 4x sparser
                        # 45 more digits than the check: secants 1e-31 wide near u = 1e-30
                        y = value(fn, x, CHECK_DPS + 45)
                        if huge(y):
                            break
                        if not mpmath.isfinite(y):
                            return False, (f"f is not real and finite at u = "
                                           f"{mpmath.nstr(x, 5)} ({y})")
                        grid[k], vals[k] = x, y
                except OverflowError:
                    break
                except (ValueError, ZeroDivisionError, TypeError) as exc:
                    return False, f"f cannot be evaluated at u = {mpmath.nstr(x, 5)}: {exc}"
                idx += direction
            stops[direction] = idx
            if d2fn is None or 0 <= idx < len(ks):
                continue   # f'' only, one point per decade beyond the dense grid, to 10^±300
            for dec in range(hi + 1, CONVEXITY_FAR_DECADE + 1):
                with mpmath.workdps(CHECK_DPS + 50):
                    x = mpmath.mpf(10) ** (direction * dec)
                try:
                    hi_p = value(d2fn, x, CHECK_DPS + 40)
                    if huge(hi_p) or not mpmath.isfinite(hi_p):
                        break
                    if hi_p < 0:
                        lo_p = value(d2fn, x, CHECK_DPS)
                        if lo_p < 0 and -hi_p > 100 * abs(hi_p - lo_p):
                            return False, (
                                f"f is not convex: f''(u) = {mpmath.nstr(hi_p, 6)} < 0 at "
                                f"u = {mpmath.nstr(x, 6)} (numeric check, {CHECK_DPS + 40} "
                                "digits)")
                except (OverflowError, ValueError, ZeroDivisionError, TypeError):
                    break
        keys = sorted(grid)
        if len(keys) < 3:
            return None, ("f could not be evaluated numerically around u = 1 (beyond "
                          f"2^{CONVEXITY_MAX_BITS} or an mpmath overflow)")
        with mpmath.workdps(CHECK_DPS + 10):
            slopes = [(vals[b] - vals[a]) / (grid[b] - grid[a])
                      for a, b in zip(keys, keys[1:], strict=False)]
            tol = mpmath.mpf(10) ** (-(CHECK_DPS - 10))
            for i in range(len(slopes) - 1):
                if slopes[i + 1] < slopes[i] - tol * (1 + abs(slopes[i]) + abs(slopes[i + 1])):
                    return False, (
                        "f is not convex: its slope decreases near u = "
                        f"{mpmath.nstr(grid[keys[i + 1]], 6)} (numeric check, {CHECK_DPS} digits)"
                    )
        what = (f"slopes of f non-decreasing on {len(keys)} points"
                + (f" and f'' ≥ 0 on {stops[1] - stops[-1] - 1} points" if d2fn is not None
                   else ""))
        return True, (
            f"numeric: {what} of a log-grid {mpmath.nstr(grid[keys[0]], 3)}…"
            f"{mpmath.nstr(grid[keys[-1]], 3)} at {CHECK_DPS}+ digits"
        )

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        return f"FDivergence({self.name!r}, f={sympy.sstr(self._f)})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, FDivergence):
            return NotImplemented
        return sympy.simplify(self._f - other._f) == 0

    def __hash__(self) -> int:
        return hash(sympy.srepr(self._f))

    # ------------------------------------------------------------------ derived quantities
    @property
    def f(self) -> sympy.Expr:
        """The generator f(u)."""
        return self._f

    @functools.cached_property
    def df(self) -> sympy.Expr:
        """f'(u)."""
        return _tidy(sympy.diff(self._f, u))

    @functools.cached_property
    def d2f(self) -> sympy.Expr:
        """f''(u)."""
        return _tidy(sympy.diff(self.df, u))

    @functools.cached_property
    def df_at_one(self) -> sympy.Expr:
        """f'(1): the slope removed by :attr:`standardized`."""
        v = _safe_limit(self.df, 1, "+")
        return v if v is not None else _tidy(self.df.subs(u, 1))

    @functools.cached_property
    def standardized(self) -> sympy.Expr:
        r"""The standardised generator :math:`f(u) - f'(1)(u - 1)`: ≥ 0, zero at u = 1.

        It defines the same divergence between normalised P and Q (the added term sums to
        zero) and every term :math:`q\,f_{std}(p/q)` of the sum is non-negative, which is
        how the kernels avoid cancellation.
        """
        return _tidy(self._f - self.df_at_one * (u - 1))

    @functools.cached_property
    def weighting(self) -> sympy.Expr:
        r"""The f-distill gradient weight :math:`h(u) = u^2 f''(u)` (Xu et al. 2025)."""
        return _tidy(u**2 * self.d2f)

    @functools.cached_property
    def f_at_zero(self) -> sympy.Expr:
        r""":math:`f(0^+) = \lim_{u\to 0^+} f(u)`: the value of :math:`q f(0/q) / q`."""
        return self._limit_or_raise(self._f, 0, "+", "lim f(u) as u -> 0+")

    @functools.cached_property
    def slope_at_infinity(self) -> sympy.Expr:
        r""":math:`f'(\infty) = \lim_{u\to\infty} f(u)/u`: the value of :math:`0\cdot f(p/0) / p`."""
        return self._limit_or_raise(self._f / u, sympy.oo, "-", "lim f(u)/u as u -> oo")

    @functools.cached_property
    def df_at_zero(self) -> sympy.Expr:
        r""":math:`f'(0^+)`, the left end of the range of f' (of the reward map)."""
        return self._limit_or_raise(self.df, 0, "+", "lim f'(u) as u -> 0+")

    def _limit_or_raise(self, expr, point, direction: str, what: str) -> sympy.Expr:
        v = _safe_limit(expr, point, direction)
        if v is None:
            raise ValueError(f"{self.name}: sympy could not find {what}")
        return v

    @property
    def reward_map(self) -> sympy.Expr:
        r"""The f-DPO KKT map :math:`u \mapsto f'(u)`.

        For :math:`\max_\pi \mathbb{E}_\pi[r] - \beta D_f(\pi\|\pi_{ref})` the optimum satisfies
        :math:`r(y) = \beta f'(\pi^*(y)/\pi_{ref}(y)) + \lambda` (Wang et al. 2024, f-DPO),
        with u = π/π_ref (π is P, the first argument).
        """
        return self.df

    @functools.cached_property
    def policy_domain(self) -> sympy.Interval:
        r"""The open interval :math:`(f'(0^+), f'(\infty))` of values of the reward map."""
        return sympy.Interval.open(self.df_at_zero, self.slope_at_infinity)

    @functools.cached_property
    def strictly_convex(self) -> bool:
        """True when f'' > 0 on (0, ∞) (then f' is invertible)."""
        d2 = self.d2f
        if d2.has(sympy.DiracDelta, sympy.Heaviside, sympy.sign):
            return False
        pos = d2.is_positive
        if pos is None:
            pos = sympy.factor(d2).is_positive
        if pos is not None:
            return bool(pos)
        fn = _mp_function(d2)
        with mpmath.workdps(CHECK_DPS):
            return all(mpmath.re(fn(x)) > 0 for x in _log_grid()[::8])

    @functools.cached_property
    def policy_map(self) -> sympy.Expr | None:
        r"""The inverse reward map :math:`(f')^{-1}(t)`: the policy ratio π*/π_ref from a reward.

        Defined on :attr:`policy_domain`; ``None`` when f' is not invertible (f not strictly
        convex, e.g. tv) or sympy finds no closed form (numeric kernels then invert f'
        numerically).
        """
        if not self.strictly_convex:
            return None
        w = sympy.Symbol("w", positive=True)
        try:
            with _time_limit(POLICY_MAP_SECONDS):
                sols = _bounded_solve(sympy.Eq(self.df.subs(u, w), t), w)
                probe_points = self._interior_probe_points()
                for cand in sols:
                    cand = self._on_interior(_tidy(cand))
                    if self._is_inverse(cand, probe_points):
                        return cand
        except _Timeout:
            # sympy's solve can run for minutes on a member with a decimal parameter
            # (js at beta = 3/10); the numeric inverse of f' serves such members
            return None
        return None

    def _on_interior(self, expr: sympy.Expr) -> sympy.Expr:
        """Simplify an expression of t using a < t < b, the image of f' (removes Abs etc.)."""
        a, b = self.df_at_zero, self.slope_at_infinity
        facts = sympy.true
        if a.is_finite:
            facts = facts & sympy.Q.gt(t, a)
        if b.is_finite:
            facts = facts & sympy.Q.lt(t, b)
        if facts is sympy.true:
            return expr
        try:
            return _tidy(sympy.refine(expr, facts))
        except (NotImplementedError, TypeError, ValueError, RecursionError):  # pragma: no cover
            return expr

    def _interior_probe_points(self) -> list[sympy.Expr]:
        lo, hi = self.df_at_zero, self.slope_at_infinity
        pts = []
        for x in _PROBES:
            v = self.df.subs(u, x)
            if lo < v < hi:
                pts.append(v)
        return pts

    def _is_inverse(self, cand: sympy.Expr, points) -> bool:
        if not points:
            return False
        for tv, x in zip(points, _PROBES, strict=False):
            val = sympy.N(cand.subs(t, tv), 40)
            if not val.is_real or abs(val - x) > sympy.Float("1e-30"):
                return False
        return True

    @functools.cached_property
    def fdpo_positive(self) -> bool:
        r"""The f-DPO positivity condition :math:`f'(0^+) = -\infty` (0 ∉ dom f').

        When it holds, the optimal policy of the f-regularised objective puts positive mass
        wherever π_ref does, so the KKT multipliers μ vanish and the normaliser λ cancels in
        the Bradley–Terry loss (Wang et al. 2024, Theorem 1).
        """
        return self.df_at_zero == -sympy.oo

    @functools.cached_property
    def conjugate(self) -> Conjugate:
        r"""The convex conjugate :math:`f^*(t) = \sup_{u>0}(t u - f(u))` with its domain.

        Closed form :math:`f^*(t) = t\,g(t) - f(g(t))` with :math:`g = (f')^{-1}` where sympy
        finds g; otherwise a numeric Legendre transform evaluated with mpmath.
        """
        a, b = self.df_at_zero, self.slope_at_infinity
        interior = sympy.Interval.open(a, b)
        right_val = None
        if b.is_finite:
            right_val = _safe_limit(b * u - self._f, sympy.oo, "-")
            if right_val is not None and not right_val.is_finite:
                right_val = None
        domain = sympy.Interval(-sympy.oo, b, right_open=right_val is None)
        g = self.policy_map
        if g is None:
            return Conjugate(None, domain, interior, "numeric Legendre transform", None, self)
        expr = self._on_interior(_tidy(t * g - self._f.subs(u, g)))
        if expr.has(sympy.I):
            expr = self._real_form(expr)
        pieces = []
        if a.is_finite:
            pieces.append((-self.f_at_zero, t <= a))
        pieces.append((expr, t < b) if b.is_finite else (expr, True))
        if b.is_finite:
            if right_val is not None:
                pieces.append((right_val, sympy.Eq(t, b)))
            pieces.append((sympy.oo, True))
        pw = sympy.Piecewise(*pieces) if len(pieces) > 1 else expr
        return Conjugate(expr, domain, interior, "closed form", pw, self)

    def _real_form(self, expr: sympy.Expr) -> sympy.Expr:
        r"""A form of ``expr`` without ``I`` on the interior :math:`(a, b)` of the image of f'.

        sympy writes e.g. the conjugate of reverse_kl as :math:`-\log t - 1 + i\pi`, which is
        real on :math:`t < 0` only through the branch of the log. Writing :math:`t` as
        :math:`b - w` (or :math:`a + w`) with :math:`w > 0` lets sympy split
        :math:`\log(-w) = \log w + i\pi`; the result, back in :math:`t`, is kept when it has
        no ``I`` and agrees with the real part of ``expr`` at interior points.
        """
        a, b = self.df_at_zero, self.slope_at_infinity
        w = sympy.Symbol("w", positive=True)
        for end, sign in ((b, -1), (a, 1)):
            if not end.is_finite:
                continue
            try:
                cand = _tidy(sympy.expand_log(expr.subs(t, end + sign * w), force=True))
            except (TypeError, ValueError, NotImplementedError):  # pragma: no cover
                continue
            if cand.has(sympy.I):
                continue
            cand = _tidy(cand.subs(w, sign * (t - end)))
            probes = [end + sign * sympy.Rational(k, 3) for k in (1, 2, 5)]
            if all(abs(sympy.N(cand.subs(t, x) - sympy.re(expr.subs(t, x)), 30)) < 1e-25
                   for x in probes):
                return cand
        return expr

    def _legendre(self, tv):
        """Numeric f*(tv) at the caller's mpmath precision: solve f'(u) = tv by bisection."""
        a, b = self.df_at_zero, self.slope_at_infinity
        f_mp = _mp_function(self._f)
        df_mp = _mp_function(self.df)
        a_mp = mpmath.mpf(sympy.N(a, mpmath.mp.dps)) if a.is_finite else mpmath.ninf
        b_mp = mpmath.mpf(sympy.N(b, mpmath.mp.dps)) if b.is_finite else mpmath.inf
        if tv <= a_mp:
            return -mpmath.mpf(sympy.N(self.f_at_zero, mpmath.mp.dps))
        if tv >= b_mp:
            if tv > b_mp:
                return mpmath.inf
            lim = self.conjugate.domain.contains(b)
            if lim is sympy.true:
                v = _safe_limit(b * u - self._f, sympy.oo, "-")
                return mpmath.mpf(sympy.N(v, mpmath.mp.dps))
            return mpmath.inf
        # bracket the root of f'(u) - tv in log u; f' is non-decreasing
        lo, hi = mpmath.mpf(-1), mpmath.mpf(1)
        while mpmath.re(df_mp(mpmath.exp(lo))) > tv and lo > -10**6:
            lo *= 2
        while mpmath.re(df_mp(mpmath.exp(hi))) < tv and hi < 10**6:
            hi *= 2
        for _ in range(4 * mpmath.mp.prec):
            mid = (lo + hi) / 2
            if mpmath.re(df_mp(mpmath.exp(mid))) < tv:
                lo = mid
            else:
                hi = mid
            if hi - lo < mpmath.eps * (1 + abs(mid)):
                break
        x = mpmath.exp((lo + hi) / 2)
        return tv * x - mpmath.re(f_mp(x))

    @functools.cached_property
    def reverse(self) -> FDivergence:
        r"""The reverse divergence, generator :math:`u f(1/u)`: :math:`D_{rev}(P\|Q) = D_f(Q\|P)`."""
        g = _tidy(u * self._f.subs(u, 1 / u))
        name = _REVERSE_NAMES.get(self.name, f"reverse of {self.name}")
        return FDivergence(
            g,
            name=name,
            params=self.params,
            source=self.source,
            _convexity=f"inherited: the perspective u f(1/u) of {self.name}, which is convex",
        )

    # ------------------------------------------------------------------ finite supports
    def discrete(self, P: Sequence, Q: Sequence, *, check_normalized: bool = True) -> sympy.Expr:
        r"""Sympy expression of :math:`D_f(P\|Q) = \sum_i q_i f(p_i/q_i)` on a finite support.

        Parameters
        ----------
        P, Q : sequences of numbers or sympy expressions
            Probabilities of the same support; P is the first argument (the target).
            Strings are parsed as numbers through the whitelist parser.
        check_normalized : bool, keyword-only
            When all entries are numbers, require each of P and Q to sum to 1.

        Notes
        -----
        Zero-mass rules: :math:`0\cdot f(0/0) = 0`, :math:`q f(0/q) = q f(0^+)`,
        :math:`0 \cdot f(p/0) = p f'(\infty)` (so KL is ``oo`` where q = 0 < p).
        Symbolic entries are taken as positive.

        >>> from theory import fdiv
        >>> fdiv.get("kl").discrete([1, 0], ["1/2", "1/2"])
        log(2)
        >>> fdiv.get("kl").discrete(["1/2", "1/2"], [1, 0])
        oo
        """
        Ps = [self._prob(x, "P", i) for i, x in enumerate(P)]
        Qs = [self._prob(x, "Q", i) for i, x in enumerate(Q)]
        if len(Ps) != len(Qs):
            raise ValueError(f"P and Q must have the same length, got {len(Ps)} and {len(Qs)}")
        if not Ps:
            raise ValueError("P and Q must not be empty")
        if check_normalized:
            for label, vec in (("P", Ps), ("Q", Qs)):
                if all(x.is_number for x in vec):
                    s = sympy.nsimplify(sum(vec)) if any(x.is_Float for x in vec) else sum(vec)
                    if abs(sympy.N(s - 1, 30)) > 1e-12:
                        raise ValueError(f"{label} must sum to 1, got {sympy.N(s, 15)}")
        terms = []
        for p, q in zip(Ps, Qs, strict=True):
            pz, qz = p.is_zero, q.is_zero
            if pz and qz:
                continue
            if pz:
                terms.append(q * self.f_at_zero)
            elif qz:
                terms.append(p * self.slope_at_infinity)
            else:
                terms.append(q * self._f.subs(u, p / q))
        total = sympy.Add(*terms)
        return total

    @staticmethod
    def _prob(x, label: str, i: int) -> sympy.Expr:
        if isinstance(x, str):
            x = parse_number(x)
        elif isinstance(x, bool):
            raise TypeError(f"{label}[{i}] must be a number, got a bool")
        elif isinstance(x, (int, float)):
            x = sympy.Integer(x) if isinstance(x, int) else sympy.Float(x)
        elif not isinstance(x, sympy.Basic):
            raise TypeError(f"{label}[{i}] must be a number or sympy expression, got {type(x).__name__}")
        if x.is_number and (x.is_negative or not x.is_real):
            raise ValueError(f"{label}[{i}] = {x} is not a probability (must be real and ≥ 0)")
        return x


# ---------------------------------------------------------------------- Rényi
class RenyiDivergence:
    r"""Rényi divergence of order α as a transform of the power f-divergence.

    .. math::

        R_\alpha(P\|Q) = \frac{1}{\alpha - 1}\log \sum_i p_i^\alpha q_i^{1-\alpha}
                       = \frac{\log\left(1 + (\alpha - 1) D_{f_\alpha}(P\|Q)\right)}{\alpha - 1},
        \qquad f_\alpha(u) = \frac{u^\alpha - 1}{\alpha - 1},

    so :math:`R_\alpha` is a monotone function of an f-divergence but not one itself
    (Rényi 1961; Liese & Vajda 2006, Sec. II). At α = 1 it is KL(P‖Q).

    >>> r = renyi(2)
    >>> r.power.f
    u**2 - 1
    >>> sympy.simplify(r.discrete(["1/2", "1/2"], ["1/4", "3/4"]))
    log(4/3)
    """

    def __init__(self, alpha):
        self.alpha = _as_param("alpha", alpha)
        if not (self.alpha.is_number and self.alpha.is_positive):
            raise ValueError(f"Rényi order alpha must be a positive number, got {self.alpha}")
        self.power = get("power", alpha=self.alpha) if self.alpha != 1 else get("kl")

    def from_fdivergence(self, d: sympy.Expr) -> sympy.Expr:
        """The Rényi value from the value ``d`` of the power divergence."""
        if self.alpha == 1:
            return d
        return sympy.log(1 + (self.alpha - 1) * d) / (self.alpha - 1)

    def discrete(self, P: Sequence, Q: Sequence, **kw) -> sympy.Expr:
        """Sympy expression of R_α(P‖Q) on a finite support (P first)."""
        return self.from_fdivergence(self.power.discrete(P, Q, **kw))

    def __repr__(self) -> str:
        return f"RenyiDivergence(alpha={self.alpha})"


def renyi(alpha) -> RenyiDivergence:
    """The Rényi divergence of order ``alpha`` (> 0); see :class:`RenyiDivergence`."""
    return RenyiDivergence(alpha)


# ---------------------------------------------------------------------- families
@dataclass(frozen=True)
class Parameter:
    """A real parameter of a :class:`Family`: its name, sympy symbol, default and domain.

    ``domain`` is a :class:`sympy.Interval` (``Reals`` when any real value is allowed).
    """

    name: str
    symbol: sympy.Symbol
    default: sympy.Expr
    domain: sympy.Set = sympy.S.Reals

    def check(self, value: sympy.Expr) -> None:
        """Raise ``ValueError`` unless ``value`` lies in :attr:`domain`."""
        if not value.is_real:
            raise ValueError(f"parameter {self.name!r} must be real, got {value}")
        if self.domain.contains(value) is not sympy.true:
            raise ValueError(f"parameter {self.name!r} must lie in {self.domain}, got {value}")


#: Symbol names the kernels use for their own variables (ratio, conjugate variable,
#: probabilities, log-ratio, log-weights): not available as parameter names.
RESERVED_NAMES = frozenset({"u", "t", "p", "q", "ell", "log_p", "log_q", "dk_v"})


class Family:
    r"""A family of generators :math:`f(u;\theta)` with its parameters kept as symbols.

    The element kernels of :mod:`numeric` derive their forms once per family, with the
    parameters as symbols, and take the values at run time; :meth:`at` substitutes exact
    values for the REPL face (an :class:`FDivergence`, as :func:`get` returns).

    Parameters
    ----------
    name : str
        Catalog name (``"alpha"``) or a label for a user family.
    generator : sympy.Expr
        :math:`f` in :data:`theory.u` and the parameters' symbols.
    parameters : sequence of Parameter
    endpoints : mapping, optional
        ``{parameter name: {value: generator}}`` where the general expression is not
        defined (a 0/0 such as α(α − 1) in a denominator). Values missing here are found as
        the real roots of the generator's denominator and their generators derived as the
        limit of the standardised generator :math:`f - f'(1)(u - 1)`.
    summary, source : str
    convexity : str, optional
        How convexity is known for every value in the domain (catalog families); ``None``
        checks each instance on construction.

    Examples
    --------
    >>> fam = family("alpha")
    >>> [p.name for p in fam.parameters], fam.singular_values("alpha")
    (['alpha'], [0, 1])
    >>> fam.at(alpha=0).f
    u*log(u) - u + 1
    >>> user = Family.from_string("(u**a - 1 - a*(u - 1))/(a*(a - 1))", params={"a": "1/2"})
    >>> user.at(a=2).f
    u**2/2 - u + 1/2
    """

    def __init__(self, name: str, generator: sympy.Expr, parameters: Sequence[Parameter] = (),
                 *, endpoints: Mapping | None = None, summary: str = "", source: str = "",
                 convexity: str | None = None, key=None):
        self.name = name
        self.generator = generator
        self.parameters = tuple(parameters)
        self._endpoints = {k: dict(v) for k, v in (endpoints or {}).items()}
        self.summary = summary
        self.source = source
        self.convexity = convexity
        self.key = key if key is not None else ("user", sympy.srepr(generator),
                                                tuple(p.name for p in self.parameters))

    def __repr__(self) -> str:
        ps = ", ".join(p.name for p in self.parameters)
        return f"Family({self.name!r}, f={sympy.sstr(self.generator)}, parameters=({ps}))"

    def __eq__(self, other) -> bool:
        return isinstance(other, Family) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        """The parameters' symbols, in order."""
        return tuple(p.symbol for p in self.parameters)

    @classmethod
    def from_string(cls, text: str, *, params: Mapping[str, object], name: str | None = None,
                    domains: Mapping[str, sympy.Set] | None = None) -> Family:
        """A user family from text (whitelist parser) with declared parameters.

        ``params`` maps each parameter name to its default value; ``domains`` optionally
        restricts a parameter (default: all reals, convexity checked per value).
        """
        if not params:
            raise ValueError("a family needs at least one parameter; use FDivergence.from_string")
        defaults = {k: _as_param(k, v) for k, v in params.items()}
        for k in defaults:
            if k in RESERVED_NAMES or not k.isidentifier():
                raise ValueError(f"invalid parameter name {k!r} (reserved: "
                                 f"{', '.join(sorted(RESERVED_NAMES))})")
        syms = {k: sympy.Symbol(k, real=True) for k in defaults}
        expr = parse_expression(text, symbols={"u": u, **syms})
        if not isinstance(expr, sympy.Expr) or not expr.has(u):
            raise ValueError(f"generator {text!r} must be an expression in u")
        doms = dict(domains or {})
        ps = [Parameter(k, syms[k], defaults[k], doms.get(k, sympy.S.Reals)) for k in defaults]
        return cls(name or f"f(u) = {text.strip()}", expr, ps)

    # ------------------------------------------------------------------ endpoints
    @functools.cache  # noqa: B019 - families live for the process
    def singular_values(self, pname: str) -> list:
        """Values of parameter ``pname`` where the general generator is undefined (0/0)."""
        par = self._param(pname)
        known = set(self._endpoints.get(pname, {}))
        den = sympy.denom(sympy.together(self.generator))
        roots = set()
        if den.has(par.symbol):
            for r in sympy.solve(den, par.symbol):
                if r.is_real and not r.free_symbols and par.domain.contains(r) is sympy.true:
                    roots.add(r)
        return sorted(known | roots, key=float)

    def _param(self, pname: str) -> Parameter:
        for p in self.parameters:
            if p.name == pname:
                return p
        raise ValueError(f"{self.name} has no parameter {pname!r}; parameters: "
                         f"{', '.join(p.name for p in self.parameters) or 'none'}")

    @functools.cache  # noqa: B019
    def endpoint_generator(self, pname: str, value) -> sympy.Expr:
        """The generator at a singular value: given, or the limit of the standardised one."""
        given = self._endpoints.get(pname, {})
        for k, g in given.items():
            if sympy.sympify(k) == value:
                return g
        sym = self._param(pname).symbol
        f = self.generator
        std = f - sympy.diff(f, u).subs(u, 1) * (u - 1)
        lim = sympy.limit(std, sym, value)
        if lim.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan, sympy.Limit):
            raise ValueError(f"{self.name}: no finite limit of the generator at {pname} = {value}")
        return _tidy(lim)

    def values(self, **values) -> dict:
        """Exact, checked parameter values (defaults filled in), keyed by name."""
        unknown = set(values) - {p.name for p in self.parameters}
        if unknown:
            allowed = ", ".join(p.name for p in self.parameters) or "none"
            raise ValueError(f"{self.name} has no parameter(s) {', '.join(sorted(unknown))}; "
                             f"allowed: {allowed}")
        out = {}
        for p in self.parameters:
            v = values.get(p.name, p.default)
            v = _as_param(p.name, v)
            p.check(v)
            out[p.name] = v
        return out

    def generator_at(self, values: Mapping) -> sympy.Expr:
        """The generator at exact parameter ``values`` (endpoint forms where needed)."""
        for p in self.parameters:
            if values[p.name] in self.singular_values(p.name):
                rest = {q.symbol: values[q.name] for q in self.parameters if q is not p}
                return self.endpoint_generator(p.name, values[p.name]).subs(rest)
        return self.generator.subs({p.symbol: values[p.name] for p in self.parameters})

    def at(self, **values) -> FDivergence:
        """The member of the family at ``values`` (exact numbers or strings)."""
        vals = self.values(**values)
        return _member(self, tuple(vals.items()))


@functools.lru_cache(maxsize=512)
def _member(fam: Family, items: tuple) -> FDivergence:
    values = dict(items)
    f = fam.generator_at(values)
    shown = [f"{k}={v}" for k, v in items]
    if fam.key[0] == "catalog":
        shown += [f"{k}={v}" for k, v in fam.key[2] if v]
        label = fam.key[1] + ("(" + ", ".join(shown) + ")" if shown else "")
    else:
        label = f"{fam.name} at " + ", ".join(shown)
    d = FDivergence(f, name=label, params=values, source=fam.source or None,
                    _convexity=fam.convexity)
    d.family = fam
    return d


# ---------------------------------------------------------------------- catalog
@dataclass(frozen=True)
class _Entry:
    name: str
    build: Callable[..., sympy.Expr]
    params: dict          # name -> (default, domain)
    options: dict         # structural options (bools), name -> default
    summary: str
    endpoints: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)


#: What the claim engines and closed-form routines are known to reach for a catalog
#: generator, with the value a new generator gets when its entry says nothing. The claim
#: catalog and the tests read these through :func:`facts`, so a new entry is checked by every
#: per-divergence claim without editing them; an entry records only what differs.
FACT_DEFAULTS = MappingProxyType({
    # verdict of the two-point claim D_f(P||Q) >= 0: "proved" where sympy decides it
    "nonneg_verdict": "certified",
    # verdict of Fenchel–Young f(u) + f*(t) >= u t: "consistent" where f* has no closed form
    # (sampled only), "proved" where the margin factors into a square
    "fenchel_young_verdict": "certified",
    # the t-range of that claim; None: derived from f'(0+) and f'(inf)
    "fenchel_young_t_range": None,
    # f' has a closed-form inverse (the f-DPO policy map); False for tv (not strictly
    # convex) and where sympy's solve finds none
    "policy_map_closed_form": True,
    # D_f between two Poisson members has a closed form (theory.expfam); None: not recorded
    "expfam_closed_form": None,
})


_REGISTRY: dict[str, _Entry] = {}
_REVERSE_NAMES = {"kl": "reverse_kl", "reverse_kl": "kl"}

def _register(name: str, summary: str, *, params=None, options=None, endpoints=None,
              facts=None):
    """Add a catalog family. ``params``: ``{name: (default, domain)}`` real parameters kept
    as symbols; ``options``: ``{name: default}`` structural switches (each value is its
    own family); ``endpoints``: generators at singular parameter values given by hand;
    ``facts``: the entries of :data:`FACT_DEFAULTS` that differ for this generator."""
    unknown = set(facts or {}) - set(FACT_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown catalog fact(s) {sorted(unknown)}; known: {list(FACT_DEFAULTS)}")

    def deco(fn):
        _REGISTRY[name] = _Entry(name, fn, dict(params or {}), dict(options or {}), summary,
                                 dict(endpoints or {}), dict(facts or {}))
        return fn

    return deco


def facts(name: str) -> MappingProxyType:
    """What is known of the catalog generator ``name``: :data:`FACT_DEFAULTS` with the
    entry's own values.

    >>> facts("tv")["policy_map_closed_form"]
    False
    >>> facts("kl")["nonneg_verdict"]
    'certified'
    """
    key, entry = _entry(name)
    return MappingProxyType({**FACT_DEFAULTS, **entry.facts})


def names() -> list[str]:
    """Catalog names, in catalog order.

    >>> names()[:3]
    ['kl', 'reverse_kl', 'js']
    """
    return list(_REGISTRY)


def _entry(name) -> tuple[str, _Entry]:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=4, cutoff=0.4)
        hint = f"; did you mean: {', '.join(close)}" if close else ""
        raise ValueError(f"unknown divergence {name!r}{hint} (catalog: {', '.join(_REGISTRY)})")
    return key, _REGISTRY[key]


def family(name: str, **options) -> Family:
    """The catalog family ``name`` with its structural ``options`` (e.g. ``normalized``).

    >>> family("js")
    Family('js', f=beta*u*log(u) - (beta*u - beta + 1)*log(beta*u - beta + 1), parameters=(beta))
    """
    key, entry = _entry(name)
    unknown = set(options) - set(entry.options)
    if unknown:
        raise ValueError(f"{key} has no option(s) {', '.join(sorted(unknown))}")
    opts = {k: _as_flag(k, options.get(k, d)) for k, d in entry.options.items()}
    return _family(key, tuple(sorted(opts.items())))


@functools.cache
def _family(key: str, opts: tuple) -> Family:
    entry = _REGISTRY[key]
    syms = {k: sympy.Symbol(k, real=True) for k in entry.params}
    gen = entry.build(**syms, **dict(opts))
    ps = [Parameter(k, syms[k], _as_param(k, d), dom) for k, (d, dom) in entry.params.items()]
    shown = [f"{k}={v}" for k, v in opts if v]
    label = key + ("[" + ", ".join(shown) + "]" if shown else "")
    return Family(label, gen, ps, endpoints={k: v for k, v in entry.endpoints.items()},
                  summary=entry.summary, source=" ".join((entry.build.__doc__ or "").split()),
                  key=("catalog", key, opts))


def get(name: str, **params) -> FDivergence:
    """The catalog divergence ``name`` with parameters ``params``.

    Raises
    ------
    ValueError
        For an unknown name (with the closest names suggested) or unknown/invalid parameters.

    >>> get("alpha", alpha="1/3").f
    -9*u**(2/3)/2 + 3*u + 3/2
    >>> get("kll")
    Traceback (most recent call last):
    ...
    ValueError: unknown divergence 'kll'; did you mean: kl (catalog: ...)
    """
    key, entry = _entry(name)
    opts = {k: params.pop(k) for k in list(params) if k in entry.options}
    unknown = set(params) - set(entry.params)
    if unknown:
        allowed = ", ".join(list(entry.params) + list(entry.options)) or "none"
        raise ValueError(f"{key} has no parameter(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    return family(key, **opts).at(**params)


log = sympy.log


@_register("kl", "Kullback–Leibler KL(P‖Q)",
           facts={"fenchel_young_t_range": (-3, 3), "expfam_closed_form": True})
def _kl():
    """KL(P‖Q) = Σ p log(p/q). Kullback & Leibler (1951); f = u log u (Csiszár 1967)."""
    return u * log(u)


@_register("reverse_kl", "reverse KL: KL(Q‖P)",
           facts={"fenchel_young_t_range": (-5, sympy.Rational(-1, 20)), "expfam_closed_form": True})
def _reverse_kl():
    """KL(Q‖P) = Σ q log(q/p); f = −log u, the reverse of kl. f-distill's "reverse-KL"."""
    return -log(u)


@_register("js", "generalised Jensen–Shannon JSD_β, M = βP + (1−β)Q",
           params={"beta": (sympy.Rational(1, 2), sympy.Interval(0, 1))},
           options={"normalized": False},
           facts={"fenchel_young_t_range": (-3, sympy.Rational(3, 10)), "expfam_closed_form": False})
def _js(beta, normalized):
    """Generalised JSD: β KL(P‖M) + (1−β) KL(Q‖M), M = βP + (1−β)Q (Lin 1991; Agarwal et al.
    2024 GKD; Liger-Kernel and TRL use the same β). f(u) = β u log u − (βu + 1 − β) log(βu + 1 − β).
    With ``normalized=True`` the generator is divided by β(1−β), which is continuous on [0, 1]
    with KL(P‖Q) at β → 0 and KL(Q‖P) at β → 1 (standardised forms)."""
    m = beta * u + 1 - beta
    f = beta * u * log(u) - m * log(m)
    return f / (beta * (1 - beta)) if normalized else f


@_register("hellinger", "squared Hellinger Σ(√p − √q)² = 2(1 − BC)",
           facts={"nonneg_verdict": "proved", "fenchel_young_t_range": (-3, sympy.Rational(9, 10)),
                  "expfam_closed_form": True})
def _hellinger():
    """Squared Hellinger distance H²(P,Q) = Σ (√p − √q)² = 2(1 − Σ√(pq)); f = (√u − 1)²
    (Hellinger 1909; Le Cam 1986). Some texts put a factor ½ in front."""
    return (sympy.sqrt(u) - 1) ** 2


@_register("tv", "total variation ½Σ|p − q|",
           facts={"nonneg_verdict": "proved", "fenchel_young_verdict": "consistent",
                  "fenchel_young_t_range": (sympy.Rational(-1, 2), sympy.Rational(1, 2)),
                  "policy_map_closed_form": False, "expfam_closed_form": False})
def _tv():
    """Total variation TV(P,Q) = ½ Σ |p − q|; f = |u − 1|/2 (Csiszár 1967)."""
    return sympy.Abs(u - 1) / 2


@_register("pearson", "Pearson χ²(P‖Q) = Σ (p − q)²/q",
           facts={"nonneg_verdict": "proved", "fenchel_young_verdict": "proved",
                  "fenchel_young_t_range": (-3, 3), "expfam_closed_form": True})
def _pearson():
    """Pearson χ²(P‖Q) = Σ (p − q)²/q; f = (u − 1)² (Pearson 1900; Csiszár 1967)."""
    return (u - 1) ** 2


@_register("neyman", "Neyman χ²(P‖Q) = Σ (p − q)²/p",
           facts={"nonneg_verdict": "proved", "fenchel_young_t_range": (-3, sympy.Rational(9, 10)),
                  "expfam_closed_form": True})
def _neyman():
    """Neyman χ²(P‖Q) = Σ (p − q)²/p; f = (u − 1)²/u, the reverse of pearson (Neyman 1949)."""
    return (u - 1) ** 2 / u


@_register("alpha", "Amari α-divergence (f-DPO form)",
           params={"alpha": (sympy.Rational(1, 2), sympy.S.Reals)},
           facts={"fenchel_young_t_range": (-3, sympy.Rational(19, 10)), "expfam_closed_form": True})
def _alpha(alpha):
    """Amari α-divergence in the f-DPO form f(u) = (u^{1−α} − (1−α)u − α)/(α(α − 1)), with
    f'(u) = (1 − u^{−α})/α and f''(u) = u^{−α−1} > 0 for every real α (Amari 1985; Wang et al.
    2024, f-DPO Table 1; DPH-RL). Limits: α → 0 gives kl, α → 1 gives reverse_kl
    (standardised)."""
    return (u ** (1 - alpha) - (1 - alpha) * u - alpha) / (alpha * (alpha - 1))


@_register("jeffreys", "Jeffreys KL(P‖Q) + KL(Q‖P)",
           facts={"fenchel_young_t_range": (-2, 3), "expfam_closed_form": True})
def _jeffreys():
    """Jeffreys divergence KL(P‖Q) + KL(Q‖P); f = (u − 1) log u (Jeffreys 1946; f-distill "jf")."""
    return (u - 1) * log(u)


@_register("le_cam", "triangular discrimination Σ (p − q)²/(p + q)",
           facts={"nonneg_verdict": "proved", "fenchel_young_t_range": (-3, sympy.Rational(9, 10)),
                  "expfam_closed_form": False})
def _le_cam():
    """Triangular discrimination (Le Cam) Δ(P,Q) = Σ (p − q)²/(p + q); f = (u − 1)²/(u + 1)
    (Le Cam 1986; Topsøe 2000). Le Cam's distance is often defined as Δ/2."""
    return (u - 1) ** 2 / (u + 1)


@_register("softened_rkl", "f-distill softened reverse KL",
           facts={"fenchel_young_verdict": "consistent",
                  "fenchel_young_t_range": (-3, sympy.Rational(-7, 10)), "policy_map_closed_form": False,
                  "expfam_closed_form": False})
def _softened_rkl():
    """Softened reverse KL of f-distill (Xu, Nie & Vahdat 2025, Table 1, "sf"):
    f = (u + 1) log((u + 1)/(2u)), weighting h(u) = 1/(1 + u)."""
    return (u + 1) * log((u + 1) / (2 * u))


@_register("power", "power divergence (u^α − 1)/(α − 1), Rényi's f-divergence",
           params={"alpha": (2, sympy.Interval.open(0, sympy.oo))}, endpoints={"alpha": {1: u * log(u)}},
           facts={"nonneg_verdict": "proved", "fenchel_young_verdict": "proved",
                  "fenchel_young_t_range": (-3, 3), "expfam_closed_form": True})
def _power(alpha):
    """Power (Hellinger-α / Tsallis-type) divergence f = (u^α − 1)/(α − 1) for α > 0, α ≠ 1,
    with Σ q f(p/q) = (Σ p^α q^{1−α} − 1)/(α − 1); Rényi's R_α = log(1 + (α−1)D)/(α−1)
    (Liese & Vajda 2006). α → 1 gives kl."""
    return (u**alpha - 1) / (alpha - 1)


# ---------------------------------------------------------------------- docs table
def catalog_markdown() -> str:
    """The catalog as a markdown table (docs/catalog.md is this text; a test regenerates it)."""
    lines = [
        "# The f-divergence catalog",
        "",
        "Generated by `theory.fdiv.catalog_markdown()`; do not edit by hand "
        "(`python -m theory.fdiv > docs/catalog.md`). Convention: "
        "D_f(P‖Q) = Σ q f(p/q), u = p/q, P first. Parameters at their defaults.",
        "",
        "| name | f(u) | f'(u) | u²f''(u) | f(0+) | f'(∞) | f-DPO positive | f*(t) | convexity |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def c(e):
        return "`" + sympy.sstr(e).replace("|", "\\|") + "`"

    for name in names():
        d = get(name)
        conj = d.conjugate
        conj_txt = c(conj.expr) + (f" on {c(conj.interior)}" if conj.expr is not None else "")
        if conj.expr is None:
            conj_txt = "numeric Legendre"
        how = d.convexity_check.split(":")[0]
        lines.append(
            f"| `{d.name}` | {c(d.f)} | {c(d.df)} | {c(d.weighting)} | {c(d.f_at_zero)} | "
            f"{c(d.slope_at_infinity)} | {'yes' if d.fdpo_positive else 'no'} | {conj_txt} | {how} |"
        )
    lines += ["", "## Sources", ""]
    for name in names():
        doc = " ".join((_REGISTRY[name].build.__doc__ or "").split())
        lines.append(f"- `{name}`: {doc}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(catalog_markdown(), end="")
