r"""Alignment claims: f-DPO's KKT map, DPO as f-DPO, f-DPG, DPH-RL, D²O and Nash-MP rates.

Every claim is tagged ``alignment``; known-false ones also ``false`` and must come back
``violated``. Convention: the policy is P, :math:`D_f(\pi\|\pi_{ref})`; the papers'
"reverse KL" :math:`KL(\pi\|\pi_{ref})` is catalog ``kl`` (docs/names.md).

References are independent of the code under test: objectives and divergences are
evaluated with mpmath at 50 digits from the generator (not through :mod:`numeric`), the
Nash equilibrium is the 50-digit Newton fixed point of
:meth:`theory.alignment.PreferenceGame.equilibrium`, and rates are fitted slopes with a
99.9 % interval (:mod:`proofs_check.nash_rates`).
"""

from __future__ import annotations

import math
import time

import mpmath
import numpy as np
import sympy
from sympy import Rational, log

from proofs_check.catalog import Entry, register
from proofs_check.claims import CallableClaim, Claim, ExpectationClaim
from proofs_check.reference import nash

_DPS = 50
_TAG = "alignment"


def _tol(key: str) -> float:
    """A tolerance of numeric.tolerances.ALIGNMENT (imported on use: listing stays instant)."""
    from numeric.tolerances import ALIGNMENT

    return ALIGNMENT[key]


_FALSE = "known false: "

_FDPO = ("Wang et al. (2024), 'Beyond Reverse KL: Generalizing DPO with Diverse Divergence "
         "Constraints' (f-DPO), ICLR, §4 and Table 1")
_DPO = "Rafailov et al. (2023), 'Direct Preference Optimization', NeurIPS, eq. 7"
_FDPG = ("Go et al. (2023), 'Aligning Language Models with Preferences through f-divergence "
         "Minimization' (f-DPG), ICML, §3")
_DPHRL = ("Li et al. (2025), 'The Choice of Divergence: A Neglected Key to Mitigating Diversity "
          "Collapse in RLVR' (DPH-RL), code seamoke/DPH-RL")
_D2O = ("Duan et al. (2024), 'Negating Negatives: Alignment with Human Negative Samples via "
        "Distributional Dispreference Optimization' (D²O), arXiv 2403.03419")
_NASH = ("Tiapkin et al. (2025), 'Accelerating Nash Learning from Human Feedback via Mirror "
         "Prox' (Nash-MP), arXiv 2505.19731, abstract: KL rate (1+2β)^(-N/2); update and "
         "η = 1/L = 2 as reconstructed by divkit from the abstract")
_NASHMD = ("Munos et al. (2024), 'Nash Learning from Human Feedback' (Nash-MD, ICML): online "
           "mirror descent on the regularised game with decaying steps of order 1/(βk) and a "
           "polynomial last-iterate rate, the comparison point of Tiapkin et al. (2025), §1 "
           "(from memory, not checked against the paper; the schedule η_k = 2/(β(k+2)) is "
           "divkit's choice)")


def _meta(e: Entry) -> dict:
    return {"source": e.source, "tags": e.tags, "expected": e.expected,
            "description": e.description}


def _deadline_guard(deadline, done):
    if time.perf_counter() > deadline:
        raise TimeoutError(f"time budget ran out after {done} cases")


# ------------------------------------------------------------------ f-DPO: the KKT map
#: A fixed 6-action example: reference, target policy, β and the normaliser λ.
_REF6 = ["0.05", "0.1", "0.15", "0.2", "0.22", "0.28"]
_PI6 = ["0.3", "0.02", "0.2", "0.08", "0.25", "0.15"]
_BETA6 = "0.5"
_LAMBDA6 = "0.3"


def _mp_fns(d):
    from theory import u

    return (sympy.lambdify(u, d.f, modules="mpmath"), sympy.lambdify(u, d.df, modules="mpmath"))


def _objective(f_mp, pi, ref, r, beta):
    r""":math:`J(\pi) = \sum_i \pi_i r_i - \beta\sum_i \pi_{ref,i} f(\pi_i/\pi_{ref,i})`."""
    return mpmath.fsum(p * ri for p, ri in zip(pi, r, strict=True)) - beta * mpmath.fsum(
        q * f_mp(p / q) for p, q in zip(pi, ref, strict=True))


def _strictly_convex_names():
    from theory import fdiv

    return [n for n in fdiv.names() if fdiv.get(n).strictly_convex]


def _random_simplex_points(k: int, count: int, seed: int):
    rng = np.random.default_rng(seed)
    return [[mpmath.mpf(float(x)) for x in rng.dirichlet(np.ones(k))] for _ in range(count)]


def _inverse_df(df_mp, tv, t_lo):
    """(f')^{-1}(tv) at the caller's precision: bracket in log u, then the Illinois method."""
    if tv <= t_lo:
        return mpmath.mpf(0)

    def g(x):
        return df_mp(mpmath.exp(x)) - tv

    lo, hi = mpmath.mpf(-1), mpmath.mpf(1)
    while g(lo) > 0:
        lo *= 2
    while g(hi) < 0:
        hi *= 2
    return mpmath.exp(mpmath.findroot(g, (lo, hi), solver="illinois"))


def _kkt_policy_mp(d, r, ref, beta):
    """The KKT policy at the working precision: lambda from sum_i ref_i Phi((r_i - lambda)/beta)
    = 1 (Illinois on the bracket of numeric._kkt), Phi by root-finding on f'."""
    from theory import u

    df_mp = sympy.lambdify(u, d.df, modules="mpmath")
    t_lo = mpmath.mpf(sympy.N(d.df_at_zero, mpmath.mp.dps)) if d.df_at_zero.is_finite \
        else mpmath.ninf
    lam_lo = max(ri - beta * df_mp(1 / q) for ri, q in zip(r, ref, strict=True))
    lam_hi = max(r) - beta * df_mp(mpmath.mpf(1))

    def psi(lam):
        return mpmath.fsum(q * _inverse_df(df_mp, (ri - lam) / beta, t_lo)
                           for ri, q in zip(r, ref, strict=True)) - 1

    lam = mpmath.findroot(psi, (lam_lo, lam_hi), solver="illinois")
    return [q * _inverse_df(df_mp, (ri - lam) / beta, t_lo) for ri, q in zip(r, ref, strict=True)], lam


#: The f-DPO paper's divergences (Table 1), also checked through numeric.policy_from_reward.
_FDPO_PAPER = ("kl", "reverse_kl", "js", "alpha")


def _kkt_run(deadline):
    import numeric
    from theory import fdiv

    out = []
    with mpmath.workdps(_DPS + 10):
        ref = [mpmath.mpf(x) for x in _REF6]
        pi = [mpmath.mpf(x) for x in _PI6]
        beta, lam = mpmath.mpf(_BETA6), mpmath.mpf(_LAMBDA6)
        others = _random_simplex_points(6, 6, 20261201)
        for i, name in enumerate(_strictly_convex_names()):
            _deadline_guard(deadline, i)
            d = fdiv.get(name)
            f_mp, df_mp = _mp_fns(d)
            r = [beta * df_mp(p / q) + lam for p, q in zip(pi, ref, strict=True)]
            # 1. the KKT map with its normaliser solved at 60 digits gives pi back
            got, lam_got = _kkt_policy_mp(d, r, ref, beta)
            err = float(max(abs(g - p) / p for g, p in zip(got, pi, strict=True)))
            tol = _tol("mp_solution")
            out.append((f"{name}: 60-digit KKT policy relative error {err:.3g} > {tol} "
                        f"(lambda {mpmath.nstr(lam_got, 12)})", 1 - err / tol))
            # 2. pi is the maximiser: J(pi) >= J(pi') for mixtures toward random policies
            j_star = _objective(f_mp, pi, ref, r, beta)
            for nu in others:
                for eps in (mpmath.mpf("1e-4"), mpmath.mpf("0.1"), mpmath.mpf("0.7")):
                    alt = [(1 - eps) * p + eps * v for p, v in zip(pi, nu, strict=True)]
                    gap = (j_star - _objective(f_mp, alt, ref, r, beta)) / eps**2
                    out.append((f"{name}: J(pi*) - J(pi') = {mpmath.nstr(gap * eps**2, 8)} < 0 "
                                f"at eps = {mpmath.nstr(eps, 3)}", float(gap)))
            # 3. the array KKT map (float64) for the paper's divergences
            if name in _FDPO_PAPER:
                res = numeric.policy_from_reward(name, np.array([float(x) for x in r]),
                                                 np.log([float(x) for x in ref]), beta=float(beta))
                errf = max(abs(float(g) - float(p)) / float(p)
                           for g, p in zip(res.policy, pi, strict=True))
                tol = _tol("kkt_float64_rel")
                out.append((f"{name}: numeric.policy_from_reward relative error {errf:.3g} > {tol}",
                            1 - errf / tol))
    return out


@register("fdpo_kkt_recovers_optimal_policy", tags=(_TAG, "kkt", "fdpo"), expected="consistent",
          source=_FDPO,
          description="for every strictly convex catalog f: from r = β f'(π/π_ref) + λ the KKT "
          "map with its normaliser solved at 60 digits gives back π (to 1e-45), π maximises "
          "E_π[r] − β D_f(π‖π_ref) against 18 mixtures (50-digit objective), and "
          "numeric.policy_from_reward recovers π to 1e-9 for kl, reverse_kl, js, alpha")
def _fdpo_kkt(e):
    return CallableClaim(e.name, _kkt_run, **_meta(e))


def _dpo_for_js_run(deadline):
    from theory import fdiv

    with mpmath.workdps(_DPS + 10):
        ref = [mpmath.mpf(x) for x in _REF6]
        pi = [mpmath.mpf(x) for x in _PI6]
        beta, lam = mpmath.mpf(_BETA6), mpmath.mpf(_LAMBDA6)
        f_mp, df_mp = _mp_fns(fdiv.get("js"))
        r = [beta * df_mp(p / q) + lam for p, q in zip(pi, ref, strict=True)]
        w = [q * mpmath.exp(ri / beta) for q, ri in zip(ref, r, strict=True)]
        z = mpmath.fsum(w)
        dpo = [x / z for x in w]
        gap = _objective(f_mp, dpo, ref, r, beta) - _objective(f_mp, pi, ref, r, beta)
        return [("J_js(pi_DPO) - J_js(pi*_js) = " + mpmath.nstr(gap, 20), float(gap))]


@register("false_dpo_policy_optimal_for_js", tags=(_TAG, "false", "fdpo"), expected="violated",
          source=_FALSE + "the KKT map depends on f (" + _FDPO + "); DPO's π_ref·exp(r/β)/Z is "
          "optimal only for f = u log u",
          description="the DPO policy π_ref exp(r/β)/Z maximises E_π[r] − β D_js(π‖π_ref)")
def _f_dpo_js(e):
    return CallableClaim(e.name, _dpo_for_js_run, **_meta(e))


# ------------------------------------------------------------------ DPO = f-DPO with kl
_UW_UL = {"u_w": (Rational(1, 20), 20), "u_l": (Rational(1, 20), 20), "beta": (Rational(1, 100), 10)}


@register("dpo_is_fdpo_with_kl", tags=(_TAG, "fdpo"), expected="proved",
          source=_DPO + "; " + _FDPO + " (their 'reverse KL' is catalog kl)",
          description="f-DPO's logit β f'(u_w) − β f'(u_l) with catalog kl equals DPO's "
          "β log(u_w/u_l)")
def _dpo_kl(e):
    from theory import alignment

    stmt = sympy.Eq(alignment.fdpo_logit("kl"),
                    alignment.beta * log(alignment.u_w / alignment.u_l))
    return Claim(e.name, stmt, _UW_UL, **_meta(e))


@register("false_dpo_is_fdpo_with_reverse_kl", tags=(_TAG, "false", "fdpo"), expected="violated",
          source=_FALSE + "naming trap: catalog reverse_kl is f-DPO's 'forward KL' (−log u), "
          "docs/names.md; " + _FDPO,
          description="f-DPO's logit with catalog reverse_kl equals DPO's β log(u_w/u_l)")
def _f_dpo_rkl(e):
    from theory import alignment

    stmt = sympy.Eq(alignment.fdpo_logit("reverse_kl"),
                    alignment.beta * log(alignment.u_w / alignment.u_l))
    return Claim(e.name, stmt, _UW_UL, **_meta(e))


# ------------------------------------------------------------------ f-DPG
@register("fdpg_kl_weight_is_rl_with_kl", tags=(_TAG, "fdpg"), expected="proved",
          source=_FDPG + "; RL with a KL penalty: reward r − β log(π/π_ref) (Ziegler et al. 2019)",
          description="β × f-DPG pseudo-reward of catalog kl for p = π_ref e^{r/β}/Z equals "
          "r − β log(π/π_ref) − β(log Z + 1): the RL-with-KL reward up to a constant baseline")
def _fdpg_kl(e):
    from theory import alignment as al

    lhs = al.beta * al.fdpg_ebm_pseudo_reward("kl")
    rhs = al.reward - al.beta * al.log_ratio - al.beta * (al.log_partition + 1)
    dom = {"beta": (Rational(1, 100), 10), "r": (-5, 5), "ell": (-5, 5), "logZ": (-5, 5)}
    return Claim(e.name, sympy.Eq(lhs, rhs), dom, **_meta(e))


#: f-DPG example: K = 5 outcomes, policy logits and an EBM target.
_FDPG_LOGITS = ["0.3", "-1.2", "0.8", "0.1", "-0.4"]
_FDPG_LOG_TARGET = ["-1.5", "-0.7", "-2.0", "-1.1", "-1.3"]


def _mp_divergence_of_logits(f_mp, theta, log_target):
    m = mpmath.fsum(mpmath.exp(x) for x in theta)
    zt = mpmath.fsum(mpmath.exp(x) for x in log_target)
    pi = [mpmath.exp(x) / m for x in theta]
    p = [mpmath.exp(x) / zt for x in log_target]
    return mpmath.fsum(pj * f_mp(a / pj) for a, pj in zip(pi, p, strict=True))


def _fdpg_exact_run(deadline):
    import numeric
    from theory import fdiv

    out = []
    th_f = np.array([float(x) for x in _FDPG_LOGITS])
    lt_f = np.array([float(x) for x in _FDPG_LOG_TARGET])
    for i, name in enumerate(fdiv.names()):
        _deadline_guard(deadline, i)
        got = numeric.fdpg_gradient(name, th_f, lt_f)
        f_mp, _ = _mp_fns(fdiv.get(name))
        with mpmath.workdps(_DPS + 10):
            theta = [mpmath.mpf(x) for x in th_f]
            lt = [mpmath.mpf(x) for x in lt_f]
            ref = []
            for j in range(len(theta)):
                def along(x, j=j, theta=theta, f_mp=f_mp, lt=lt):
                    th = list(theta)
                    th[j] = x
                    return _mp_divergence_of_logits(f_mp, th, lt)

                ref.append(mpmath.diff(along, theta[j]))
            scale = max(abs(x) for x in ref)
            err = max(abs(mpmath.mpf(float(g)) - r) for g, r in zip(got, ref, strict=True))
            rel = float(err / scale)
        tol = _tol("fdpg_grad_rel")
        out.append((f"{name}: |grad - d/dtheta D_f(pi_theta||p)| / max|grad| = {rel:.3g} > {tol}",
                    1 - rel / tol))
    return out


@register("fdpg_gradient_is_exact", tags=(_TAG, "fdpg", "numeric"), expected="consistent",
          source=_FDPG + ": ∇θ D_f(πθ‖p) = E_πθ[f'(πθ/p) ∇θ log πθ]",
          description="numeric.fdpg_gradient (softmax policy, 5 outcomes, EBM target) equals the "
          "derivative of D_f(πθ‖p) taken by mpmath at 50 digits, for 12 catalog f, within 1e-12 "
          "of max|grad|")
def _fdpg_exact(e):
    return CallableClaim(e.name, _fdpg_exact_run, **_meta(e))


def _fdpg_is_draw_factory():
    import numeric

    th = np.array([float(x) for x in _FDPG_LOGITS])
    lt = np.array([float(x) for x in _FDPG_LOG_TARGET])
    lq = np.log(np.array([0.1, 0.3, 0.2, 0.25, 0.15]))
    exact = numeric.fdpg_gradient("js", th, lt)

    def draw(rng, size):
        xs = rng.choice(5, size=(size, 1), p=np.exp(lq))
        g = numeric.fdpg_gradient("js", np.broadcast_to(th, (size, 5)),
                                  np.broadcast_to(lt, (size, 5)), samples=xs,
                                  log_proposal=np.broadcast_to(lq, (size, 5)), baseline=0.1)
        return (g - exact)[:, 2] / abs(exact[2])

    return draw


@register("fdpg_importance_estimator_unbiased", tags=(_TAG, "fdpg", "montecarlo"),
          expected="consistent", source=_FDPG + " (importance-weighted estimator with a proposal q)",
          description="E_q[(π/q)(f'(π/p) − b)(e_x − π)] equals the exact gradient (JS, one "
          "coordinate, baseline b = 0.1, 400 000 single-sample draws): relative error has mean 0")
def _fdpg_is(e):
    return ExpectationClaim(e.name, _fdpg_is_draw_factory(), target=0.0, relation="eq",
                            n=400_000, **_meta(e))


#: Gradient-descent steps of fdpg_descent_converges_to_target.
_DESCENT_STEPS = 150


def _fdpg_descent_run(deadline):
    import numeric

    out = []
    lt = np.array([float(x) for x in _FDPG_LOG_TARGET])
    from theory import fdiv, u

    for i, name in enumerate(("kl", "reverse_kl", "js", "hellinger", "alpha", "neyman")):
        _deadline_guard(deadline, i)
        # the Hessian of D_f(pi||p) at pi = p is f''(1) times the Fisher metric: step 2/f''(1)
        step = 2.0 / float(fdiv.get(name).d2f.subs(u, 1))
        th = np.zeros(5)
        for _ in range(_DESCENT_STEPS):
            th = th - step * numeric.fdpg_gradient(name, th, lt)
        pi = np.exp(th - th.max())
        pi = pi / pi.sum()
        p = np.exp(lt - lt.max())
        p = p / p.sum()
        f_mp, _ = _mp_fns(fdiv.get(name))
        # the terms are O(1) and cancel to ~1e-34: 100 digits leave ~65 correct ones
        with mpmath.workdps(100):
            dv = mpmath.fsum(mpmath.mpf(float(b)) * f_mp(mpmath.mpf(float(a)) / mpmath.mpf(float(b)))
                             for a, b in zip(pi, p, strict=True))
        tol = _tol("descent_divergence")
        out.append((f"{name}: D_f(pi_T||p) = {mpmath.nstr(dv, 6)} after {_DESCENT_STEPS} steps "
                    f"> {tol}", 1 - float(dv) / tol))
    return out


@register("fdpg_descent_converges_to_target", tags=(_TAG, "fdpg", "numeric"), expected="consistent",
          source=_FDPG + ": D_f(πθ‖p) = 0 iff πθ = p, so descent on it reaches p",
          description="150 steps of gradient descent (step 2/f''(1)) with numeric.fdpg_gradient bring "
          "D_f(πθ‖p) below 1e-20 (50-digit reference) for kl, reverse_kl, js, hellinger, alpha, "
          "neyman")
def _fdpg_descent(e):
    return CallableClaim(e.name, _fdpg_descent_run, **_meta(e))


# ------------------------------------------------------------------ DPH-RL
_U = {"u": (Rational(1, 100), 100)}


@register("dphrl_forward_kl_loss_is_reverse_kl_generator", tags=(_TAG, "dphrl"), expected="proved",
          source=_DPHRL + ": forward-KL token loss u − log u − 1 (k3)",
          description="DPH-RL's 'forward KL' token loss is the standardised generator of "
          "catalog reverse_kl: its π_ref-mean is KL(π_ref‖πθ)")
def _dph_fkl(e):
    from theory import alignment, u

    stmt = sympy.Eq(alignment.dphrl_paper_loss("forward_kl"), alignment.dphrl_loss("reverse_kl"))
    return Claim(e.name, stmt.subs(u, sympy.Symbol("u", positive=True)), _U, **_meta(e))


@register("dphrl_js_loss_is_twice_js", tags=(_TAG, "dphrl"), expected="proved",
          source=_DPHRL + ": JS token loss u log u − (u+1) log((u+1)/2)",
          description="DPH-RL's JS token loss is twice the standardised generator of catalog js")
def _dph_js(e):
    from theory import alignment, u

    stmt = sympy.Eq(alignment.dphrl_paper_loss("js"), 2 * alignment.dphrl_loss("js"))
    return Claim(e.name, stmt.subs(u, sympy.Symbol("u", positive=True)), _U, **_meta(e))


def _three_point(prefix):
    ws = sympy.symbols(f"{prefix}1:4", positive=True)
    tot = sum(ws)
    return ws, [w / tot for w in ws]


def _dph_expectation_statement(catalog_name):
    from theory import alignment, fdiv, u

    a, pol = _three_point("a")
    b, ref = _three_point("b")
    loss = alignment.dphrl_paper_loss("forward_kl")
    mean = sum(q * loss.subs(u, p / q) for p, q in zip(pol, ref, strict=True))
    target = fdiv.get(catalog_name).discrete(pol, ref)
    dom = {s: (Rational(1, 20), 1) for s in (*a, *b)}
    return sympy.Eq(mean, target), dom


@register("dphrl_reference_mean_is_kl_ref_policy", tags=(_TAG, "dphrl", "sampled"),
          expected="consistent", source=_DPHRL + " (E_π0[u] = 1)",
          description="E_{y∼π_ref}[u − log u − 1] = D_reverse_kl(πθ‖π_ref) = KL(π_ref‖πθ) on "
          "three-point distributions (unnormalised weights in [1/20, 1])")
def _dph_mean(e):
    stmt, dom = _dph_expectation_statement("reverse_kl")
    return Claim(e.name, stmt, dom, options={"engines": ("sampling",)}, **_meta(e))


@register("false_dphrl_forward_kl_loss_estimates_kl_policy_ref",
          tags=(_TAG, "false", "dphrl", "sampled"), expected="violated",
          source=_FALSE + "naming trap: DPH-RL's 'forward KL' is KL(π_ref‖πθ), not KL(πθ‖π_ref) "
          "(" + _DPHRL + "; docs/names.md)",
          description="E_{y∼π_ref}[u − log u − 1] = D_kl(πθ‖π_ref) = KL(πθ‖π_ref)")
def _f_dph_mean(e):
    stmt, dom = _dph_expectation_statement("kl")
    return Claim(e.name, stmt, dom, options={"engines": ("sampling",)}, **_meta(e))


# ------------------------------------------------------------------ D²O
#: Discrete D²O example: π_r over 3 outcomes, log-ratios ℓ(y), the negative's ℓ⁻; K = 3.
_D2O_PI = ("1/2", "3/10", "1/5")
_D2O_ELL = ("-1", "1/2", "2")
_D2O_NEG = "1/3"
_D2O_K = 3


def _d2o_statement(upper: bool):
    from theory import alignment

    b, a = sympy.symbols("beta alpha", positive=True)
    expected = alignment.d2o_expected_loss(list(_D2O_PI), list(_D2O_ELL), _D2O_NEG, k=_D2O_K,
                                           beta_value=b, alpha_value=a)
    Ld, m, neg, alpha = alignment.d2o_distributional_loss()
    mean = sum(sympy.Rational(p) * sympy.Rational(x) for p, x in zip(_D2O_PI, _D2O_ELL,
                                                                        strict=True))
    dist = Ld.subs({m: mean, neg: sympy.Rational(_D2O_NEG), alpha: a, alignment.beta: b})
    stmt = sympy.Ge(expected, dist) if upper else sympy.Le(expected, dist)
    return stmt, {b: (Rational(1, 10), 2), a: (Rational(1, 10), 2)}


@register("d2o_sample_loss_upper_bounds_distributional", tags=(_TAG, "d2o"), expected="certified",
          source=_D2O + "; the bound is derived here by Jensen (−log σ is convex), the paper's "
          "own statement was not available",
          description="exact E_{y1..y3∼π_r}[L_D2O] ≥ −log σ(β E_π_r[ℓ] − α ℓ⁻) on a 3-outcome "
          "example, β, α ∈ [1/10, 2]")
def _d2o_bound(e):
    stmt, dom = _d2o_statement(True)
    return Claim(e.name, stmt, dom, **_meta(e))


@register("false_d2o_sample_loss_below_distributional", tags=(_TAG, "false", "d2o"),
          expected="violated", source=_FALSE + "reverse of Jensen's inequality for the convex "
          "−log σ; " + _D2O,
          description="exact E_{y1..y3∼π_r}[L_D2O] ≤ −log σ(β E_π_r[ℓ] − α ℓ⁻)")
def _f_d2o_bound(e):
    stmt, dom = _d2o_statement(False)
    return Claim(e.name, stmt, dom, **_meta(e))


# ------------------------------------------------------------------ Nash-MP
def _equilibrium_run(deadline):
    import numeric
    from proofs_check import nash_rates as nr

    out = []
    for i, (name, g) in enumerate(nr.games().items()):
        _deadline_guard(deadline, i)
        pi = nr.equilibrium(name)
        # the equation in its softmax form pi = softmax(log ref + P pi / beta), evaluated apart
        # from Newton's log form, at 60 digits
        with mpmath.workdps(_DPS + 10):
            P = [[mpmath.mpf(sympy.Rational(x).p) / sympy.Rational(x).q for x in row]
                 for row in g.preference]
            ref = [mpmath.mpf(sympy.Rational(x).p) / sympy.Rational(x).q for x in g.ref]
            b = mpmath.mpf(g.beta.p) / g.beta.q
            w = [ref[a] * mpmath.exp(mpmath.fsum(P[a][c] * pi[c] for c in range(len(pi))) / b)
                 for a in range(len(pi))]
            z = mpmath.fsum(w)
            worst = float(max(abs(w[a] / z - pi[a]) for a in range(len(pi))))
        tol = _tol("mp_solution")
        out.append((f"{name}: |pi* - softmax(log ref + P pi*/beta)| = {worst:.3g} > {tol}",
                    1 - worst / tol))
        Pf, rf, bf = g.as_arrays()
        it = numeric.nash_mirror_prox(Pf, rf, beta=bf, steps=800, eta=2.0)
        err = float(np.max(np.abs(it[-1] - np.array([float(x) for x in pi]))))
        tol = _tol("nash_float64")
        out.append((f"{name}: float64 Nash-MP after 800 steps differs by {err:.3g} > {tol}",
                    1 - err / tol))
    # two actions: closed form pi_1 = sigma(log(ref1/ref2) + (P12 - 1/2)/beta)
    from theory.alignment import PreferenceGame

    g2 = PreferenceGame([["1/2", "7/10"], ["3/10", "1/2"]], ["1/3", "2/3"], beta="1/4")
    with mpmath.workdps(_DPS + 10):
        want = 1 / (1 + mpmath.exp(-(mpmath.log(mpmath.mpf(1) / 2) + mpmath.mpf(2) / 10 * 4)))
        got = nash.equilibrium(g2, dps=_DPS)[0]
        err2 = float(abs(got - want))
    tol = _tol("mp_closed_form")
    out.append((f"two actions: |pi*_1 - closed form| = {err2:.3g} > {tol}", 1 - err2 / tol))
    return out


@register("nash_equilibrium_50_digits", tags=(_TAG, "nash"), expected="consistent",
          source=_NASH + ": π*(y) ∝ π_ref(y) exp(P(y ≻ π*)/β)",
          description="the Newton fixed point of theory.alignment.PreferenceGame solves the "
          "equilibrium equation (softmax form, 60 digits) to 1e-45 on four games, matches "
          "float64 Nash-MP to 1e-13 and the two-action closed form to 1e-48")
def _nash_eq(e):
    return CallableClaim(e.name, _equilibrium_run, **_meta(e))


#: Steps of each iteration in the rate claims.
_STEPS = {"nash_mp": 400, "omd": 400, "nash_md": 2000}


def _linear_fit(game: str, method: str):
    """Fit of log KL per query over the linear window, or None when there is no such window."""
    from proofs_check import nash_rates as nr

    ks, kl = nr.curve(game, method, _STEPS[method])
    idx = nr.fit_window(list(kl), start=3)
    if len(idx) < 4:
        return None, kl
    q = nr.METHODS[method]
    return nr.fit_slope([q * ks[k] for k in idx], [math.log(kl[k]) for k in idx]), kl


def _linear_rate_margins(method, claimed, games, deadline):
    """Margin = claimed slope per query − upper end of the fitted interval (≥ 0: as fast)."""
    from proofs_check import nash_rates as nr

    out = []
    for i, name in enumerate(games):
        _deadline_guard(deadline, i)
        b = float(nr.games()[name].beta)
        fit, kl = _linear_fit(name, method)
        claim = claimed(b)
        if fit is None:
            out.append((f"{name}: {method}: KL(pi*||pi_k) never enters [1e-24, 1e-2] (last value "
                        f"{kl[-1]:.3g}); claimed slope per query ≤ {claim:.5g}", -1.0))
            continue
        out.append((f"{name}: {method} log KL per query: {fit.text()}; claimed ≤ {claim:.5g}",
                    claim - fit.hi))
    return out


def _pointwise_bound(deadline):
    """KL(pi*||pi_k) <= (1 + 2 beta)^(-k) KL(pi*||pi_0) at every k >= 1 (while KL > 1e-24)."""
    from proofs_check import nash_rates as nr

    out = []
    for i, (name, g) in enumerate(nr.games().items()):
        _deadline_guard(deadline, i)
        b = float(g.beta)
        ks, kl = nr.curve(name, "nash_mp", _STEPS["nash_mp"])
        worst = min((math.log(kl[0]) - k * math.log(1 + 2 * b) - math.log(v), int(k))
                    for k, v in zip(ks[1:], kl[1:], strict=True) if v > nr.KL_FLOOR)
        out.append((f"{name}: log(bound / KL) at k = {worst[1]} is {worst[0]:.4g}", worst[0]))
    return out


def _all_games():
    from proofs_check import nash_rates as nr

    return list(nr.games())


@register("nash_mp_linear_rate", tags=(_TAG, "nash", "rate"), expected="consistent",
          source=_NASH,
          description="Nash-MP (η = 2, N = 2 queries per step): KL(π*‖π_N) ≤ (1+2β)^(−N/2) "
          "KL(π*‖π_0) at every step, and the fitted slope of log KL per query (99.9 % interval) "
          "is at most −log(1+2β)/2, on four games")
def _nash_rate(e):
    def run(deadline):
        return _pointwise_bound(deadline) + _linear_rate_margins(
            "nash_mp", lambda b: -0.5 * math.log(1 + 2 * b), _all_games(), deadline)

    return CallableClaim(e.name, run, **_meta(e))


@register("false_nash_mp_rate_per_query_squared", tags=(_TAG, "false", "nash", "rate"),
          expected="violated", source=_FALSE + "the rate is (1+2β)^(−N/2), not (1+2β)^(−2N); "
          + _NASH,
          description="Nash-MP (η = 2): the fitted slope of log KL per query is at most "
          "−2 log(1+2β) (four times the stated exponent)")
def _f_nash_rate(e):
    def run(deadline):
        return _linear_rate_margins("nash_mp", lambda b: -2 * math.log(1 + 2 * b), _all_games(),
                                    deadline)

    return CallableClaim(e.name, run, **_meta(e))


def _nash_md_fits(name):
    from proofs_check import nash_rates as nr

    ks, kl = nr.curve(name, "nash_md", _STEPS["nash_md"], 25)
    poly = ks >= 200
    late = ks >= 1000
    return (nr.fit_slope(np.log(ks[poly]), np.log(kl[poly])),
            nr.fit_slope(ks[late], np.log(kl[late])))


@register("nash_md_polynomial_rate", tags=(_TAG, "nash", "rate"), expected="consistent",
          source=_NASHMD,
          description="online mirror descent with η_k = 2/(β(k+2)) (Nash-MD): KL(π*‖π_k) = "
          "O(1/k); the log–log slope over k ∈ [200, 2000] (99.9 % interval) is at most −1")
def _nash_md_rate(e):
    def run(deadline):
        out = []
        for i, name in enumerate(_all_games()):
            _deadline_guard(deadline, i)
            fit, _late = _nash_md_fits(name)
            out.append((f"{name}: Nash-MD log KL vs log k: {fit.text()}; claimed ≤ -1",
                        -1.0 - fit.hi))
        return out

    return CallableClaim(e.name, run, **_meta(e))


@register("false_nash_md_linear_rate", tags=(_TAG, "false", "nash", "rate"), expected="violated",
          source=_FALSE + "online mirror descent with decaying steps is only polynomial; "
          + _NASHMD + "; " + _NASH,
          description="online mirror descent with η_k = 2/(β(k+2)) converges linearly at "
          "(1+2β)^(−N) (one query per step): fitted slope of log KL per query over the last "
          "half of 2000 steps at most −log(1+2β)")
def _f_nash_md_linear(e):
    def run(deadline):
        from proofs_check import nash_rates as nr

        out = []
        for i, name in enumerate(_all_games()):
            _deadline_guard(deadline, i)
            _poly, fit = _nash_md_fits(name)
            claim = -math.log(1 + 2 * float(nr.games()[name].beta))
            out.append((f"{name}: Nash-MD log KL per query: {fit.text()}; claimed ≤ {claim:.5g}",
                        claim - fit.hi))
        return out

    return CallableClaim(e.name, run, **_meta(e))


@register("false_omd_linear_rate_at_nash_mp_step", tags=(_TAG, "false", "nash", "rate"),
          expected="violated",
          source=_FALSE + "without the extra-gradient (mirror-prox) step, mirror descent at "
          "η = 1/L cycles on strongly cyclic preferences; " + _NASH,
          description="plain online mirror descent at Nash-MP's step η = 2 converges at "
          "(1+2β)^(−N) (one query per step) on the cyclic games")
def _f_omd(e):
    def run(deadline):
        return _linear_rate_margins("omd", lambda b: -math.log(1 + 2 * b),
                                    ["cyclic5_beta0.02", "cyclic3_beta0.05"], deadline)

    return CallableClaim(e.name, run, **_meta(e))
