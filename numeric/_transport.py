r"""Entropic optimal transport: batched log-domain Sinkhorn and the Sinkhorn divergence.

Definitions (Feydy et al. 2019, "Interpolating between OT and MMD using Sinkhorn
divergences"; Peyré & Cuturi 2019, ch. 4). For weights :math:`a \in \Delta_n`,
:math:`b \in \Delta_m` and a cost :math:`C \in \mathbb R^{n\times m}`,

.. math::
    \mathrm{OT}_\varepsilon(a, b) = \min_{\pi \in \Pi(a, b)} \langle \pi, C\rangle
        + \varepsilon\,\mathrm{KL}(\pi \,\|\, a \otimes b)
      = \max_{f, g}\ \langle a, f\rangle + \langle b, g\rangle
        - \varepsilon \langle a\otimes b, e^{(f \oplus g - C)/\varepsilon} - 1\rangle,

with the optimal plan :math:`\pi_{ij} = a_i b_j e^{(f_i + g_j - C_{ij})/\varepsilon}`, and the
debiased Sinkhorn divergence
:math:`S_\varepsilon(a, b) = \mathrm{OT}_\varepsilon(a, b) - \tfrac12\mathrm{OT}_\varepsilon(a, a)
- \tfrac12\mathrm{OT}_\varepsilon(b, b)` (entropic terms included; :math:`S_\varepsilon \ge 0`
for costs :math:`|x - y|` and :math:`|x - y|^2`, and :math:`S_\varepsilon \to W` as
:math:`\varepsilon \to 0`).

Algorithm: alternating log-domain updates
:math:`f_i \leftarrow -\varepsilon \log \sum_j b_j e^{(g_j - C_{ij})/\varepsilon}`,
:math:`g_j \leftarrow -\varepsilon \log \sum_i a_i e^{(f_i - C_{ij})/\varepsilon}`. Each sum is
evaluated tile by tile (at most :data:`TILE` elements at a time, so temporaries stay in
cache and point clouds never hold an n×m matrix) with the current potential as the shift of
the exponent: the terms are then :math:`\pi_{ij}/a_i` (or :math:`/b_j`), so the row sums
of the current plan — the marginal error — come for free with every f-update. A sum outside
:math:`[10^{-200}, 10^{200}]` (a poor shift, e.g. right after an ε-stage) is recomputed with
the exact max shift, so the update is a true log-sum-exp. ε-scaling (geomloss style) runs
one iteration per stage on :math:`\varepsilon_k = \max(\varepsilon, \varepsilon_0 q^k)`,
:math:`\varepsilon_0` = the largest cost, before iterating at the target ε.

Stopping rule: after a g-update the column marginals are exact; the iteration stops when
:math:`\|\pi \mathbf 1 - a\|_1 \le` ``tol`` for every problem of the batch (the L1 error
bounds POT's L2 criterion from above). Returned: that error and the number of iterations.

Symmetric problems (``a == b`` and a symmetric cost, e.g. the ½OT(a, a) terms of the
divergence) use the averaged update :math:`f \leftarrow \tfrac12(f + T f)` of Feydy et
al. instead: the alternating one oscillates there and can stall for 10⁵ iterations. The
stopping rule is the same (rows and columns have the same error by symmetry).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from numeric._backend import is_numpy, namespace
from numeric.registry import operation

__all__ = ["SinkhornResult", "sinkhorn", "sinkhorn_points", "sinkhorn_divergence",
           "sinkhorn_divergence_points"]

#: Elements per tile of the online cost (float64: 512 KiB).
TILE = 1 << 16
_LO, _HI = 1e-200, 1e200


@dataclass(frozen=True)
class SinkhornResult:
    """Result of :func:`sinkhorn` / :func:`sinkhorn_points` (batch shape ``B``).

    Attributes
    ----------
    value : array, shape B
        :math:`\\mathrm{OT}_\\varepsilon(a, b)` including the entropic term (dual objective).
    transport_cost : array, shape B
        :math:`\\langle \\pi, C\\rangle` without the entropic term (what ``ot.sinkhorn2`` returns).
    f, g : arrays, shapes B×n and B×m
        Dual potentials; ``f`` is the gradient of ``value`` w.r.t. ``a`` on the simplex
        (envelope theorem; defined up to an additive constant), ``g`` likewise for ``b``.
    marginal_error : array, shape B
        :math:`\\|\\pi\\mathbf 1 - a\\|_1` of the returned potentials (column marginals exact).
    iterations : int
        Sinkhorn iterations run (ε-scaling stages included).
    converged : array of bool, shape B
        ``marginal_error <= tol``.
    grad_x, grad_y : arrays or None
        Gradients of ``value`` w.r.t. the point positions (:func:`sinkhorn_points` with
        ``return_grad=True``).
    plan : array or None
        :math:`\\pi` (B×n×m), only with ``return_plan=True`` on a cost matrix.
    """

    value: object
    transport_cost: object
    f: object
    g: object
    marginal_error: object
    iterations: int
    converged: object
    grad_x: object = None
    grad_y: object = None
    plan: object = None


# --------------------------------------------------------------------------- in-place ops

class _Ops:
    """In-place arithmetic for numpy/cupy (``out=``), allocating fallbacks otherwise."""

    def __init__(self, xp):
        self.xp = xp
        self.inplace = is_numpy(xp) or "cupy" in getattr(xp, "__name__", "")

    def exp_(self, t):
        if self.inplace:
            return self.xp.exp(t, out=t)
        return self.xp.exp(t)

    def add(self, a, b, out):
        if self.inplace:
            return self.xp.add(a, b, out=out)
        return a + b


# --------------------------------------------------------------------------- cost providers

class _Dense:
    """Tiles of :math:`-C/\\varepsilon` from a cost matrix ``(B or 1, n, m)``."""

    def __init__(self, xp, cost):
        self.xp, self.cost = xp, cost
        self.n, self.m = cost.shape[-2], cost.shape[-1]
        self.k = None

    def set_eps(self, eps):
        self.k = self.cost * (-1.0 / eps)

    def bind(self, alpha, beta):
        """A tile function: out = -C/eps + alpha_i + beta_j on rows r0:r1, columns c0:c1."""
        def fill(ops, r0, r1, c0, c1, out):
            out = ops.add(self.k[:, r0:r1, c0:c1], beta[:, None, c0:c1], out)
            out += alpha[:, r0:r1, None]
            return out
        return fill

    def cost_tile(self, r0, r1, c0, c1):
        return self.cost[:, r0:r1, c0:c1]


class _Points:
    """Online tiles of :math:`-|x - y|^p/\\varepsilon` (p = 1 or 2), never an n×m matrix."""

    def __init__(self, xp, x, y, power):
        self.xp, self.power = xp, power
        center = (xp.sum(x, axis=-2, keepdims=True) + xp.sum(y, axis=-2, keepdims=True)) / (
            x.shape[-2] + y.shape[-2])
        self.x, self.y = x - center, y - center          # centred: no cancellation in |x|²+|y|²−2xy
        self.x2 = xp.sum(self.x * self.x, axis=-1)
        self.y2 = xp.sum(self.y * self.y, axis=-1)
        self.yt = xp.swapaxes(self.y, -1, -2)
        self.n, self.m = x.shape[-2], y.shape[-2]
        self.eps = None

    def set_eps(self, eps):
        self.eps = eps
        if self.power == 2:
            self.x_s = self.x * (2.0 / eps)
            self.row_shift = -self.x2 / eps
            self.col_shift = -self.y2 / eps

    def _sq(self, r0, r1, c0, c1):
        xp = self.xp
        if self.power == 1:
            # direct differences: sqrt of the expanded form would turn its rounding error
            # (~1e-16 |x|^2) into ~1e-8 |x| errors of |x - y| near the diagonal
            d2 = None
            for k in range(self.x.shape[-1]):
                diff = self.x[:, r0:r1, k][:, :, None] - self.y[:, c0:c1, k][:, None, :]
                d2 = diff * diff if d2 is None else d2 + diff * diff
            return d2
        d2 = xp.matmul(self.x[:, r0:r1], self.yt[:, :, c0:c1]) * -2.0
        d2 += self.x2[:, r0:r1, None]
        d2 += self.y2[:, None, c0:c1]
        return xp.maximum(d2, 0.0)

    def bind(self, alpha, beta):
        """A tile function: out = -|x_i - y_j|^p/eps + alpha_i + beta_j.

        For p = 2 one matrix product does it all: with the augmented points
        ``[2x/eps, alpha - |x|^2/eps, 1]`` and ``[y, 1, beta - |y|^2/eps]`` the product is the
        tile, so no elementwise pass is spent on the shifts.
        """
        xp = self.xp
        if self.power == 2:
            one_x = xp.ones(alpha.shape + (1,), dtype=alpha.dtype)
            one_y = xp.ones(beta.shape + (1,), dtype=beta.dtype)
            # zero weights (-inf) become a huge finite shift: BLAS may multiply padding by it
            alpha = xp.where(alpha > -xp.inf, alpha, -1e300)
            beta = xp.where(beta > -xp.inf, beta, -1e300)
            xa = xp.concat([self.x_s, (alpha + self.row_shift)[..., None], one_x], axis=-1)
            ya = xp.concat([self.y, one_y, (beta + self.col_shift)[..., None]], axis=-1)
            yat = xp.swapaxes(ya, -1, -2)

            def fill(ops, r0, r1, c0, c1, out):
                if ops.inplace:
                    return xp.matmul(xa[:, r0:r1], yat[:, :, c0:c1], out=out)
                return xp.matmul(xa[:, r0:r1], yat[:, :, c0:c1])
            return fill

        def fill1(ops, r0, r1, c0, c1, out):
            t = xp.sqrt(self._sq(r0, r1, c0, c1)) * (-1.0 / self.eps)
            t += beta[:, None, c0:c1]
            t += alpha[:, r0:r1, None]
            return t
        return fill1

    def cost_tile(self, r0, r1, c0, c1):
        d2 = self._sq(r0, r1, c0, c1)
        return d2 if self.power == 2 else self.xp.sqrt(d2)


# --------------------------------------------------------------------------- the engine

def _tiles(n, m, batch):
    cols = m if batch * m <= TILE else max(1, TILE // batch)
    rows = max(1, TILE // (batch * cols))
    for r0 in range(0, n, rows):
        for c0 in range(0, m, cols):
            yield r0, min(r0 + rows, n), c0, min(c0 + cols, m)


def _sums(xp, ops, prov, alpha, beta, axis):
    """:math:`S = \\sum \\exp(K + \\alpha_i + \\beta_j)` over the other axis (axis 1: per row)."""
    bsz = alpha.shape[0]
    out = xp.zeros((bsz, prov.n if axis == 1 else prov.m), dtype=alpha.dtype)
    buf = None
    fill = prov.bind(alpha, beta)
    for r0, r1, c0, c1 in _tiles(prov.n, prov.m, bsz):
        shape = (bsz, r1 - r0, c1 - c0)
        if buf is None or buf.shape != shape:
            buf = xp.empty(shape, dtype=alpha.dtype)
        t = ops.exp_(fill(ops, r0, r1, c0, c1, buf))
        if axis == 1:
            out[:, r0:r1] += xp.sum(t, axis=2)
        else:
            out[:, c0:c1] += xp.sum(t, axis=1)
    return out


def _maxes(xp, ops, prov, alpha, beta, axis):
    bsz = alpha.shape[0]
    out = xp.full((bsz, prov.n if axis == 1 else prov.m), -xp.inf, dtype=alpha.dtype)
    fill = prov.bind(alpha, beta)
    for r0, r1, c0, c1 in _tiles(prov.n, prov.m, bsz):
        t = fill(ops, r0, r1, c0, c1, xp.empty((bsz, r1 - r0, c1 - c0), dtype=alpha.dtype))
        if axis == 1:
            out[:, r0:r1] = xp.maximum(out[:, r0:r1], xp.max(t, axis=2))
        else:
            out[:, c0:c1] = xp.maximum(out[:, c0:c1], xp.max(t, axis=1))
    return out


def _lse(xp, ops, prov, alpha, beta, axis, shift):
    """log Σ exp(K + α + β) along the other axis, with ``shift`` folded into α (axis 1) or β.

    Returns ``(lse, sums)`` where ``sums`` is the shifted sum (before any exact recompute).
    """
    if axis == 1:
        s = _sums(xp, ops, prov, alpha + shift, beta, 1)
    else:
        s = _sums(xp, ops, prov, alpha, beta + shift, 0)
    bad = ~((s >= _LO) & (s <= _HI))
    if bool(xp.any(bad)):
        mx = _maxes(xp, ops, prov, alpha, beta, axis)
        mx = xp.where(xp.isfinite(mx), mx, xp.zeros_like(mx))
        if axis == 1:
            s2 = _sums(xp, ops, prov, alpha - mx, beta, 1)
        else:
            s2 = _sums(xp, ops, prov, alpha, beta - mx, 0)
        exact = xp.log(s2) + mx
        return xp.where(bad, exact, xp.log(xp.where(bad, 1.0, s)) - shift), s
    return xp.log(s) - shift, s


#: Sinkhorn counts as stalled when its worst marginal error has not halved in this many
#: iterations; then up to _NEWTON_STEPS Newton steps follow (at most _NEWTON_PHASES times)
_STALL_WINDOW = 10
_NEWTON_STEPS = 30
_NEWTON_PHASES = 3
#: ... and only once the marginal error is below this (Newton's region, not the far field).
_NEWTON_FROM = 1e-2
#: Newton systems up to this many plan entries per problem are solved densely (else CG).
_DENSE_NEWTON = 1 << 20


def _plan_apply(xp, ops, prov, alpha, beta, vec, axis):
    """Σ_j exp(K + α_i + β_j) vec_j (axis 1) or Σ_i exp(K + α_i + β_j) vec_i (axis 0), by tiles."""
    bsz = alpha.shape[0]
    out = xp.zeros((bsz, prov.n if axis == 1 else prov.m), dtype=alpha.dtype)
    fill = prov.bind(alpha, beta)
    for r0, r1, c0, c1 in _tiles(prov.n, prov.m, bsz):
        t = ops.exp_(fill(ops, r0, r1, c0, c1, xp.empty((bsz, r1 - r0, c1 - c0),
                                                        dtype=alpha.dtype)))
        if axis == 1:
            out[:, r0:r1] += xp.matmul(t, vec[:, c0:c1, None])[..., 0]
        else:
            out[:, c0:c1] += xp.matmul(xp.swapaxes(t, 1, 2), vec[:, r0:r1, None])[..., 0]
    return out


def _newton(xp, ops, prov, la, lb, f, g, eps, *, tol, max_steps):
    r"""Damped Newton steps on the semi-dual :math:`F(f) = \langle a, f\rangle + \langle b, g(f)\rangle`.

    ``g(f)`` is the exact c-transform (columns of the plan exact), so the row marginals
    :math:`r(f) = \pi\mathbf 1` are the residual :math:`a - r`, and their Jacobian is
    :math:`K/\varepsilon` with :math:`K = \operatorname{diag}(r) - \pi\,\operatorname{diag}(1/b)\,\pi^\top`
    (positive semi-definite, null space the constants, the gauge of (f, g)). Each step solves
    :math:`K\delta = \varepsilon(a - r)` by conjugate gradients preconditioned with
    :math:`\operatorname{diag}(r)` (matrix-vector products by tiles: memory stays linear) and
    halves the step, per problem, until the L1 marginal error falls by at least a quarter of
    the step length or the semi-dual rises. Sinkhorn-Newton: Brauer, Clason, Lorenz & Wirth
    (2017). Used where the alternating update stalls, e.g. nearly equal point clouds whose plan is nearly the
    identity (Sinkhorn's rate 1 - 1e-6 at eps = 0.1 for a dozen standard normal points).

    Returns ``(f, g, steps)`` with g the exact c-transform of f.
    """
    a, b = xp.exp(la), xp.exp(lb)
    binv = xp.where(lb > -xp.inf, xp.exp(-lb), 0.0)
    zf, zg = xp.zeros_like(f), xp.zeros_like(g)

    def cols(f_, g_old):
        lse, _ = _lse(xp, ops, prov, la + f_ / eps, zg, 0, g_old / eps)
        return -eps * lse

    def rows(f_, g_):
        lse, _ = _lse(xp, ops, prov, zf, lb + g_ / eps, 1, f_ / eps)
        return a * xp.exp(xp.where(la > -xp.inf, lse + f_ / eps, 0.0)), -eps * lse

    def semi_dual(f_, g_):
        return (xp.sum(xp.where(la > -xp.inf, a * f_, 0.0), axis=1)
                + xp.sum(xp.where(lb > -xp.inf, b * g_, 0.0), axis=1))

    def plan(alpha, beta):
        out = xp.empty((alpha.shape[0], prov.n, prov.m), dtype=alpha.dtype)
        fill = prov.bind(alpha, beta)
        for r0, r1, c0, c1 in _tiles(prov.n, prov.m, alpha.shape[0]):
            out[:, r0:r1, c0:c1] = ops.exp_(fill(ops, r0, r1, c0, c1, xp.empty(
                (alpha.shape[0], r1 - r0, c1 - c0), dtype=alpha.dtype)))
        return out

    def dense_solve(alpha, beta, r, rhs):
        # K + mean(r) 11^T: nonsingular, same solution as K for a right side summing to 0
        pi = plan(alpha, beta)
        k = -xp.matmul(pi * binv[:, None, :], xp.swapaxes(pi, 1, 2))
        idx = xp.arange(prov.n)
        k[:, idx, idx] += r
        dead = ~(la > -xp.inf)                          # zero-weight rows: delta = 0
        k = xp.where(dead[:, :, None] | dead[:, None, :], 0.0, k)
        k[:, idx, idx] += xp.where(dead, 1.0, 0.0)
        live_rows = xp.where(dead, 0.0, 1.0)
        k = k + (xp.sum(r, axis=1) / prov.n)[:, None, None] * (live_rows[:, :, None]
                                                             * live_rows[:, None, :])
        # a plan whose blocks no longer exchange mass (entries underflowed to 0) leaves one
        # null direction per block: a relative 1e-13 of diag(r) keeps the system regular
        k[:, idx, idx] += 1e-13 * r
        try:
            return xp.linalg.solve(k, xp.where(dead, 0.0, rhs)[..., None])[..., 0]
        except Exception:  # noqa: BLE001 - numpy/cupy LinAlgError: conjugate gradients
            return None

    def cg_solve(kmul, minv, rhs, live):
        # preconditioned CG from 0; the iterate of smallest residual is kept
        rhs_norm = xp.sum(xp.abs(rhs), axis=1)
        delta = xp.zeros_like(rhs)
        best, best_res = delta, rhs_norm
        res = rhs
        z = minv * res
        p = z
        rz = xp.sum(res * z, axis=1)
        for _k in range(min(4 * prov.n + 20, 500)):
            kp = kmul(p)
            pkp = xp.sum(p * kp, axis=1)
            ok = live & (pkp > 0)
            step = xp.where(ok, rz / xp.where(ok, pkp, 1.0), 0.0)
            delta = delta + step[:, None] * p
            res = res - step[:, None] * kp
            rn = xp.sum(xp.abs(res), axis=1)
            better = rn < best_res
            best = xp.where(better[:, None], delta, best)
            best_res = xp.where(better, rn, best_res)
            if bool(xp.all((best_res <= xp.maximum(0.05 * eps * tol, 1e-14 * rhs_norm)) | ~ok)):
                break
            z = minv * res
            rz_new = xp.sum(res * z, axis=1)
            p = z + xp.where(ok, rz_new / xp.where(rz > 0, rz, 1.0), 0.0)[:, None] * p
            rz = rz_new
        return best

    g = cols(f, g)
    r, ct = rows(f, g)
    err = xp.sum(xp.abs(r - a), axis=1)
    steps = 0
    for _ in range(max_steps):
        live = err > tol
        if not bool(xp.any(live)):
            break
        alpha, beta = la + f / eps, lb + g / eps
        minv = xp.where(r > 0, 1.0 / xp.where(r > 0, r, 1.0), 0.0)

        def kmul(v, alpha=alpha, beta=beta, r=r):
            return r * v - _plan_apply(xp, ops, prov, alpha, beta,
                                       binv * _plan_apply(xp, ops, prov, alpha, beta, v, 0), 1)

        rhs = eps * (a - r)
        delta = dense_solve(alpha, beta, r, rhs) if prov.n * prov.m <= _DENSE_NEWTON else None
        if delta is None or not bool(xp.all(xp.isfinite(delta))):
            delta = cg_solve(kmul, minv, rhs, live)
        # trust region: no potential moves by more than 4 eps in one step (the plan by e^4)
        size = xp.max(xp.abs(delta), axis=1)
        t = xp.where(live, xp.minimum(1.0, 4.0 * eps / xp.where(size > 0, size, 1.0)), 0.0)
        accepted = ~live
        obj = semi_dual(f, g)
        slack = 64 * 2.0**-52 * (xp.sum(a * xp.abs(f), axis=1) + xp.sum(b * xp.abs(g), axis=1))
        for _h in range(30):
            f_t = f + t[:, None] * delta
            g_t = cols(f_t, g)
            r_t, ct_t = rows(f_t, g_t)
            err_t = xp.sum(xp.abs(r_t - a), axis=1)
            obj_t = semi_dual(f_t, g_t)
            # progress: the marginal error falls (the semi-dual not lower), or the concave
            # semi-dual rises (far from the optimum, e.g. mass that must cross between blocks
            # of a nearly block-diagonal plan, the error moves only at the last steps)
            good = xp.isfinite(err_t) & xp.isfinite(obj_t) & ~accepted & (
                ((err_t <= (1.0 - 0.25 * t) * err) & (obj_t >= obj - slack))
                | (obj_t > obj + slack))
            f = xp.where(good[:, None], f_t, f)
            g = xp.where(good[:, None], g_t, g)
            r = xp.where(good[:, None], r_t, r)
            ct = xp.where(good[:, None], ct_t, ct)
            err = xp.where(good, err_t, err)
            accepted = accepted | good
            if bool(xp.all(accepted)):
                break
            t = xp.where(accepted, t, 0.5 * t)
        steps += 1
        if not bool(xp.any(accepted & live)):
            break                                       # no progress: back to Sinkhorn
    # zero-weight rows: the c-transform (they do not enter g)
    f = xp.where(la > -xp.inf, f, ct)
    return f, g, steps


def _solve(xp, prov, la, lb, eps, *, tol, max_iter, scaling, scale0, transport_cost=True):
    """Alternating log-domain Sinkhorn on a batch; potentials f (B×n), g (B×m)."""
    ops = _Ops(xp)
    bsz = la.shape[0]
    f = xp.zeros((bsz, prov.n), dtype=la.dtype)
    g = xp.zeros((bsz, prov.m), dtype=la.dtype)
    stages = []
    if scaling is not None and scale0 > eps:
        e = scale0
        while e > eps:
            stages.append(e)
            e *= scaling
    it = 0
    a = xp.exp(la)
    err = xp.full((bsz,), xp.inf, dtype=la.dtype)
    for e in stages:                                    # one iteration per ε-stage
        prov.set_eps(e)
        lse, _ = _lse(xp, ops, prov, xp.zeros_like(f), lb + g / e, 1, f / e)
        f = -e * lse
        lse, _ = _lse(xp, ops, prov, la + f / e, xp.zeros_like(g), 0, g / e)
        g = -e * lse
        it += 1
    prov.set_eps(eps)
    history, newton_phases = [], _NEWTON_PHASES
    while True:
        lse, s = _lse(xp, ops, prov, xp.zeros_like(f), lb + g / eps, 1, f / eps)
        if it > len(stages):                            # state (f, g) has exact columns
            err = xp.sum(xp.abs(a * s - a), axis=1)
            if bool(xp.all(err <= tol)) or it >= max_iter + len(stages):
                break
            history.append(float(xp.max(err)))
            if (newton_phases and len(history) > _STALL_WINDOW and history[-1] < _NEWTON_FROM
                    and history[-1] > 0.5 * history[-1 - _STALL_WINDOW]):
                # Sinkhorn stalls (a nearly flat direction of the dual): Newton steps instead
                newton_phases -= 1
                history = []
                f, g, steps = _newton(xp, ops, prov, la, lb, f, g, eps, tol=tol,
                                      max_steps=min(_NEWTON_STEPS,
                                                    max_iter + len(stages) - it))
                it += steps
                continue
        f_new = -eps * lse
        lse, _ = _lse(xp, ops, prov, la + f_new / eps, xp.zeros_like(g), 0, g / eps)
        f, g = f_new, -eps * lse
        it += 1
    # zero-weight points carry the c-transform potential (finite); no NaN from 0·inf
    value = xp.sum(xp.where(la > -xp.inf, a * f, 0.0), axis=1) + \
        xp.sum(xp.where(lb > -xp.inf, xp.exp(lb) * g, 0.0), axis=1)
    tc = None
    if transport_cost:
        tc = xp.zeros((bsz,), dtype=la.dtype)
        fill = prov.bind(la + f / eps, lb + g / eps)
        for r0, r1, c0, c1 in _tiles(prov.n, prov.m, bsz):
            t = ops.exp_(fill(ops, r0, r1, c0, c1, xp.empty((bsz, r1 - r0, c1 - c0),
                                                            dtype=la.dtype)))
            tc += xp.sum(xp.sum(t * prov.cost_tile(r0, r1, c0, c1), axis=2), axis=1)
    return f, g, value, tc, err, it


def _solve_symmetric(xp, prov, la, eps, *, tol, max_iter, scaling, scale0, transport_cost=True):
    """Symmetric problem OT_eps(a, a) (cost symmetric): averaged updates f <- (f + T f)/2.

    The alternating iteration oscillates on self-transport problems (a near-identity plan
    makes it stall for 10^5 iterations at eps = 0.1); the averaged fixed point iteration of
    Feydy et al. (2019, sec. 3.1) converges fast. The plan is
    :math:`a_i a_j e^{(f_i + f_j - C_{ij})/\varepsilon}`; its row sums come with each update.
    """
    ops = _Ops(xp)
    bsz = la.shape[0]
    f = xp.zeros((bsz, prov.n), dtype=la.dtype)
    zero = xp.zeros_like(f)
    a = xp.exp(la)
    it = 0
    if scaling is not None and scale0 > eps:
        e = scale0
        while e > eps:
            prov.set_eps(e)
            lse, _ = _lse(xp, ops, prov, zero, la + f / e, 1, f / e)
            f = 0.5 * (f - e * lse)
            it += 1
            e *= scaling
    prov.set_eps(eps)
    stages = it
    while True:
        lse, s = _lse(xp, ops, prov, zero, la + f / eps, 1, f / eps)
        err = xp.sum(xp.abs(a * s - a), axis=1)
        if bool(xp.all(err <= tol)) or it >= max_iter + stages:
            break
        f = 0.5 * (f - eps * lse)
        it += 1
    af = xp.where(la > -xp.inf, a * f, 0.0)
    value = 2.0 * xp.sum(af, axis=1) - eps * (xp.sum(a * s, axis=1) - 1.0)
    tc = None
    if transport_cost:
        tc = xp.zeros((bsz,), dtype=la.dtype)
        alpha = la + f / eps
        fill = prov.bind(alpha, alpha)
        for r0, r1, c0, c1 in _tiles(prov.n, prov.m, bsz):
            t = ops.exp_(fill(ops, r0, r1, c0, c1, xp.empty((bsz, r1 - r0, c1 - c0),
                                                            dtype=la.dtype)))
            tc += xp.sum(xp.sum(t * prov.cost_tile(r0, r1, c0, c1), axis=2), axis=1)
    return f, f, value, tc, err, it


def _position_grads(xp, prov, la, lb, f, g, eps, symmetric=False):
    """:math:`\\partial\\,\\mathrm{OT}/\\partial x_i = \\sum_j \\pi_{ij}\\nabla_x C(x_i, y_j)`, same for y."""
    ops = _Ops(xp)
    bsz = la.shape[0]
    gx = xp.zeros_like(prov.x)
    gy = xp.zeros_like(prov.y)
    fill = prov.bind(la + f / eps, lb + g / eps)
    for r0, r1, c0, c1 in _tiles(prov.n, prov.m, bsz):
        w = ops.exp_(fill(ops, r0, r1, c0, c1,
                          xp.empty((bsz, r1 - r0, c1 - c0), dtype=la.dtype)))  # π on the tile
        if prov.power == 2:
            w = w * 2.0
        else:
            d = prov.cost_tile(r0, r1, c0, c1)
            w = xp.where(d > 0, w / xp.where(d > 0, d, 1.0), 0.0)
        xs, ys = prov.x[:, r0:r1], prov.y[:, c0:c1]
        gx[:, r0:r1] += xp.sum(w, axis=2)[..., None] * xs - xp.matmul(w, ys)
        gy[:, c0:c1] += xp.sum(w, axis=1)[..., None] * ys - xp.matmul(xp.swapaxes(w, 1, 2), xs)
    return gx, gy


# --------------------------------------------------------------------------- validation

def _float(xp, x, name):
    try:
        arr = xp.asarray(x)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"{name} must be an array of numbers: {exc}") from None
    if arr.dtype == xp.bool or not (xp.isdtype(arr.dtype, "real floating")
                                    or xp.isdtype(arr.dtype, "integral")):
        raise TypeError(f"{name} must be a real floating or integer array, got dtype {arr.dtype}")
    return xp.astype(arr, xp.float64)


def _weights(xp, w, name, size, *, atol=1e-6):
    w = _float(xp, w, name)
    if w.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (batch, n), got {tuple(w.shape)}")
    if w.shape[-1] != size:
        raise ValueError(f"{name} has {w.shape[-1]} weights but there are {size} points/bins")
    if not bool(xp.all(xp.isfinite(w))):
        raise ValueError(f"{name} must be finite, found NaN or inf")
    if bool(xp.any(w < 0)):
        raise ValueError(f"{name} must be nonnegative, found a negative weight")
    tot = xp.sum(w, axis=-1, keepdims=True)
    if bool(xp.any(xp.abs(tot - 1.0) > atol)):
        raise ValueError(f"{name} must sum to 1 (within {atol}); found a total of "
                         f"{float(xp.reshape(tot, (-1,))[0])!r}: normalise the weights first")
    w = w / tot                                          # exact renormalisation within atol
    return xp.reshape(w, (-1, size)) if w.ndim == 2 else w[None, :]


def _eps(epsilon):
    try:
        e = float(epsilon)
    except (TypeError, ValueError):
        raise TypeError(f"epsilon must be a positive number, got {epsilon!r}") from None
    if not (math.isfinite(e) and e > 0):
        raise ValueError(f"epsilon must be a finite positive number, got {epsilon!r}")
    return e


def _options(tol, max_iter, scaling):
    tol = float(tol)
    if not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite positive number, got {tol}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if scaling is not None:
        scaling = float(scaling)
        if not 0 < scaling < 1:
            raise ValueError(f"scaling must be None or in (0, 1), got {scaling}")
    return tol, int(max_iter), scaling


def _batch(*ws):
    sizes = {int(w.shape[0]) for w in ws}
    if len(sizes - {1}) > 1:
        raise ValueError(f"batch sizes do not match: {sorted(sizes)}")
    return max(sizes)


def _expand(xp, w, bsz):
    return w if w.shape[0] == bsz else xp.broadcast_to(w, (bsz, w.shape[1]))


def _log(xp, w):
    return xp.where(w > 0, xp.log(xp.where(w > 0, w, 1.0)), -xp.inf)


def _squeeze(xp, x, batched):
    return x if batched else x[0]


# --------------------------------------------------------------------------- public API

def _cost_matrix(xp, cost, n=None, m=None):
    c = _float(xp, cost, "cost")
    if c.ndim not in (2, 3):
        raise ValueError(f"cost must have shape (n, m) or (batch, n, m), got {tuple(c.shape)}")
    if not bool(xp.all(xp.isfinite(c))):
        raise ValueError("cost must be finite, found NaN or inf")
    return c if c.ndim == 3 else c[None]


@operation(backends={"array-api": None})
def sinkhorn(a, b, cost, *, epsilon, tol=1e-9, max_iter=10000, scaling=None, return_plan=False):
    r"""Entropic OT :math:`\mathrm{OT}_\varepsilon(a, b)` for a cost matrix, log-domain, batched.

    .. math::
        \mathrm{OT}_\varepsilon(a, b) = \min_{\pi\in\Pi(a,b)} \langle\pi, C\rangle
        + \varepsilon\,\mathrm{KL}(\pi\,\|\,a\otimes b)

    (KL to the product measure, so :math:`\mathrm{OT}_\varepsilon \ge W` and
    :math:`\mathrm{OT}_\varepsilon(a, b) - W \le \varepsilon\min(H(a), H(b))`; POT's
    entropy :math:`-H(\pi)` differs by the constant :math:`\varepsilon(H(a) + H(b))`).

    Parameters
    ----------
    a : array_like, shape (n,) or (batch, n)
        Source weights: nonnegative, summing to 1 (within 1e-6; then renormalised exactly).
    b : array_like, shape (m,) or (batch, m)
        Target weights, same rules.
    cost : array_like, shape (n, m) or (batch, n, m)
        Finite costs :math:`C_{ij}` (histograms on a shared grid: the grid's cost matrix).
    epsilon : float
        :math:`\varepsilon > 0`, in the units of the cost (stable down to at least
        :math:`10^{-4}\max C`; use ``scaling`` there).
    tol : float
        Stop when :math:`\|\pi\mathbf 1 - a\|_1 \le` ``tol`` (columns exact) for every problem.
    max_iter : int
        Iterations at the target ε (after the ε-scaling stages).
    scaling : float in (0, 1), optional
        ε-scaling ratio: one iteration at each :math:`\max C\cdot q^k > \varepsilon` first.
    return_plan : bool
        Also return the plan :math:`\pi` (batch × n × m).

    Returns
    -------
    SinkhornResult
        Batch-shaped fields (the batch axis is dropped when no input had one).

    Raises
    ------
    ValueError
        Negative, NaN or non-normalised weights, NaN/inf costs, ε ≤ 0, mismatched shapes.

    Examples
    --------
    >>> import numpy as np
    >>> r = sinkhorn([0.5, 0.5], [0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], epsilon=1e-3)
    >>> round(float(r.transport_cost), 9), bool(r.converged)
    (0.0, True)
    """
    xp = namespace(a, b, cost)
    c = _cost_matrix(xp, cost)
    aw = _weights(xp, a, "a", c.shape[-2])
    bw = _weights(xp, b, "b", c.shape[-1])
    eps = _eps(epsilon)
    tol, max_iter, scaling = _options(tol, max_iter, scaling)
    bsz = _batch(aw, bw, c)
    batched = any(getattr(xp.asarray(x), "ndim", 0) > k for x, k in ((a, 1), (b, 1), (cost, 2)))
    aw, bw = _expand(xp, aw, bsz), _expand(xp, bw, bsz)
    prov = _Dense(xp, c)
    la, lb = _log(xp, aw), _log(xp, bw)
    scale0 = float(xp.max(xp.abs(c)))
    symmetric = (c.shape[-1] == c.shape[-2] and bool(xp.all(aw == bw))
                 and bool(xp.all(c == xp.swapaxes(c, -1, -2))))
    solve = _solve_symmetric if symmetric else _solve
    args = (la,) if symmetric else (la, lb)
    f, g, val, tc, err, it = solve(xp, prov, *args, eps, tol=tol, max_iter=max_iter,
                                   scaling=scaling, scale0=scale0)
    plan = None
    if return_plan:
        plan = xp.exp(la[:, :, None] + lb[:, None, :] + (f[:, :, None] + g[:, None, :] - c) / eps)
        plan = _squeeze(xp, plan, batched)
    def sq(v):
        return _squeeze(xp, v, batched)

    return SinkhornResult(value=sq(val), transport_cost=sq(tc), f=sq(f), g=sq(g),
                          marginal_error=sq(err), iterations=it, converged=sq(err <= tol),
                          plan=plan)


def _points(xp, x, name):
    p = _float(xp, x, name)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (n,), (n, d) or (batch, n, d), got "
                         f"{tuple(p.shape)}")
    if not bool(xp.all(xp.isfinite(p))):
        raise ValueError(f"{name} must be finite, found NaN or inf")
    return p if p.ndim == 3 else p[None]


def _prepare_points(xp, a, x, b, y, power):
    px, py = _points(xp, x, "x"), _points(xp, y, "y")
    if px.shape[-1] != py.shape[-1]:
        raise ValueError(f"x and y must have the same dimension, got {px.shape[-1]} and "
                         f"{py.shape[-1]}")
    if power not in (1, 2):
        raise ValueError(f"power must be 1 (|x-y|) or 2 (|x-y|^2), got {power!r}")
    aw = _weights(xp, a, "a", px.shape[-2])
    bw = _weights(xp, b, "b", py.shape[-2])
    bsz = _batch(aw, bw, px, py)
    if px.shape[0] != bsz:
        px = xp.broadcast_to(px, (bsz,) + tuple(px.shape[1:]))
    if py.shape[0] != bsz:
        py = xp.broadcast_to(py, (bsz,) + tuple(py.shape[1:]))
    batched = any(getattr(xp.asarray(v), "ndim", 0) > k for v, k in ((a, 1), (b, 1), (x, 2), (y, 2)))
    return _expand(xp, aw, bsz), px, _expand(xp, bw, bsz), py, batched


def _diameter(xp, x, y, power):
    lo = xp.minimum(xp.min(x, axis=-2), xp.min(y, axis=-2))
    hi = xp.maximum(xp.max(x, axis=-2), xp.max(y, axis=-2))
    d = float(xp.max(xp.sqrt(xp.sum((hi - lo) ** 2, axis=-1))))
    return d ** power


@operation(backends={"array-api": None})
def sinkhorn_points(a, x, b, y, *, epsilon, power=2, tol=1e-9, max_iter=10000, scaling=None,
                    return_grad=False):
    r"""Entropic OT between point clouds with cost :math:`|x - y|^p`, memory linear in n + m.

    Same definition and stopping rule as :func:`sinkhorn`; the cost is recomputed tile by
    tile (:data:`TILE` elements) from the points, so no n×m array is ever held.

    Parameters
    ----------
    a : array_like, shape (n,) or (batch, n)
        Weights of ``x`` (sum to 1).
    x : array_like, shape (n,), (n, d) or (batch, n, d)
        Source points.
    b, y : array_like
        Target weights and points (same dimension d).
    epsilon : float
        :math:`\varepsilon > 0` in cost units (for ``power=2``, squared distance units).
    power : {1, 2}
        Cost :math:`|x-y|` or :math:`|x-y|^2` (no ½; geomloss uses :math:`\tfrac12|x-y|^2`).
    tol, max_iter : as in :func:`sinkhorn`.
    scaling : float in (0, 1), optional
        ε-scaling from :math:`\mathrm{diam}^p` down.
    return_grad : bool
        Also compute ``grad_x``, ``grad_y``: by the envelope theorem
        :math:`\partial_{x_i}\mathrm{OT}_\varepsilon = \sum_j \pi_{ij}\nabla_x C(x_i, y_j)`.

    Returns
    -------
    SinkhornResult

    Examples
    --------
    >>> import numpy as np
    >>> r = sinkhorn_points([0.5, 0.5], [0.0, 1.0], [1.0], [3.0], epsilon=0.1)
    >>> round(float(r.value), 9)  # (3-0)²/2 + (3-1)²/2, the plan is forced
    6.5
    """
    xp = namespace(a, x, b, y)
    eps = _eps(epsilon)
    tol, max_iter, scaling = _options(tol, max_iter, scaling)
    aw, px, bw, py, batched = _prepare_points(xp, a, x, b, y, power)
    prov = _Points(xp, px, py, power)
    la, lb = _log(xp, aw), _log(xp, bw)
    symmetric = px.shape == py.shape and bool(xp.all(aw == bw)) and bool(xp.all(px == py))
    solve = _solve_symmetric if symmetric else _solve
    args = (la,) if symmetric else (la, lb)
    f, g, val, tc, err, it = solve(xp, prov, *args, eps, tol=tol, max_iter=max_iter,
                                   scaling=scaling, scale0=_diameter(xp, px, py, power))
    gx = gy = None
    if return_grad:
        gx, gy = _position_grads(xp, prov, la, lb, f, g, eps)
        gx, gy = _squeeze(xp, gx, batched), _squeeze(xp, gy, batched)
    def sq(v):
        return _squeeze(xp, v, batched)

    return SinkhornResult(value=sq(val), transport_cost=sq(tc), f=sq(f), g=sq(g),
                          marginal_error=sq(err), iterations=it, converged=sq(err <= tol),
                          grad_x=gx, grad_y=gy)


# --------------------------------------------------------------------------- the divergence

def _host(v, dtype=np.float64):
    """A numpy copy of a (small) array of any namespace (cupy through ``.get()``)."""
    get = getattr(v, "get", None)
    return np.asarray(get() if get is not None else v, dtype=dtype)


def _canonical(w, pts):
    """The measure Σ w_i δ_{x_i} in one canonical form: zero weights dropped, points sorted,
    repeated points merged (their weights summed in a fixed order)."""
    keep = w > 0
    w, pts = w[keep], pts[keep]
    if w.size == 0:
        return w, pts
    order = np.lexsort((w,) + tuple(pts[:, k] for k in range(pts.shape[1] - 1, -1, -1)))
    w, pts = w[order], pts[order]
    new = np.ones(len(w), dtype=bool)
    new[1:] = np.any(pts[1:] != pts[:-1], axis=1)
    starts = np.flatnonzero(new)
    return np.add.reduceat(w, starts), pts[starts]


def _same_measure(wa, xa, wb, xb):
    """Whether Σ wa_i δ_{xa_i} and Σ wb_j δ_{xb_j} are the same measure (exact comparison
    of the canonical forms, weights as given before renormalisation)."""
    ca, pa = _canonical(wa, xa)
    cb, pb = _canonical(wb, xb)
    return (ca.shape == cb.shape and pa.shape == pb.shape and bool(np.array_equal(ca, cb))
            and bool(np.array_equal(pa, pb)))


def _raw_points(xp, x):
    return _host(_points(xp, x, "points"))


def _finish(name, xp, ab, aa, bb, equal, tol, batched):
    r"""The debiased value from the three solves: exactly 0 on equal measures, never below 0.

    :math:`S_\varepsilon \ge 0` is a theorem (Feydy et al. 2019, thm. 1), so clamping a value
    that rounding or the stopping rule left slightly negative can only bring it closer to
    the exact one. A problem that did not meet ``tol`` is reported by a ``RuntimeWarning``
    naming the marginal errors, never dropped.
    """
    unconverged = np.zeros(equal.shape, dtype=bool)
    errs = []
    for r in (ab, aa, bb):
        unconverged |= ~_host(r.converged, bool).reshape(-1)
        errs.append(float(np.max(_host(r.marginal_error))))
    unconverged &= ~equal
    if bool(unconverged.any()):
        warnings.warn(
            f"{name}: {int(unconverged.sum())} problem(s) did not reach tol={tol:g} within "
            f"max_iter (largest marginal errors of OT(a, b), OT(a, a), OT(b, b): {errs[0]:.2e}, "
            f"{errs[1]:.2e}, {errs[2]:.2e}); the value may be inaccurate: raise max_iter or "
            "epsilon, or pass scaling", RuntimeWarning, stacklevel=3)
    val = ab.value - 0.5 * aa.value - 0.5 * bb.value
    eq = xp.asarray(equal if batched else equal[0])
    return xp.where(eq, xp.zeros_like(val), xp.maximum(val, xp.zeros_like(val))), eq


@operation(backends={"array-api": None})
def sinkhorn_divergence(a, b, cost, *, epsilon, tol=1e-9, max_iter=10000, scaling=None,
                        return_grad=False):
    r"""Debiased Sinkhorn divergence between histograms on a shared grid.

    .. math::
        S_\varepsilon(a, b) = \mathrm{OT}_\varepsilon(a, b) - \tfrac12\mathrm{OT}_\varepsilon(a, a)
        - \tfrac12\mathrm{OT}_\varepsilon(b, b),

    entropic terms included (Feydy et al. 2019, eq. 4); :math:`S_\varepsilon(a, a) = 0`,
    :math:`S_\varepsilon \ge 0` for costs :math:`|x-y|^p`, p ∈ {1, 2} (positive kernels
    :math:`e^{-C/\varepsilon}`), and :math:`S_\varepsilon \to W` as :math:`\varepsilon\to 0`.
    Both properties hold for the returned value: a problem of the batch with ``a == b`` gives
    exactly 0, and a value that rounding or the stopping rule leaves below 0 is returned as
    0 (the exact value is ≥ 0, so this only reduces the error). A solve that does not meet
    ``tol`` within ``max_iter`` raises a ``RuntimeWarning``.

    Parameters
    ----------
    a, b : array_like, shape (n,) or (batch, n)
        Histograms on the same grid (each sums to 1).
    cost : array_like, shape (n, n)
        The grid's cost matrix (shared by the three problems).
    epsilon, tol, max_iter, scaling : as in :func:`sinkhorn`.
    return_grad : bool
        Also return :math:`(\nabla_a S, \nabla_b S) = (f_{ab} - f_{aa},\ g_{ab} - f_{bb})`
        (envelope theorem; gradients on the simplex, defined up to an additive constant;
        zero where ``a == b``).

    Returns
    -------
    value : array, batch shape
    (grad_a, grad_b) : arrays, optional

    Examples
    --------
    >>> import numpy as np
    >>> grid = np.linspace(0, 1, 5); C = (grid[:, None] - grid[None, :]) ** 2
    >>> h = np.full(5, 0.2)
    >>> float(sinkhorn_divergence(h, h, C, epsilon=0.01))
    0.0
    """
    xp = namespace(a, b, cost)
    c = _cost_matrix(xp, cost)
    if c.shape[-1] != c.shape[-2]:
        raise ValueError(f"cost must be square for histograms on a shared grid, got "
                         f"{tuple(c.shape[-2:])}")
    ab = sinkhorn(a, b, cost, epsilon=epsilon, tol=tol, max_iter=max_iter, scaling=scaling)
    aa = sinkhorn(a, a, cost, epsilon=epsilon, tol=tol, max_iter=max_iter, scaling=scaling)
    bb = sinkhorn(b, b, cost, epsilon=epsilon, tol=tol, max_iter=max_iter, scaling=scaling)
    n = c.shape[-1]
    wa, wb = _host(_float(xp, a, "a")).reshape(-1, n), _host(_float(xp, b, "b")).reshape(-1, n)
    bsz = max(wa.shape[0], wb.shape[0], c.shape[0])
    wa, wb = np.broadcast_to(wa, (bsz, n)), np.broadcast_to(wb, (bsz, n))
    equal = np.all(wa == wb, axis=1)                       # same grid: same weights, same measure
    batched = getattr(xp.asarray(ab.value), "ndim", 0) > 0
    val, eq = _finish("sinkhorn_divergence", xp, ab, aa, bb, equal, tol, batched)
    if not return_grad:
        return val
    eqc = eq[..., None]
    ga = ab.f - 0.5 * (aa.f + aa.g)
    gb = ab.g - 0.5 * (bb.f + bb.g)
    return val, (xp.where(eqc, xp.zeros_like(ga), ga), xp.where(eqc, xp.zeros_like(gb), gb))


@operation(backends={"array-api": None})
def sinkhorn_divergence_points(a, x, b, y, *, epsilon, power=2, tol=1e-9, max_iter=10000,
                               scaling=None, return_grad=False):
    r"""Debiased Sinkhorn divergence :math:`S_\varepsilon` between point clouds.

    Definition and guarantees as in :func:`sinkhorn_divergence` (exactly 0 on equal
    measures — the same points in any order, repeated points merged, zero weights ignored —
    never below 0, a ``RuntimeWarning`` when a solve misses ``tol``), cost
    :math:`|x - y|^p` computed online (memory linear in n + m). For ``power=2`` and
    :math:`y_i = x_i + v` with the same weights, :math:`S_\varepsilon = |v|^2` for every ε
    (the cross term is the self term plus :math:`|v|^2`: the cost changes by
    :math:`|v|^2 - 2\langle x_i - x_j, v\rangle`, whose second part is the same for every
    coupling).

    Parameters
    ----------
    a, x, b, y, epsilon, power, tol, max_iter, scaling : as in :func:`sinkhorn_points`.
    return_grad : bool
        Also return ``(grad_a, grad_x, grad_b, grad_y)``:
        :math:`\nabla_a S = f_{ab} - f_{aa}`,
        :math:`\nabla_{x_i} S = \sum_j \pi^{ab}_{ij}\nabla_x C(x_i, y_j)
        - \sum_j \pi^{aa}_{ij}\nabla_x C(x_i, x_j)` (envelope theorem), same for b, y;
        zero on equal measures (S has its minimum there).

    Returns
    -------
    value : array, batch shape
    grads : tuple of arrays, optional

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); x = rng.normal(size=(50, 2)); w = np.full(50, 0.02)
    >>> s = sinkhorn_divergence_points(w, x, w, x + [3.0, 0.0], epsilon=0.01)
    >>> round(float(s), 9)   # a translation by v: |v|² = 9 for every ε
    9.0
    >>> float(sinkhorn_divergence_points(w, x, w, x[::-1], epsilon=0.01))   # same measure
    0.0
    """
    kw = dict(epsilon=epsilon, power=power, tol=tol, max_iter=max_iter, scaling=scaling,
              return_grad=return_grad)
    ab = sinkhorn_points(a, x, b, y, **kw)
    aa = sinkhorn_points(a, x, a, x, **kw)
    bb = sinkhorn_points(b, y, b, y, **kw)
    xp = namespace(a, x, b, y)
    px, py = _raw_points(xp, x), _raw_points(xp, y)
    n, m = px.shape[-2], py.shape[-2]
    wa, wb = _host(_float(xp, a, "a")).reshape(-1, n), _host(_float(xp, b, "b")).reshape(-1, m)
    bsz = max(wa.shape[0], wb.shape[0], px.shape[0], py.shape[0])
    wa, wb = np.broadcast_to(wa, (bsz, n)), np.broadcast_to(wb, (bsz, m))
    px = np.broadcast_to(px, (bsz,) + px.shape[1:])
    py = np.broadcast_to(py, (bsz,) + py.shape[1:])
    equal = np.array([_same_measure(wa[k], px[k], wb[k], py[k]) for k in range(bsz)])
    batched = getattr(xp.asarray(ab.value), "ndim", 0) > 0
    val, eq = _finish("sinkhorn_divergence_points", xp, ab, aa, bb, equal, tol, batched)
    if not return_grad:
        return val
    eqc, eqp = eq[..., None], eq[..., None, None]
    ga = ab.f - 0.5 * (aa.f + aa.g)
    gb = ab.g - 0.5 * (bb.f + bb.g)
    gx = ab.grad_x - 0.5 * (aa.grad_x + aa.grad_y)
    gy = ab.grad_y - 0.5 * (bb.grad_x + bb.grad_y)

    def z(v, mask):
        return xp.where(mask, xp.zeros_like(v), v)

    return val, (z(ga, eqc), z(gx, eqp), z(gb, eqc), z(gy, eqp))
