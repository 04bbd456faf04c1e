r"""Alignment objectives derived from a generator f: f-DPO, f-DPG, DPH-RL, D²O and Nash-MP.

Convention: the policy is P, the reference Q, :math:`D_f(\pi\|\pi_{ref}) =
\sum_y \pi_{ref}(y)\, f(\pi(y)/\pi_{ref}(y))`, ratio :math:`u = \pi/\pi_{ref}`. So the
papers' "reverse KL" :math:`KL(\pi\|\pi_{ref})` (standard DPO) is catalog ``kl`` and their
"forward KL" :math:`KL(\pi_{ref}\|\pi)` is catalog ``reverse_kl`` (docs/names.md).

Everything returned is a plain sympy object (``simplify``, ``latex``, ``series`` work on it).
Equations are cited from the papers (f-DPO, f-DPG, DPH-RL, Nash-MP, D²O) where used; what
is derived here rather than quoted says so.

* **f-DPO** (Wang et al. 2024): :func:`fdpo_logit` :math:`\beta f'(u_w) - \beta f'(u_l)`;
  :func:`fdpo_reward` :math:`r = \beta f'(u) + \lambda`, its inverse
  :func:`fdpo_policy_ratio` (needs f strictly convex).
* **f-DPG** (Go et al. 2023): :math:`\nabla_\theta D_f(\pi_\theta\|p) =
  \mathbb E_{\pi_\theta}[f'(\pi_\theta/p)\nabla_\theta\log\pi_\theta]`, pseudo-reward
  :func:`fdpg_pseudo_reward` :math:`-f'(\pi_\theta/p)`, in EBM form
  :func:`fdpg_ebm_pseudo_reward` for :math:`p = \pi_{ref} e^{r/\beta}/Z`.
* **DPH-RL** (Li et al. 2025): per-sample loss on reference samples
  :func:`dphrl_loss` :math:`F(u) = f(u) - f'(1)(u - 1)` with
  :math:`\mathbb E_{\pi_{ref}}[F(u)] = D_f(\pi_\theta\|\pi_{ref})`, its gradient in
  :math:`\log\pi_\theta` :func:`dphrl_loss_gradient`, the paper's own per-token losses
  :func:`dphrl_paper_loss`.
* **D²O** (Duan et al. 2024): :func:`d2o_loss` from K reference samples and one negative,
  the distribution-level loss :func:`d2o_distributional_loss` it upper-bounds (Jensen),
  and the exact expectation over the samples on a finite space
  :func:`d2o_expected_loss`.
* **Nash-MP** (Tiapkin et al. 2025): :class:`PreferenceGame`, the β-regularised preference
  game, its fixed point to any precision and the mirror-prox / mirror-descent updates.

>>> from theory import alignment, fdiv
>>> alignment.fdpg_pseudo_reward("kl")
-log(u) - 1
>>> alignment.dphrl_loss("reverse_kl")
u - log(u) - 1
>>> alignment.fdpo_logit("kl")
beta*(-log(u_l) + log(u_w))
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import sympy

from theory import fdiv as _fdiv
from theory._symbols import t, u

__all__ = [
    "beta",
    "log_ratio",
    "reward",
    "log_partition",
    "u_w",
    "u_l",
    "as_fdivergence",
    "fdpo_logit",
    "fdpo_reward",
    "fdpo_policy_ratio",
    "fdpg_pseudo_reward",
    "fdpg_ebm_pseudo_reward",
    "fdpg_filtered_pseudo_reward",
    "dphrl_loss",
    "dphrl_loss_gradient",
    "dphrl_paper_loss",
    "DPHRL_PAPER_NAMES",
    "d2o_loss",
    "d2o_distributional_loss",
    "d2o_expected_loss",
    "PreferenceGame",
    "derivations",
    "DERIVE_EXTRA",
]

#: Regularisation strength β > 0.
beta = sympy.Symbol("beta", positive=True)
#: ℓ = log(π_θ/π_ref), the policy's log-ratio to the reference.
log_ratio = sympy.Symbol("ell", real=True)
#: The reward r(y).
reward = sympy.Symbol("r", real=True)
#: log Z, the log-normaliser of an EBM target.
log_partition = sympy.Symbol("logZ", real=True)
#: Ratios π/π_ref of the chosen and of the rejected response (f-DPO).
u_w = sympy.Symbol("u_w", positive=True)
u_l = sympy.Symbol("u_l", positive=True)


def as_fdivergence(f) -> _fdiv.FDivergence:
    """A catalog name or an :class:`~theory.fdiv.FDivergence` as an FDivergence.

    Raises
    ------
    TypeError
        For anything else (strings go to :func:`theory.fdiv.get`, which suggests names).
    """
    if isinstance(f, _fdiv.FDivergence):
        return f
    if isinstance(f, str):
        return _fdiv.get(f)
    raise TypeError(f"f must be a catalog name or an FDivergence, got {type(f).__name__}")


def _strict(d: _fdiv.FDivergence, what: str) -> None:
    if not d.strictly_convex:
        raise ValueError(f"{d.name}: f is not strictly convex, so f' has no inverse and {what} "
                         "is not unique")


# ---------------------------------------------------------------------- f-DPO
def fdpo_logit(f) -> sympy.Expr:
    r"""The f-DPO logit :math:`\beta f'(u_w) - \beta f'(u_l)` (Wang et al. 2024, eq. 9).

    The loss is :math:`-\log\sigma` of it, :math:`u = \pi/\pi_{ref}` (policy is P). With
    catalog ``kl`` (f = u log u, the paper's "reverse KL") it is DPO's
    :math:`\beta\log(u_w/u_l)` (Rafailov et al. 2023, eq. 7).

    >>> fdpo_logit("reverse_kl")
    beta*(-1/u_w + 1/u_l)
    """
    d = as_fdivergence(f)
    return sympy.factor_terms(sympy.expand(beta * (d.df.subs(u, u_w) - d.df.subs(u, u_l))))


def fdpo_reward(f) -> sympy.Expr:
    r"""The KKT reward of :math:`\max_\pi \mathbb E_\pi[r] - \beta D_f(\pi\|\pi_{ref})`:
    :math:`r = \beta f'(u) + \lambda` with the normaliser written as ``lambda``
    (Wang et al. 2024, §4).

    >>> fdpo_reward("kl")
    beta*(log(u) + 1) + lambda
    """
    d = as_fdivergence(f)
    return beta * d.reward_map + sympy.Symbol("lambda", real=True)


def fdpo_policy_ratio(f) -> sympy.Expr:
    r"""The optimal ratio :math:`\pi^*/\pi_{ref} = (f')^{-1}((r - \lambda)/\beta)`.

    Raises
    ------
    ValueError
        If f is not strictly convex (``tv``: f' is not invertible) or sympy finds no closed
        form for :math:`(f')^{-1}` (numeric.policy_from_reward then inverts numerically).

    >>> fdpo_policy_ratio("kl")
    exp((-beta - lambda + r)/beta)
    """
    d = as_fdivergence(f)
    _strict(d, "the KKT policy")
    pm = d.policy_map
    if pm is None:
        raise ValueError(f"{d.name}: sympy found no closed form for the inverse of f'")
    lam = sympy.Symbol("lambda", real=True)
    return sympy.simplify(pm.subs(t, (reward - lam) / beta))


# ---------------------------------------------------------------------- f-DPG
def fdpg_pseudo_reward(f) -> sympy.Expr:
    r"""The f-DPG pseudo-reward :math:`-f'(u)`, :math:`u = \pi_\theta/p`.

    Go et al. (2023) minimise :math:`D_f(\pi_\theta\|p) = \mathbb E_p[f(\pi_\theta/p)]`
    (policy first, as in divkit), whose gradient is

    .. math::

        \nabla_\theta D_f(\pi_\theta\|p)
            = \mathbb E_{x\sim\pi_\theta}\big[f'(\pi_\theta(x)/p(x))\,\nabla_\theta\log\pi_\theta(x)\big]
            = \mathbb E_{x\sim q}\Big[\tfrac{\pi_\theta(x)}{q(x)}\,f'(\cdot)
              \,\nabla_\theta\log\pi_\theta(x)\Big]

    (any proposal q), so descending it is policy-gradient ascent on :math:`-f'`
   . Their "KL(p‖π)" is catalog ``reverse_kl`` (−f' = 1/u),
    their "reverse KL(π‖p)" is catalog ``kl`` (−f' = −log u − 1).

    >>> fdpg_pseudo_reward("reverse_kl")
    1/u
    """
    return sympy.expand(-as_fdivergence(f).df)


def fdpg_ebm_pseudo_reward(f) -> sympy.Expr:
    r"""The pseudo-reward for the EBM target :math:`p = \pi_{ref}\,e^{r/\beta}/Z`.

    Then :math:`u = \pi_\theta/p = \exp(\ell - r/\beta + \log Z)` with
    :math:`\ell = \log(\pi_\theta/\pi_{ref})`; returned in the symbols :data:`log_ratio`
    (``ell``), :data:`reward` (``r``), :data:`beta`, :data:`log_partition` (``logZ``).
    For catalog ``kl`` it is :math:`(r - \beta\ell)/\beta - \log Z - 1`: the RL-with-KL reward
    :math:`r - \beta\log(\pi_\theta/\pi_{ref})` over β, up to a constant (a baseline).

    >>> fdpg_ebm_pseudo_reward("kl")
    -ell - logZ - 1 + r/beta
    """
    pr = fdpg_pseudo_reward(f)
    arg = sympy.exp(log_ratio - reward / beta + log_partition)
    return sympy.powsimp(sympy.expand(sympy.expand_log(pr.subs(u, arg), force=True)),
                         combine="exp", deep=True)


def fdpg_filtered_pseudo_reward(f) -> tuple[sympy.Expr, sympy.Expr]:
    r"""Pseudo-reward for a filtered target :math:`p = \pi_{ref}\,1[b(x)]/Z`.

    Returns ``(inside, outside)``: on :math:`b(x) = 1`, :math:`u = e^{\ell}\,Z` and the
    pseudo-reward is ``inside`` (in ``ell`` and ``logZ``); where :math:`b(x) = 0` the target
    has no mass, :math:`u = \infty`, and the zero-mass rule :math:`0\cdot f(p/0) = p f'(\infty)`
    gives the constant pseudo-reward :math:`-f'(\infty)` (``-oo`` for ``kl``: the divergence
    is infinite while :math:`\pi_\theta` puts mass outside the filter).

    >>> fdpg_filtered_pseudo_reward("reverse_kl")
    (exp(-ell - logZ), 0)
    """
    d = as_fdivergence(f)
    inside = fdpg_pseudo_reward(d).subs(u, sympy.exp(log_ratio + log_partition))
    inside = sympy.powsimp(sympy.expand(sympy.expand_log(inside, force=True)), combine="exp", deep=True)
    return inside, -d.slope_at_infinity


# ---------------------------------------------------------------------- DPH-RL
def dphrl_loss(f) -> sympy.Expr:
    r"""DPH-RL's generator-form loss per reference sample: :math:`F(u) = f(u) - f'(1)(u-1)`.

    With samples :math:`y \sim \pi_{ref}` (no online reference model) and
    :math:`u = \pi_\theta(y)/\pi_{ref}(y)`,
    :math:`\mathbb E_{\pi_{ref}}[F(u)] = D_f(\pi_\theta\|\pi_{ref})` because
    :math:`\mathbb E_{\pi_{ref}}[u] = 1`; each term is ≥ 0 (Li et al. 2025). The paper's
    "forward KL" is catalog ``reverse_kl`` (this function gives :math:`u - \log u - 1`,
    their k3 loss), its "JS" is twice catalog ``js``.

    >>> dphrl_loss("js")
    u*log(u)/2 - (u/2 + 1/2)*log(u/2 + 1/2)
    """
    d = as_fdivergence(f)
    return d.standardized


def dphrl_loss_gradient(f) -> sympy.Expr:
    r""":math:`\partial F(u)/\partial\log\pi_\theta = u\,(f'(u) - f'(1))`.

    >>> dphrl_loss_gradient("reverse_kl")
    u - 1
    """
    d = as_fdivergence(f)
    return _fdiv._tidy(sympy.expand(u * (d.df - d.df_at_one)))


#: DPH-RL's own names → (catalog name, factor): the paper's loss is factor × :func:`dphrl_loss`.
DPHRL_PAPER_NAMES = {"forward_kl": ("reverse_kl", 1), "js": ("js", 2)}


def dphrl_paper_loss(name: str) -> sympy.Expr:
    r"""The per-token loss as DPH-RL's code writes it.

    ``"forward_kl"``: :math:`u - \log u - 1` (k3); ``"js"``:
    :math:`u\log u - (u+1)\log((u+1)/2)`. Kept literal, for comparison with
    :func:`dphrl_loss` (:data:`DPHRL_PAPER_NAMES`).

    >>> dphrl_paper_loss("forward_kl")
    u - log(u) - 1
    """
    if name == "forward_kl":
        return u - sympy.log(u) - 1
    if name == "js":
        return u * sympy.log(u) - (u + 1) * sympy.log((u + 1) / 2)
    raise ValueError(f"unknown DPH-RL loss {name!r}; known: {', '.join(DPHRL_PAPER_NAMES)}")


# ---------------------------------------------------------------------- D²O
def _neg_log_sigmoid(z):
    return sympy.log(1 + sympy.exp(-z))


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be ≥ 1 (number of reference samples), got {k}")
    return k


def d2o_loss(k: int) -> tuple[sympy.Expr, tuple, sympy.Symbol, sympy.Symbol]:
    r"""The D²O loss from negatives only, for ``k`` reference samples.

    .. math::

        L = -\log\sigma\Big(\frac{\beta}{K}\sum_{i=1}^{K}\ell_i - \alpha\,\ell^-\Big),\quad
        \ell_i = \log\frac{\pi_\theta(y_i)}{\pi_r^-(y_i)},\ y_i\sim\pi_r,\quad
        \ell^- = \log\frac{\pi_\theta(y_l)}{\pi_r^+(y_l)}

    with :math:`y_l` a human-labelled negative (Duan et al. 2024).
    Returns ``(L, (ell_1..ell_K), ell_neg, alpha)``; β is :data:`beta`.

    >>> L, ells, neg, a = d2o_loss(2)
    >>> L
    log(exp(alpha*ell_neg - beta*(ell_1 + ell_2)/2) + 1)
    """
    k = _check_k(k)
    ells = sympy.symbols(f"ell_1:{k + 1}", real=True)
    neg = sympy.Symbol("ell_neg", real=True)
    alpha = sympy.Symbol("alpha", positive=True)
    z = beta * sympy.Add(*ells) / k - alpha * neg
    return _neg_log_sigmoid(z), ells, neg, alpha


def d2o_distributional_loss() -> tuple[sympy.Expr, sympy.Symbol, sympy.Symbol, sympy.Symbol]:
    r"""The distribution-level loss :math:`-\log\sigma(\beta m - \alpha\ell^-)`,
    :math:`m = \mathbb E_{y\sim\pi_r}[\log(\pi_\theta/\pi_r^-)]`.

    Derived here (the paper's own statement of its Jeffrey term was not available):
    :math:`-\log\sigma` is convex and :math:`\mathbb E[\frac1K\sum_i\ell_i] = m`, so by
    Jensen :math:`\mathbb E_{y_{1:K}}[L_K] \ge L_\infty` for every K — D²O's sample loss
    is an upper bound of this one, tight as K → ∞. With :math:`\pi_r = \pi_r^- = \pi_{ref}`,
    :math:`m = -KL(\pi_{ref}\|\pi_\theta)` (catalog ``reverse_kl`` with the policy first):
    the negatives are pushed down against a mass-covering penalty.

    Returns ``(L, m, ell_neg, alpha)``.
    """
    m = sympy.Symbol("m", real=True)
    neg = sympy.Symbol("ell_neg", real=True)
    alpha = sympy.Symbol("alpha", positive=True)
    return _neg_log_sigmoid(beta * m - alpha * neg), m, neg, alpha


def _probabilities(values, name: str) -> list[sympy.Expr]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of numbers")
    out = []
    for i, v in enumerate(values):
        x = _fdiv._as_param(f"{name}[{i}]", v)
        if not x.is_number or not x.is_real:
            raise ValueError(f"{name}[{i}] = {x} is not a real number")
        out.append(x)
    return out


def d2o_expected_loss(pi_r, ell, ell_neg, *, k: int, beta_value, alpha_value) -> sympy.Expr:
    r"""Exact :math:`\mathbb E_{y_1..y_K \sim \pi_r}[L_K]` on a finite space (sympy number).

    Sums over the multisets of K outcomes with multinomial weights (no sampling).

    Parameters
    ----------
    pi_r : sequence
        The sampling policy :math:`\pi_r` (positive, sums to 1).
    ell : sequence
        :math:`\ell(y) = \log(\pi_\theta(y)/\pi_r^-(y))` per outcome, same length.
    ell_neg : number
        :math:`\ell^-` of the negative.
    k : int, keyword-only
        Number of samples K ≥ 1.
    beta_value, alpha_value : numbers, keyword-only
        β > 0 and α > 0.

    >>> v = d2o_expected_loss(["1/2", "1/2"], [0, 0], 0, k=1, beta_value=1, alpha_value=1)
    >>> v
    log(2)
    """
    k = _check_k(k)
    p = _probabilities(pi_r, "pi_r")
    ls = _probabilities(ell, "ell")
    if len(p) != len(ls):
        raise ValueError(f"pi_r and ell must have the same length, got {len(p)} and {len(ls)}")
    if any(not x.is_positive for x in p) or sympy.simplify(sum(p) - 1) != 0:
        raise ValueError("pi_r must be positive and sum to 1")
    b = _fdiv._as_param("beta_value", beta_value)
    a = _fdiv._as_param("alpha_value", alpha_value)
    if not (b.is_positive and a.is_positive):
        raise ValueError(f"beta_value and alpha_value must be > 0, got {b} and {a}")
    neg = _fdiv._as_param("ell_neg", ell_neg)
    total = sympy.S.Zero
    m = len(p)
    for combo in itertools.combinations_with_replacement(range(m), k):
        counts = [combo.count(i) for i in range(m)]
        weight = sympy.Integer(math.factorial(k))
        for i, c in enumerate(counts):
            weight = weight * p[i] ** c / math.factorial(c)
        z = b * sum(ls[i] for i in combo) / k - a * neg
        total += weight * _neg_log_sigmoid(z)
    return total


# ---------------------------------------------------------------------- Nash-MP
class PreferenceGame:
    r"""The β-regularised preference game of Nash learning from human feedback.

    .. math::

        \mathcal P_\beta(\pi\succ\pi') = \pi^\top \mathbf P\,\pi'
            - \beta\,KL(\pi\|\pi_{ref}) + \beta\,KL(\pi'\|\pi_{ref}),

    :math:`\mathbf P_{ij} = \mathcal P(y_i\succ y_j)` with
    :math:`\mathbf P + \mathbf P^\top = \mathbf 1\mathbf 1^\top`. Its unique (symmetric)
    equilibrium solves the fixed point
    :math:`\pi^*(y) \propto \pi_{ref}(y)\exp(\mathcal P(y\succ\pi^*)/\beta)` (Tiapkin et al.
    2025). KL(π‖π_ref) is catalog ``kl`` with the policy first.

    Parameters
    ----------
    preference : sequence of sequences or sympy.Matrix
        n × n, entries in [0, 1], :math:`P_{ij} + P_{ji} = 1` (so the diagonal is 1/2).
    ref : sequence
        :math:`\pi_{ref}`, positive, sums to 1.
    beta : number
        β > 0.

    Raises
    ------
    ValueError
        A preference matrix that is not square, has entries outside [0, 1] or violates
        :math:`P + P^\top = 1` ("not a preference matrix"), a reference that is not a
        positive probability vector of length n, β ≤ 0.

    Examples
    --------
    With two actions :math:`(\mathbf P\pi)_1 - (\mathbf P\pi)_2 = P_{12} - 1/2` for every
    π, so :math:`\pi^*_1 = \sigma(\log(\pi_{ref,1}/\pi_{ref,2}) + (P_{12} - 1/2)/\beta)`;
    here :math:`\sigma(1/2) = 0.6224593312\ldots`:

    >>> g = PreferenceGame([["1/2", 1], [0, "1/2"]], ["1/2", "1/2"], beta=1)
    >>> s = 1 / (1 + sympy.exp(-sympy.Rational(1, 2)))
    >>> [sympy.simplify(r) for r in g.fixed_point_residual([s, 1 - s])]
    [0, 0]

    The equilibrium of any game to any precision is a reference computation of the
    checking layer: :func:`proofs_check.reference.nash.equilibrium`.
    """

    def __init__(self, preference, ref, *, beta):
        if isinstance(preference, sympy.MatrixBase):
            rows = preference.tolist()
        elif isinstance(preference, Sequence) and not isinstance(preference, (str, bytes)):
            rows = [list(r) if isinstance(r, Sequence) and not isinstance(r, (str, bytes)) else r
                    for r in preference]
        else:
            raise TypeError("preference must be an n × n sequence of sequences or a sympy Matrix")
        n = len(rows)
        if n < 2 or any(not isinstance(r, list) or len(r) != n for r in rows):
            raise ValueError(f"preference must be a square n × n matrix with n ≥ 2, got rows of "
                             f"lengths {[len(r) if isinstance(r, list) else None for r in rows]}")
        P = sympy.Matrix(n, n, lambda i, j: _fdiv._as_param(f"preference[{i}][{j}]", rows[i][j]))
        for i in range(n):
            for j in range(n):
                x = P[i, j]
                if not (x.is_number and x.is_real) or bool(x < 0) or bool(x > 1):
                    raise ValueError(f"preference[{i}][{j}] = {x} is not a probability: a "
                                     "preference matrix has entries in [0, 1]")
                if j < i:
                    continue
                y = P[j, i]
                if x.is_Rational and y.is_Rational:
                    bad = x + y != 1
                else:
                    bad = abs(sympy.N(x + y - 1, 30)) > 1e-12
                s = x + y
                if bad:
                    raise ValueError(
                        f"not a preference matrix: preference[{i}][{j}] + preference[{j}][{i}] "
                        f"= {sympy.N(s, 15)} ≠ 1 (P(y_i ≻ y_j) + P(y_j ≻ y_i) must be 1)")
        r = _probabilities(ref, "ref")
        if len(r) != n:
            raise ValueError(f"ref has length {len(r)} but the preference matrix is {n} × {n}")
        if any(not x.is_positive for x in r) or abs(sympy.N(sum(r) - 1, 30)) > 1e-12:
            raise ValueError("ref must be a positive probability vector summing to 1")
        b = _fdiv._as_param("beta", beta)
        if not (b.is_number and b.is_real and b.is_positive):
            raise ValueError(f"beta must be a positive number, got {b}")
        self.preference = P
        self.ref = r
        self.beta = b
        self.n = n

    def __repr__(self) -> str:
        return f"PreferenceGame(n={self.n}, beta={self.beta})"

    # symbolic pieces ---------------------------------------------------------
    def policy_symbols(self, prefix: str = "pi") -> tuple:
        """Positive symbols ``pi_1..pi_n`` for a policy (no normalisation implied)."""
        return sympy.symbols(f"{prefix}_1:{self.n + 1}", positive=True)

    def preference_against(self, opponent) -> list[sympy.Expr]:
        r""":math:`\mathcal P(y_i\succ\pi') = (\mathbf P\pi')_i` for each action."""
        o = list(opponent)
        return [sum(self.preference[i, j] * o[j] for j in range(self.n)) for i in range(self.n)]

    def objective(self, pi, opponent) -> sympy.Expr:
        r""":math:`\mathcal P_\beta(\pi\succ\pi')` as a sympy expression."""
        a, o = list(pi), list(opponent)
        pref = sum(a[i] * v for i, v in enumerate(self.preference_against(o)))
        kl = _fdiv.get("kl")
        return pref - self.beta * kl.discrete(a, self.ref, check_normalized=False) + \
            self.beta * kl.discrete(o, self.ref, check_normalized=False)

    def fixed_point_residual(self, pi) -> list[sympy.Expr]:
        r""":math:`\log\pi_i - \log\pi_{ref,i} - (\mathbf P\pi)_i/\beta` minus its value at
        action 1: all zero exactly at the equilibrium (on the simplex)."""
        a = list(pi)
        h = self.preference_against(a)
        g = [sympy.log(a[i]) - sympy.log(self.ref[i]) - h[i] / self.beta for i in range(self.n)]
        return [gi - g[0] for gi in g]

    def mirror_prox_step(self, pi, eta) -> tuple[list, list]:
        r"""One Nash-MP iteration (two preference queries), closed form:

        .. math::

            \pi_{k+1/2} &\propto \exp\Big(\frac{\eta\,\mathbf P\pi_k + \eta\beta\log\pi_{ref}
                          + \log\pi_k}{1+\eta\beta}\Big),\\
            \pi_{k+1} &\propto \exp\Big(\frac{\eta\,\mathbf P\pi_{k+1/2} + \eta\beta\log\pi_{ref}
                          + \log\pi_k}{1+\eta\beta}\Big)

        (the argmax of each KL-proximal step). Returns
        ``(half, full)`` as lists of sympy expressions.
        """
        half = self._prox(list(pi), list(pi), eta)
        return half, self._prox(list(pi), half, eta)

    def mirror_descent_step(self, pi, eta) -> list:
        """One step of (online) mirror descent: the first half of :meth:`mirror_prox_step`."""
        return self._prox(list(pi), list(pi), eta)

    def _prox(self, anchor, against, eta):
        e = _fdiv._as_param("eta", eta)
        h = self.preference_against(against)
        logits = [(e * h[i] + e * self.beta * sympy.log(self.ref[i]) + sympy.log(anchor[i]))
                  / (1 + e * self.beta) for i in range(self.n)]
        w = [sympy.exp(x) for x in logits]
        z = sympy.Add(*w)
        return [x / z for x in w]

    def rate_bound(self, queries, *, eta=2) -> sympy.Expr:
        r"""The stated contraction :math:`(1+\eta\beta)^{-N/2}` after N queries (N/2 Nash-MP
        iterations); η = 2 = 1/L gives the paper's :math:`(1+2\beta)^{-N/2}`."""
        return (1 + _fdiv._as_param("eta", eta) * self.beta) ** (-sympy.sympify(queries) / 2)


# ---------------------------------------------------------------------- derivation tables
#: Names accepted by :func:`derivations` besides the f-divergence catalog.
DERIVE_EXTRA = ("d2o", "nash_mp")


def derivations(name: str, *, solve: bool = True, **params) -> list[tuple[str, str, object]]:
    """``(key, label, value)`` rows for ``divkit derive alignment NAME``.

    ``NAME`` is a catalog f-divergence (its f-DPO, f-DPG and DPH-RL forms) or one of
    :data:`DERIVE_EXTRA` (``d2o``: the loss and its Jensen bound; ``nash_mp``: the game,
    its fixed point and the two updates, in symbols). ``solve=False`` skips the one row
    that needs ``sympy.solve`` (the optimal policy ratio, ``f.policy_map``), which at some
    parameter values runs for minutes.

    >>> [k for k, _, _ in derivations("kl")][:3]
    ['f', 'fdpo_logit', 'fdpo_reward']
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key == "d2o":
        if params:
            raise ValueError("d2o takes no --param")
        L, _ells, _neg, _a = d2o_loss(3)
        Ld, _m, _n, _a2 = d2o_distributional_loss()
        return [
            ("loss_k3", "D2O loss, K = 3 samples y_i ~ pi_r, ell_i = log(pi/pi_r^-)", L),
            ("distributional_loss", "distribution-level loss, m = E_pi_r[log(pi/pi_r^-)]", Ld),
            ("bound", "upper-bound relation (Jensen, -log sigma convex)",
             "E_{y_1..K}[L_K] >= L_inf for every K, equality as K -> oo"),
            ("jeffreys_side", "with pi_r = pi_r^- = pi_ref",
             "m = -KL(pi_ref || pi) = -D_reverse_kl(pi || pi_ref)"),
        ]
    if key == "nash_mp":
        if params:
            raise ValueError("nash_mp takes no --param")
        eta = sympy.Symbol("eta", positive=True)
        k = sympy.Symbol("k", nonnegative=True, integer=True)
        return [
            ("game", "regularised game",
             "P_beta(pi > pi') = pi^T P pi' - beta KL(pi||pi_ref) + beta KL(pi'||pi_ref)"),
            ("fixed_point", "equilibrium", "pi*(y) ∝ pi_ref(y) exp((P pi*)_y / beta)"),
            ("half_step", "pi_{k+1/2}",
             "∝ exp((eta P pi_k + eta beta log pi_ref + log pi_k)/(1 + eta beta))"),
            ("full_step", "pi_{k+1}",
             "∝ exp((eta P pi_{k+1/2} + eta beta log pi_ref + log pi_k)/(1 + eta beta))"),
            ("rate", "KL(pi*||pi_k) / KL(pi*||pi_0) <=", (1 + eta * beta) ** (-k)),
            ("rate_queries", "with eta = 2, N = 2k queries",
             (1 + 2 * beta) ** (-sympy.Symbol("N", positive=True) / 2)),
        ]
    if key not in _fdiv.names():
        import difflib

        known = [*_fdiv.names(), *DERIVE_EXTRA]
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        hint = f"; did you mean: {', '.join(close)}" if close else ""
        raise ValueError(f"unknown alignment name {name!r}{hint} (known: {', '.join(known)})")
    d = _fdiv.get(key, **params)
    rows: list[tuple[str, str, object]] = [
        ("f", "f(u), u = pi/pi_ref (policy first)", d.f),
        ("fdpo_logit", "f-DPO logit (loss = -log sigma of it)", fdpo_logit(d)),
        ("fdpo_reward", "KKT reward r = beta f'(u) + lambda", fdpo_reward(d)),
    ]
    if not solve:
        rows.append(("fdpo_policy_ratio", "optimal pi*/pi_ref",
                     "not derived (sympy.solve skipped; numeric.policy_from_reward inverts f' "
                     "numerically)"))
    elif d.strictly_convex and d.policy_map is not None:
        rows.append(("fdpo_policy_ratio", "optimal pi*/pi_ref", fdpo_policy_ratio(d)))
    else:
        rows.append(("fdpo_policy_ratio", "optimal pi*/pi_ref",
                     "not unique (f not strictly convex)" if not d.strictly_convex
                     else "no closed form (numeric inverse of f')"))
    rows += [
        ("fdpo_positive", "f-DPO positivity f'(0+) = -oo", d.fdpo_positive),
        ("fdpg_pseudo_reward", "f-DPG pseudo-reward -f'(u), u = pi_theta/p", fdpg_pseudo_reward(d)),
        ("fdpg_ebm_pseudo_reward", "... for p = pi_ref exp(r/beta)/Z, ell = log(pi/pi_ref)",
         fdpg_ebm_pseudo_reward(d)),
        ("dphrl_loss", "DPH-RL loss per pi_ref sample F(u) = f(u) - f'(1)(u - 1)", dphrl_loss(d)),
        ("dphrl_loss_gradient", "dF/dlog pi_theta", dphrl_loss_gradient(d)),
    ]
    return rows
