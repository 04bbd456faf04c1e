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
from numeric._preference import (
    d2o_loss,
    dphrl_loss,
    fdpg_gradient,
    nash_mirror_prox,
    online_mirror_descent,
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
]
