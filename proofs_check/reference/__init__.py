"""High-precision references: mpmath values checked at two precisions, and Arb balls.

Everything a kernel or a claim is compared against comes from here.

* :func:`evaluate` evaluates a sympy expression at a point with mpmath, **twice** — at
  ``dps`` and at ``dps + extra`` digits (each with 10 internal guard digits) — and returns
  the value only when both agree to ``dps − 5`` significant digits. A
  disagreement means the evaluation is ill-conditioned at this precision (catastrophic
  cancellation, an input near a singularity) and raises :class:`IllConditionedError`
  instead of returning a number that looks precise and is not.
* :func:`ball` evaluates the same expression with python-flint's Arb: the result is a
  ball ``mid ± rad`` that rigorously contains the exact value for the exact inputs.
* :func:`divergence` and :func:`divergence_ball` evaluate
  :math:`D_f(P\\|Q) = \\sum_i q_i f(p_i/q_i)` between two finite distributions (P first),
  with the zero-mass rules :math:`0\\cdot f(0/0) = 0`, :math:`q\\,f(0/q) = q\\,f(0^+)` and
  :math:`0\\cdot f(p/0) = p\\,f'(\\infty)` taken from the generator.

Inputs enter exactly: integers and sympy rationals as themselves, Python floats as their
exact binary value, strings such as ``"0.3"`` or ``"1/3"`` through the whitelist parser of
:mod:`theory.parsing` as exact decimals/rationals (so ``"0.3"`` is 3/10 at every
precision, not the float nearest to it). Precision lives in context managers
(``mpmath.workdps``; Arb precision is restored in ``finally``), never leaks.

>>> import sympy
>>> from theory import u
>>> from proofs_check import reference
>>> v = reference.evaluate(u * sympy.log(u), {u: "0.3"}, dps=30)
>>> print(mpmath.nstr(v, 25))  # 0.3·log(0.3)
-0.3611918412977807977868239
>>> b = reference.ball(u * sympy.log(u), {u: "0.3"}, dps=30)
>>> b.contains(reference.ball(u * sympy.log(u), {u: "0.3"}, dps=60))
True
>>> x = sympy.Symbol("x", positive=True)
>>> reference.evaluate(sympy.log(1 + x) / x, {x: "1e-20"}, dps=15)
Traceback (most recent call last):
...
proofs_check.reference.IllConditionedError: ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

import flint
import mpmath
import sympy
from flint import arb

from proofs_check.engines._compile import UnsupportedExpression, compile_expr
from theory.parsing import parse_number

__all__ = [
    "IllConditionedError",
    "evaluate",
    "ball",
    "divergence",
    "divergence_ball",
    "exact_value",
    "decimal_string",
    "bits_for_dps",
]


class IllConditionedError(ValueError):
    """The values at ``dps`` and ``dps + extra`` digits disagree: no reference is returned."""


def bits_for_dps(dps: int) -> int:
    """Binary precision that carries ``dps`` decimal digits (``ceil(dps·log2 10)`` + 4)."""
    return int(dps * 3.3219280948873626) + 4


def exact_value(value) -> sympy.Expr:
    """Turn an input value into an exact sympy number (see the module docstring).

    Raises
    ------
    ValueError
        For a value that is not a finite real number (or a string the parser refuses).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the bool {value!r}")
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite number, got {value!r}")
        return sympy.Rational(value)
    if isinstance(value, str):
        return parse_number(value)
    if isinstance(value, mpmath.mpf):
        if not mpmath.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        man, exp = value.man_exp
        return sympy.Integer(man) * sympy.Integer(2) ** exp
    if isinstance(value, sympy.Float):
        return sympy.Rational(value)
    if isinstance(value, sympy.Expr) and value.is_number:
        if value.is_real is False or value.is_finite is False:
            raise ValueError(f"expected a finite real number, got {value}")
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return exact_value(value.item())
    raise ValueError(f"expected a number (int, float, str, Fraction, sympy), got {value!r}")


def decimal_string(value, digits: int) -> str:
    """Format an mpmath number with ``digits`` significant digits (``"inf"`` kept)."""
    return mpmath.nstr(value, digits, min_fixed=-5, max_fixed=8, strip_zeros=False)


def _prepare(expr, values: Mapping) -> tuple[list, list, sympy.Expr]:
    if isinstance(expr, str):
        raise TypeError(
            "expr must be a sympy expression; parse text with theory.parsing.parse_expression"
        )
    expr = sympy.sympify(expr) if isinstance(expr, int | float | Fraction) else expr
    if not isinstance(expr, sympy.Basic):
        raise TypeError(f"expr must be a sympy expression, got {type(expr).__name__}")
    by_name = {}
    for key, val in values.items():
        name = key.name if isinstance(key, sympy.Symbol) else str(key)
        by_name[name] = val
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    missing = [s.name for s in symbols if s.name not in by_name]
    if missing:
        raise ValueError(f"no value given for symbol(s) {', '.join(missing)} in {expr}")
    exact = [exact_value(by_name[s.name]) for s in symbols]
    return symbols, exact, expr


def _number_closure(value: sympy.Expr, backend: str) -> Callable[[], object]:
    if isinstance(value, sympy.Rational):
        if backend == "arb":
            p, q = int(value.p), int(value.q)
            return lambda: arb(flint.fmpq(p, q))
        p, q = int(value.p), int(value.q)
        return lambda: mpmath.mpf(p) / q
    fn = compile_expr(value, [], backend)
    return lambda: fn(())


def _real_mp(value, expr) -> mpmath.mpf:
    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            raise ValueError(f"{expr} is not real at this point (value {value})")
        value = value.real
    if not isinstance(value, mpmath.mpf):
        value = mpmath.mpf(value)
    if mpmath.isnan(value):
        raise ValueError(f"{expr} is undefined (NaN) at this point")
    return value


GUARD_DIGITS = 10


def _checked(run: Callable[[], object], *, dps: int, extra: int, atol, what) -> mpmath.mpf:
    """Run ``run`` at ``dps`` and ``dps + extra`` digits (each plus ``GUARD_DIGITS`` internal
    guard digits) and require agreement to ``dps − 5`` significant digits."""
    if dps < 10:
        raise ValueError(f"dps must be at least 10 for a reference, got {dps}")
    if extra < 5:
        raise ValueError(f"extra must be at least 5 guard digits, got {extra}")
    with mpmath.workdps(dps + GUARD_DIGITS):
        lo = _real_mp(run(), what)
    with mpmath.workdps(dps + extra + GUARD_DIGITS):
        hi = _real_mp(run(), what)
        if mpmath.isinf(lo) or mpmath.isinf(hi):
            if lo != hi:
                raise IllConditionedError(f"{what}: {lo} at {dps} digits but {hi} at {dps + extra}")
            return hi
        diff = abs(hi - lo)
        rtol = mpmath.mpf(10) ** (-(dps - 5))
        bound = rtol * abs(hi)
        if atol is not None:
            bound = max(bound, mpmath.mpf(atol))
        if diff > bound:
            raise IllConditionedError(
                f"{what}: evaluations at {dps} and {dps + extra} digits disagree "
                f"({mpmath.nstr(lo, 12)} vs {mpmath.nstr(hi, 12)}); the evaluation is "
                f"ill-conditioned at this precision — raise dps or rewrite the expression"
            )
    with mpmath.workdps(dps):
        return +hi


def evaluate(expr, values: Mapping, *, dps: int = 50, extra: int = 20, atol=None) -> mpmath.mpf:
    """Evaluate ``expr`` at ``values`` with mpmath, checked at two precisions.

    Parameters
    ----------
    expr : sympy.Expr
        Expression in the symbols named by ``values``.
    values : mapping
        ``{symbol or name: value}``; values are taken exactly (see :func:`exact_value`).
    dps : int, keyword-only
        Decimal digits of the returned value (≥ 10).
    extra : int, keyword-only
        The second evaluation uses ``dps + extra`` digits (≥ 5, default 20).
    atol : number, optional, keyword-only
        Absolute agreement tolerance for values that are exactly zero in theory.

    Returns
    -------
    mpmath.mpf
        The value, correct to about ``dps − 5`` significant digits.

    Raises
    ------
    IllConditionedError
        When the two evaluations disagree beyond ``10**-(dps-5)`` relative (plus ``atol``).
    ValueError
        For a missing value, a value that is not a number, or a result that is not real.
    """
    symbols, exact, expr = _prepare(expr, values)
    try:
        fn = compile_expr(expr, symbols, "mpmath")
    except UnsupportedExpression as exc:
        raise ValueError(str(exc)) from None
    inputs = [_number_closure(x, "mpmath") for x in exact]

    def run():
        try:
            return fn([c() for c in inputs])
        except ZeroDivisionError:
            return mpmath.nan

    return _checked(run, dps=dps, extra=extra, atol=atol, what=str(expr))


class _ArbPrecision:
    """Context manager setting ``flint.ctx.prec`` and restoring it on exit."""

    def __init__(self, prec: int):
        self.prec = prec

    def __enter__(self):
        self.saved = flint.ctx.prec
        flint.ctx.prec = self.prec
        return self

    def __exit__(self, *exc):
        flint.ctx.prec = self.saved
        return False


arb_precision = _ArbPrecision


def ball(expr, values: Mapping, *, dps: int = 50, prec: int | None = None) -> arb:
    """Evaluate ``expr`` at ``values`` as an Arb ball at ``prec`` bits (default: ``dps`` digits).

    The ball contains the exact value of ``expr`` at the exact inputs. A NaN ball means
    Arb could not enclose the value (e.g. the log of a ball that touches 0); an infinite
    radius means the value is unbounded at this precision.
    """
    symbols, exact, expr = _prepare(expr, values)
    try:
        fn = compile_expr(expr, symbols, "arb")
    except UnsupportedExpression as exc:
        raise ValueError(str(exc)) from None
    bits = prec if prec is not None else bits_for_dps(dps)
    with _ArbPrecision(bits):
        inputs = [_number_closure(x, "arb")() for x in exact]
        return fn(inputs)


def _generator(f):
    if isinstance(f, str):
        from theory import fdiv

        return fdiv.get(f)
    if all(hasattr(f, a) for a in ("f", "f_at_zero", "slope_at_infinity")):
        return f
    raise TypeError(
        f"f must be a catalog name or an FDivergence (theory.fdiv), got {type(f).__name__}"
    )


def _distributions(P: Sequence, Q: Sequence, check_normalized: bool):
    if len(P) != len(Q):
        raise ValueError(f"P and Q must have the same length, got {len(P)} and {len(Q)}")
    if len(P) == 0:
        raise ValueError("P and Q must not be empty")
    Pe = [exact_value(x) for x in P]
    Qe = [exact_value(x) for x in Q]
    for label, dist in (("P", Pe), ("Q", Qe)):
        for i, x in enumerate(dist):
            if x.is_negative:
                raise ValueError(f"{label}[{i}] = {x} is negative; probabilities must be ≥ 0")
        if check_normalized:
            total = sum(dist, sympy.Integer(0))
            if abs(float(total) - 1.0) > 1e-9:
                raise ValueError(f"{label} sums to {float(total)!r}, expected 1 (within 1e-9)")
    return Pe, Qe


def _divergence_run(gen, Pe, Qe, backend: str):
    from theory import u

    fn = compile_expr(gen.f, [u], backend)
    f0 = gen.f_at_zero
    slope = gen.slope_at_infinity
    f0_fn = compile_expr(f0, [], backend) if f0.is_finite is not False else None
    slope_fn = compile_expr(slope, [], backend) if slope.is_finite is not False else None
    pairs = [
        (_number_closure(p, backend), _number_closure(q, backend), p, q)
        for p, q in zip(Pe, Qe, strict=True)
    ]

    def run():
        if backend == "arb":
            total, inf = arb(0), arb.pos_inf()
        else:
            total, inf = mpmath.mpf(0), mpmath.inf
        for pc, qc, pe, qe in pairs:
            if pe == 0 and qe == 0:
                continue
            if qe == 0:
                total = total + (pc() * slope_fn(()) if slope_fn is not None else inf)
            elif pe == 0:
                total = total + (qc() * f0_fn(()) if f0_fn is not None else inf)
            else:
                p, q = pc(), qc()
                total = total + q * fn([p / q])
        return total

    return run


def divergence(
    f, P: Sequence, Q: Sequence, *, dps: int = 50, extra: int = 20, check_normalized: bool = True
) -> mpmath.mpf:
    """Reference value of :math:`D_f(P\\|Q) = \\sum_i q_i f(p_i/q_i)` (P first), checked twice.

    Parameters
    ----------
    f : str or theory.fdiv.FDivergence
        Catalog name or generator object.
    P, Q : sequences of numbers
        Finite distributions (exact inputs as in :func:`exact_value`); P is the first
        argument (target/teacher), Q the second.
    dps, extra : int, keyword-only
        As in :func:`evaluate`.
    check_normalized : bool, keyword-only
        Require both to sum to 1 within 1e-9.

    Returns
    -------
    mpmath.mpf
        The divergence (``+inf`` where the zero-mass rules give it, e.g. KL with
        ``q_i = 0 < p_i``).

    >>> from proofs_check import reference
    >>> print(mpmath.nstr(reference.divergence("kl", ["0.5", "0.5"], ["0.25", "0.75"], dps=20), 15))
    0.14384103622589
    """
    gen = _generator(f)
    Pe, Qe = _distributions(P, Q, check_normalized)
    run = _divergence_run(gen, Pe, Qe, "mpmath")
    return _checked(run, dps=dps, extra=extra, atol=None, what=f"D_{getattr(gen, 'name', 'f')}")


def divergence_ball(
    f, P: Sequence, Q: Sequence, *, dps: int = 50, prec: int | None = None,
    check_normalized: bool = True,
) -> arb:  # fmt: skip
    """Arb ball containing :math:`D_f(P\\|Q)` (P first) for the exact inputs."""
    gen = _generator(f)
    Pe, Qe = _distributions(P, Q, check_normalized)
    run = _divergence_run(gen, Pe, Qe, "arb")
    with _ArbPrecision(prec if prec is not None else bits_for_dps(dps)):
        return run()
