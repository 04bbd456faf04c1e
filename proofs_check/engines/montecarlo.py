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

The draws of each mean come in :data:`CHUNKS` chunks, chunk ``i`` seeded by the ``i``-th
child of ``numpy.random.SeedSequence(seed)``; their sums are combined exactly
(``math.fsum``), so a claim gives the same numbers whether its chunks run in one process
or are spread over workers.

A ``violated`` result is re-run with a fresh seed and kept only when the new run is
violated too; the counterexample records the seeds, sample sizes and intervals. When the
time budget ends first, the result is ``inconclusive``. None of this is a proof: a
``consistent`` verdict says the data did not contradict the statement at the stated
confidence.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CHUNKS", "MCResult", "chunk_moments", "chunk_seeds", "chunk_sizes", "expectation",
           "rate"]

#: Seeded chunks of every Monte Carlo mean. Fixed, so that the numbers of a claim do not
#: depend on how many workers run the chunks: chunk ``i`` of ``n`` draws always has
#: :func:`chunk_sizes` ``(n)[i]`` draws from ``default_rng(SeedSequence(seed).spawn(CHUNKS)[i])``.
CHUNKS = 16


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


def chunk_sizes(n: int, chunks: int = CHUNKS) -> list[int]:
    """Sizes of the ``chunks`` seeded chunks of ``n`` draws (the first ``n % chunks`` one larger).

    >>> chunk_sizes(10, 4)
    [3, 3, 2, 2]
    """
    if n < 1 or chunks < 1:
        raise ValueError(f"n and chunks must be positive, got n={n}, chunks={chunks}")
    return [n // chunks + (i < n % chunks) for i in range(chunks)]


def chunk_seeds(seed, chunks: int = CHUNKS) -> list[np.random.SeedSequence]:
    """The independent seed sequences of the chunks: ``SeedSequence(seed).spawn(chunks)``.

    ``seed`` is a non-negative integer or a :class:`numpy.random.SeedSequence` (then its
    children are spawned, e.g. one per sample size of a rate).
    """
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return root.spawn(chunks)


def chunk_moments(draw, seed_seq, size: int, batch: int, deadline: float) -> tuple[float, float]:
    """``(Σ x, Σ x²)`` over ``size`` draws of one chunk with ``default_rng(seed_seq)``.

    What one worker computes for one chunk: the same numbers wherever it runs.
    """
    rng = np.random.default_rng(seed_seq)
    total = 0.0
    total_sq = 0.0
    done = 0
    while done < size:
        if time.perf_counter() > deadline:
            raise _OutOfTime(f"time budget ran out after {done} of {size} draws of a chunk")
        k = min(batch, size - done)
        x = np.asarray(draw(rng, k), dtype=float)
        if x.shape != (k,):
            raise ValueError(f"draw(rng, {k}) must return {k} values, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("draw returned non-finite values")
        total += float(x.sum())
        total_sq += float((x * x).sum())
        done += k
    return total, total_sq


def _mean_se(draw, seed, n, batch, deadline, mapper=map):
    """Mean and standard error of ``n`` draws in :data:`CHUNKS` seeded chunks.

    ``mapper(fn, seeds, sizes)`` runs the chunks (the builtin ``map``, or an executor's);
    the chunk sums are combined with ``math.fsum`` (exactly rounded, so independent of the
    order in which the chunks finish).
    """
    sizes = chunk_sizes(n, min(CHUNKS, n))
    seeds = chunk_seeds(seed, len(sizes))
    parts = list(mapper(functools.partial(chunk_moments, draw, batch=batch, deadline=deadline),
                        seeds, sizes))
    total = math.fsum(s for s, _ in parts)
    total_sq = math.fsum(s2 for _, s2 in parts)
    mean = total / n
    var = max(total_sq / n - mean * mean, 0.0) * n / max(n - 1, 1)
    return mean, float(np.sqrt(var / n))


def _expectation_once(draw, target, relation, n, z, seed, batch, deadline, mapper=map):
    mean, se = _mean_se(draw, seed, n, batch, deadline, mapper)
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
    mapper=map,
) -> MCResult:
    """Check ``E[X] (relation) target`` from ``n`` draws ``draw(rng, size)``.

    ``relation`` is ``"le"``, ``"ge"`` or ``"eq"``; see the module docstring. The draws
    come in :data:`CHUNKS` seeded chunks; ``mapper`` (default the builtin ``map``) runs
    them, e.g. ``executor.map`` — the numbers are the same whatever runs them.
    """
    if relation not in ("le", "ge", "eq"):
        raise ValueError(f"relation must be 'le', 'ge' or 'eq', got {relation!r}")
    z = _z(confidence)
    try:
        bad, mean, ci = _expectation_once(draw, target, relation, n, z, seed, batch, deadline,
                                          mapper)
        if bad:
            bad2, mean2, ci2 = _expectation_once(
                draw, target, relation, n, z, seed + 1_000_003, batch, deadline, mapper
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


def _fit_slope(draw_at, ns, reps, z, seed, batch, deadline, mapper=map):
    means, ses = [], []
    for n_i, seq in zip(ns, chunk_seeds(seed, len(ns)), strict=True):
        m, se = _mean_se(functools.partial(_draw_at_n, draw_at, n_i), seq, reps, batch,
                         deadline, mapper)
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


def _draw_at_n(draw_at, n_i, rng, k):
    return draw_at(rng, n_i, k)


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
    mapper=map,
) -> MCResult:
    """Check ``E[X_n] ∝ n^slope`` (within ``±tol``) from ``reps`` draws ``draw_at(rng, n, size)``.

    Each sample size gets its own child of ``SeedSequence(seed)`` and its draws come in
    :data:`CHUNKS` seeded chunks run by ``mapper`` (see :func:`expectation`).
    """
    if len(ns) < 3:
        raise ValueError("a rate needs at least three sample sizes")
    z = _z(confidence)
    try:
        fitted, ci, info = _fit_slope(draw_at, ns, reps, z, seed, batch, deadline, mapper)
        if ci[1] < slope - tol or ci[0] > slope + tol:
            fitted2, ci2, _ = _fit_slope(draw_at, ns, reps, z, seed + 1_000_003, batch, deadline,
                                         mapper)
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
