r"""PyTorch interop: the fused f-divergence loss as a registered torch op, a loss module, and
DLPack views to cupy.

``import numeric`` never imports this module, and ``import numeric.torch`` does not import
torch: torch is imported (and the ops ``torch.ops.divkit.*`` registered) on first use of any
name here; without torch that use raises an ``ImportError`` naming the ``torch`` extra.

What runs where
---------------
- CPU tensors: the kernel reads the tensors' own memory (``tensor.detach().numpy()`` views)
  and its outputs become tensors without a copy (``torch.from_numpy``); float32/float64 go
  through as they are, bfloat16/float16 rows are converted to float32 one block of
  :data:`numeric._torch_ops.BLOCK_ELEMENTS` elements at a time.
- CUDA tensors: cupy views through DLPack (no copy), launched on torch's current stream.
- The op is a ``torch.library.custom_op`` (``divkit::divergence_from_logits``) with a fake
  implementation and an autograd rule, so ``torch.compile(step, fullgraph=True)`` traces a
  training step that calls it. The loss and its gradient come from one fused pass in the
  forward; the backward returns the stored gradient times the incoming one (never writing
  into a saved tensor). ``torch.func.grad`` works; ``torch.vmap`` is refused with a message
  (the op takes any number of batch dimensions already).
- ``process_group=``: logits sharded along the vocabulary over a ``torch.distributed`` group;
  exact loss and gradients from all-reduces of per-row statistics only
  (:mod:`numeric._torch_vocab`).

Direction: P (the first argument of :math:`D_f`) is the teacher, Q the student;
:math:`D_f(P\|Q) = \sum_i q_i f(p_i/q_i)`. The student comes first in the call, torch's
``(input, target)`` order. ``f="kl"`` is KL(teacher ‖ student), the "forward KL" of
distillation papers; ``f="reverse_kl"`` is KL(student ‖ teacher).

Examples
--------
>>> import numeric.torch as nt
>>> sorted(nt.__all__)
['DivergenceLoss', 'divergence_loss', 'divkit_loss', 'from_cupy', 'register', 'to_cupy']
"""

from __future__ import annotations

__all__ = ["divergence_loss", "divkit_loss", "DivergenceLoss", "register", "to_cupy",  # noqa: F822
           "from_cupy"]


def _ops():
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ImportError("numeric.torch needs PyTorch: pip install 'divkit[torch]' (or torch "
                          "itself); the rest of numeric works without it") from exc
    from numeric import _torch_ops

    return _torch_ops


def divergence_loss(student_logits, teacher_logits, f="kl", *, params=None, temperature=1.0,
                    mask=None, labels=None, ignore_index=-100, reduction="mean",
                    process_group=None):
    r"""Fused :math:`D_f(P\|Q)`, :math:`P = \mathrm{softmax}(\text{teacher}/T)`,
    :math:`Q = \mathrm{softmax}(\text{student}/T)` over the last dimension, with autograd.

    Parameters
    ----------
    student_logits : torch.Tensor
        Logits of Q (the second argument of :math:`D_f`), shape ``(..., V)``; float32,
        float64, bfloat16 or float16, CPU or CUDA. Gets a gradient if it requires one.
    teacher_logits : torch.Tensor
        Logits of P (the first argument), same shape and device. Gets a gradient if it
        requires one (online distillation, both models learning). ``-inf`` logits have
        probability 0.
    f : str, theory.fdiv.Family or theory.fdiv.FDivergence
        Catalog name (``theory.fdiv.names()``), family or generator; under
        ``torch.compile`` a catalog name or a key from :func:`register` (or use
        :class:`DivergenceLoss`, which resolves f once when it is built).
    params : dict, optional
        Parameter values at run time (``{"beta": 0.3}`` for ``"js"``, ``{"alpha": 0.5}``),
        floats or 0-d tensors; they override those of an FDivergence. A new value costs no
        new derivation and, passed as a tensor, no new trace of a compiled step.
    temperature : float
        :math:`T > 0`; no :math:`T^2` factor (multiply the loss yourself where a recipe
        wants it). Gradients are with respect to the raw logits.
    mask : torch.Tensor of bool, optional
        Shape of the rows (the inputs without the last dimension); ``False`` drops a row:
        loss and gradient 0, not counted by ``"mean"``.
    labels : torch.Tensor of int, optional
        Shape of the rows; rows whose label is ``ignore_index`` are dropped (as in torch's
        cross entropy; combined with ``mask`` by "and").
    ignore_index : int
        Default -100.
    reduction : {"none", "sum", "mean", "batchmean"}
        ``"none"``: per-row divergences. ``"sum"``: their sum over kept rows. ``"mean"``
        (default): sum / number of kept rows. ``"batchmean"``: sum / size of the first
        dimension (``torch.nn.functional.kl_div``'s convention).
    process_group : torch.distributed.ProcessGroup, optional
        The logits are this rank's slice of the vocabulary (any contiguous split across the
        group's ranks; every rank has the same rows); see :mod:`numeric._torch_vocab`.

    Returns
    -------
    torch.Tensor
        The loss, in the inputs' (promoted) dtype: 0-d, or the rows' shape for ``"none"``.

    Notes
    -----
    With :math:`r = p/q`, :math:`g = f(r) - r f'(r)`, :math:`h = f'(r)`:

    .. math::
        \frac{\partial D}{\partial b_j} = \frac{q_j}{T}\Big(g_j - \sum_i q_i g_i\Big),\qquad
        \frac{\partial D}{\partial a_j} = \frac{p_j}{T}\Big(h_j - \sum_i p_i h_i\Big),

    for student logits :math:`b` and teacher logits :math:`a`; the zero-mass limits of f
    apply where a probability is 0 (KL is ``inf`` where :math:`q_i = 0 < p_i`).
    The gradient is computed with the loss and kept until backward (one tensor of the
    student's shape, one of the teacher's if it requires grad); beyond it the CPU kernel's
    scratch memory is bounded by one chunk of rows, whatever the number of rows (measured at
    V = 32000: 0.02 MiB with the host C row kernel, about 3 MiB with the numpy launcher).
    No second derivatives (``create_graph=True`` is refused).

    Examples
    --------
    >>> import torch
    >>> from numeric.torch import divergence_loss
    >>> s = torch.log(torch.tensor([[0.25, 0.75]], dtype=torch.float64)).requires_grad_()
    >>> t = torch.log(torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    >>> loss = divergence_loss(s, t, "kl")
    >>> import math
    >>> abs(loss.item() - 0.5 * math.log(4 / 3)) < 1e-15      # KL = (1/2) log(4/3)
    True
    >>> loss.backward(); s.grad            # q - p
    tensor([[-0.2500,  0.2500]], dtype=torch.float64)
    """
    return _ops().divergence_loss(student_logits, teacher_logits, f, params=params,
                                  temperature=temperature, mask=mask, labels=labels,
                                  ignore_index=ignore_index, reduction=reduction,
                                  process_group=process_group)


def divkit_loss(student_logits, teacher_logits, *, f="kl", params=None, temperature=1.0,
                mask=None, labels=None, ignore_index=-100, reduction="mean",
                process_group=None):
    """:func:`divergence_loss` with ``f`` keyword-only (the earlier name of the function)."""
    return divergence_loss(student_logits, teacher_logits, f, params=params,
                           temperature=temperature, mask=mask, labels=labels,
                           ignore_index=ignore_index, reduction=reduction,
                           process_group=process_group)


def register(f, params=None) -> str:
    """A string key for ``f`` that :func:`divergence_loss` accepts in place of ``f``, also
    inside ``torch.compile`` (a user :class:`theory.fdiv.FDivergence` resolved once,
    outside the traced code). Valid in this process.

    >>> import numeric.torch as nt
    >>> nt.register("js")
    'js'
    """
    return _ops().register(f, params)[0]


def to_cupy(tensor):
    """A cupy array sharing ``tensor``'s device memory (DLPack, no copy); CUDA tensors only."""
    _ops()
    if not tensor.is_cuda:
        raise ValueError(f"to_cupy: expected a CUDA tensor, got one on {tensor.device}")
    from numeric import _backend

    return _backend.require_cupy().from_dlpack(tensor.detach())


def from_cupy(array):
    """A torch tensor sharing ``array``'s device memory (DLPack, no copy)."""
    _ops()
    import torch

    return torch.from_dlpack(array)


def __getattr__(name):
    if name == "DivergenceLoss":
        return _ops().DivergenceLoss
    raise AttributeError(f"module 'numeric.torch' has no attribute {name!r}")


_DIVERGENCE_LOSS_DOC = r"""Fused f-divergence loss module: :func:`divergence_loss` with f and
its options held, as Liger-Kernel's and TRL's loss modules.

``DivergenceLoss(f="kl", *, params=None, temperature=1.0, reduction="mean",
ignore_index=-100, process_group=None)``; call it as ``loss_fn(student_logits,
teacher_logits, labels=None, *, mask=None)``. ``f`` is resolved (and its family's element
forms derived) once, when the module is built. ``set_params(beta=...)`` changes parameter
values in place: a β schedule neither re-derives nor recompiles a compiled step.
``process_group`` makes it vocabulary-parallel.

Examples
--------
>>> import torch
>>> from numeric.torch import DivergenceLoss
>>> loss_fn = DivergenceLoss("js", params={"beta": 0.5}, temperature=2.0)
>>> loss_fn
DivergenceLoss(f='js', beta=0.5, temperature=2, reduction='mean')
>>> loss_fn.set_params(beta=0.1); loss_fn.params
{'beta': 0.1}
"""
