"""The claim catalog: inequalities, identities, rates and kernel validations, with sources.

Each entry has a name, tags, a source (paper and equation, or textbook and section), the
verdict it is expected to get, and a builder that makes the :class:`~proofs_check.claims.Claim`
only when it is checked (so listing and filtering the catalog is instant).

Notation used below (all divergences with P first): two-point distributions
``P = (p, 1 − p)``, ``Q = (q, 1 − q)`` with ``p, q ∈ [1/100, 99/100]``; KL, χ² (Pearson),
JS (β = 1/2), TV and H² (squared Hellinger, Σ(√p − √q)²) are the catalog f-divergences of
:mod:`theory.fdiv` evaluated with ``FDivergence.discrete``. Where both sides of an
inequality meet (``p = q``), certification excludes the named neighbourhood
``|p − q| < 1/10``; sampling still covers the whole box.

Claims tagged ``false`` are known to be false and must come back ``violated``.

>>> from proofs_check import catalog
>>> len(catalog.names()) >= 25
True
>>> catalog.get("pinsker").source
'Tsybakov (2009), Introduction to Nonparametric Estimation, Lemma 2.5(i)'
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy
from sympy import Abs, Rational, exp, log, pi, sqrt

from proofs_check import reference
from proofs_check.claims import CallableClaim, Claim, ExpectationClaim, RateClaim, _BaseClaim

__all__ = ["names", "get", "select", "tags", "entries", "Entry", "register", "kernel_claim"]

p, q = sympy.symbols("p q", positive=True)
PQ = {p: (0.01, 0.99), q: (0.01, 0.99)}
NEAR_EQUAL = Abs(p - q) < Rational(1, 10)
NEAR_EQUAL_TEXT = "|p − q| < 1/10 (around the equality set p = q)"


@dataclass(frozen=True)
class Entry:
    """Catalog metadata; ``build()`` makes the claim."""

    name: str
    tags: tuple
    expected: str
    source: str
    description: str
    builder: Callable

    def build(self) -> _BaseClaim:
        return self.builder(self)


_ENTRIES: dict[str, Entry] = {}


def register(name, *, tags, expected, source, description=""):
    """Decorator adding a claim builder ``fn(entry) -> Claim`` to the catalog under ``name``.

    Claim sets outside this module (``proofs_check/claimsets/*.py``) register through it;
    each such module is imported once when the catalog loads.
    """

    def deco(fn):
        if name in _ENTRIES:
            raise ValueError(f"duplicate claim name {name}")
        _ENTRIES[name] = Entry(name, tuple(tags), expected, source, description, fn)
        return fn

    return deco


def _meta(e: Entry) -> dict:
    return {"source": e.source, "tags": e.tags, "expected": e.expected,
            "description": e.description}  # fmt: skip


def _div(name: str, P, Q, **params) -> sympy.Expr:
    from theory import fdiv

    return fdiv.get(name, **params).discrete(P, Q)


def _two(name: str, **params) -> sympy.Expr:
    return _div(name, [p, 1 - p], [q, 1 - q], **params)


def _relational(e: Entry, statement, domain, **kw) -> Claim:
    return Claim(e.name, statement, domain, **_meta(e), **kw)


# ------------------------------------------------------------------ nonnegativity
# Every catalog divergence gets the per-divergence claims below (the theory registry drives
# them: a new entry in theory.fdiv is checked without touching this module); what the
# engines are known to reach for each generator is a fact of its registry entry
# (theory.fdiv.facts), with defaults for a new one.


def _catalog_names() -> list[str]:
    from theory import fdiv

    return fdiv.names()


def _facts(name: str):
    from theory import fdiv

    return fdiv.facts(name)


_NONNEG_NAMES = _catalog_names()


def _nonneg_builder(fname):
    def build(e: Entry) -> Claim:
        return _relational(e, sympy.Ge(_two(fname), 0), PQ, exclude=NEAR_EQUAL,
                           exclude_text=NEAR_EQUAL_TEXT)  # fmt: skip

    return build


for _n in _NONNEG_NAMES:
    register(
        f"nonneg_{_n}", tags=("nonnegativity", "fdiv", "two-point"),
        expected=_facts(_n)["nonneg_verdict"],
        source="Csiszár (1967), Studia Sci. Math. Hungar. 2; Liese & Vajda (2006), IEEE Trans. "
        "Inf. Theory 52(10), Thm. 1 (Jensen: D_f ≥ f(1) = 0)",
        description=f"D_{_n}(P‖Q) ≥ 0 for two-point P, Q",
    )(_nonneg_builder(_n))  # fmt: skip


# ------------------------------------------------------------------ classical inequalities
@register("pinsker", tags=("pinsker", "tv", "kl", "two-point"), expected="certified",
           source="Tsybakov (2009), Introduction to Nonparametric Estimation, Lemma 2.5(i)",
           description="TV(P,Q) ≤ sqrt(KL(P‖Q)/2)")  # fmt: skip
def _pinsker(e):
    return _relational(e, sympy.Le(_two("tv"), sqrt(_two("kl") / 2)), PQ, exclude=NEAR_EQUAL,
                       exclude_text=NEAR_EQUAL_TEXT)  # fmt: skip


def _weights(prefix: str, k: int):
    ws = sympy.symbols(f"{prefix}1:{k + 1}", positive=True)
    total = sum(ws)
    return ws, [w / total for w in ws]


@register("pinsker_three_point", tags=("pinsker", "tv", "kl", "sampled"), expected="consistent",
           source="Tsybakov (2009), Lemma 2.5(i)",
           description="Pinsker for three-point P, Q (unnormalised weights in [1/20, 1])")  # fmt: skip
def _pinsker3(e):
    a, P = _weights("a", 3)
    b, Q = _weights("b", 3)
    dom = {s: (0.05, 1) for s in (*a, *b)}
    return _relational(e, sympy.Le(_div("tv", P, Q), sqrt(_div("kl", P, Q) / 2)), dom)


@register("bretagnolle_huber", tags=("tv", "kl", "two-point"), expected="certified",
           source="Bretagnolle & Huber (1979), Z. Wahrsch. verw. Gebiete 47; Canonne (2022), "
           "'A short note on an inequality between KL and TV', eq. (2)",
           description="TV(P,Q) ≤ sqrt(1 − exp(−KL(P‖Q)))")  # fmt: skip
def _bh(e):
    stmt = sympy.Le(_two("tv"), sqrt(1 - exp(-_two("kl"))))
    return _relational(e, stmt, PQ, exclude=NEAR_EQUAL, exclude_text=NEAR_EQUAL_TEXT)


@register("le_cam_lower", tags=("hellinger", "tv", "two-point"), expected="certified",
           source="Tsybakov (2009), Lemma 2.3 (Le Cam's inequalities), left part",
           description="H²(P,Q)/2 ≤ TV(P,Q), H² = Σ(√p − √q)²")  # fmt: skip
def _lecam_lo(e):
    stmt = sympy.Le(_two("hellinger") / 2, _two("tv"))
    return _relational(e, stmt, PQ, exclude=NEAR_EQUAL, exclude_text=NEAR_EQUAL_TEXT)


@register("le_cam_upper", tags=("hellinger", "tv", "two-point"), expected="certified",
           source="Tsybakov (2009), Lemma 2.3 (Le Cam's inequalities), right part",
           description="TV(P,Q) ≤ H·sqrt(1 − H²/4)")  # fmt: skip
def _lecam_hi(e):
    h2 = _two("hellinger")
    stmt = sympy.Le(_two("tv"), sqrt(h2) * sqrt(1 - h2 / 4))
    # equality holds on p = q and also on the whole anti-diagonal p + q = 1
    # (P = (p, 1-p), Q = (1-p, p): H²(1 - H²/4) = (1 - 2p)² = TV²), so both are excluded
    excl = sympy.Or(NEAR_EQUAL, Abs(p + q - 1) < Rational(1, 10))
    return _relational(e, stmt, PQ, exclude=excl,
                       exclude_text="|p − q| < 1/10 or |p + q − 1| < 1/10 (around the "
                       "equality sets p = q and p + q = 1)")  # fmt: skip


@register("chi2_ge_kl", tags=("chi2", "kl", "two-point"), expected="certified",
           source="Tsybakov (2009), §2.4, Lemma 2.7 (KL ≤ log(1 + χ²) ≤ χ²)",
           description="KL(P‖Q) ≤ χ²(P‖Q)")  # fmt: skip
def _chi2_kl(e):
    return _relational(e, sympy.Le(_two("kl"), _two("pearson")), PQ, exclude=NEAR_EQUAL,
                       exclude_text=NEAR_EQUAL_TEXT)  # fmt: skip


@register("kl_le_log1p_chi2", tags=("chi2", "kl", "two-point"), expected="certified",
           source="Tsybakov (2009), §2.4, Lemma 2.7",
           description="KL(P‖Q) ≤ log(1 + χ²(P‖Q))")  # fmt: skip
def _kl_log_chi2(e):
    return _relational(e, sympy.Le(_two("kl"), log(1 + _two("pearson"))), PQ,
                       exclude=NEAR_EQUAL, exclude_text=NEAR_EQUAL_TEXT)  # fmt: skip


@register("js_le_log2", tags=("js", "two-point"), expected="certified",
           source="Lin (1991), 'Divergence measures based on the Shannon entropy', IEEE Trans. "
           "Inf. Theory 37(1), Thm. 1 (bound log 2 for natural logs)",
           description="JS(P,Q) ≤ log 2 (β = 1/2)")  # fmt: skip
def _js_log2(e):
    return _relational(e, sympy.Le(_two("js"), log(2)), PQ)


@register("tv_le_1", tags=("tv", "two-point"), expected="certified",
           source="definition: TV = sup_A |P(A) − Q(A)| ≤ 1 (Tsybakov (2009), §2.4)",
           description="TV(P,Q) ≤ 1")  # fmt: skip
def _tv_le_1(e):
    return _relational(e, sympy.Le(_two("tv"), 1), PQ)


# ------------------------------------------------------------------ Rényi
def _renyi_two(alpha):
    return log(p**alpha * q ** (1 - alpha) + (1 - p) ** alpha * (1 - q) ** (1 - alpha)) / (alpha - 1)


_a, _d = sympy.symbols("alpha delta", positive=True)
_RENYI_DOM = {p: (0.01, 0.99), q: (0.01, 0.99), _a: (0.1, 3), _d: (0.05, 1)}


@register("renyi_monotone", tags=("renyi", "sampled"), expected="consistent",
           source="van Erven & Harremoës (2014), 'Rényi divergence and Kullback–Leibler "
           "divergence', IEEE Trans. Inf. Theory 60(7), Thm. 3",
           description="R_α(P‖Q) ≤ R_{α+δ}(P‖Q) for α ∈ [0.1, 3], δ ∈ [0.05, 1]")  # fmt: skip
def _renyi_mono(e):
    stmt = sympy.Le(_renyi_two(_a), _renyi_two(_a + _d))
    return _relational(e, stmt, _RENYI_DOM, options={"engines": ("sampling",)})


# ------------------------------------------------------------------ data processing, convexity
def _channel_output(P, K):
    k = len(P)
    return [sum(P[i] * K[i][j] for i in range(k)) for j in range(k)]


def _channel(prefix: str, k: int):
    rows = []
    syms = []
    for i in range(k):
        ws = sympy.symbols(f"{prefix}{i + 1}_1:{k + 1}", positive=True)
        syms.extend(ws)
        tot = sum(ws)
        rows.append([w / tot for w in ws])
    return syms, rows


def _dpi_statement(fname: str, reverse: bool = False):
    a, P = _weights("a", 3)
    b, Q = _weights("b", 3)
    ks, K = _channel("k", 3)
    before = _div(fname, P, Q)
    after = _div(fname, _channel_output(P, K), _channel_output(Q, K))
    dom = {s: (0.05, 1) for s in (*a, *b, *ks)}
    stmt = sympy.Ge(after, before) if reverse else sympy.Le(after, before)
    return stmt, dom


for _n in ("kl", "js", "hellinger", "pearson", "alpha"):
    def _dpi_builder(e, _n=_n):
        stmt, dom = _dpi_statement(_n)
        return _relational(e, stmt, dom)

    register(
        f"data_processing_{_n}", tags=("data-processing", "sampled", "channel"),
        expected="consistent",
        source="Csiszár (1967); Polyanskiy & Wu (2024), Information Theory: From Coding to "
        "Learning, Ch. 7 (data processing for f-divergences)",
        description=f"D_{_n}(PK‖QK) ≤ D_{_n}(P‖Q) for random 3×3 channels K",
    )(_dpi_builder)  # fmt: skip


def _joint_convexity(fname):
    a1, P1 = _weights("a", 3)
    b1, Q1 = _weights("b", 3)
    a2, P2 = _weights("c", 3)
    b2, Q2 = _weights("d", 3)
    lam = sympy.Symbol("lam", positive=True)
    mixP = [lam * x + (1 - lam) * y for x, y in zip(P1, P2, strict=True)]
    mixQ = [lam * x + (1 - lam) * y for x, y in zip(Q1, Q2, strict=True)]
    lhs = _div(fname, mixP, mixQ)
    rhs = lam * _div(fname, P1, Q1) + (1 - lam) * _div(fname, P2, Q2)
    dom = {s: (0.05, 1) for s in (*a1, *b1, *a2, *b2)}
    dom[lam] = (0.05, 0.95)
    return sympy.Le(lhs, rhs), dom


for _n in ("kl", "hellinger", "js"):
    def _jc_builder(e, _n=_n):
        stmt, dom = _joint_convexity(_n)
        return _relational(e, stmt, dom)

    register(
        f"joint_convexity_{_n}", tags=("convexity", "sampled"), expected="consistent",
        source="Cover & Thomas (2006), Elements of Information Theory, Thm. 2.7.2; "
        "Liese & Vajda (2006), IEEE Trans. Inf. Theory 52(10)",
        description=f"D_{_n} is jointly convex on random pairs of three-point distributions",
    )(_jc_builder)  # fmt: skip


_a1, _a2, _b2 = sympy.symbols("a1 a2 b2", positive=True)


@register("log_sum_two_terms", tags=("log-sum",), expected="certified",
           source="Cover & Thomas (2006), Elements of Information Theory, Thm. 2.7.1",
           description="a1 log(a1/b1) + a2 log(a2/b2) ≥ (a1+a2) log((a1+a2)/(b1+b2)), b1 = 1 "
           "(the inequality is homogeneous), a1, a2, b2 ∈ [1/2, 2]")  # fmt: skip
def _logsum2(e):
    lhs = _a1 * log(_a1) + _a2 * log(_a2 / _b2)
    rhs = (_a1 + _a2) * log((_a1 + _a2) / (1 + _b2))
    dom = {_a1: (0.5, 2), _a2: (0.5, 2), _b2: (0.5, 2)}
    excl = Abs(_a1 * _b2 - _a2) < Rational(1, 4)
    return _relational(e, sympy.Ge(lhs, rhs), dom, exclude=excl,
                       exclude_text="|a1·b2 − a2·b1| < 1/4 (around a1/b1 = a2/b2)")  # fmt: skip


@register("log_sum_three_terms", tags=("log-sum", "sampled"), expected="consistent",
           source="Cover & Thomas (2006), Thm. 2.7.1",
           description="log-sum inequality with three terms, a_i, b_i ∈ [1/10, 2]")  # fmt: skip
def _logsum3(e):
    a = sympy.symbols("a1:4", positive=True)
    b = sympy.symbols("b1:4", positive=True)
    lhs = sum(ai * log(ai / bi) for ai, bi in zip(a, b, strict=True))
    rhs = sum(a) * log(sum(a) / sum(b))
    return _relational(e, sympy.Ge(lhs, rhs), {s: (0.1, 2) for s in (*a, *b)})


# ------------------------------------------------------------------ Fenchel–Young, KKT
_U_RANGE = (Rational(1, 10), 10)


def _fy_range(d):
    """A t-range inside the conjugate's domain (f'(0+), f'(∞)), at most [−3, 3], kept 1/10
    away from a finite end: for divergences without a hand-picked range."""
    lo, hi = sympy.Integer(-3), sympy.Integer(3)
    a, b = d.df_at_zero, d.slope_at_infinity
    if a.is_finite:
        lo = max(lo, sympy.nsimplify(a) + Rational(1, 10))
    if b.is_finite:
        hi = min(hi, sympy.nsimplify(b) - Rational(1, 10))
    return lo, hi


def _real_conjugate(expr, t_sym, lo, hi):
    """Rewrite f*(t) on a negative t-range through t = −s (s > 0) so sympy drops ``I·pi``."""
    if hi < 0:
        s = sympy.Symbol("s", positive=True)
        e = expr.subs(t_sym, -s)
        if e.has(sympy.I):
            e = sympy.expand_complex(e)
        return e, s, (-hi, -lo)
    return expr, t_sym, (lo, hi)


def _fy_builder(fname):
    def build(e: Entry) -> _BaseClaim:
        from theory import fdiv, t, u

        d = fdiv.get(fname)
        lo, hi = _facts(fname)["fenchel_young_t_range"] or _fy_range(d)
        conj = d.conjugate
        if conj.expr is None:
            return CallableClaim(e.name, _fy_numeric(d, lo, hi), **_meta(e))
        tr = sympy.Symbol("t", real=True)
        cexpr, var, (a, b) = _real_conjugate(conj.expr.subs(t, tr), tr, lo, hi)
        tval = -var if var is not tr else tr
        uu = sympy.Symbol("u", positive=True)
        fu = d.f.subs(u, uu)
        stmt = sympy.Ge(fu + cexpr, uu * tval)
        df = d.df.subs(u, uu)
        excl = Abs(tval - df) < Rational(1, 10)
        return _relational(
            e, stmt, {uu: _U_RANGE, var: (a, b)}, exclude=excl,
            exclude_text="|t − f'(u)| < 1/10 (around the equality curve t = f'(u))",
        )  # fmt: skip

    return build


def _fy_numeric(d, lo, hi):
    """Fenchel–Young with the numeric conjugate ``d.conjugate(t)``: margins on a grid."""

    def run(deadline):
        import time as _time

        out = []
        us = [mpmath.mpf(x) for x in ("0.1", "0.3", "0.7", "1", "1.5", "3", "10")]
        ts = [mpmath.mpf(lo) + (mpmath.mpf(hi) - mpmath.mpf(lo)) * k / 8 for k in range(9)]
        from theory import u

        with mpmath.workdps(30):
            f_mp = sympy.lambdify(u, d.f, "mpmath")
            for uv in us:
                for tv in ts:
                    if _time.perf_counter() > deadline:
                        raise TimeoutError(f"time budget ran out after {len(out)} points")
                    fs = d.conjugate(tv, dps=30)
                    margin = f_mp(uv) + fs - uv * tv
                    out.append((f"u={mpmath.nstr(uv, 6)}, t={mpmath.nstr(tv, 8)}",
                                float(margin + mpmath.mpf(10) ** -20)))  # fmt: skip
        return out

    return run


for _n in _NONNEG_NAMES:
    register(
        f"fenchel_young_{_n}", tags=("fenchel-young", "conjugate"),
        expected=_facts(_n)["fenchel_young_verdict"],
        source="Rockafellar (1970), Convex Analysis, §12 (Fenchel's inequality); "
        "conjugates from theory.fdiv.FDivergence.conjugate",
        description=f"f(u) + f*(t) ≥ u·t for {_n}, u ∈ [1/10, 10], t in the conjugate's domain",
    )(_fy_builder(_n))  # fmt: skip


def _kkt_builder(fname):
    def build(e: Entry) -> Claim:
        from theory import fdiv, t, u

        d = fdiv.get(fname)
        stmt = sympy.Eq(d.policy_map.subs(t, d.reward_map), u, evaluate=False)
        return _relational(e, stmt, {u: (Rational(1, 20), 20)})

    return build


# only where f' has a closed-form inverse (not tv, which is not strictly convex, nor
# softened_rkl, whose KKT map is checked numerically in claimsets/alignment.py)
_KKT_NAMES = [n for n in _catalog_names() if _facts(n)["policy_map_closed_form"]]
for _n in _KKT_NAMES:
    register(
        f"kkt_map_{_n}", tags=("kkt", "alignment"), expected="proved",
        source="Wang et al. (2024), 'Beyond Reverse KL' (f-DPO), ICLR, §4: r = β f'(π/π_ref) + λ "
        "and its inverse",
        description=f"policy_map(reward_map(u)) = u for {_n}, u ∈ [1/20, 20]",
    )(_kkt_builder(_n))  # fmt: skip


# ------------------------------------------------------------------ Gaussian KL, Xu–Raginsky
_m1, _m2 = sympy.symbols("mu1 mu2", real=True)
_s1, _s2 = sympy.symbols("sigma1 sigma2", positive=True)
_x = sympy.Symbol("x", real=True)


@register("gaussian_kl_closed_form", tags=("gaussian", "integral", "sampled"),
           expected="consistent",
           source="KL(N(μ1,σ1²)‖N(μ2,σ2²)) = log(σ2/σ1) + (σ1² + (μ1−μ2)²)/(2σ2²) − 1/2; "
           "e.g. Polyanskiy & Wu (2024), Ch. 2",
           description="closed form vs mpmath quadrature of ∫ p log(p/q) dx")  # fmt: skip
def _gauss(e):
    logp = -((_x - _m1) ** 2) / (2 * _s1**2) - log(_s1 * sqrt(2 * pi))
    logq = -((_x - _m2) ** 2) / (2 * _s2**2) - log(_s2 * sqrt(2 * pi))
    integral = sympy.Integral(exp(logp) * (logp - logq), (_x, -sympy.oo, sympy.oo))
    closed = log(_s2 / _s1) + (_s1**2 + (_m1 - _m2) ** 2) / (2 * _s2**2) - Rational(1, 2)
    dom = {_m1: (-1, 1), _m2: (-1, 1), _s1: (0.5, 2), _s2: (0.5, 2)}
    return _relational(e, sympy.Eq(integral, closed), dom,
                       options={"engines": ("sampling",), "n_points": 8, "dps": 25})  # fmt: skip


_n_, _sig, _nz, _tau = sympy.symbols("n sigma s tau", positive=True)


def xu_raginsky_terms():
    r"""Closed forms of the Gaussian mean-estimation example (returned as sympy expressions).

    Data :math:`Z_i \sim N(\mu, \sigma^2)`, :math:`i = 1..n`; algorithm
    :math:`W = \bar Z + \xi`, :math:`\xi \sim N(0, s^2)`; loss
    :math:`\ell(w, z) = 1 - \exp(-(w - z)^2 / (2\tau^2)) \in [0, 1]` (so 1/2-sub-Gaussian).
    Then

    .. math::

        \mathrm{gen} = \frac{\tau}{\sqrt{\tau^2 + \sigma^2 (n-1)/n + s^2}}
                     - \frac{\tau}{\sqrt{\tau^2 + \sigma^2 (n+1)/n + s^2}},\qquad
        I(S; W) = \tfrac12 \log\left(1 + \frac{\sigma^2}{n s^2}\right),

    and Xu & Raginsky (2017), Thm. 1, bounds :math:`|\mathrm{gen}| \le \sqrt{I(S;W)/(2n)}`.
    Returns ``(gen, mutual_information, bound)`` in the symbols ``n, sigma, s, tau``.
    """
    gen = _tau / sqrt(_tau**2 + _sig**2 * (_n_ - 1) / _n_ + _nz**2) - _tau / sqrt(
        _tau**2 + _sig**2 * (_n_ + 1) / _n_ + _nz**2
    )
    mi = log(1 + _sig**2 / (_n_ * _nz**2)) / 2
    return gen, mi, sqrt(mi / (2 * _n_))


_XR_SOURCE = ("Xu & Raginsky (2017), 'Information-theoretic analysis of generalization "
              "capability of learning algorithms', NeurIPS, Thm. 1")  # fmt: skip


@register("xu_raginsky_gaussian_mean", tags=("generalization", "mutual-information"),
           expected="consistent", source=_XR_SOURCE,
           description="exact gen ≤ sqrt(I(S;W)/(2n)) for noisy Gaussian mean estimation, "
           "n ∈ [2, 200], σ, τ ∈ [1/2, 2], s ∈ [1/10, 2]")  # fmt: skip
def _xr(e):
    gen, _mi, bound = xu_raginsky_terms()
    dom = {_n_: (2, 200), _sig: (0.5, 2), _nz: (0.1, 2), _tau: (0.5, 2)}
    return _relational(e, sympy.Le(gen, bound), dom, options={"engines": ("symbolic", "sampling")})


_XR_POINT = {"n": 5, "sigma": 1.0, "s": 0.5, "tau": 1.0}


def _xr_draw(rng, size):
    n, sig, s, tau = (_XR_POINT[k] for k in ("n", "sigma", "s", "tau"))
    z = rng.normal(0.0, sig, size=(size, n))
    w = z.mean(axis=1) + rng.normal(0.0, s, size=size)
    fresh = rng.normal(0.0, sig, size=size)

    def loss(wv, zv):
        return -np.expm1(-((wv - zv) ** 2) / (2 * tau**2))

    return loss(w, fresh) - loss(w[:, None], z).mean(axis=1)


@register("xu_raginsky_gen_monte_carlo", tags=("generalization", "montecarlo"),
           expected="consistent", source=_XR_SOURCE,
           description="Monte Carlo generalisation gap at n=5, σ=1, s=1/2, τ=1 equals the "
           "closed form used by xu_raginsky_gaussian_mean")  # fmt: skip
def _xr_mc(e):
    gen, _mi, _b = xu_raginsky_terms()
    subs = {_n_: _XR_POINT["n"], _sig: 1, _nz: Rational(1, 2), _tau: 1}
    target = float(reference.evaluate(gen.subs(subs), {}, dps=30))
    return ExpectationClaim(e.name, _xr_draw, target=target, relation="eq", n=400_000, **_meta(e))


_PLUGIN_P = np.array([0.1, 0.2, 0.3, 0.4])


def _plugin_kl(rng, n, size):
    counts = rng.multinomial(n, _PLUGIN_P, size=size)
    phat = counts / n
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, phat * np.log(phat / _PLUGIN_P), 0.0)
    return terms.sum(axis=1)


@register("plugin_kl_rate", tags=("rate", "montecarlo", "kl"), expected="consistent",
           source="Wilks (1938): 2n·KL(P̂_n‖P) → χ²_{k−1}, so E KL = (k−1)/(2n) + O(n⁻²); "
           "cf. Sheena (2021) risk p/(2n)",
           description="E[KL(P̂_n‖P)] ∝ n^-1 (log–log slope −1 ± 0.05), k = 4 categories")  # fmt: skip
def _plugin_rate(e):
    return RateClaim(e.name, _plugin_kl, ns=[50, 100, 200, 400, 800, 1600], slope=-1.0,
                     tol=0.05, reps=4000, **_meta(e))  # fmt: skip


# ------------------------------------------------------------------ known-false claims
_FALSE_SOURCE = "known false: "


@register("false_reversed_pinsker", tags=("false", "pinsker", "two-point"), expected="violated",
           source=_FALSE_SOURCE + "reverse of Tsybakov (2009), Lemma 2.5(i); KL is unbounded "
           "while TV ≤ 1",
           description="KL(P‖Q) ≤ 2·TV(P,Q)²")  # fmt: skip
def _f_rev_pinsker(e):
    return _relational(e, sympy.Le(_two("kl"), 2 * _two("tv") ** 2), PQ)


@register("false_kl_symmetric", tags=("false", "kl", "two-point"), expected="violated",
           source=_FALSE_SOURCE + "KL is not symmetric (Cover & Thomas (2006), §2.3)",
           description="KL(P‖Q) = KL(Q‖P)")  # fmt: skip
def _f_kl_sym(e):
    return _relational(e, sympy.Eq(_two("kl"), _div("kl", [q, 1 - q], [p, 1 - p])), PQ)


@register("false_tv_le_quarter_kl", tags=("false", "tv", "two-point"), expected="violated",
           source=_FALSE_SOURCE + "near p = q, TV ~ |p − q| while KL ~ (p − q)²",
           description="TV(P,Q) ≤ KL(P‖Q)/4 everywhere")  # fmt: skip
def _f_tv_kl4(e):
    return _relational(e, sympy.Le(_two("tv"), _two("kl") / 4), PQ)


@register("false_js_le_half_log2", tags=("false", "js", "two-point"), expected="violated",
           source=_FALSE_SOURCE + "JS approaches log 2 for nearly disjoint P, Q (Lin (1991))",
           description="JS(P,Q) ≤ log(2)/2")  # fmt: skip
def _f_js(e):
    return _relational(e, sympy.Le(_two("js"), log(2) / 2), PQ)


@register("false_chi2_le_kl", tags=("false", "chi2", "two-point"), expected="violated",
           source=_FALSE_SOURCE + "reverse of Tsybakov (2009), Lemma 2.7",
           description="χ²(P‖Q) ≤ KL(P‖Q)")  # fmt: skip
def _f_chi2(e):
    return _relational(e, sympy.Le(_two("pearson"), _two("kl")), PQ)


@register("false_tv_le_half_hellinger", tags=("false", "hellinger", "two-point"),
           expected="violated",
           source=_FALSE_SOURCE + "reverse of Tsybakov (2009), Lemma 2.3: near p = q, "
           "TV ~ |p − q| but H² ~ (p − q)²",
           description="TV(P,Q) ≤ H²(P,Q)/2")  # fmt: skip
def _f_tv_h(e):
    return _relational(e, sympy.Le(_two("tv"), _two("hellinger") / 2), PQ)


@register("false_pinsker_constant", tags=("false", "pinsker", "two-point"), expected="violated",
           source=_FALSE_SOURCE + "Pinsker's constant 1/2 is sharp (Tsybakov (2009), Lemma 2.5)",
           description="TV(P,Q) ≤ sqrt(KL(P‖Q)/8)")  # fmt: skip
def _f_pinsker_c(e):
    return _relational(e, sympy.Le(_two("tv"), sqrt(_two("kl") / 8)), PQ)


@register("false_renyi_decreasing", tags=("false", "renyi"), expected="violated",
           source=_FALSE_SOURCE + "reverse of van Erven & Harremoës (2014), Thm. 3",
           description="R_{α+δ}(P‖Q) ≤ R_α(P‖Q)")  # fmt: skip
def _f_renyi(e):
    stmt = sympy.Le(_renyi_two(_a + _d), _renyi_two(_a))
    return _relational(e, stmt, _RENYI_DOM, options={"engines": ("sampling",)})


@register("false_reverse_data_processing", tags=("false", "data-processing", "channel"),
           expected="violated",
           source=_FALSE_SOURCE + "reverse of the data-processing inequality (Csiszár (1967))",
           description="KL(PK‖QK) ≥ KL(P‖Q) for random 3×3 channels K")  # fmt: skip
def _f_rdpi(e):
    stmt, dom = _dpi_statement("kl", reverse=True)
    return _relational(e, stmt, dom)


# ------------------------------------------------------------------ kernel validations
def _numeric_available() -> bool:
    """Whether the numeric package is installed (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("numeric") is not None


def _kernel_cases():
    rng = np.random.default_rng(20261126)
    rows = []
    for _ in range(6):
        rows.append((rng.dirichlet(np.full(8, 0.5)), rng.dirichlet(np.full(8, 0.5))))
    base = rng.dirichlet(np.full(8, 2.0))
    pert = base * (1 + 1e-4 * rng.standard_normal(8))
    rows.append((pert / pert.sum(), base))  # nearly equal rows: D ≈ 1e-9
    sparse_p = np.array([0.5, 0.5, 0, 0, 0, 0, 0, 0.0])
    sparse_q = np.array([0.25, 0, 0.25, 0.25, 0.25, 0, 0, 0.0])
    rows.append((sparse_p, sparse_q))  # zero mass on either side
    rows.append((np.array([1 - 1e-12, 1e-12]), np.array([1e-12, 1 - 1e-12])))  # extreme ratios
    return rows


def _kernel_builder(fname, params=None):
    """Builder of the kernel validation of ``fname``, at the parameter values ``params``
    (exact numbers; default the catalog's)."""

    def build(e: Entry) -> CallableClaim:
        import numeric
        from numeric.tolerances import ACCURACY

        rtol = ACCURACY["float64"]["loss"]
        from numeric.tolerances import row_bound
        from theory import fdiv

        num_params = {k: float(v) for k, v in params.items()} if params else None
        ref_f = fdiv.get(fname, **params) if params else fname

        def run(deadline):
            import time as _time

            out = []
            for i, (P, Q) in enumerate(_kernel_cases()):
                if _time.perf_counter() > deadline:
                    raise TimeoutError(f"time budget ran out after {i} cases")
                got = float(numeric.divergence(fname, P, Q, params=num_params))
                ref = reference.divergence(ref_f, [float(x) for x in P], [float(x) for x in Q],
                                           dps=50, check_normalized=False)  # fmt: skip
                if mpmath.isinf(ref) or np.isinf(got):
                    ok = mpmath.isinf(ref) and np.isinf(got) and (ref > 0) == (got > 0)
                    out.append((f"row {i}: kernel {got!r}, reference {ref}", 1.0 if ok else -1.0))
                    continue
                err = abs(mpmath.mpf(got) - ref)
                # numeric's stated accuracy: relative rtol on the bulk, or the row-wise
                # bound 64·eps·L·(D + sqrt D), L = 1 + max |log p_i|, |log q_i|
                logs = np.abs(np.log(np.concatenate([P[P > 0], Q[Q > 0]])))
                scale_l = 1.0 + float(logs.max())
                dval = abs(float(ref))
                allowed = max(rtol * dval,
                              float(row_bound(np.float64, scale_l, dval + np.sqrt(dval))))  # fmt: skip
                margin = 1 - float(err) / allowed if allowed > 0 else (1.0 if err == 0 else -1.0)
                out.append((f"row {i}: kernel {got!r}, reference {mpmath.nstr(ref, 20)}, "
                            f"error {float(err):.3g} > allowed {allowed:.3g}" if margin < 0 else
                            f"row {i}", margin))  # fmt: skip
            return out

        return CallableClaim(e.name, run, **_meta(e))

    return build


if _numeric_available():
    for _n in _NONNEG_NAMES:
        register(
            f"kernel_{_n}", tags=("kernel", "numeric"), expected="consistent",
            source="numeric.divergence (float64) vs proofs_check.reference.divergence at 50 "
            "digits; tolerance numeric.tolerances: ACCURACY['float64']['loss'] relative, or "
            "the row bound 64·eps·L·(D + sqrt D)",
            description=f"numeric.divergence('{_n}') on 9 rows (dense, nearly equal, zero mass, "
            "extreme ratios) within the float64 accuracy claim",
        )(_kernel_builder(_n))  # fmt: skip


def kernel_claim(fname: str, params: dict | None = None) -> _BaseClaim:
    """The kernel validation ``kernel_<fname>`` at the parameter values ``params`` (exact
    numbers, e.g. ``{"beta": sympy.Rational(3, 10)}``): what ``divkit sweep kernel`` runs
    at each grid point."""
    key = f"kernel_{fname}"
    if key not in _ENTRIES:
        get(key)  # raises with the closest names
    return _kernel_builder(fname, params)(_ENTRIES[key])


# ------------------------------------------------------------------ claim sets
def _load_claimsets() -> None:
    """Import every module of :mod:`proofs_check.claimsets` (each registers its claims)."""
    import importlib
    import pkgutil

    from proofs_check import claimsets

    for info in sorted(pkgutil.iter_modules(claimsets.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"proofs_check.claimsets.{info.name}")


_load_claimsets()


# ------------------------------------------------------------------ access
def names() -> list[str]:
    """Names of all catalog claims, in catalog order."""
    return list(_ENTRIES)


def entries() -> list[Entry]:
    """All entries (metadata without building the claims)."""
    return list(_ENTRIES.values())


def tags() -> list[str]:
    """All tags used in the catalog, sorted."""
    return sorted({t for e in _ENTRIES.values() for t in e.tags})


@functools.cache
def get(name: str) -> _BaseClaim:
    """Build (once) and return the claim called ``name``.

    Raises
    ------
    ValueError
        For an unknown name, suggesting the closest names.
    """
    if name not in _ENTRIES:
        import difflib

        close = difflib.get_close_matches(name, list(_ENTRIES), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown claim {name!r}{hint} (see `divkit check --list`)")
    return _ENTRIES[name].build()


def select(names: Iterable[str] | None = None, tags: Iterable[str] | None = None) -> list[Entry]:
    """Entries matching any of ``names`` (exact) and having any of ``tags``; all by default."""
    chosen = list(_ENTRIES.values())
    if names:
        names = list(names)
        for n in names:
            if n not in _ENTRIES:
                get(n)  # raises with suggestions
        chosen = [e for e in chosen if e.name in names]
    if tags:
        tags = set(tags)
        known = {t for e in _ENTRIES.values() for t in e.tags}
        unknown = sorted(tags - known)
        if unknown:
            raise ValueError(f"unknown tag(s) {', '.join(unknown)}; known tags: {', '.join(sorted(known))}")
        chosen = [e for e in chosen if tags & set(e.tags)]
    return chosen
