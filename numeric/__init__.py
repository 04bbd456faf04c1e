"""divkit's array layer: kernels generated from theory's expressions.

Public API (arrays in, arrays of the same namespace out; P is always the first argument,
D_f(P‖Q) = Σ q f(p/q)):

- :func:`divergence` — f-divergence between probability vectors along an axis.
- :func:`divergence_from_logits` — fused divergence and gradient(s) from two logit tensors.
- :func:`fdpo_loss` — the f-DPO loss (and gradient) from sequence log-probabilities.
- :func:`policy_from_reward` — the KKT-optimal policy with its per-row normaliser.
- :data:`codegen` — the code generator (sympy → numpy / C / CUDA source).
- :func:`fdpg_gradient`, :func:`dphrl_loss`, :func:`d2o_loss`, :func:`nash_mirror_prox`,
  :func:`online_mirror_descent` — the array side of :mod:`theory.alignment`.
- :func:`sinkhorn`, :func:`sinkhorn_points`, :func:`sinkhorn_divergence`,
  :func:`sinkhorn_divergence_points` — entropic OT and the debiased Sinkhorn divergence.
- :func:`sinkd_loss`, :func:`bdkd_loss`, :func:`pld_loss` — SinKD, BD-KD and PLD losses.
- :func:`cs_divergence_gaussian_mixtures`, :func:`cs_divergence_samples`, :func:`cs_qmi` —
  the Cauchy–Schwarz divergence (closed form, Parzen estimate) and CS-QMI.

``import numeric`` imports neither cupy nor torch.
"""

from numeric import codegen
from numeric._api import (
    PolicyResult,
    divergence,
    divergence_from_logits,
    fdpo_loss,
    policy_from_reward,
)
from numeric._cauchy_schwarz import cs_divergence_gaussian_mixtures, cs_divergence_samples, cs_qmi
from numeric._distill import bdkd_entropy_weights, bdkd_loss, pld_loss, sinkd_loss
from numeric._preference import (
    d2o_loss,
    dphrl_loss,
    fdpg_gradient,
    nash_mirror_prox,
    online_mirror_descent,
)
from numeric._transport import (
    SinkhornResult,
    sinkhorn,
    sinkhorn_divergence,
    sinkhorn_divergence_points,
    sinkhorn_points,
)

__all__ = [
    "divergence",
    "divergence_from_logits",
    "fdpo_loss",
    "policy_from_reward",
    "PolicyResult",
    "codegen",
    "fdpg_gradient",
    "dphrl_loss",
    "d2o_loss",
    "nash_mirror_prox",
    "online_mirror_descent",
    "sinkhorn",
    "sinkhorn_points",
    "sinkhorn_divergence",
    "sinkhorn_divergence_points",
    "SinkhornResult",
    "sinkd_loss",
    "bdkd_loss",
    "bdkd_entropy_weights",
    "pld_loss",
    "cs_divergence_gaussian_mixtures",
    "cs_divergence_samples",
    "cs_qmi",
]
