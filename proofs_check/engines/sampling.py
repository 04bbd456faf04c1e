"""Sampling engine: high-precision evaluation on a space-filling design plus local search.

Steps, for a margin :math:`m` (``rhs − lhs`` for ``lhs ≤ rhs``; ``lhs − rhs`` for an
identity) on a box:

1. **Screen** a scrambled Sobol design (``n_screen`` points, plus the corners of the closed
   ends) in float64 with numpy — fast, and only used to pick where to look.
2. **Local search**: Nelder–Mead on the float64 margin from the worst screened points,
   kept inside the box, to find the worst point near them.
3. **High precision**: evaluate with mpmath at ``dps`` digits on the first ``n_points``
   design points, the worst screened points and the local-search optima. Points are
   short decimal strings, so what is evaluated is exactly what is reported.
4. A point whose high-precision margin is negative is **re-checked in a fresh
   evaluation**: :func:`proofs_check.reference.evaluate` (agreement at ``dps`` and
   ``dps + 20``) and an Arb ball that must lie entirely below 0 (for an identity:
   ``|lhs − rhs|`` certainly above the tolerance). Only then is the claim ``violated``.

Otherwise the claim is ``consistent``: no violation among the points evaluated at high
precision; the smallest margin and where it occurs are reported. This is evidence, not
proof. When the time budget runs out before the planned high-precision points are
done, the result is ``inconclusive``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy

from proofs_check import reference
from proofs_check.engines._compile import UnsupportedExpression, compile_expr, compile_many

__all__ = ["SampleResult", "sample"]


@dataclass
class SampleResult:
    """Outcome of the sampling engine (status consistent / violated / inconclusive)."""

    status: str
    n_points: int = 0
    n_screened: int = 0
    min_margin: str | None = None
    argmin: dict | None = None
    counterexample: dict | None = None
    counterexample_margin: str | None = None
    counterexample_ball: str | None = None
    recheck: str = ""
    reason: str = ""
    stats: dict = field(default_factory=dict)


def _point_strings(symbols, x) -> dict:
    return {s.name: repr(float(v)) for s, v in zip(symbols, x, strict=True)}


def sample(
    lhs: sympy.Expr,
    rhs: sympy.Expr,
    symbols: list,
    bounds: list,
    *,
    kind: str,
    strict: bool = False,
    deadline: float,
    dps: int = 30,
    n_screen: int = 2048,
    n_points: int = 128,
    seed: int = 0,
) -> SampleResult:
    """Search for a violation of ``lhs ≤ rhs`` (``kind="le"``) or ``lhs = rhs`` (``"eq"``).

    Parameters
    ----------
    lhs, rhs : sympy.Expr
        The two sides (for ``≥`` claims the caller swaps them).
    symbols : list of sympy.Symbol
    bounds : list of (lo, hi, lo_open, hi_open)
        Exact sympy numbers; points are drawn inside, ends included only where closed.
    kind : {"le", "eq"}, keyword-only
    strict : bool, keyword-only
        ``lhs < rhs`` is claimed (so ``lhs = rhs`` at a point is a violation).
    deadline : float, keyword-only
        ``time.perf_counter()`` value; unfinished high-precision work gives ``inconclusive``.
    dps : int, keyword-only
        Digits of the high-precision evaluations.
    n_screen, n_points : int, keyword-only
        Size of the float64 screen and number of design points evaluated at high precision.
    seed : int, keyword-only
        Seed of the scrambled Sobol design (the run is reproducible).
    """
    if kind not in ("le", "eq"):
        raise ValueError(f"kind must be 'le' or 'eq', got {kind!r}")
    from scipy.optimize import minimize
    from scipy.stats import qmc

    d = len(symbols)
    lo = np.array([float(b[0]) for b in bounds])
    hi = np.array([float(b[1]) for b in bounds])
    width = hi - lo
    margin = (rhs - lhs) if kind == "le" else (lhs - rhs)
    try:
        mp_many = compile_many([margin], symbols, "mpmath")
        mp_margin = lambda vals: mp_many(vals)[0]  # noqa: E731
        mp_scale = compile_expr(sympy.Abs(lhs) + sympy.Abs(rhs), symbols, "mpmath")
    except UnsupportedExpression as exc:
        return SampleResult("inconclusive", reason=f"no mpmath evaluation: {exc}")
    try:
        np_many = compile_many([margin], symbols, "numpy")
        np_margin = lambda vals: np_many(vals)[0]  # noqa: E731
    except UnsupportedExpression:
        np_margin = None

    def to_box(s):
        return lo + width * s

    # 1. screen
    m = max(1, int(np.ceil(np.log2(max(n_screen, n_points, 2)))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)
    corners = []
    if d <= 3:
        for k in range(2**d):
            c = [(k >> i) & 1 for i in range(d)]
            if all(not bounds[i][3] if c[i] else not bounds[i][2] for i in range(d)):
                corners.append(c)
    candidates: list[np.ndarray] = [np.array(c, dtype=float) for c in corners]
    n_screened = 0
    stats = {}
    if np_margin is not None:
        pts = to_box(design[: max(n_screen, n_points)])
        with np.errstate(all="ignore"):
            vals = np.asarray(np_margin([pts[:, i] for i in range(d)]), dtype=float)
            vals = np.broadcast_to(vals, (pts.shape[0],))
        if kind == "eq":
            vals = -np.abs(vals)
        n_screened = int(pts.shape[0])
        finite = np.isfinite(vals)
        stats["screen_nonfinite"] = int((~finite).sum())
        order = np.argsort(np.where(finite, vals, np.inf))
        worst = [design[i] for i in order[:24] if finite[i]]
        candidates.extend(worst)

        # 2. local search from the three worst points
        def g(s):
            s = np.clip(s, 0.0, 1.0)
            with np.errstate(all="ignore"):
                v = float(np.asarray(np_margin(list(to_box(s)))).reshape(()))
            if kind == "eq":
                v = -abs(v)
            return v if np.isfinite(v) else 1e300

        for start in worst[:2]:
            if time.perf_counter() > deadline:
                break
            res = minimize(g, start, method="Nelder-Mead",
                           options={"maxfev": 60 * d + 60, "xatol": 1e-12, "fatol": 1e-300})  # fmt: skip
            candidates.append(np.clip(res.x, 0.0, 1.0))

    # keep open ends open: nudge candidates sitting on an open end inwards
    def admissible(s):
        s = np.array(s, dtype=float)
        for i, b in enumerate(bounds):
            if b[2] and s[i] <= 0.0:
                s[i] = 1e-9
            if b[3] and s[i] >= 1.0:
                s[i] = 1.0 - 1e-9
        return s

    hp_points = [admissible(s) for s in candidates] + [admissible(s) for s in design[:n_points]]
    # 3. high precision
    best = None
    evaluated = 0
    failures = 0
    violations = []
    with mpmath.workdps(dps):
        for s in hp_points:
            if time.perf_counter() > deadline:
                return SampleResult(
                    "inconclusive", evaluated, n_screened,
                    reason=f"time budget ran out after {evaluated} of {len(hp_points)} "
                    "high-precision points", stats=stats,
                )  # fmt: skip
            point = _point_strings(symbols, to_box(s))
            vals = [mpmath.mpf(point[sym.name]) for sym in symbols]
            try:
                v = mp_margin(vals)
                if isinstance(v, mpmath.mpc):
                    raise ValueError("complex value")
                if mpmath.isnan(v):
                    raise ValueError("nan")
                if kind == "eq":
                    tol = mpmath.mpf(10) ** (-(dps - 10)) * (1 + mp_scale(vals))
                    v = tol - abs(v)
            except (ZeroDivisionError, ValueError, TypeError):
                failures += 1
                continue
            evaluated += 1
            if best is None or v < best[0]:
                best = (v, point)
            if (v <= 0 and strict and kind == "le") or v < 0:
                violations.append((v, point))
    stats["hp_failures"] = failures
    if evaluated == 0:
        return SampleResult("inconclusive", 0, n_screened,
                            reason="no point could be evaluated at high precision", stats=stats)
    # 4. re-check the worst violations in fresh evaluations
    violations.sort(key=lambda item: item[0])
    for _value, point in violations[:5]:
        confirmed = _recheck(lhs, rhs, margin, point, kind=kind, strict=strict, dps=dps)
        if confirmed is not None:
            value, ball_text, how = confirmed
            return SampleResult(
                "violated", evaluated, n_screened,
                min_margin=reference.decimal_string(best[0], dps),
                argmin=best[1], counterexample=point, counterexample_margin=value,
                counterexample_ball=ball_text, recheck=how, stats=stats,
            )  # fmt: skip
    return SampleResult(
        "consistent", evaluated, n_screened,
        min_margin=mpmath.nstr(best[0], 12), argmin=best[1],
        reason=f"no violation at {evaluated} points evaluated with {dps} digits "
        f"({n_screened} screened in float64)", stats=stats,
    )  # fmt: skip


def _recheck(lhs, rhs, margin, point, *, kind, strict, dps):
    """Fresh evaluation of a suspected violation; returns (value, ball, how) or None."""
    try:
        value = reference.evaluate(margin, point, dps=dps)
    except (reference.IllConditionedError, ValueError):
        return None
    if kind == "eq":
        scale = reference.evaluate(sympy.Abs(lhs) + sympy.Abs(rhs), point, dps=dps)
        tol = mpmath.mpf(10) ** (-(dps - 10)) * (1 + scale)
        if abs(value) <= tol:
            return None
    elif (value > 0) or (value == 0 and not strict):
        return None
    text = reference.decimal_string(value, dps)
    for prec_dps in (dps, 2 * dps):
        try:
            b = reference.ball(margin, point, dps=prec_dps)
        except ValueError:
            return text, None, f"mpmath at {dps} and {dps + 20} digits agree"
        if kind == "eq":
            tol_expr = sympy.Integer(10) ** (-(dps - 10)) * (1 + sympy.Abs(lhs) + sympy.Abs(rhs))
            ok = abs(b) > reference.ball(tol_expr, point, dps=prec_dps)
        else:
            ok = (b <= 0) if strict else (b < 0)
        if ok:
            return text, b.str(20), (
                f"mpmath at {dps} and {dps + 20} digits agree; Arb ball at "
                f"{reference.bits_for_dps(prec_dps)} bits excludes the claim"
            )
    if strict and kind == "le" and value == 0:
        # both sides meet exactly (a ball cannot show it): decide in exact arithmetic
        exact = margin.xreplace({s: reference.exact_value(point[s.name])
                                 for s in margin.free_symbols})  # fmt: skip
        if sympy.simplify(exact) == 0:
            return text, "0 (exact)", "exact rational arithmetic: both sides are equal"
    return None
