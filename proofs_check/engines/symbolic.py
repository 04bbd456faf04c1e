"""Symbolic engine: let sympy prove the statement outright.

Two kinds of proofs are accepted, and nothing else:

* an **identity** ``lhs = rhs`` is proved when one of a few rewrites of ``lhs − rhs``
  (``simplify``, ``expand_log``/``logcombine`` with ``force=False``, ``together``,
  ``radsimp``) is literally ``0``;
* an **inequality** is proved when the margin (``rhs − lhs`` for ``≤``) or one of the same
  rewrites of it is *manifestly* nonnegative for sympy's assumption system (positive for a
  strict inequality), given the signs that the domain implies (a symbol ranging in
  ``[0.01, 0.99]`` is declared positive). Sums of squares, products of positive factors,
  ``Abs`` and the like qualify.

Numeric tests such as ``Expr.equals`` (which evaluates at random points) are never used:
a ``proved`` verdict rests on rewriting alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sympy

__all__ = ["SymbolicResult", "prove_identity", "prove_nonnegative", "assumption_symbols"]

MAX_OPS = 250
MAX_SIMPLIFY_OPS = 40
MAX_INEQ_OPS = 60


@dataclass(frozen=True)
class SymbolicResult:
    """Outcome of the symbolic engine: ``proved`` and the form that shows it."""

    proved: bool
    form: str
    detail: str


def assumption_symbols(symbols, bounds) -> dict:
    """Map each symbol to a Dummy carrying the sign its interval implies.

    ``bounds[i] = (lo, hi, lo_open, hi_open)`` with exact sympy numbers.
    """
    out = {}
    for s, (lo, hi, lo_open, hi_open) in zip(symbols, bounds, strict=True):
        kw = {"real": True}
        if lo > 0 or (lo == 0 and lo_open):
            kw = {"positive": True}
        elif lo == 0:
            kw = {"nonnegative": True}
        elif hi < 0 or (hi == 0 and hi_open):
            kw = {"negative": True}
        elif hi == 0:
            kw = {"nonpositive": True}
        out[s] = sympy.Dummy(s.name, **kw)
    return out


def _factor_radicands(expr: sympy.Expr) -> sympy.Expr:
    """Factor the base of every non-integer power, so sqrt(4/(u+1)**2) can become 2/(u+1)."""
    return expr.replace(
        lambda e: e.is_Pow and not e.exp.is_Integer and not e.base.is_Atom,
        lambda e: sympy.factor(e.base) ** e.exp,
    )


def _lambertw_inverse(expr: sympy.Expr) -> sympy.Expr:
    """Rewrite W(y·exp(y)) as y where y ≥ −1 is provable (principal branch inverse)."""

    def rule(w):
        arg = sympy.powsimp(sympy.simplify(w.args[0]))
        for factor in sympy.Mul.make_args(arg):
            if isinstance(factor, sympy.exp):
                y = factor.args[0]
                if sympy.simplify(arg / factor - y) == 0 and (y + 1).is_nonnegative:
                    return y
        return w

    return expr.replace(lambda e: isinstance(e, sympy.LambertW) and len(e.args) == 1, rule)


def _rewrites(expr: sympy.Expr, *, light: bool = False, identity: bool = False,
              deadline: float | None = None):  # fmt: skip
    """The rewrites tried, cheapest first; expensive ones only for small expressions.

    Stops early (yields nothing more) once ``deadline`` (``time.perf_counter()``) passes;
    a single sympy call cannot be interrupted, so the costly ones are size-capped.
    """
    yield "as written", expr
    ops = sympy.count_ops(expr)
    if ops > MAX_OPS:
        return
    steps = []
    if light or not identity:
        # inequalities: sign assumptions decide manifest forms; only cheap rewrites help
        if ops <= MAX_INEQ_OPS:
            steps += [("together", sympy.together), ("factor", sympy.factor)]
    else:
        steps.append(("together", sympy.together))
        steps += [
            ("expand_log", lambda e: sympy.expand_log(e, force=False)),
            ("logcombine", lambda e: sympy.logcombine(e, force=False)),
            ("radsimp", sympy.radsimp),
        ]
        if ops <= MAX_OPS // 2:
            steps.append(("factor", sympy.factor))
        if ops <= MAX_SIMPLIFY_OPS or identity:
            steps.append(("simplify", sympy.simplify))
        if identity and expr.has(sympy.Pow):
            steps.append(("factor radicands + simplify",
                          lambda e: sympy.simplify(_factor_radicands(e))))  # fmt: skip
        if identity and expr.has(sympy.LambertW):
            steps.append(("W(y·e^y) = y + simplify",
                          lambda e: sympy.simplify(_lambertw_inverse(e))))  # fmt: skip
    for how, fn in steps:
        if deadline is not None and time.perf_counter() > deadline:
            return
        yield how, fn(expr)


def _short(expr, limit: int = 160) -> str:
    text = str(expr).replace("_s_", "s_")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prove_identity(lhs, rhs, subs: dict, *, deadline: float | None = None) -> SymbolicResult:
    """Try to show ``lhs − rhs`` rewrites to 0 under the sign assumptions in ``subs``."""
    diff = (lhs - rhs).xreplace(subs)
    for how, form in _rewrites(diff, identity=True, deadline=deadline):
        if form == 0:
            return SymbolicResult(True, "0", f"{how}: lhs − rhs = 0")
    return SymbolicResult(False, "", "no rewrite of lhs − rhs reached 0")


def prove_nonnegative(
    margin, subs: dict, *, strict: bool, symbols=(), bounds=(), deadline: float | None = None
) -> SymbolicResult:
    """Try to show ``margin ≥ 0`` (``> 0`` if strict) from sympy's assumptions.

    First with the sign assumptions alone; then, when ``symbols``/``bounds`` are given,
    with each parameter written as ``x = lo + (hi − lo)·s/(1 + s)``, ``s > 0`` — a bijection
    onto the open interval ``(lo, hi)`` that makes bounds such as ``1 − x > 0`` manifest.
    That second form proves the claim on the open box; it is used only when this is the
    stated domain (all ends open), or when the claim is non-strict and the margin is
    continuous wherever it is defined (no Piecewise or sign), so that ``≥ 0`` extends to
    the closed ends by continuity.
    """
    m = margin.xreplace(subs)
    ops = sympy.count_ops(m)
    if ops > MAX_OPS:
        return SymbolicResult(False, "", f"skipped: the margin has {ops} operations (> {MAX_OPS})")
    back = {v: k for k, v in subs.items()}
    rel = "> 0" if strict else "≥ 0"
    for how, form in _rewrites(m, deadline=deadline):
        ok = form.is_positive if strict else form.is_nonnegative
        if ok:
            shown = _short(form.xreplace(back))
            return SymbolicResult(True, shown, f"{how}: {shown} {rel} is manifest")
    if symbols and ops <= 2 * MAX_INEQ_OPS:
        from proofs_check.engines._compile import is_piecewise_smooth

        all_open = all(b[2] and b[3] for b in bounds if b[0] != b[1])
        if all_open or (not strict and is_piecewise_smooth(m)):
            inner, names = {}, []
            for sym, (lo, hi, _lo_open, _hi_open) in zip(symbols, bounds, strict=True):
                if lo == hi:
                    inner[sym] = lo
                    continue
                s_ = sympy.Dummy(f"s_{sym.name}", positive=True)
                inner[sym] = lo + (hi - lo) * s_ / (1 + s_)
                names.append(f"{sym.name} = {lo} + {hi - lo}·s_{sym.name}/(1 + s_{sym.name})")
            mapped = m.xreplace(inner)
            for how, form in _rewrites(mapped, light=True, deadline=deadline):
                ok = form.is_positive if strict else form.is_nonnegative
                if ok:
                    return SymbolicResult(
                        True, _short(form),
                        f"{how} after {', '.join(names)} with s > 0: the margin {rel} is "
                        "manifest" + ("" if all_open else " (closed ends by continuity)"),
                    )  # fmt: skip
    return SymbolicResult(False, "", "no rewrite of the margin is manifestly nonnegative")
