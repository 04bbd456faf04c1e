"""Certified engine: branch-and-bound over the whole box with Arb interval arithmetic.

For a margin :math:`m(x)` (``rhs − lhs`` for a claim ``lhs ≤ rhs``) and a box
:math:`B = \\prod_i [a_i, b_i]` (the closure of the stated domain), the engine keeps a stack
of sub-boxes. For each box :math:`X` it computes two rigorous enclosures of
:math:`m(X) = \\{m(x) : x \\in X\\}` with Arb balls:

* the natural interval extension (every operation on balls), and
* when :math:`m` is continuous and its gradient can be enclosed, the mean-value form
  :math:`m(c) + \\sum_i \\partial_i m(X)\\,(X_i - c_i)` around the centre :math:`c`
  (second-order overestimation, so boxes near a tight spot shrink like the square root of
  the margin instead of linearly).

A box whose enclosure is certainly ``≥ 0`` (``> 0`` for a strict claim) is *proved*. A
box entirely inside the excluded set (an optional condition such as ``|p − q| < δ``,
evaluated with the same tri-state Arb logic) is *excluded* and reported. A box whose
centre is certainly negative is a *counterexample*. Otherwise the box is bisected along
the coordinate that contributes most to the enclosure's width. A NaN enclosure (the log
of a ball touching 0, a division by a ball containing 0) is "undecided": the box is
bisected like any other.

The result is ``certified`` only when every box of the cover was proved or excluded, so
a claim true on part of the box only can never be certified on the whole box; running
out of time or reaching the minimum box width gives ``undecided``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import flint
import sympy
from flint import arb, fmpq

from proofs_check.engines._compile import (
    UnsupportedExpression,
    compile_expr,
    compile_many,
    is_piecewise_smooth,
)

__all__ = ["CertResult", "branch_and_bound"]

MIN_RELATIVE_WIDTH = fmpq(1, 2**36)


@dataclass
class CertResult:
    """Outcome of branch-and-bound (``status`` in certified / violated / undecided)."""

    status: str
    boxes_proved: int = 0
    boxes_excluded: int = 0
    lower_bound: str | None = None
    counterexample: dict | None = None
    counterexample_ball: str | None = None
    reason: str = ""
    used_mean_value: bool = False
    stats: dict = field(default_factory=dict)


def _to_fmpq(x: sympy.Rational) -> fmpq:
    x = sympy.Rational(x)
    return fmpq(int(x.p), int(x.q))


def _ball(lo: fmpq, hi: fmpq) -> arb:
    if lo == hi:
        return arb(lo)
    return arb((lo + hi) / 2, (hi - lo) / 2)


def _decimal(x: fmpq, digits: int = 25) -> str:
    s = arb(x).str(digits, radius=False).strip("[]")
    if "e" not in s and "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def branch_and_bound(
    margin: sympy.Expr,
    symbols: list,
    bounds: list,
    *,
    strict: bool,
    exclude: sympy.Basic | None = None,
    deadline: float,
    prec: int = 80,
    max_boxes: int = 400_000,
) -> CertResult:
    """Prove ``margin ≥ 0`` (``> 0`` if strict) on the box, or find a point where it fails.

    Parameters
    ----------
    margin : sympy.Expr
        Expression in ``symbols`` (declared real) whose sign is the claim.
    symbols : list of sympy.Symbol
    bounds : list of (lo, hi, lo_open, hi_open)
        Exact sympy numbers; the closed box is covered (a superset of the domain, so a
        proof on it is a proof on the domain).
    strict : bool, keyword-only
    exclude : sympy boolean, optional, keyword-only
        Boxes on which it is certainly true are skipped and counted as excluded.
    deadline : float, keyword-only
        ``time.perf_counter()`` value after which the search stops (``undecided``).
    prec : int, keyword-only
        Arb working precision in bits.
    max_boxes : int, keyword-only
        Hard cap on the number of boxes examined.
    """
    try:
        f_many = compile_many([margin], symbols, "arb")
        f_arb = lambda X: f_many(X)[0]  # noqa: E731
        excl = compile_expr(exclude, symbols, "arb") if exclude is not None else None
    except UnsupportedExpression as exc:
        return CertResult("undecided", reason=f"no Arb evaluation: {exc}")
    grads = None
    if is_piecewise_smooth(margin):
        try:
            grads = compile_many([sympy.diff(margin, s) for s in symbols], symbols, "arb")
        except UnsupportedExpression:
            grads = None
    lows = [_to_fmpq(b[0]) for b in bounds]
    highs = [_to_fmpq(b[1]) for b in bounds]
    widths = [h - lo for lo, h in zip(lows, highs, strict=True)]
    zero = arb(0)
    stack = [list(zip(lows, highs, strict=True))]
    proved = excluded = examined = 0
    min_lower = None
    saved = flint.ctx.prec
    flint.ctx.prec = prec
    try:
        while stack:
            if time.perf_counter() > deadline:
                return CertResult(
                    "undecided", proved, excluded, reason=f"time budget ran out after "
                    f"{examined} boxes ({len(stack)} left)", used_mean_value=grads is not None,
                )  # fmt: skip
            if examined >= max_boxes:
                return CertResult(
                    "undecided", proved, excluded,
                    reason=f"box limit {max_boxes} reached ({len(stack)} left)",
                    used_mean_value=grads is not None,
                )  # fmt: skip
            box = stack.pop()
            examined += 1
            X = [_ball(lo, hi) for lo, hi in box]
            if excl is not None and excl(X) is True:
                excluded += 1
                continue
            val = f_arb(X)
            enclosure = val if val.is_finite() else None
            split_scores = None
            if enclosure is not None and ((enclosure > zero) if strict else (enclosure >= zero)):
                proved += 1
                lo_b = enclosure.lower()
                if min_lower is None or lo_b < min_lower:
                    min_lower = lo_b
                continue
            if grads is not None:
                centre = [(lo + hi) / 2 for lo, hi in box]
                C = [arb(c) for c in centre]
                fc = f_arb(C)
                gs = grads(X)
                if fc.is_finite() and all(g.is_finite() for g in gs):
                    mv = fc
                    split_scores = []
                    for g, (lo, hi), _c in zip(gs, box, centre, strict=True):
                        r = (hi - lo) / 2
                        mv = mv + g * arb(0, r)
                        split_scores.append(float(g.abs_upper()) * float(r))
                    if enclosure is None:
                        enclosure = mv
                    else:
                        enclosure = enclosure.intersection(mv)
            if enclosure is not None and ((enclosure > zero) if strict else (enclosure >= zero)):
                proved += 1
                lo_b = enclosure.lower()
                if min_lower is None or lo_b < min_lower:
                    min_lower = lo_b
                continue
            # a certainly negative centre is a counterexample (decimal, re-checked)
            centre = [(lo + hi) / 2 for lo, hi in box]
            point = {s.name: _decimal(c) for s, c in zip(symbols, centre, strict=True)}
            Cdec = [arb(fmpq(*_fraction(point[s.name]))) for s in symbols]
            fc_dec = f_arb(Cdec)
            if fc_dec.is_finite() and ((fc_dec <= zero) if strict else (fc_dec < zero)):
                return CertResult(
                    "violated", proved, excluded, counterexample=point,
                    counterexample_ball=fc_dec.str(20), reason="margin certainly negative "
                    "at the centre of a box", used_mean_value=grads is not None,
                )  # fmt: skip
            # bisect
            rel = [(hi - lo) / w if w != 0 else fmpq(0) for (lo, hi), w in zip(box, widths, strict=True)]
            if max(rel) < MIN_RELATIVE_WIDTH:
                return CertResult(
                    "undecided", proved, excluded,
                    reason=f"box around {point} reached the minimum width without a "
                    "decision (the margin vanishes there: exclude a neighbourhood of the "
                    "equality set)", used_mean_value=grads is not None,
                )  # fmt: skip
            if split_scores is not None and max(split_scores) > 0:
                k = max(range(len(box)), key=lambda i: split_scores[i] if rel[i] > 0 else -1.0)
            else:
                k = max(range(len(box)), key=lambda i: rel[i])
            lo, hi = box[k]
            mid = (lo + hi) / 2
            left, right = list(box), list(box)
            left[k] = (lo, mid)
            right[k] = (mid, hi)
            stack.append(right)
            stack.append(left)
    finally:
        flint.ctx.prec = saved
    lower = None if min_lower is None else min_lower.str(10, radius=False).strip("[]")
    return CertResult(
        "certified", proved, excluded, lower_bound=lower,
        reason=f"{proved} boxes proved" + (f", {excluded} excluded" if excl else ""),
        used_mean_value=grads is not None, stats={"boxes": examined},
    )  # fmt: skip


def _fraction(text: str) -> tuple[int, int]:
    r = sympy.Rational(text)
    return int(r.p), int(r.q)
