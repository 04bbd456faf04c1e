r"""Rates as claims: ``quantity(n) ~ C·n^{-r}`` fitted on a grid of n, with intervals for r and C.

:func:`fit_power_law` fits :math:`\log|v_n| = \log|C| - r\log n` on a grid of sample sizes:

* **Monte Carlo values** (a standard error per point): weighted least squares with the
  delta-method weights :math:`w_n = (v_n/\mathrm{se}_n)^2`, the covariance inflated by the
  residual :math:`\chi^2/\mathrm{dof}` when the fit is poor, and two-sided normal intervals at
  the stated confidence (miss rate ``1 − confidence`` for each interval when the power law
  holds exactly on the grid);
* **exact values** (no standard errors, e.g. an enumeration or a quadrature): the local
  slopes :math:`r_i = -\log(v_{i+1}/v_i)/\log(n_{i+1}/n_i)` of the last three grid steps;
  the interval is their hull (a statement about the computed numbers, not a probability).

:class:`PowerLawClaim` turns a fit into a verdict: ``consistent`` when the interval for r
meets ``[rate − rate_tol, rate + rate_tol]`` (and, when a constant is claimed, the interval
for C fitted with r fixed at the claimed rate meets ``C·[1 − constant_rtol, 1 + constant_rtol]``),
``violated`` otherwise. A Monte
Carlo violation is re-run with a fresh seed and kept only when that run is violated too.

>>> import numpy as np
>>> from proofs_check.rates import fit_power_law
>>> ns = np.array([10, 20, 40, 80, 160])
>>> fit = fit_power_law(ns, 3.0 / ns**2 * (1 + 1 / ns))
>>> round(fit.rate, 2), fit.exact
(2.01, True)
>>> fit.rate_interval[0] < 2.02 and fit.rate_interval[1] > 2.0
True
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from proofs_check.claims import STATUSES, Verdict, _BaseClaim

__all__ = ["PowerLawFit", "fit_power_law", "PowerLawClaim"]


@dataclass(frozen=True)
class PowerLawFit:
    r"""A fitted power law :math:`v_n \approx C n^{-r}`.

    Attributes
    ----------
    rate, rate_interval : float, (float, float)
        Fitted r and its interval.
    constant, constant_interval : float, (float, float)
        Fitted C (with the sign of the values) and its interval.
    exact : bool
        True for exact values (interval = hull of the tail's local slopes).
    confidence : float or None
        Confidence level of the Monte Carlo intervals (None for exact values).
    chi2_dof : float or None
        Residual χ²/dof of the weighted fit (None for exact values).
    """

    rate: float
    rate_interval: tuple
    constant: float
    constant_interval: tuple
    exact: bool
    confidence: float | None = None
    chi2_dof: float | None = None
    ns: tuple = ()
    values: tuple = ()
    stderr: tuple = ()
    fixed_rate: float | None = None
    constant_at_rate: float | None = None
    constant_at_rate_interval: tuple | None = None

    def describe(self) -> str:
        """One line: r and C with their intervals."""
        how = "tail local slopes" if self.exact else f"{self.confidence:.1%} interval"
        text = (f"r = {self.rate:.4f} in [{self.rate_interval[0]:.4f}, {self.rate_interval[1]:.4f}], "
                f"C = {self.constant:.5g} in [{self.constant_interval[0]:.5g}, "
                f"{self.constant_interval[1]:.5g}]")
        if self.fixed_rate is not None:
            lo, hi = self.constant_at_rate_interval
            text += f"; at r = {self.fixed_rate:g}: C = {self.constant_at_rate:.5g} in [{lo:.5g}, {hi:.5g}]"
        return f"{text} ({how})"


@functools.lru_cache(maxsize=32)
def _z(confidence: float) -> float:
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    from scipy.special import ndtri

    return float(ndtri(0.5 + confidence / 2))


def _grid(ns) -> np.ndarray:
    arr = np.asarray(ns, dtype=float)
    if arr.ndim != 1 or arr.size < 3:
        raise ValueError(f"ns must be a 1-d grid of at least three sample sizes, got {ns!r}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 1):
        raise ValueError(f"ns must be sample sizes n ≥ 1, got {ns!r}")
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"ns must be strictly increasing, got {ns!r}")
    return arr


def fit_power_law(ns, values, stderr=None, *, rate: float | None = None,
                  confidence: float = 0.999) -> PowerLawFit:
    r"""Fit :math:`v_n = C n^{-r}` on a grid (see the module docstring for the two modes).

    Parameters
    ----------
    ns : sequence of float
        Strictly increasing sample sizes, each ≥ 1 (at least three).
    values : sequence of float
        The quantity at each n; all nonzero and of one sign.
    stderr : sequence of float, optional
        Standard errors (Monte Carlo). Omit (or all zeros) for exact values.
    rate : float, optional, keyword-only
        A claimed rate; then C is also fitted with r fixed at it (``constant_at_rate``, a
        one-parameter fit of :math:`\log|v_n| + r\log n`, far tighter than the free fit's C).
    confidence : float, keyword-only
        Level of the Monte Carlo intervals.

    Raises
    ------
    ValueError
        For n < 1, a grid that is not increasing or too short, values that are not finite,
        are zero or change sign, negative standard errors, or mismatched lengths.
    """
    x = _grid(ns)
    v = np.asarray(values, dtype=float)
    if v.shape != x.shape:
        raise ValueError(f"values has shape {v.shape}, ns has {x.shape}")
    if not np.all(np.isfinite(v)) or np.any(v == 0):
        raise ValueError(f"values must be finite and nonzero, got {values!r}")
    sign = float(np.sign(v[0]))
    if np.any(np.sign(v) != sign):
        raise ValueError(f"values change sign, so they are not C·n^-r: {values!r}")
    av = np.abs(v)
    se = None if stderr is None else np.asarray(stderr, dtype=float)
    if se is not None:
        if se.shape != x.shape:
            raise ValueError(f"stderr has shape {se.shape}, ns has {x.shape}")
        if not np.all(np.isfinite(se)) or np.any(se < 0):
            raise ValueError(f"stderr must be finite and ≥ 0, got {stderr!r}")
        if not np.any(se > 0):
            se = None
        elif np.any(se == 0):
            raise ValueError("stderr must be all zero (exact values) or all positive")
    lx, ly = np.log(x), np.log(av)
    if se is None:
        local = -np.diff(ly) / np.diff(lx)
        tail = local[-3:]
        consts = av[1:][-3:] * x[1:][-3:] ** tail
        r = float(local[-1])
        c = sign * float(consts[-1])
        c_lo, c_hi = sorted((sign * float(consts.min()), sign * float(consts.max())))
        fixed = {}
        if rate is not None:
            at = av[-3:] * x[-3:] ** float(rate)
            fixed = {"fixed_rate": float(rate), "constant_at_rate": sign * float(at[-1]),
                     "constant_at_rate_interval": tuple(sorted((sign * float(at.min()),
                                                                sign * float(at.max()))))}  # fmt: skip
        return PowerLawFit(r, (float(tail.min()), float(tail.max())), c, (c_lo, c_hi), True,
                           ns=tuple(x), values=tuple(v), **fixed)  # fmt: skip
    z = _z(confidence)
    sy = se / av
    w = 1.0 / sy**2
    A = np.vstack([np.ones_like(lx), -lx]).T
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    coef = cov @ (A.T @ (w * ly))
    resid = ly - A @ coef
    dof = max(x.size - 2, 1)
    chi2 = float((w * resid**2).sum()) / dof
    cov = cov * max(chi2, 1.0)
    r, r_se = float(coef[1]), float(np.sqrt(cov[1, 1]))
    lc, lc_se = float(coef[0]), float(np.sqrt(cov[0, 0]))
    c_lo, c_hi = sorted((sign * np.exp(lc - z * lc_se), sign * np.exp(lc + z * lc_se)))
    fixed = {}
    if rate is not None:
        lcs = ly + float(rate) * lx
        m = float((w * lcs).sum() / w.sum())
        chi2_1 = float((w * (lcs - m) ** 2).sum()) / max(x.size - 1, 1)
        m_se = float(np.sqrt(max(chi2_1, 1.0) / w.sum()))
        ends = (sign * float(np.exp(m - z * m_se)), sign * float(np.exp(m + z * m_se)))
        fixed = {"fixed_rate": float(rate), "constant_at_rate": sign * float(np.exp(m)),
                 "constant_at_rate_interval": tuple(sorted(ends))}  # fmt: skip
    return PowerLawFit(r, (r - z * r_se, r + z * r_se), sign * float(np.exp(lc)),
                       (float(c_lo), float(c_hi)), False, confidence, chi2, tuple(x), tuple(v),
                       tuple(se), **fixed)  # fmt: skip


def _meets(interval, lo, hi) -> bool:
    return interval[1] >= lo and interval[0] <= hi


@dataclass
class _Outcome:
    ok: bool
    fit: PowerLawFit
    why: str = ""
    extra: dict = field(default_factory=dict)


class PowerLawClaim(_BaseClaim):
    r"""The claim ``quantity(n) ~ C·n^{-rate}`` on a grid of n.

    Parameters
    ----------
    name : str
    quantity : callable
        ``quantity(n, rng) -> (value, stderr)``; ``stderr = 0`` for an exact value (then
        ``rng`` is ignored). Monte Carlo quantities must draw only from ``rng``.
    ns : sequence of int
        The grid (≥ 3 sizes, each ≥ 1, increasing).
    rate, rate_tol : float, keyword-only
        Claimed r and the tolerance around it.
    constant, constant_rtol : float, optional, keyword-only
        Claimed C and its relative tolerance (not checked when omitted).
    confidence : float, keyword-only
        Level of the Monte Carlo intervals (default 0.999).
    source, tags, expected, description, budget :
        As for every claim.
    """

    kind = "power-law"

    def __init__(self, name, quantity: Callable, *, ns: Sequence, rate: float, rate_tol: float,
                 constant: float | None = None, constant_rtol: float | None = None,
                 confidence: float = 0.999, source, tags=(), expected, description="",
                 budget=None):  # fmt: skip
        super().__init__(name, source=source, tags=tags, expected=expected,
                         description=description, budget=budget)  # fmt: skip
        self.ns = [int(n) for n in _grid(ns)]
        if not rate_tol > 0:
            raise ValueError(f"rate_tol must be positive, got {rate_tol}")
        if (constant is None) != (constant_rtol is None):
            raise ValueError("give both constant and constant_rtol, or neither")
        if constant_rtol is not None and not constant_rtol > 0:
            raise ValueError(f"constant_rtol must be positive, got {constant_rtol}")
        _z(confidence)
        self.quantity, self.rate, self.rate_tol = quantity, float(rate), float(rate_tol)
        self.constant, self.constant_rtol, self.confidence = constant, constant_rtol, confidence

    def _run(self, seed: int, deadline: float) -> _Outcome:
        rng = np.random.default_rng(seed)
        vals, ses = [], []
        for n in self.ns:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"time budget ran out before n = {n}")
            v, s = self.quantity(n, rng)
            vals.append(float(v))
            ses.append(float(s))
        fit = fit_power_law(self.ns, vals, ses, rate=self.rate, confidence=self.confidence)
        why = []
        ok = _meets(fit.rate_interval, self.rate - self.rate_tol, self.rate + self.rate_tol)
        if not ok:
            why.append(f"rate interval misses {self.rate}±{self.rate_tol}")
        if self.constant is not None:
            lo, hi = sorted((self.constant * (1 - self.constant_rtol),
                             self.constant * (1 + self.constant_rtol)))  # fmt: skip
            if not _meets(fit.constant_at_rate_interval, lo, hi):
                ok = False
                why.append(f"constant interval misses {self.constant:.6g}·(1 ± {self.constant_rtol})")
        return _Outcome(ok, fit, "; ".join(why))

    def check(self, *, budget: float | None = None, seed: int = 0) -> Verdict:
        """Fit on the grid and return the verdict (see the class docstring)."""
        start = time.perf_counter()
        b = budget if budget is not None else (self.budget or 20.0)
        deadline = start + b

        def verdict(status, out: _Outcome | None, detail, counterexample=None):
            assert status in STATUSES
            return Verdict(
                status=status, engine="power-law", claim=self.name, expected=self.expected,
                source=self.source, margin=out.fit.describe() if out else None,
                counterexample=counterexample, detail=detail,
                recheck="fresh seed" if counterexample and not out.fit.exact else None,
                elapsed=time.perf_counter() - start,
                stats={"ns": self.ns, "values": list(out.fit.values) if out else None},
            )  # fmt: skip

        claimed = f"rate {self.rate}±{self.rate_tol}" + (
            f", C = {self.constant:.6g}·(1 ± {self.constant_rtol})" if self.constant is not None else "")
        try:
            out = self._run(seed, deadline)
            if not out.ok and not out.fit.exact:
                again = self._run(seed + 1_000_003, deadline)
                if again.ok:
                    return verdict("consistent", again, f"{claimed}: first run missed, a fresh "
                                   "seed did not")  # fmt: skip
                cex = {"seed": seed, "recheck_seed": seed + 1_000_003, "fit": out.fit.describe(),
                       "recheck_fit": again.fit.describe()}  # fmt: skip
                return verdict("violated", out, f"{claimed}: {out.why} (two runs)", cex)
        except TimeoutError as exc:
            return verdict("inconclusive", None, str(exc))
        if out.ok:
            return verdict("consistent", out, f"{claimed}: the fitted interval meets the claim")
        return verdict("violated", out, f"{claimed}: {out.why}", {"fit": out.fit.describe()})
