r"""Convergence-rate experiments on regularised preference games (Nash-MP, mirror descent).

Shared by the ``alignment`` claims, their tests and ``docs/make_alignment_plot.py``.

* Games with exact rational preference matrices (:func:`games`), so that the 50-digit
  equilibrium of :func:`proofs_check.reference.nash.equilibrium` and the float64
  iterations of :mod:`numeric` see the same numbers.
* :func:`kl_curve`: :math:`KL(\pi^*\|\pi_k)` at 30 digits from the float64 iterates
  (renormalised exactly, so their float sum ≠ 1 adds no first-order term) and the 50-digit
  :math:`\pi^*` (catalog ``kl`` with :math:`\pi^*` first): the curve can be followed down
  to about 1e-24 with no cancellation.
* :func:`fit_slope`: least-squares slope of :math:`\log KL` against the number of queries (or
  :math:`\log k`), with a Student-t interval at the stated confidence. The residuals of a
  deterministic iteration are not noise; the interval measures how straight the curve is
  over the fitted window, which is what a rate statement is about.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy

from proofs_check.reference import nash

__all__ = ["Game", "games", "equilibrium", "kl_curve", "curve", "fit_slope", "fit_window",
           "SlopeFit", "KL_FLOOR", "KL_CEILING", "METHODS"]

#: KL values below this are not fitted (float64 iterates stop contracting near 1e-30).
KL_FLOOR = 1e-24
#: Nor above this (the transient before the linear regime).
KL_CEILING = 1e-2


@dataclass(frozen=True)
class Game:
    """A named regularised preference game: exact matrix and reference, and β."""

    name: str
    preference: tuple  # rows of sympy Rationals
    ref: tuple
    beta: sympy.Rational

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray, float]:
        P = np.array([[float(x) for x in row] for row in self.preference])
        r = np.array([float(x) for x in self.ref])
        return P, r / r.sum(), float(self.beta)

    def theory(self):
        from theory.alignment import PreferenceGame

        return PreferenceGame([list(r) for r in self.preference], list(self.ref), beta=self.beta)


def _cyclic(n: int):
    """Generalised rock-paper-scissors: y_i beats y_{i+d} for odd d, loses for even d."""
    half = sympy.Rational(1, 2)
    rows = [[half] * n for _ in range(n)]
    for i in range(n):
        for d in range(1, n // 2 + 1):
            j = (i + d) % n
            win = sympy.Integer(1) if d % 2 else sympy.Integer(0)
            rows[i][j], rows[j][i] = win, 1 - win
    return rows


def _random(n: int, seed: int):
    """P = 1/2 + A with A skew-symmetric, entries k/64, |A| ≤ 1/2."""
    rng = np.random.default_rng(seed)
    rows = [[sympy.Rational(1, 2)] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            a = sympy.Rational(int(rng.integers(-32, 33)), 64)
            rows[i][j], rows[j][i] = sympy.Rational(1, 2) + a, sympy.Rational(1, 2) - a
    return rows


def _ref(n: int):
    """π_ref(y_i) ∝ i (i = 1..n), exact."""
    tot = n * (n + 1) // 2
    return tuple(sympy.Rational(i, tot) for i in range(1, n + 1))


@functools.cache
def games() -> dict[str, Game]:
    """The games the rate claims use (small n keeps the 50-digit equilibria fast)."""
    out = {}
    for name, rows, beta in (
        ("cyclic5_beta0.02", _cyclic(5), sympy.Rational(1, 50)),
        ("cyclic3_beta0.05", _cyclic(3), sympy.Rational(1, 20)),
        ("random8_beta0.1", _random(8, 7), sympy.Rational(1, 10)),
        ("random12_beta0.3", _random(12, 11), sympy.Rational(3, 10)),
    ):
        n = len(rows)
        out[name] = Game(name, tuple(tuple(r) for r in rows), _ref(n), beta)
    return out


@functools.cache
def equilibrium(name: str, dps: int = 50) -> tuple:
    """The 50-digit equilibrium of ``games()[name]`` (cached)."""
    return tuple(nash.equilibrium(games()[name].theory(), dps=dps))


def kl_curve(pi_star, iterates, *, dps: int = 30) -> list[float]:
    r""":math:`KL(\pi^*\|\pi_k)` for each float64 iterate, computed at ``dps`` digits."""
    out = []
    with mpmath.workdps(dps):
        ps = [mpmath.mpf(x) for x in pi_star]
        for row in iterates:
            qs = [mpmath.mpf(float(q)) for q in row]
            tot = mpmath.fsum(qs)
            kl = mpmath.fsum(p * mpmath.log(p * tot / q) for p, q in zip(ps, qs, strict=True))
            out.append(float(kl))
    return out


@dataclass(frozen=True)
class SlopeFit:
    """Least-squares slope with its interval at ``confidence``; ``points`` fitted."""

    slope: float
    lo: float
    hi: float
    points: int
    confidence: float

    def text(self) -> str:
        return (f"fitted slope {self.slope:.5g}, {self.confidence:.1%} interval "
                f"[{self.lo:.5g}, {self.hi:.5g}] from {self.points} points")


def fit_slope(x, y, *, confidence: float = 0.999) -> SlopeFit:
    """Slope of ``y`` on ``x`` by least squares, with a Student-t interval."""
    from scipy.special import stdtrit

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    if n < 4:
        raise ValueError(f"need at least 4 points to fit a slope with an interval, got {n}")
    xm = x - x.mean()
    sxx = float(xm @ xm)
    slope = float(xm @ (y - y.mean())) / sxx
    resid = y - y.mean() - slope * xm
    se = math.sqrt(float(resid @ resid) / (n - 2) / sxx)
    q = float(stdtrit(n - 2, 0.5 + confidence / 2))
    return SlopeFit(slope, slope - q * se, slope + q * se, n, confidence)


def fit_window(kls, *, start: int = 0, floor: float = KL_FLOOR, ceiling: float = KL_CEILING):
    """Indices k ≥ start with floor ≤ KL_k ≤ ceiling, up to the first one below the floor."""
    idx = []
    for k, v in enumerate(kls):
        if k < start:
            continue
        if v < floor:
            break
        if v <= ceiling:
            idx.append(k)
    return idx


def _iterates(method: str, game: Game, steps: int) -> np.ndarray:
    import numeric

    P, r, b = game.as_arrays()
    if method == "nash_mp":
        return numeric.nash_mirror_prox(P, r, beta=b, steps=steps, eta=2.0)
    if method == "omd":
        return numeric.online_mirror_descent(P, r, beta=b, steps=steps, eta=2.0)
    if method == "nash_md":
        return numeric.online_mirror_descent(P, r, beta=b, steps=steps,
                                             eta=lambda k: 2.0 / (b * (k + 2)))
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


#: The iterations :func:`curve` knows: Nash-MP (η = 2, two queries per step), online mirror
#: descent at the same η (one query per step), Nash-MD (η_k = 2/(β(k+2)), one query per step).
METHODS = {"nash_mp": 2, "omd": 1, "nash_md": 1}


@functools.cache
def curve(game: str, method: str, steps: int, every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    r"""``(k, KL(π*‖π_k))`` for k = 0, every, 2·every, ... ≤ steps (cached per arguments)."""
    it = _iterates(method, games()[game], steps)
    ks = np.arange(0, steps + 1, every)
    return ks, np.array(kl_curve(equilibrium(game), it[ks]))
