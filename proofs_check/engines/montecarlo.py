"""Monte Carlo engine: expectations with confidence intervals, rates as log–log slopes.

*Expectation statements* ``E[X] ≤ c``, ``E[X] ≥ c`` or ``E[X] = c``: ``n`` i.i.d. draws of
``X`` give the mean :math:`\\bar X` and standard error :math:`s/\\sqrt n`; the two-sided
interval :math:`\\bar X \\pm z\\,s/\\sqrt n` at the stated confidence (normal
approximation, z = 3.29 at 99.9 %) decides: ``violated`` when the whole interval lies on
the wrong side of ``c`` (for ``=``: when it excludes ``c``), ``consistent`` otherwise.

*Rate statements* ``E[X_n] ∝ n^{s}``: for each ``n`` in a grid the mean of ``reps`` draws
and its standard error give :math:`\\log \\bar X_n`; a weighted least-squares fit of
:math:`\\log \\bar X_n` on :math:`\\log n` (weights from the delta method, covariance
inflated by the residual χ²/dof when the fit is poor) gives the slope and its interval.
``consistent`` when the interval meets ``[s − tol, s + tol]``, ``violated`` when it lies
outside.

A ``violated`` result is re-run with a fresh seed and kept only when the new run is
violated too; the counterexample records the seeds, sample sizes and intervals. When the
time budget ends first, the result is ``inconclusive``. None of this is a proof: a
``consistent`` verdict says the data did not contradict the statement at the stated
confidence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MCResult", "expectation", "rate"]


@dataclass
class MCResult:
    """Outcome of a Monte Carlo check (status consistent / violated / inconclusive)."""

    status: str
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    confidence: float = 0.999
    n: int = 0
    counterexample: dict | None = None
    reason: str = ""
    stats: dict = field(default_factory=dict)


class _OutOfTime(Exception):
    pass


def _z(confidence: float) -> float:
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def _mean_se(draw, rng, n, batch, deadline):
    total = 0.0
    total_sq = 0.0
    done = 0
    while done < n:
        if time.perf_counter() > deadline:
            raise _OutOfTime(f"time budget ran out after {done} of {n} draws")
        k = min(batch, n - done)
        x = np.asarray(draw(rng, k), dtype=float)
        if x.shape != (k,):
            raise ValueError(f"draw(rng, {k}) must return {k} values, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("draw returned non-finite values")
        total += float(x.sum())
        total_sq += float((x * x).sum())
        done += k
    mean = total / n
    var = max(total_sq / n - mean * mean, 0.0) * n / max(n - 1, 1)
    return mean, float(np.sqrt(var / n))


def _expectation_once(draw, target, relation, n, z, seed, batch, deadline):
    rng = np.random.default_rng(seed)
    mean, se = _mean_se(draw, rng, n, batch, deadline)
    lo, hi = mean - z * se, mean + z * se
    if relation == "le":
        bad = lo > target
    elif relation == "ge":
        bad = hi < target
    else:
        bad = not (lo <= target <= hi)
    return bad, mean, (lo, hi)


def expectation(
    draw: Callable[[np.random.Generator, int], np.ndarray],
    *,
    target: float,
    relation: str,
    n: int,
    deadline: float,
    confidence: float = 0.999,
    seed: int = 0,
    batch: int = 100_000,
) -> MCResult:
    """Check ``E[X] (relation) target`` from ``n`` draws ``draw(rng, size)``.

    ``relation`` is ``"le"``, ``"ge"`` or ``"eq"``; see the module docstring.
    """
    if relation not in ("le", "ge", "eq"):
        raise ValueError(f"relation must be 'le', 'ge' or 'eq', got {relation!r}")
    z = _z(confidence)
    try:
        bad, mean, ci = _expectation_once(draw, target, relation, n, z, seed, batch, deadline)
        if bad:
            bad2, mean2, ci2 = _expectation_once(
                draw, target, relation, n, z, seed + 1_000_003, batch, deadline
            )
            if bad2:
                return MCResult(
                    "violated", mean, ci, confidence, n,
                    counterexample={
                        "seed": seed, "n": n, "estimate": repr(mean), "interval": list(map(repr, ci)),
                        "target": repr(target), "recheck_seed": seed + 1_000_003,
                        "recheck_interval": list(map(repr, ci2)),
                    },
                    reason=f"{confidence:.1%} interval excludes the claim in two independent runs",
                )  # fmt: skip
            return MCResult(
                "consistent", mean2, ci2, confidence, n,
                reason="first run excluded the claim, a fresh run did not",
            )  # fmt: skip
    except _OutOfTime as exc:
        return MCResult("inconclusive", confidence=confidence, n=n, reason=str(exc))
    return MCResult("consistent", mean, ci, confidence, n,
                    reason=f"{confidence:.1%} interval compatible with the claim")


def _fit_slope(draw_at, ns, reps, z, seed, batch, deadline):
    rng = np.random.default_rng(seed)
    means, ses = [], []
    for n_i in ns:
        m, se = _mean_se(lambda r, k, n_i=n_i: draw_at(r, n_i, k), rng, reps, batch, deadline)
        if m <= 0:
            raise ValueError(f"mean at n={n_i} is {m}; a log–log slope needs positive means")
        means.append(m)
        ses.append(se)
    x = np.log(np.asarray(ns, dtype=float))
    y = np.log(np.asarray(means))
    sy = np.maximum(np.asarray(ses) / np.asarray(means), 1e-300)
    w = 1.0 / sy**2
    A = np.vstack([np.ones_like(x), x]).T
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    coef = cov @ (A.T @ (w * y))
    resid = y - A @ coef
    dof = max(len(ns) - 2, 1)
    chi2 = float((w * resid**2).sum()) / dof
    cov = cov * max(chi2, 1.0)
    slope, se = float(coef[1]), float(np.sqrt(cov[1, 1]))
    return slope, (slope - z * se, slope + z * se), {"means": means, "chi2_dof": chi2}


def rate(
    draw_at: Callable[[np.random.Generator, int, int], np.ndarray],
    *,
    ns: Sequence[int],
    slope: float,
    tol: float,
    reps: int,
    deadline: float,
    confidence: float = 0.999,
    seed: int = 0,
    batch: int = 20_000,
) -> MCResult:
    """Check ``E[X_n] ∝ n^slope`` (within ``±tol``) from ``reps`` draws ``draw_at(rng, n, size)``."""
    if len(ns) < 3:
        raise ValueError("a rate needs at least three sample sizes")
    z = _z(confidence)
    try:
        fitted, ci, info = _fit_slope(draw_at, ns, reps, z, seed, batch, deadline)
        if ci[1] < slope - tol or ci[0] > slope + tol:
            fitted2, ci2, _ = _fit_slope(draw_at, ns, reps, z, seed + 1_000_003, batch, deadline)
            if ci2[1] < slope - tol or ci2[0] > slope + tol:
                return MCResult(
                    "violated", fitted, ci, confidence, reps,
                    counterexample={
                        "seed": seed, "ns": list(ns), "reps": reps, "fitted_slope": repr(fitted),
                        "interval": list(map(repr, ci)), "claimed_slope": repr(slope),
                        "recheck_seed": seed + 1_000_003, "recheck_interval": list(map(repr, ci2)),
                    },
                    reason=f"fitted slope {fitted:.4f}, {confidence:.1%} interval "
                    f"[{ci[0]:.4f}, {ci[1]:.4f}] misses {slope}±{tol} in two runs", stats=info,
                )  # fmt: skip
            fitted, ci = fitted2, ci2
    except _OutOfTime as exc:
        return MCResult("inconclusive", confidence=confidence, n=reps, reason=str(exc))
    return MCResult(
        "consistent", fitted, ci, confidence, reps,
        reason=f"fitted slope {fitted:.4f}, {confidence:.1%} interval [{ci[0]:.4f}, {ci[1]:.4f}] "
        f"meets {slope}±{tol}", stats=info,
    )  # fmt: skip
