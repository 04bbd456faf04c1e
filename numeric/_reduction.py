r"""The one ``reduction`` vocabulary of divkit's losses (alignment and distillation).

Every loss is first a vector of per-row values (one per example: a pair for f-DPO, a sample
for DPH-RL, a row of logits for distillation); ``reduction`` then says what is returned:

``"none"``       the per-row values;
``"sum"``        their sum;
``"mean"``       their mean over the (kept) rows (the default everywhere);
``"batchmean"``  their sum divided by the size of the first batch dimension.

A gradient returned with a loss is that of the reduced loss (for ``"none"``: of the sum of
the rows, i.e. each row's own derivative). With no row the reduced loss is 0.
"""

from __future__ import annotations

__all__ = ["REDUCTIONS", "check_reduction", "reduction_scale", "check_return_grad"]

REDUCTIONS = ("none", "sum", "mean", "batchmean")


def check_reduction(reduction) -> str:
    """``reduction`` if it is one of :data:`REDUCTIONS`, else a ``ValueError`` naming it."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_return_grad(return_grad) -> bool:
    """``return_grad`` as a bool (``True``/``False`` only: a ``TypeError`` otherwise)."""
    if not isinstance(return_grad, bool):
        raise TypeError(f"return_grad must be True or False, got {return_grad!r}")
    return return_grad


def reduction_scale(reduction: str, rows: int, batch: int) -> float:
    """The factor applied to the sum of the per-row values (1 for ``"none"`` and ``"sum"``):
    ``rows`` is the number of (kept) rows, ``batch`` the size of the first batch dimension
    (both at least 1 in the divisor)."""
    if reduction == "mean":
        return 1.0 / max(rows, 1)
    if reduction == "batchmean":
        return 1.0 / max(batch, 1)
    return 1.0
