"""Claims, domains, verdicts — and :func:`verify`, which picks the engines.

A **claim** is a statement with the domain on which it is asserted, its source and the
verdict it is expected to get:

* :class:`Claim`: a sympy relational (``Le, Lt, Ge, Gt`` or ``Eq``) between expressions in
  named parameters, over a box :class:`Domain` with open or closed ends, optionally with
  a *named excluded neighbourhood* (e.g. ``|p − q| < 1/10``) for the certified engine;
* :class:`ExpectationClaim`: ``E[X] ≤ c`` / ``≥ c`` / ``= c`` backed by a sampler;
* :class:`RateClaim`: ``E[X_n] ∝ n^s`` backed by a sampler, checked as a log–log slope;
* :class:`CallableClaim`: a numeric check that is not a formula (e.g. a kernel against the
  reference), returning a list of named margins that must be ≥ 0.

**Verdicts** (see docs/verdicts.md):

``proved``
    sympy rewrote the statement into a manifest form (no numerics involved);
``certified``
    Arb branch-and-bound proved it on every box of a cover of the whole domain (or of the
    domain minus the named excluded neighbourhood, which is then reported);
``consistent``
    high-precision sampling (or Monte Carlo at a stated confidence) found no violation;
``violated``
    a counterexample, printed at full precision, that re-checked in a fresh evaluation
    (mpmath at two precisions and, for formulas, an Arb ball entirely on the wrong side);
``inconclusive``
    the time budget ran out first, or nothing could be evaluated.

>>> import sympy
>>> from proofs_check.claims import verify
>>> p, q = sympy.symbols("p q", positive=True)
>>> kl = p * sympy.log(p / q) + (1 - p) * sympy.log((1 - p) / (1 - q))
>>> v = verify(sympy.Le(2 * (p - q) ** 2, kl), domain={p: (0.01, 0.99), q: (0.01, 0.99)},
...            exclude=sympy.Abs(p - q) < sympy.Rational(1, 10))
>>> v.status, v.engine
('certified', 'certified')
>>> w = verify(sympy.Le(kl, 2 * (p - q) ** 2), domain={p: (0.01, 0.99), q: (0.01, 0.99)})
>>> w.status
'violated'
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import mpmath
import sympy

from proofs_check import reference
from proofs_check.engines import montecarlo, sampling, symbolic
from proofs_check.engines.certified import branch_and_bound

__all__ = [
    "STATUSES",
    "Domain",
    "Verdict",
    "Claim",
    "ExpectationClaim",
    "RateClaim",
    "CallableClaim",
    "verify",
]

STATUSES = ("proved", "certified", "consistent", "violated", "inconclusive")
DEFAULT_BUDGET = 20.0
MAX_CERTIFIED_DIM = 4


# --------------------------------------------------------------------------- domain
@dataclass(frozen=True)
class _Range:
    lo: sympy.Rational
    hi: sympy.Rational
    lo_open: bool
    hi_open: bool

    def text(self) -> str:
        return f"{'(' if self.lo_open else '['}{self.lo}, {self.hi}{')' if self.hi_open else ']'}"


def _exact_bound(name: str, x) -> sympy.Expr:
    if isinstance(x, sympy.Basic) and x.is_infinite:
        raise ValueError(f"bound {x} of {name} is infinite; the domain must be a bounded box")
    if isinstance(x, float) and x != x:
        raise ValueError(f"bound of {name} is NaN")
    if isinstance(x, float) and abs(x) == float("inf"):
        raise ValueError(f"bound {x} of {name} is infinite; the domain must be a bounded box")
    if isinstance(x, float):
        return sympy.Rational(repr(x))  # 0.01 means 1/100, as written
    try:
        v = reference.exact_value(x)
    except ValueError as exc:
        raise ValueError(f"bound {x!r} of {name}: {exc}") from None
    if not v.is_real or not v.is_finite:
        raise ValueError(f"bound {x!r} of {name} is not a finite real number")
    return v


class Domain:
    """A box of named parameter ranges with open or closed ends.

    Parameters
    ----------
    ranges : mapping
        ``{symbol or name: range}`` where a range is ``(lo, hi)`` (closed),
        ``(lo, hi, lo_open, hi_open)``, or a ``sympy.Interval``. Float bounds are read as
        written (``0.01`` is 1/100).

    Raises
    ------
    ValueError
        For inverted bounds (``lo > hi``), an empty range (``lo == hi`` with an open end,
        or an empty Interval), infinite bounds, or a malformed range.

    >>> Domain({"p": (0.01, 0.99), "q": (0, 1, True, False)}).describe()
    'p ∈ [1/100, 99/100], q ∈ (0, 1]'
    """

    def __init__(self, ranges: Mapping):
        if isinstance(ranges, Domain):
            self.ranges = dict(ranges.ranges)
            return
        if not isinstance(ranges, Mapping):
            raise TypeError(f"domain must be a mapping {{symbol: (lo, hi)}}, got {ranges!r}")
        self.ranges: dict[str, _Range] = {}
        for key, rng in ranges.items():
            name = key.name if isinstance(key, sympy.Symbol) else key
            if not isinstance(name, str) or not name:
                raise TypeError(f"domain keys must be sympy Symbols or names, got {key!r}")
            self.ranges[name] = self._parse(name, rng)

    @staticmethod
    def _parse(name: str, rng) -> _Range:
        if isinstance(rng, sympy.Set):
            if rng.is_empty:
                raise ValueError(f"the range of {name} is empty ({rng})")
            if not isinstance(rng, sympy.Interval):
                raise ValueError(f"the range of {name} must be an Interval, got {rng}")
            lo, hi, lo_open, hi_open = rng.start, rng.end, bool(rng.left_open), bool(rng.right_open)
        elif isinstance(rng, tuple | list) and len(rng) in (2, 4):
            lo, hi = rng[0], rng[1]
            lo_open, hi_open = (bool(rng[2]), bool(rng[3])) if len(rng) == 4 else (False, False)
        else:
            raise ValueError(
                f"the range of {name} must be (lo, hi), (lo, hi, lo_open, hi_open) or an "
                f"Interval, got {rng!r}"
            )
        lo, hi = _exact_bound(name, lo), _exact_bound(name, hi)
        if bool(lo > hi):
            raise ValueError(f"inverted bounds for {name}: lower {lo} > upper {hi}")
        if lo == hi and (lo_open or hi_open):
            raise ValueError(f"the range of {name} is empty: {lo} with an open end")
        return _Range(lo, hi, lo_open, hi_open)

    def names(self) -> list[str]:
        """Parameter names, in insertion order."""
        return list(self.ranges)

    def describe(self) -> str:
        """Human-readable form, e.g. ``p ∈ [1/100, 99/100]``."""
        return ", ".join(f"{n} ∈ {r.text()}" for n, r in self.ranges.items())

    def resolve(self, free_symbols) -> tuple[list, list]:
        """Match the statement's free symbols to the ranges; returns (symbols, bounds)."""
        by_name = {}
        for s in free_symbols:
            if s.name in by_name and by_name[s.name] != s:
                raise ValueError(f"two different symbols are named {s.name!r}")
            by_name[s.name] = s
        unknown = sorted(set(by_name) - set(self.ranges))
        if unknown:
            known = ", ".join(self.ranges) or "none"
            raise ValueError(
                f"unknown symbol(s) {', '.join(unknown)}: the statement uses them but the "
                f"domain gives no range (domain names: {known})"
            )
        unused = sorted(set(self.ranges) - set(by_name))
        if unused:
            raise ValueError(
                f"the domain names {', '.join(unused)}, which the statement does not use "
                f"(statement symbols: {', '.join(sorted(by_name)) or 'none'})"
            )
        names = sorted(by_name)
        symbols = [by_name[n] for n in names]
        bounds = [
            (self.ranges[n].lo, self.ranges[n].hi, self.ranges[n].lo_open, self.ranges[n].hi_open)
            for n in names
        ]
        return symbols, bounds


# --------------------------------------------------------------------------- verdict
@dataclass
class Verdict:
    """The outcome of checking one claim.

    Attributes
    ----------
    status : str
        One of :data:`STATUSES`.
    engine : str
        Engine that produced the status (symbolic, certified, sampling, montecarlo, callable).
    margin : str or None
        proved: the manifest form; certified: a certified lower bound of the margin on the
        covered set; consistent: the smallest margin seen; violated: the margin at the
        counterexample (negative).
    counterexample : dict or None
        Parameter values at full precision (decimal strings) for a violated claim.
    counterexample_ball : str or None
        The Arb ball of the margin at the counterexample (entirely on the wrong side of 0).
    excluded : str or None
        The excluded neighbourhood of a ``certified`` verdict, when there is one.
    """

    status: str
    engine: str
    claim: str | None = None
    expected: str | None = None
    margin: str | None = None
    counterexample: dict | None = None
    counterexample_ball: str | None = None
    recheck: str | None = None
    excluded: str | None = None
    detail: str = ""
    elapsed: float = 0.0
    source: str | None = None
    stats: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        """True when there is no expected verdict or the status equals it."""
        return self.expected is None or self.status == self.expected

    def to_dict(self) -> dict:
        """JSON-ready dictionary (every value a str, number, bool, list, dict or None)."""
        d = asdict(self)
        d["ok"] = self.ok
        return json.loads(json.dumps(d, default=str))

    def summary(self) -> str:
        """One line: margin or counterexample."""
        if self.status == "violated" and self.counterexample:
            pts = ", ".join(f"{k}={v}" for k, v in self.counterexample.items())
            return f"at {pts}: margin {self.margin}"
        if self.status == "proved":
            how = self.detail.split(":")[0]
            return f"symbolic proof ({how[:60]}{'…' if len(how) > 60 else ''})"
        if self.status == "certified" and self.excluded:
            return f"margin ≥ {self.margin} outside {self.excluded}"
        if self.margin is not None:
            return f"margin {self.margin}"
        return self.detail


# --------------------------------------------------------------------------- claims
_RELATIONS = (sympy.LessThan, sympy.StrictLessThan, sympy.GreaterThan, sympy.StrictGreaterThan,
              sympy.Equality)  # fmt: skip


def _normalise(statement):
    """Return (kind, lhs, rhs, strict) with kind 'le' or 'eq' (≥ claims are swapped)."""
    if isinstance(statement, sympy.logic.boolalg.BooleanAtom):
        return "const", bool(statement), None, False
    if not isinstance(statement, _RELATIONS):
        raise ValueError(
            "statement must be a sympy relational Le, Lt, Ge, Gt or Eq, got "
            f"{type(statement).__name__}: {statement}"
        )
    lhs, rhs = statement.lhs, statement.rhs
    if isinstance(statement, sympy.Equality):
        return "eq", lhs, rhs, False
    if isinstance(statement, sympy.GreaterThan | sympy.StrictGreaterThan):
        lhs, rhs = rhs, lhs
    strict = isinstance(statement, sympy.StrictLessThan | sympy.StrictGreaterThan)
    return "le", lhs, rhs, strict


@dataclass
class _Meta:
    name: str | None = None
    source: str | None = None
    tags: tuple = ()
    expected: str | None = None
    description: str = ""


def verify(
    statement,
    domain: Mapping | Domain | None = None,
    *,
    exclude=None,
    exclude_text: str | None = None,
    budget: float = DEFAULT_BUDGET,
    dps: int = 30,
    engines: Sequence[str] = ("symbolic", "certified", "sampling"),
    n_points: int = 128,
    n_screen: int = 2048,
    seed: int = 0,
    prec: int = 80,
    _meta: _Meta | None = None,
) -> Verdict:
    """Check a relational statement over a box and return a :class:`Verdict`.

    Parameters
    ----------
    statement : sympy relational
        ``Le(lhs, rhs)``, ``Lt``, ``Ge``, ``Gt`` or ``Eq``, in parameters that all have a
        range in ``domain``.
    domain : mapping or Domain
        ``{symbol: (lo, hi)}`` (closed ends) or richer ranges (see :class:`Domain`).
    exclude : sympy boolean, optional, keyword-only
        A neighbourhood the certified engine may leave out (e.g. where both sides meet,
        ``Abs(p - q) < 1/10``). A ``certified`` verdict then names it in ``excluded``;
        the sampling engine still samples the whole domain.
    exclude_text : str, optional, keyword-only
        How to name the excluded set (default: the condition as sympy prints it).
    budget : float, keyword-only
        Seconds for this claim; unfinished work ends as ``inconclusive``, never as a pass.
    dps : int, keyword-only
        Digits of the high-precision evaluations.
    engines : sequence of str, keyword-only
        Subset of ``("symbolic", "certified", "sampling")`` to try, in that order.
    n_points, n_screen, seed, prec : keyword-only
        Sampling design sizes, Sobol seed, and Arb precision (bits) for branch-and-bound.

    Raises
    ------
    ValueError
        For a statement that is not a relational, a symbol without a range, a range that
        is empty or inverted, or a domain entry the statement does not use.
    """
    meta = _meta or _Meta()
    start = time.perf_counter()
    deadline = start + float(budget)
    if budget <= 0:
        raise ValueError(f"budget must be positive seconds, got {budget}")
    bad = set(engines) - {"symbolic", "certified", "sampling"}
    if bad:
        raise ValueError(f"unknown engine(s) {sorted(bad)}; use symbolic, certified, sampling")
    kind, lhs, rhs, strict = _normalise(statement)
    dom = Domain(domain or {})

    def done(**kw) -> Verdict:
        return Verdict(
            claim=meta.name, expected=meta.expected, source=meta.source,
            elapsed=time.perf_counter() - start, **kw,
        )  # fmt: skip

    if kind == "const":
        # sympy already decided the relational when it was built (e.g. a square ≥ 0)
        if lhs:
            return done(status="proved", engine="symbolic",
                        detail="sympy evaluated the statement to True when it was built")  # fmt: skip
        return done(status="violated", engine="symbolic", counterexample={},
                    detail="sympy evaluated the statement to False")  # fmt: skip
    free = lhs.free_symbols | rhs.free_symbols
    if exclude is not None:
        extra = exclude.free_symbols - free
        if extra:
            raise ValueError(f"exclude uses symbol(s) {sorted(s.name for s in extra)} "
                             "that the statement does not")  # fmt: skip
    symbols, bounds = dom.resolve(free)
    subs = symbolic.assumption_symbols(symbols, bounds)
    dummies = [subs[s] for s in symbols]
    lhs_d, rhs_d = lhs.xreplace(subs), rhs.xreplace(subs)
    excl_d = exclude.xreplace(subs) if exclude is not None else None
    notes = []

    # 1. symbolic
    if "symbolic" in engines:
        sym_deadline = start + 0.3 * budget
        if kind == "eq":
            res = symbolic.prove_identity(lhs_d, rhs_d, {}, deadline=sym_deadline)
        else:
            res = symbolic.prove_nonnegative(
                rhs_d - lhs_d, {}, strict=strict, symbols=dummies, bounds=bounds,
                deadline=sym_deadline,
            )  # fmt: skip
        if res.proved:
            return done(status="proved", engine="symbolic", margin=res.form, detail=res.detail)
        notes.append(f"symbolic: {res.detail}")
    if not symbols:
        return _constant_statement(kind, lhs_d, rhs_d, strict, dps, done)

    def run_sampling(until, n_pts, n_scr):
        return sampling.sample(
            lhs_d, rhs_d, dummies, bounds, kind=kind, strict=strict, deadline=until, dps=dps,
            n_screen=n_scr, n_points=n_pts, seed=seed,
        )  # fmt: skip

    def violated(res: sampling.SampleResult, engine="sampling") -> Verdict:
        return done(
            status="violated", engine=engine, margin=res.counterexample_margin,
            counterexample=res.counterexample, counterexample_ball=res.counterexample_ball,
            recheck=res.recheck, detail="; ".join(notes + [f"violation re-checked: {res.recheck}"]),
            stats={"n_points": res.n_points, "n_screened": res.n_screened},
        )  # fmt: skip

    use_cert = "certified" in engines and kind == "le"
    if use_cert and len(symbols) > MAX_CERTIFIED_DIM:
        notes.append(f"certified: skipped ({len(symbols)} parameters > {MAX_CERTIFIED_DIM})")
        use_cert = False
    elif "certified" in engines and kind == "eq":
        notes.append("certified: not applicable to identities (a ball cannot prove equality)")

    # 2. a quick search for counterexamples before spending time on a proof
    if "sampling" in engines and use_cert:
        now = time.perf_counter()
        quick_until = min(deadline, max(start + 0.25 * budget, now + 0.1 * budget))
        quick = run_sampling(quick_until, min(24, n_points), min(1024, n_screen))
        if quick.status == "violated":
            return violated(quick)

    # 3. certified branch-and-bound
    if use_cert:
        cert = branch_and_bound(
            rhs_d - lhs_d, dummies, bounds, strict=strict, exclude=excl_d,
            deadline=start + (0.7 if "sampling" in engines else 1.0) * budget, prec=prec,
        )  # fmt: skip
        if cert.status == "certified":
            excluded = None
            if cert.boxes_excluded:
                excluded = exclude_text or str(exclude)
            return done(
                status="certified", engine="certified", margin=cert.lower_bound,
                excluded=excluded, detail=f"Arb branch-and-bound over {dom.describe()}: "
                f"{cert.reason}" + (" (mean-value form)" if cert.used_mean_value else ""),
                stats={"boxes_proved": cert.boxes_proved, "boxes_excluded": cert.boxes_excluded},
            )  # fmt: skip
        if cert.status == "violated":
            point = cert.counterexample
            value = None
            try:
                value = reference.decimal_string(reference.evaluate(rhs_d - lhs_d, point, dps=dps), dps)
            except ValueError:
                value = None
            if value is not None:
                return done(
                    status="violated", engine="certified", margin=value, counterexample=point,
                    counterexample_ball=cert.counterexample_ball,
                    recheck=f"Arb ball at {prec} bits, mpmath at {dps} and {dps + 20} digits",
                    detail="; ".join(notes + [cert.reason]),
                )  # fmt: skip
        notes.append(f"certified: {cert.reason}")

    # 4. full sampling
    if "sampling" not in engines:
        return done(status="inconclusive", engine="certified" if use_cert else "symbolic",
                    detail="; ".join(notes) or "no engine could decide")  # fmt: skip
    res = run_sampling(deadline, n_points, n_screen)
    if res.status == "violated":
        return violated(res)
    if res.status == "inconclusive":
        return done(status="inconclusive", engine="sampling",
                    detail="; ".join(notes + [f"sampling: {res.reason}"]),
                    stats={"n_points": res.n_points})  # fmt: skip
    return done(
        status="consistent", engine="sampling", margin=res.min_margin,
        detail="; ".join(notes + [f"sampling: {res.reason}; smallest margin at {res.argmin}"]),
        stats={"n_points": res.n_points, "n_screened": res.n_screened},
    )  # fmt: skip


def _constant_statement(kind, lhs, rhs, strict, dps, done) -> Verdict:
    """A statement without parameters: decide it from a reference value and an Arb ball."""
    margin = (rhs - lhs) if kind == "le" else (lhs - rhs)
    value = reference.evaluate(margin, {}, dps=dps, atol=mpmath.mpf(10) ** (-(dps - 5)))
    b = reference.ball(margin, {}, dps=dps)
    text = reference.decimal_string(value, dps)
    if kind == "le":
        if (b > 0) if strict else (b >= 0):
            return done(status="certified", engine="certified", margin=text,
                        detail="Arb ball of the margin is on the right side of 0")  # fmt: skip
        if (b <= 0) if strict else (b < 0):
            return done(status="violated", engine="certified", margin=text, counterexample={},
                        counterexample_ball=b.str(20), detail="constant statement is false")  # fmt: skip
    elif abs(b) > 0:
        return done(status="violated", engine="certified", margin=text, counterexample={},
                    counterexample_ball=b.str(20), detail="the two sides differ")  # fmt: skip
    return done(status="consistent", engine="sampling", margin=text,
                detail=f"margin {text} at {dps} digits; Arb could not decide its sign")  # fmt: skip


class _BaseClaim:
    kind = "base"

    def __init__(self, name: str, *, source: str, tags: Sequence[str] = (), expected: str,
                 description: str = "", budget: float | None = None):  # fmt: skip
        if not name or not isinstance(name, str):
            raise ValueError("a claim needs a non-empty name")
        if expected not in STATUSES:
            raise ValueError(f"expected verdict of {name} must be one of {STATUSES}, got {expected!r}")
        if not source:
            raise ValueError(f"claim {name} needs a source (paper and equation, or textbook)")
        self.name = name
        self.source = source
        self.tags = tuple(tags)
        self.expected = expected
        self.description = description
        self.budget = budget

    def _meta(self) -> _Meta:
        return _Meta(self.name, self.source, self.tags, self.expected, self.description)

    def check(self, *, budget: float | None = None, seed: int = 0) -> Verdict:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, expected={self.expected!r})"


class Claim(_BaseClaim):
    """A relational statement over a box (see :func:`verify` for the keyword options).

    Parameters
    ----------
    name : str
    statement : sympy relational
    domain : mapping or Domain
    source : str
        Paper and equation, or textbook and section.
    tags : sequence of str
    expected : str
        The verdict the claim must get (``violated`` for a known-false claim).
    exclude, exclude_text : optional
        Named neighbourhood the certified engine may leave out.
    options : dict
        Extra keywords for :func:`verify` (``n_points``, ``dps``, ``engines``...).
    """

    kind = "relational"

    def __init__(self, name, statement, domain, *, source, tags=(), expected, exclude=None,
                 exclude_text=None, description="", budget=None, options=None):  # fmt: skip
        super().__init__(name, source=source, tags=tags, expected=expected,
                         description=description, budget=budget)  # fmt: skip
        kind, lhs, rhs, _strict = _normalise(statement)
        self.statement = statement
        self.domain = Domain(domain)
        self.exclude = exclude
        self.exclude_text = exclude_text
        self.options = dict(options or {})
        if kind != "const":
            self.domain.resolve(lhs.free_symbols | rhs.free_symbols)

    def check(self, *, budget: float | None = None, seed: int = 0) -> Verdict:
        """Run :func:`verify` on the statement with this claim's settings."""
        b = budget if budget is not None else (self.budget or DEFAULT_BUDGET)
        opts = {"seed": seed, **self.options}
        return verify(self.statement, self.domain, exclude=self.exclude,
                      exclude_text=self.exclude_text, budget=b, _meta=self._meta(), **opts)  # fmt: skip


class ExpectationClaim(_BaseClaim):
    """``E[X] (relation) target`` with ``X`` drawn by ``draw(rng, size)``."""

    kind = "expectation"

    def __init__(self, name, draw: Callable, *, target: float, relation: str, n: int,
                 source, tags=(), expected, description="", confidence=0.999, budget=None):  # fmt: skip
        super().__init__(name, source=source, tags=tags, expected=expected,
                         description=description, budget=budget)  # fmt: skip
        if relation not in ("le", "ge", "eq"):
            raise ValueError(f"relation must be 'le', 'ge' or 'eq', got {relation!r}")
        self.draw, self.target, self.relation, self.n = draw, float(target), relation, int(n)
        self.confidence = confidence

    def check(self, *, budget: float | None = None, seed: int = 0) -> Verdict:
        start = time.perf_counter()
        b = budget if budget is not None else (self.budget or DEFAULT_BUDGET)
        res = montecarlo.expectation(
            self.draw, target=self.target, relation=self.relation, n=self.n,
            deadline=start + b, confidence=self.confidence, seed=seed,
        )  # fmt: skip
        return _mc_verdict(self, res, start, f"E[X] {self._rel()} {self.target:.10g}")

    def _rel(self):
        return {"le": "≤", "ge": "≥", "eq": "="}[self.relation]


class RateClaim(_BaseClaim):
    """``E[X_n] ∝ n^slope`` (±tol) with ``X_n`` drawn by ``draw_at(rng, n, size)``."""

    kind = "rate"

    def __init__(self, name, draw_at: Callable, *, ns, slope: float, tol: float, reps: int,
                 source, tags=(), expected, description="", confidence=0.999, budget=None):  # fmt: skip
        super().__init__(name, source=source, tags=tags, expected=expected,
                         description=description, budget=budget)  # fmt: skip
        self.draw_at, self.ns, self.slope, self.tol, self.reps = draw_at, list(ns), slope, tol, reps
        self.confidence = confidence

    def check(self, *, budget: float | None = None, seed: int = 0) -> Verdict:
        start = time.perf_counter()
        b = budget if budget is not None else (self.budget or DEFAULT_BUDGET)
        res = montecarlo.rate(
            self.draw_at, ns=self.ns, slope=self.slope, tol=self.tol, reps=self.reps,
            deadline=start + b, confidence=self.confidence, seed=seed,
        )  # fmt: skip
        return _mc_verdict(self, res, start, f"slope {self.slope}±{self.tol}")


def _mc_verdict(claim, res: montecarlo.MCResult, start: float, what: str) -> Verdict:
    margin = None
    if res.estimate is not None:
        margin = f"{res.estimate:.6g} in [{res.interval[0]:.6g}, {res.interval[1]:.6g}]"
    return Verdict(
        status=res.status, engine="montecarlo", claim=claim.name, expected=claim.expected,
        source=claim.source, margin=margin, counterexample=res.counterexample,
        recheck="fresh seed" if res.counterexample else None,
        detail=f"{what}: {res.reason}", elapsed=time.perf_counter() - start,
        stats={"n": res.n, "confidence": res.confidence},
    )  # fmt: skip


class CallableClaim(_BaseClaim):
    """A numeric check ``run(deadline) -> list[(label, margin)]``; every margin must be ≥ 0.

    Used for kernel validations (kernel vs reference). ``violated`` when a margin is
    negative; the label names the failing case. Never ``certified``: the verdict is
    ``consistent`` at best.
    """

    kind = "callable"

    def __init__(self, name, run: Callable, *, source, tags=(), expected, description="",
                 budget=None):  # fmt: skip
        super().__init__(name, source=source, tags=tags, expected=expected,
                         description=description, budget=budget)  # fmt: skip
        self.run = run

    def check(self, *, budget: float | None = None, seed: int = 0) -> Verdict:
        start = time.perf_counter()
        b = budget if budget is not None else (self.budget or DEFAULT_BUDGET)
        try:
            margins = self.run(start + b)
        except TimeoutError as exc:
            return Verdict(status="inconclusive", engine="callable", claim=self.name,
                           expected=self.expected, source=self.source, detail=str(exc),
                           elapsed=time.perf_counter() - start)  # fmt: skip
        worst = min(margins, key=lambda item: item[1])
        status = "violated" if worst[1] < 0 else "consistent"
        return Verdict(
            status=status, engine="callable", claim=self.name, expected=self.expected,
            source=self.source, margin=f"{worst[1]:.4g}",
            counterexample={"case": worst[0]} if status == "violated" else None,
            detail=f"{len(margins)} cases; worst {worst[0]}", elapsed=time.perf_counter() - start,
        )  # fmt: skip
