r"""Hierarchical information-theoretic generalization bounds on a model where everything is exact.

Model (binary Gaussian classification with a linear network and Gaussian noise injection; a
computable instance of the setting of He & Goldfeld (2024)):

* data :math:`Y\in\{\pm1\}` equiprobable, :math:`X = Y\mu + \sigma\xi`, :math:`\xi\sim N(0,I_{d_0})`;
* network :math:`T_0 = X`, :math:`T_l = A_l T_{l-1} + \beta_l\zeta_l` (fresh noise
  :math:`\zeta_l\sim N(0,I_{d_l})` at every forward pass), :math:`l = 1..L`, last width
  :math:`d_L = 1`; the matrices :math:`A_l` are fixed (data independent);
* algorithm: the scalar head :math:`W = \frac1n\sum_j Y_j G X_j + s\,\epsilon`,
  :math:`G = A_L\cdots A_1`, :math:`\epsilon\sim N(0,1)`;
* loss: the 0-1 loss :math:`\ell = \mathbf 1\{Y\,W\,T_L < 0\}\in[0,1]` (so ½-sub-Gaussian).

Writing :math:`a_i = Y_i(X_i - Y_i\mu)\sim N(0,\sigma^2 I)` (independent of :math:`Y_i`),
:math:`Y T_l = G_l\mu + v_l` with :math:`v_l = G_l a + \eta_l`, :math:`G_l = A_l\cdots A_1`,
:math:`\eta_l\sim N(0, N_l)`, :math:`N_l = A_l N_{l-1}A_l^\top + \beta_l^2 I`. Everything is
jointly Gaussian, so the KL divergence between the train law of
:math:`(T_l^{(i)}, Y_i, W)` and the test law :math:`P_{T_l,Y}\otimes P_W` is the mutual
information

.. math::

    \mathrm{KL}_l = I(W; T_l^{(i)}, Y_i) = \tfrac12\log\frac{V_W}{V_W - c_l^\top C_l^{-1}c_l},
    \quad V_W = \tfrac{\sigma^2}{n}GG^\top + s^2,\ c_l = \tfrac{\sigma^2}{n}G_l G^\top,\
    C_l = \sigma^2 G_lG_l^\top + N_l .

Because layer :math:`l+1` is the same channel (fresh noise) under both laws, data
processing makes :math:`\mathrm{KL}_l` non-increasing in l, and the hierarchical bound is
:math:`|\mathrm{gen}| \le \min_l \sqrt{2\cdot\frac14\,\mathrm{KL}_l}` (Bu, Zou & Veeravalli
(2020) individual-sample form, applied at layer l as in He & Goldfeld); the full-sample
Xu–Raginsky bound is :math:`\sqrt{I(W;S)/(2n)}` with :math:`I(W;S) = \frac12\log(V_W/s^2)`.
The gap itself is a
difference of two bivariate-normal orthant probabilities (test: W independent of
:math:`Z' = YT_L`; train: :math:`\mathrm{Cov}(W, Z_i) = c_L`), computed by one-dimensional
mpmath quadrature over the correlation (Drezner's form).

Strong data processing (Dobrushin coefficients):

* Gaussian noise :math:`N(0,\sigma^2)` added to inputs with :math:`|x|\le A`:
  :math:`\eta_{TV} = 1 - 2Q(A/\sigma) = \operatorname{erf}(A/(\sigma\sqrt2))`;
* Dropout of d binary units with drop probability p, and DropConnect of a layer with m·d
  weights: :math:`\eta_{TV} = 1 - p^{d}` and :math:`1 - p^{md}` (Doeblin: the all-zero output
  has probability ≥ p^{#dropped} from every input, and the all-zero and all-one inputs
  attain it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import numpy as np

__all__ = [
    "GaussianLinearNetwork",
    "gaussian_eta_tv",
    "gaussian_pair_tv",
    "dropout_dobrushin",
    "dropconnect_dobrushin",
]


def _at(x, dps: int) -> mpmath.mpf:
    """``x`` rounded to ``dps`` digits (the number keeps that precision outside the context)."""
    with mpmath.workdps(dps):
        return +x


def _positive(name, x):
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {x!r}") from None
    if not v > 0 or not np.isfinite(v):
        raise ValueError(f"{name} must be positive and finite, got {x!r}")
    return v


@dataclass(frozen=True)
class LayerReport:
    """Per-layer values of :meth:`GaussianLinearNetwork.report` (mpmath numbers)."""

    layer: int
    kl: mpmath.mpf
    bound: mpmath.mpf


class GaussianLinearNetwork:
    r"""The exact model of the module docstring.

    Parameters
    ----------
    mu : sequence of float
        Class mean :math:`\mu` (length :math:`d_0`).
    sigma : float
        Data noise standard deviation (> 0).
    layers : sequence of 2-d arrays
        :math:`A_1,\dots,A_L`; shapes must chain and the last has one row.
    beta : float or sequence of float
        Standard deviation of the noise injected after each layer (> 0).
    n : int
        Training-set size (≥ 1).
    s : float
        Standard deviation of the algorithm's noise on the head (> 0).

    Raises
    ------
    ValueError
        Negative or zero variances, n < 1, shapes that do not chain.

    >>> net = GaussianLinearNetwork(mu=[1.0, 0.5], sigma=1.0, layers=[[[1.0, 0.3], [0.2, 1.0]],
    ...                             [[1.0, -0.4]]], beta=0.5, n=4, s=0.3)
    >>> r = net.report()
    >>> bool(r["gap"] <= min(x.bound for x in r["layers"]))
    True
    """

    def __init__(self, *, mu, sigma, layers, beta, n, s):
        self.mu = np.atleast_1d(np.asarray(mu, dtype=float))
        if self.mu.ndim != 1 or not np.all(np.isfinite(self.mu)):
            raise ValueError(f"mu must be a finite vector, got {mu!r}")
        self.sigma = _positive("sigma", sigma)
        self.s = _positive("s", s)
        if isinstance(n, bool) or int(n) != n or n < 1:
            raise ValueError(f"n must be an integer ≥ 1, got {n!r}")
        self.n = int(n)
        mats = [np.atleast_2d(np.asarray(a, dtype=float)) for a in layers]
        if not mats:
            raise ValueError("layers must hold at least one matrix")
        width = self.mu.size
        for i, a in enumerate(mats, start=1):
            if a.ndim != 2 or a.shape[1] != width or not np.all(np.isfinite(a)):
                raise ValueError(f"layer {i} must be a finite matrix with {width} columns, got shape "
                                 f"{a.shape}")  # fmt: skip
            width = a.shape[0]
        if width != 1:
            raise ValueError(f"the last layer must have one row (scalar output), got {width}")
        self.layers = mats
        betas = np.broadcast_to(np.asarray(beta, dtype=float), (len(mats),))
        for b in betas:
            _positive("beta", b)
        self.beta = [float(b) for b in betas]

    # ------------------------------------------------------------ exact pieces (mpmath)
    def _mp(self, a):
        return mpmath.matrix(np.asarray(a).tolist())

    def _chain(self):
        """[(G_l, N_l)] for l = 0..L as mpmath matrices."""
        d0 = self.mu.size
        g = mpmath.eye(d0)
        nl = mpmath.zeros(d0, d0)
        out = [(g, nl)]
        for a_np, b in zip(self.layers, self.beta, strict=True):
            a = self._mp(a_np)
            g = a * g
            nl = a * nl * a.T + mpmath.mpf(b) ** 2 * mpmath.eye(a.rows)
            out.append((g, nl))
        return out

    def kl_per_layer(self, *, dps: int = 30) -> list:
        r""":math:`\mathrm{KL}_l = I(W; T_l^{(i)}, Y_i)` for l = 0..L (nats, mpmath)."""
        with mpmath.workdps(dps + 10):
            chain = self._chain()
            gfull = chain[-1][0]
            s2, n = mpmath.mpf(self.sigma) ** 2, mpmath.mpf(self.n)
            vw = (s2 / n * gfull * gfull.T)[0, 0] + mpmath.mpf(self.s) ** 2
            out = []
            for g, nl in chain:
                c = s2 / n * g * gfull.T
                cl = s2 * g * g.T + nl
                explained = (c.T * mpmath.inverse(cl) * c)[0, 0]
                out.append(mpmath.log(vw / (vw - explained)) / 2)
        return [_at(x, dps) for x in out]

    def _moments(self):
        chain = self._chain()
        gfull, nfull = chain[-1]
        s2, n = mpmath.mpf(self.sigma) ** 2, mpmath.mpf(self.n)
        m = (gfull * self._mp(self.mu.reshape(-1, 1)))[0, 0]
        vw = (s2 / n * gfull * gfull.T)[0, 0] + mpmath.mpf(self.s) ** 2
        vz = (s2 * gfull * gfull.T + nfull)[0, 0]
        cov = (s2 / n * gfull * gfull.T)[0, 0]
        return m, vw, vz, cov

    def gap(self, *, dps: int = 30) -> mpmath.mpf:
        r"""Exact expected generalization gap E[test loss] − E[train loss] (1-d quadrature)."""
        with mpmath.workdps(dps + 10):
            m, vw, vz, cov = self._moments()
            test = _disagree(m, vw, m, vz, mpmath.mpf(0))
            train = _disagree(m, vw, m, vz, cov / mpmath.sqrt(vw * vz))
            out = test - train
        return _at(out, dps)

    def mutual_information(self, *, dps: int = 30) -> mpmath.mpf:
        r"""Full-sample :math:`I(W; S) = \frac12\log(V_W/s^2)` (W given the sample S is
        :math:`N(\cdot, s^2)`), for the Xu–Raginsky bound :math:`\sqrt{I(W;S)/(2n)}`."""
        with mpmath.workdps(dps + 10):
            _m, vw, _vz, _c = self._moments()
            out = mpmath.log(vw / mpmath.mpf(self.s) ** 2) / 2
        return _at(out, dps)

    def report(self, *, dps: int = 30) -> dict:
        """``{"gap", "layers": [LayerReport], "best_bound", "xu_raginsky"}``: the layer bounds
        sqrt(KL_l/2), their minimum, and the full-sample bound sqrt(I(W;S)/(2n))."""
        kls = self.kl_per_layer(dps=dps)
        mi = self.mutual_information(dps=dps)
        with mpmath.workdps(dps):
            layers = [LayerReport(i, k, mpmath.sqrt(k / 2)) for i, k in enumerate(kls)]
            return {"gap": self.gap(dps=dps), "layers": layers,
                    "best_bound": min(x.bound for x in layers),
                    "xu_raginsky": mpmath.sqrt(mi / (2 * self.n))}  # fmt: skip

    # ------------------------------------------------------------ Monte Carlo
    def sample_gap(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` draws of (test loss − loss of training sample 1), independent runs."""
        d0, n = self.mu.size, self.n
        y = rng.choice([-1.0, 1.0], size=(size, n))
        x = y[..., None] * self.mu + self.sigma * rng.standard_normal((size, n, d0))
        g = self.layers[0]
        for a in self.layers[1:]:
            g = a @ g
        w = (y * (x @ g[0])).mean(axis=1) + self.s * rng.standard_normal(size)

        def forward(inp):
            t = inp
            for a, b in zip(self.layers, self.beta, strict=True):
                t = t @ a.T + b * rng.standard_normal(t.shape[:-1] + (a.shape[0],))
            return t[..., 0]

        train = (y[:, 0] * w * forward(x[:, 0, :]) < 0).astype(float)
        y_new = rng.choice([-1.0, 1.0], size=size)
        x_new = y_new[:, None] * self.mu + self.sigma * rng.standard_normal((size, d0))
        test = (y_new * w * forward(x_new) < 0).astype(float)
        return test - train


def _disagree(mw, vw, mz, vz, rho):
    r""":math:`P(WZ < 0)` for a bivariate normal (means, variances, correlation ρ).

    :math:`P(WZ<0) = \Phi(h) + \Phi(k) - 2\Phi_2(h, k; \rho)` with :math:`h = -m_W/s_W`,
    :math:`k = -m_Z/s_Z` and Drezner's integral over the correlation,
    :math:`\Phi_2(h,k;\rho) = \Phi(h)\Phi(k) + \frac1{2\pi}\int_0^\rho
    \frac{\exp(-(h^2 - 2rhk + k^2)/(2(1-r^2)))}{\sqrt{1-r^2}}\,dr`.
    """
    h, k = -mw / mpmath.sqrt(vw), -mz / mpmath.sqrt(vz)
    both = mpmath.ncdf(h) * mpmath.ncdf(k)
    if rho != 0:
        both += mpmath.quad(lambda r: mpmath.exp(-(h**2 - 2 * r * h * k + k**2) / (2 * (1 - r**2)))
                            / mpmath.sqrt(1 - r**2), [0, rho]) / (2 * mpmath.pi)  # fmt: skip
    return mpmath.ncdf(h) + mpmath.ncdf(k) - 2 * both


# ------------------------------------------------------------------ SDPI coefficients
def gaussian_eta_tv(amplitude, sigma, *, dps: int = 50) -> mpmath.mpf:
    r"""Dobrushin coefficient of :math:`x\mapsto N(x,\sigma^2)` on :math:`|x|\le A`:
    :math:`\eta_{TV} = 1 - 2Q(A/\sigma)` (Polyanskiy & Wu (2024), strong data-processing
    chapter), at ``dps`` digits.

    >>> float(gaussian_eta_tv(1, 1))
    0.6826894921370859
    """
    a, s = _positive("amplitude", amplitude), _positive("sigma", sigma)
    with mpmath.workdps(dps + 10):
        q = mpmath.erfc(mpmath.mpf(a) / mpmath.mpf(s) / mpmath.sqrt(2)) / 2
        out = 1 - 2 * q
    return _at(out, dps)


def gaussian_pair_tv(x1, x2, sigma, *, dps: int = 30) -> mpmath.mpf:
    r""":math:`\mathrm{TV}(N(x_1,\sigma^2), N(x_2,\sigma^2))` by quadrature, an independent
    reference for :func:`gaussian_eta_tv`: for :math:`x_1 < x_2` the density difference changes
    sign once, at the midpoint m, so :math:`\mathrm{TV} = \int_m^{x_2 + 16\sigma}
    (\varphi_2 - \varphi_1)` (the tail beyond :math:`16\sigma` is below :math:`10^{-57}`).

    >>> float(gaussian_pair_tv(-1, 1, 1))
    0.6826894921370859
    """
    s = _positive("sigma", sigma)
    with mpmath.workdps(dps + 10):
        a, b, sg = sorted((mpmath.mpf(x1), mpmath.mpf(x2))) + [mpmath.mpf(s)]
        if a == b:
            return mpmath.mpf(0)
        mid = (a + b) / 2
        norm = 1 / (sg * mpmath.sqrt(2 * mpmath.pi))

        def diff(y):
            two_var = 2 * sg**2
            return norm * (mpmath.exp(-((y - b) ** 2) / two_var) - mpmath.exp(-((y - a) ** 2) / two_var))

        out = mpmath.quad(diff, [mid, b, b + 8 * sg, b + 16 * sg], method="gauss-legendre")
    return _at(out, dps)


def _check_p(p):
    p = Fraction(p)
    if not 0 < p < 1:
        raise ValueError(f"drop probability p must be in (0, 1), got {p}")
    return p


def _tv(pa: dict, pb: dict) -> Fraction:
    keys = set(pa) | set(pb)
    return sum((abs(pa.get(k, 0) - pb.get(k, 0)) for k in keys), Fraction(0)) / 2


def dropout_dobrushin(d: int, p) -> Fraction:
    r"""Exact Dobrushin coefficient of Dropout on binary inputs :math:`\{0,1\}^d`.

    Each coordinate is zeroed independently with probability ``p`` (a Fraction or an exact
    string); the maximum TV over all input pairs, by enumeration. Compare :math:`1 - p^d`.

    >>> dropout_dobrushin(3, "1/2")
    Fraction(7, 8)
    """
    if isinstance(d, bool) or int(d) != d or not 1 <= d <= 8:
        raise ValueError(f"d must be an integer in [1, 8] (enumeration), got {d!r}")
    p = _check_p(p)
    laws = []
    for x in itertools.product((0, 1), repeat=d):
        law: dict = {}
        for mask in itertools.product((0, 1), repeat=d):
            prob = Fraction(1)
            for xi, mi in zip(x, mask, strict=True):
                if xi:
                    prob *= (1 - p) if mi else p
                elif mi:
                    prob = Fraction(0)  # a zero input has a single output value
            if prob:
                out = tuple(xi * mi for xi, mi in zip(x, mask, strict=True))
                law[out] = law.get(out, 0) + prob
        laws.append(law)
    return max(_tv(a, b) for a, b in itertools.combinations(laws, 2))


def dropconnect_dobrushin(d: int, m: int, p) -> Fraction:
    r"""Exact Dobrushin coefficient of DropConnect :math:`y_r = \sum_j M_{rj}x_j`, binary inputs.

    ``d`` inputs, ``m`` outputs, unit weights each dropped with probability ``p``: given
    :math:`k = |x|`, the outputs are i.i.d. Binomial(k, 1 − p). Compare :math:`1 - p^{md}`.

    >>> dropconnect_dobrushin(2, 2, "1/2")
    Fraction(15, 16)
    """
    for name, v in (("d", d), ("m", m)):
        if isinstance(v, bool) or int(v) != v or not 1 <= v <= 6:
            raise ValueError(f"{name} must be an integer in [1, 6] (enumeration), got {v!r}")
    p = _check_p(p)
    from math import comb

    def law(k):
        one = {j: Fraction(comb(k, j)) * (1 - p) ** j * p ** (k - j) for j in range(k + 1)}
        out: dict = {}
        for ys in itertools.product(range(k + 1), repeat=m):
            prob = Fraction(1)
            for y in ys:
                prob *= one[y]
            out[ys] = prob
        return out

    laws = [law(k) for k in range(d + 1)]
    return max(_tv(a, b) for a, b in itertools.combinations(laws, 2))
