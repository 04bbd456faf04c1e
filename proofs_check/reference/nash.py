r"""The regularised Nash equilibrium of a preference game, to any number of digits.

The reference every Nash-MP and mirror-descent iteration is measured against
(:mod:`proofs_check.nash_rates`, the alignment claims, the tests); the game itself is
:class:`theory.alignment.PreferenceGame` (exact matrix, reference and β).

>>> from theory.alignment import PreferenceGame
>>> g = PreferenceGame([["1/2", 1], [0, "1/2"]], ["1/2", "1/2"], beta=1)
>>> [mpmath.nstr(x, 12) for x in equilibrium(g, dps=30)]  # σ(1/2), 1 − σ(1/2)
['0.622459331202', '0.377540668798']
"""

from __future__ import annotations

import math

import mpmath
import sympy

__all__ = ["equilibrium"]


def equilibrium(game, *, dps: int = 50, max_iter: int = 200) -> list:
    r"""The equilibrium :math:`\pi^*` of ``game`` as mpmath numbers, ``dps`` digits.

    Unknowns :math:`s = \log\pi` and a normaliser c:
    :math:`F(s, c) = \big(s_i - \log\pi_{ref,i} - (\mathbf P e^{s})_i/\beta - c\big)_i`,
    :math:`\sum_i e^{s_i} - 1`. First damped Newton in double precision (pure Python,
    LU with partial pivoting) from :math:`s = \log\pi_{ref}` until the residual is below
    1e-12; then chord iterations at ``dps + 15`` digits with that Jacobian's LU factors
    (each step :math:`O(n^2)` multiprecision operations, the error shrinks by about the
    float accuracy of the Jacobian per step) until the residual is below
    :math:`10^{-(dps+5)}`. :meth:`theory.alignment.PreferenceGame.fixed_point_residual`
    states the equation symbolically.

    Raises
    ------
    ArithmeticError
        If either phase does not converge in ``max_iter`` steps (not expected: the
        regularised game is strongly monotone).
    """
    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 15:
        raise ValueError(f"dps must be an int ≥ 15, got {dps!r}")
    n = game.n
    Pf = [[float(game.preference[i, j]) for j in range(n)] for i in range(n)]
    lrf = [math.log(float(x)) for x in game.ref]
    bf = float(game.beta)

    def resid_f(s, c):
        pi = [math.exp(x) for x in s]
        F = [s[i] - lrf[i] - math.fsum(Pf[i][j] * pi[j] for j in range(n)) / bf - c
             for i in range(n)]
        F.append(math.fsum(pi) - 1.0)
        return F, pi

    def jac(pi):
        J = [[(1.0 if i == j else 0.0) - Pf[i][j] * pi[j] / bf for j in range(n)] + [-1.0]
             for i in range(n)]
        J.append(list(pi) + [0.0])
        return J

    s = list(lrf)
    c = -sum(sum(Pf[i][j] * math.exp(lrf[j]) for j in range(n)) for i in range(n)) / (n * bf)
    F, pi = resid_f(s, c)
    norm = max(abs(x) for x in F)
    for _ in range(max_iter):
        if norm < 1e-12:
            break
        lu = _lu_factor(jac(pi))
        step = _lu_solve(lu, F)
        lam = 1.0
        while True:
            s_new = [s[i] - lam * step[i] for i in range(n)]
            c_new = c - lam * step[n]
            if max(s_new) < 700:
                F_new, pi_new = resid_f(s_new, c_new)
                norm_new = max(abs(x) for x in F_new)
                if norm_new < norm or lam < 2.0**-30:
                    break
            lam /= 2
        s, c, F, pi, norm = s_new, c_new, F_new, pi_new, norm_new
    else:  # pragma: no cover - not expected for a strongly monotone game
        raise ArithmeticError(f"Newton (double precision) did not converge in {max_iter} "
                              f"steps (residual {norm:.3g})")
    lu = _lu_factor(jac(pi))
    with mpmath.workdps(dps + 15):
        P = [[mpmath.mpf(sympy.N(game.preference[i, j], dps + 20)) for j in range(n)]
             for i in range(n)]
        lr = [mpmath.log(mpmath.mpf(sympy.N(x, dps + 20))) for x in game.ref]
        b = mpmath.mpf(sympy.N(game.beta, dps + 20))
        lu_mp = ([[mpmath.mpf(x) for x in row] for row in lu[0]], lu[1])
        sm = [mpmath.mpf(x) for x in s]
        cm = mpmath.mpf(c)
        tol = mpmath.mpf(10) ** (-(dps + 5))
        for _ in range(max_iter):
            pim = [mpmath.exp(x) for x in sm]
            Fm = [sm[i] - lr[i] - mpmath.fdot(P[i], pim) / b - cm for i in range(n)]
            Fm.append(mpmath.fsum(pim) - 1)
            if max(abs(x) for x in Fm) < tol:
                break
            step = _lu_solve(lu_mp, Fm)
            sm = [sm[i] - step[i] for i in range(n)]
            cm = cm - step[n]
        else:  # pragma: no cover
            raise ArithmeticError(f"chord iterations at {dps + 15} digits did not converge in "
                                  f"{max_iter} steps")
    with mpmath.workdps(dps):
        return [+x for x in pim]


def _lu_factor(A: list[list]) -> tuple[list[list], list[int]]:
    """LU with partial pivoting of a square list-of-lists (floats), in a copy."""
    m = len(A)
    a = [list(row) for row in A]
    perm = list(range(m))
    for k in range(m):
        piv = max(range(k, m), key=lambda r: abs(a[r][k]))
        if a[piv][k] == 0:
            raise ArithmeticError("singular Jacobian")
        if piv != k:
            a[k], a[piv] = a[piv], a[k]
            perm[k], perm[piv] = perm[piv], perm[k]
        pivot_row = a[k]
        inv = 1.0 / pivot_row[k]
        for r in range(k + 1, m):
            row = a[r]
            f = row[k] * inv
            if f != 0.0:
                row[k] = f
                for j in range(k + 1, m):
                    row[j] -= f * pivot_row[j]
            else:
                row[k] = 0.0
    return a, perm


def _lu_solve(lu: tuple[list[list], list[int]], b: list) -> list:
    """Solve with the factors of :func:`_lu_factor`; works for floats and mpmath numbers."""
    a, perm = lu
    m = len(a)
    y = [b[perm[i]] for i in range(m)]
    for i in range(m):
        row = a[i]
        y[i] = y[i] - sum(row[j] * y[j] for j in range(i)) if i else y[i]
    x = [0] * m
    for i in range(m - 1, -1, -1):
        row = a[i]
        x[i] = (y[i] - sum(row[j] * x[j] for j in range(i + 1, m))) / row[i]
    return x
