r"""PyTorch interop: DLPack views to cupy and a fused divergence loss with autograd.

``import numeric`` never imports this module, and this module imports torch only when one of
its functions is called (a clear ``ImportError`` if torch is missing).
CUDA tensors are handed to the cupy route of :func:`numeric.divergence_from_logits` through
DLPack (no copy), on torch's current CUDA stream; CPU tensors go to the numpy route. The
loss and the gradient are computed in one fused launch during the forward pass, and the
backward pass only scales the stored gradient by the incoming one (as Liger-Kernel's fused
losses do).

>>> loss = divkit_loss(student_logits, teacher_logits, f="js")   # doctest: +SKIP
>>> loss.backward()                                              # doctest: +SKIP
"""

from __future__ import annotations

import functools

import numeric
from numeric import _backend

__all__ = ["divkit_loss", "to_cupy", "from_cupy"]


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError("numeric.torch needs PyTorch (pip install torch); the rest of numeric "
                          "works without it") from exc
    return torch


def to_cupy(tensor):
    """A cupy array sharing ``tensor``'s device memory (DLPack, no copy); CUDA tensors only."""
    if not tensor.is_cuda:
        raise ValueError(f"to_cupy: expected a CUDA tensor, got one on {tensor.device}")
    cp = _backend.require_cupy()
    return cp.from_dlpack(tensor.detach())


def from_cupy(array):
    """A torch tensor sharing ``array``'s device memory (DLPack, no copy)."""
    return _torch().from_dlpack(array)


@functools.cache
def _cupy_has_bfloat16() -> bool:
    """Whether this cupy takes bfloat16 through DLPack and converts it both ways (probed once
    on a 2-element tensor)."""
    torch = _torch()
    try:
        x = to_cupy(torch.zeros(2, dtype=torch.bfloat16, device="cuda"))
        back = x.astype("float32").astype(x.dtype)
        return from_cupy(back).dtype == torch.bfloat16
    except Exception:  # noqa: BLE001 - any failure means "not supported here"
        return False


def _device_input(x, torch):
    """``x`` as a cupy view; bfloat16 only if this cupy has the dtype, else upcast here."""
    if x.dtype == torch.bfloat16 and not _cupy_has_bfloat16():
        return to_cupy(x.float())  # cupy without bfloat16: one rows x V float32 copy
    return to_cupy(x)


def _compute(f, student, teacher, *, temperature, mask, reduction, teacher_grad):
    """(loss, grad_student, grad_teacher or None) as torch tensors on the inputs' device."""
    torch = _torch()
    dtype = student.dtype
    s, t = student.detach(), teacher.detach()
    if s.is_cuda:
        cp = _backend.require_cupy()
        # launch on torch's current stream, so the kernel is ordered with the training step;
        # float16 (and bfloat16 where cupy has it) go in as they are: the cupy route converts
        # them to float32 chunk by chunk
        with cp.cuda.Device(s.device.index), \
                cp.cuda.ExternalStream(torch.cuda.current_stream(s.device).cuda_stream):
            m = to_cupy(mask) if mask is not None else None
            out = numeric.divergence_from_logits(f, _device_input(t, torch),
                                                 _device_input(s, torch),
                                                 temperature=temperature, mask=m,
                                                 reduction=reduction, return_grad=True,
                                                 teacher_grad=bool(teacher_grad))
        back = [from_cupy(x) for x in out]
    else:
        m = mask.cpu().numpy() if mask is not None else None
        host = [(x.float() if x.dtype == torch.bfloat16 else x).cpu().numpy() for x in (t, s)]
        out = numeric.divergence_from_logits(f, *host, temperature=temperature, mask=m,
                                             reduction=reduction, return_grad=True,
                                             teacher_grad=bool(teacher_grad))
        back = [torch.from_numpy(x).to(student.device) for x in out]
    loss, gs = back[0], back[1].to(dtype)
    gt = back[2].to(teacher.dtype) if teacher_grad else None
    return loss.to(dtype), gs, gt


@functools.cache
def _fused():
    """The autograd Function (built on first use, so that torch is imported only then)."""
    torch = _torch()

    class FusedDivergence(torch.autograd.Function):
        @staticmethod
        def forward(ctx, student, teacher, f, temperature, mask, reduction):
            loss, gs, gt = _compute(f, student, teacher, temperature=temperature, mask=mask,
                                    reduction=reduction, teacher_grad=teacher.requires_grad)
            ctx.reduction = reduction
            ctx.has_teacher = gt is not None
            ctx.save_for_backward(gs, gt if gt is not None else torch.empty(0))
            return loss

        @staticmethod
        def backward(ctx, grad_loss):
            gs, gt = ctx.saved_tensors
            # the stored gradients are those of the reduced loss (of the sum of the rows for
            # "none"): scale them by the incoming gradient, per row for "none"
            scale = grad_loss.unsqueeze(-1) if ctx.reduction == "none" else grad_loss
            grad_s = gs.mul_(scale.to(gs.dtype))
            grad_t = gt.mul_(scale.to(gt.dtype)) if ctx.has_teacher else None
            return grad_s, grad_t, None, None, None, None

    return FusedDivergence


def divkit_loss(student_logits, teacher_logits, *, f="kl", temperature=1.0, mask=None,
                reduction="batchmean"):
    r"""Fused :math:`D_f(P\|Q)`, :math:`P = \mathrm{softmax}(\text{teacher}/T)`,
    :math:`Q = \mathrm{softmax}(\text{student}/T)`, over the last axis, with autograd.

    The student comes first (torch's ``(input, target)`` order), but P — the first argument
    of :math:`D_f` — is the teacher, as everywhere in divkit: ``f="kl"`` is KL(teacher ‖
    student), the forward KL of distillation papers.

    Parameters
    ----------
    student_logits : torch.Tensor
        Logits of Q, shape ``(..., V)``; CUDA (cupy route, DLPack, no copy) or CPU (numpy).
    teacher_logits : torch.Tensor
        Logits of P, same shape. It gets a gradient only if it requires one (online
        distillation); otherwise only the student's is computed.
    f : str or theory.fdiv.FDivergence
    temperature, mask, reduction
        As in :func:`numeric.divergence_from_logits` (``mask`` a bool tensor of the rows).

    Returns
    -------
    torch.Tensor
        The loss, in the student's dtype; ``loss.backward()`` fills ``student_logits.grad``.

    Notes
    -----
    The gradient is computed in the forward pass and kept until backward: one tensor of
    the student's shape (and one of the teacher's if it requires grad). float16/bfloat16
    tensors run the float32 kernel on chunk-sized float32 copies (a cupy without bfloat16
    upcasts bfloat16 tensors whole, one copy each), and the gradient is rounded back to
    their dtype.
    """
    fused = _fused()
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    return fused.apply(student_logits, teacher_logits, f, float(temperature), mask,
                                  reduction)
