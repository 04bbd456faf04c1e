r"""The torch side of :mod:`numeric.torch`: registered custom ops, their fake and autograd
rules, the CPU/CUDA launchers and the loss module. Imports torch (``numeric.torch`` imports
this module on first use only).

Three layers, as for numeric's own kernels: the kernel (:func:`numeric.divergence_from_logits`
on numpy views of CPU tensors, or on cupy views of CUDA tensors through DLPack), the launcher
here (layout, dtype, row blocks, streams), and the thin public layer in :mod:`numeric.torch`.

Ops (``torch.ops.divkit.*``)
----------------------------
``divergence_from_logits(student, teacher, mask, theta, key, temperature, reduction,
student_grad, teacher_grad) -> (loss, grad_student, grad_teacher)``
    The fused forward: the reduced loss and the gradients of that reduced loss, computed in
    one pass and returned as outputs (empty ``(0,)`` tensors when not asked for). ``key``
    names an entry of the registry of resolved generators (:func:`register`), ``theta`` is a
    float64 CPU tensor of the family's parameter values (run-time values: a new β is a new
    tensor value, never a new trace or a new derivation).
``vocab_parallel_divergence(..., group)``
    The same with the vocabulary axis sharded over the ranks of a ``torch.distributed``
    process group (``group`` names an entry of the group registry).

Autograd: the backward of the loss returns the stored gradient times the incoming gradient;
it never writes into a saved tensor (the stored gradient itself is returned, not copied,
when the incoming gradient is exactly 1 on the CPU in eager mode).
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading

import numpy as np
import torch

import numeric
from numeric import _backend
from numeric._reduction import REDUCTIONS, check_reduction, reduction_scale

__all__ = ["register", "register_group", "divergence_loss", "DivergenceLoss",
           "BLOCK_ELEMENTS", "REDUCTIONS"]


#: Elements per row block where a dtype conversion is needed (bfloat16/float16 inputs, the
#: vocab-parallel shard): 2**18 elements, 1 MiB per float32 copy.
BLOCK_ELEMENTS = 1 << 18

_LOCK = threading.Lock()
#: key -> theory.fdiv.Family; filled by :func:`register`
_FAMILIES: dict = {}
#: key -> process group; filled by :func:`register_group`
_GROUPS: dict = {}


# ----------------------------------------------------------------------------- registry
def register(f, params=None) -> tuple[str, tuple[str, ...], tuple[float, ...]]:
    """``(key, names, values)`` of ``f``: a string the ops accept in place of ``f``, the
    family's parameter names and their values (``params`` overriding those of ``f``).

    ``f`` is a catalog name, a :class:`theory.fdiv.Family` or a
    :class:`theory.fdiv.FDivergence`; the key is the catalog name for a catalog family and a
    hash of the generator otherwise. Registering the same family twice returns the same key.
    """
    from numeric._forms import resolve_family

    fam, values = resolve_family(f, _plain_params(params))
    if fam.key[0] == "catalog" and not any(v for _, v in fam.key[2]):
        key = str(fam.key[1])
    else:
        digest = hashlib.sha256(repr(fam.key).encode()).hexdigest()[:16]
        key = f"{fam.name}#{digest}"
    with _LOCK:
        _FAMILIES.setdefault(key, fam)
    return key, tuple(p.name for p in fam.parameters), values


def _plain_params(params) -> dict:
    """``params`` with 0-d tensors read as floats (outside traced code only)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict {{name: value}}, got {type(params).__name__}")
    return {k: float(v) for k, v in params.items()}


@torch.compiler.assume_constant_result
def _catalog_entry(name: str) -> tuple:
    """:func:`register` of a catalog name or a registry key (a constant for torch.compile)."""
    return _entry(name)


def _entry(f) -> tuple:
    """``(key, names, default values)`` of ``f`` or of a registry key."""
    if isinstance(f, str) and f in _FAMILIES:
        fam = _FAMILIES[f]
        return f, tuple(p.name for p in fam.parameters), tuple(float(p.default)
                                                               for p in fam.parameters)
    if isinstance(f, str) and "#" in f:
        _family(f)  # raises: a key of another process
    return register(f)


def _family(key: str):
    try:
        return _FAMILIES[key]
    except KeyError:
        raise ValueError(f"unknown divergence key {key!r}: pass f (a catalog name, Family or "
                         "FDivergence) or a key returned by numeric.torch.register") from None


def register_group(group) -> str:
    """A string naming ``group`` (a ``torch.distributed`` process group) for the ops."""
    key = f"group{id(group)}"
    with _LOCK:
        _GROUPS[key] = group
    return key


# ------------------------------------------------------------------------- the kernel call
def _kernel(f, teacher, student, *, temperature, mask, reduction, student_grad, teacher_grad,
            params):
    """The one call into :func:`numeric.divergence_from_logits` (numpy or cupy arrays in,
    ``(loss, grad_student or None, grad_teacher or None)`` out), in the interface
    ``reduction in {"none", "sum", "mean", "batchmean"}`` ("mean": over kept rows,
    "batchmean": sum / size of the first batch dimension), ``return_grad: bool`` and
    ``teacher_grad: bool``, the gradients being those of the reduced loss."""
    want = bool(student_grad or teacher_grad)
    out = numeric.divergence_from_logits(f, teacher, student, temperature=temperature,
                                         mask=mask, reduction=reduction, return_grad=want,
                                         teacher_grad=bool(teacher_grad), params=params)
    out = list(out) if want else [out]
    return out[0], (out[1] if want else None), (out[2] if teacher_grad else None)


# ---------------------------------------------------------------------------- launchers
def _numpy_view(x: torch.Tensor):
    """The tensor's own memory as a numpy array (no copy)."""
    return x.detach().numpy()


def reduction_factor(reduction, batch: tuple, kept: int) -> float:
    """The factor of the summed row losses for ``reduction`` (numeric's one vocabulary)."""
    return reduction_scale(reduction, kept, batch[0] if batch else 1)


def _cpu_forward(fam, params, student, teacher, mask, temperature, reduction, sg, tg):
    native = (torch.float32, torch.float64)
    if student.dtype in native and teacher.dtype in native:
        loss, gs, gt = _kernel(fam, _numpy_view(teacher), _numpy_view(student),
                               temperature=temperature,
                               mask=None if mask is None else _numpy_view(mask),
                               reduction=reduction, student_grad=sg, teacher_grad=tg,
                               params=params)
        out_dtype = torch.promote_types(student.dtype, teacher.dtype)
        loss = np.asarray(loss)
        loss_t = torch.from_numpy(loss if loss.flags.c_contiguous else loss.copy())
        return (loss_t.to(out_dtype),
                torch.from_numpy(gs) if gs is not None else student.new_empty(0),
                torch.from_numpy(gt) if gt is not None else teacher.new_empty(0))
    return _blocked_forward(fam, params, student, teacher, mask, temperature, reduction, sg, tg)


def _blocked_forward(fam, params, student, teacher, mask, temperature, reduction, sg, tg):
    """bfloat16/float16 (or mixed) tensors: rows in blocks of :data:`BLOCK_ELEMENTS`
    elements, each converted to float32 (float64 if either input is float64), the gradient
    block scaled and rounded back into the output in the input's dtype."""
    v = student.shape[-1]
    batch = tuple(student.shape[:-1])
    s2 = student.detach().reshape(-1, v)
    t2 = teacher.detach().reshape(-1, v)
    m1 = None if mask is None else mask.detach().reshape(-1)
    n = s2.shape[0]
    kept = n if m1 is None else int(m1.sum())
    scale = reduction_factor(reduction, batch, kept)
    work = torch.float64 if torch.float64 in (student.dtype, teacher.dtype) else torch.float32
    gs = student.new_empty(student.shape) if sg else student.new_empty(0)  # contiguous
    gt = teacher.new_empty(teacher.shape) if tg else teacher.new_empty(0)
    gs2, gt2 = gs.view(-1, v) if sg else None, gt.view(-1, v) if tg else None
    rows = torch.empty(n, dtype=torch.float64)
    step = max(1, BLOCK_ELEMENTS // max(v, 1))
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        mb = None if m1 is None else _numpy_view(m1[i0:i1])
        # per-row values, and the gradient of their sum (scaled below, with the rounding)
        loss_b, g_s, g_t = _kernel(fam, _numpy_view(t2[i0:i1].to(work)),
                                   _numpy_view(s2[i0:i1].to(work)), temperature=temperature,
                                   mask=mb, reduction="none", student_grad=sg, teacher_grad=tg,
                                   params=params)
        rows[i0:i1] = torch.from_numpy(np.asarray(loss_b, dtype=np.float64))
        for g, out in ((g_s, gs2), (g_t, gt2)):
            if g is not None:
                gb = torch.from_numpy(g)
                if scale != 1.0:
                    gb.mul_(scale)
                out[i0:i1].copy_(gb)
    out_dtype = torch.promote_types(student.dtype, teacher.dtype)
    if reduction == "none":
        loss = rows.reshape(batch)
    else:
        loss = rows.sum() * scale
    return loss.to(out_dtype), gs, gt


@functools.cache
def _cupy_has_bfloat16() -> bool:
    """Whether this cupy takes bfloat16 through DLPack and converts it both ways (probed once
    on a 2-element tensor)."""
    try:
        cp = _backend.require_cupy()
        x = cp.from_dlpack(torch.zeros(2, dtype=torch.bfloat16, device="cuda"))
        back = x.astype("float32").astype(x.dtype)
        return torch.from_dlpack(back).dtype == torch.bfloat16
    except Exception:  # noqa: BLE001 - any failure means "not supported here"
        return False


def _cuda_forward(fam, params, student, teacher, mask, temperature, reduction, sg, tg):
    """cupy route: DLPack views of the tensors, launched on torch's current stream."""
    cp = _backend.require_cupy()

    def view(x):
        x = x.detach()
        if x.dtype == torch.bfloat16 and not _cupy_has_bfloat16():
            x = x.float()  # cupy without bfloat16: one rows x V float32 copy
        return cp.from_dlpack(x)

    out_dtype = torch.promote_types(student.dtype, teacher.dtype)
    # the kernel and both DLPack exchanges on torch's current stream: no synchronisation
    # beyond the stream order
    with cp.cuda.Device(student.device.index), \
            cp.cuda.ExternalStream(torch.cuda.current_stream(student.device).cuda_stream):
        loss, gs, gt = _kernel(fam, view(teacher), view(student), temperature=temperature,
                               mask=None if mask is None else cp.from_dlpack(mask.detach()),
                               reduction=reduction, student_grad=sg, teacher_grad=tg,
                               params=params)
        return (torch.from_dlpack(loss).to(out_dtype),
                torch.from_dlpack(gs).to(student.dtype) if gs is not None
                else student.new_empty(0),
                torch.from_dlpack(gt).to(teacher.dtype) if gt is not None
                else teacher.new_empty(0))


def _params_of(key: str, theta: torch.Tensor):
    fam = _family(key)
    vals = theta.tolist()
    return fam, {p.name: float(v) for p, v in zip(fam.parameters, vals, strict=True)}


# ------------------------------------------------------------------------------- the op
def _check(student, teacher, mask, reduction):
    if not torch.compiler.is_compiling() and torch._C._are_functorch_transforms_active():
        raise NotImplementedError(
            "divkit's fused divergence does not support torch.func transforms (grad, vmap, "
            "jacrev, ...): use loss.backward() or torch.autograd.grad; the op already takes "
            "any number of batch dimensions (reduction='none' gives per-sample losses)")
    if student.shape != teacher.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape, got "
                         f"{tuple(student.shape)} and {tuple(teacher.shape)}")
    if student.ndim == 0:
        raise ValueError("student_logits must have at least one dimension (the vocabulary)")
    check_reduction(reduction)
    if mask is not None:
        if tuple(mask.shape) != tuple(student.shape[:-1]):
            raise ValueError(f"mask must have the shape of the rows {tuple(student.shape[:-1])}, "
                             f"got {tuple(mask.shape)}")
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be boolean (True keeps a row), got {mask.dtype}")
    for name, x in (("student_logits", student), ("teacher_logits", teacher)):
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")


@torch.library.custom_op("divkit::divergence_from_logits", mutates_args=())
def _fused(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None,
           theta: torch.Tensor, key: str, temperature: float, reduction: str,
           student_grad: bool, teacher_grad: bool) -> tuple[torch.Tensor, torch.Tensor,
                                                            torch.Tensor]:
    fam, params = _params_of(key, theta)
    args = (fam, params, student, teacher, mask, float(temperature), reduction, student_grad,
            teacher_grad)
    if student.is_cuda:
        return _cuda_forward(*args)
    return _cpu_forward(*args)


def _loss_shape(student, reduction):
    return tuple(student.shape[:-1]) if reduction == "none" else ()


@_fused.register_fake
def _fake(student, teacher, mask, theta, key, temperature, reduction, student_grad, teacher_grad):
    dt = torch.promote_types(student.dtype, teacher.dtype)
    loss = student.new_empty(_loss_shape(student, reduction), dtype=dt)
    # contiguous gradients, as the kernels write them
    gs = student.new_empty(student.shape) if student_grad else student.new_empty(0)
    gt = teacher.new_empty(teacher.shape) if teacher_grad else teacher.new_empty(0)
    return loss, gs, gt


def _scaled(saved: torch.Tensor, grad_loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """``saved`` times the incoming gradient, as a new tensor; ``saved`` itself (never
    written to) when that gradient is exactly 1 on the CPU in eager mode (no copy of the
    gradient: autograd accumulates it into ``.grad`` by reference or by copy as it needs)."""
    if reduction == "none":
        return saved * grad_loss.unsqueeze(-1).to(saved.dtype)
    if (_plain_eager(saved, grad_loss) and grad_loss.device.type == "cpu"
            and saved.device.type == "cpu" and float(grad_loss) == 1.0):
        return saved
    return saved * grad_loss.to(saved.dtype)


def _plain_eager(*tensors) -> bool:
    """Real tensors, no tracing (torch.compile, make_fx, fake or functional tensors): a value
    may be read on the host."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    return (not torch.compiler.is_compiling() and _get_current_dispatch_mode() is None
            and all(type(x) is torch.Tensor for x in tensors))


def _setup(ctx, inputs, output):
    student, teacher, mask, theta, key, temperature, reduction, sg, tg = inputs
    _, gs, gt = output
    ctx.reduction = reduction
    ctx.sg, ctx.tg = sg, tg
    ctx.save_for_backward(gs, gt)
    ctx.mark_non_differentiable(gs, gt)


def _no_second_order():
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        raise RuntimeError("divkit's fused divergence has no second derivative: call backward "
                           "without create_graph=True (the stored gradient is not "
                           "differentiable)")


def _backward(ctx, grad_loss, _grad_gs, _grad_gt):
    _no_second_order()
    gs, gt = ctx.saved_tensors
    grad_s = _scaled(gs, grad_loss, ctx.reduction) if ctx.sg else None
    grad_t = _scaled(gt, grad_loss, ctx.reduction) if ctx.tg else None
    return grad_s, grad_t, None, None, None, None, None, None, None


_fused.register_autograd(_backward, setup_context=_setup)


def _refuse_vmap(*_args, **_kwargs):
    raise NotImplementedError(
        "divkit's fused divergence does not support torch.vmap: the op already takes any "
        "number of batch dimensions (pass the batched tensors directly, with "
        "reduction='none' for per-sample losses); torch.func.grad works")


_fused.register_vmap(_refuse_vmap)


# -------------------------------------------------------------------- vocabulary-parallel
@torch.library.custom_op("divkit::vocab_parallel_divergence", mutates_args=())
def _vp(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None,
        theta: torch.Tensor, key: str, temperature: float, reduction: str,
        student_grad: bool, teacher_grad: bool, group: str) -> tuple[torch.Tensor, torch.Tensor,
                                                                      torch.Tensor]:
    from numeric import _torch_vocab

    fam, params = _params_of(key, theta)
    try:
        pg = _GROUPS[group]
    except KeyError:
        raise ValueError(f"unknown process group key {group!r}") from None
    return _torch_vocab.forward(fam, params, student, teacher, mask, float(temperature),
                                reduction, student_grad, teacher_grad, pg)


@_vp.register_fake
def _(student, teacher, mask, theta, key, temperature, reduction, student_grad, teacher_grad,
      group):
    return _fake(student, teacher, mask, theta, key, temperature, reduction, student_grad,
                 teacher_grad)


def _vp_setup(ctx, inputs, output):
    _setup(ctx, inputs[:-1], output)


def _vp_backward(ctx, grad_loss, _g1, _g2):
    return _backward(ctx, grad_loss, _g1, _g2) + (None,)


_vp.register_autograd(_vp_backward, setup_context=_vp_setup)
_vp.register_vmap(_refuse_vmap)


# ------------------------------------------------------------------------ public layer
def _theta(names, values, params) -> torch.Tensor:
    """The parameter vector, float64 on the CPU: values from ``params`` (floats or 0-d
    tensors, which stay graph inputs under torch.compile) over the defaults."""
    if not names:
        return torch.zeros(0, dtype=torch.float64)
    if params:
        unknown = set(params) - set(names)
        if unknown:
            raise ValueError(f"params: no parameter(s) {', '.join(sorted(unknown))}; allowed: "
                             f"{', '.join(names)}")
    items = []
    for n, v in zip(names, values, strict=True):
        x = params.get(n, v) if params else v
        items.append(x.detach().to("cpu", torch.float64).reshape(())
                     if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64))
    return torch.stack(items)


def _keep_mask(student, mask, labels, ignore_index):
    if labels is not None:
        if tuple(labels.shape) != tuple(student.shape[:-1]):
            raise ValueError(f"labels must have the shape of the rows {tuple(student.shape[:-1])}, "
                             f"got {tuple(labels.shape)}")
        keep = labels != ignore_index
        mask = keep if mask is None else mask & keep
    return mask


def _apply(student, teacher, *, key, theta, temperature, mask, labels, ignore_index,
           reduction, group):
    """Validate, then call the op (``group``: a key of :func:`register_group`, or None)."""
    mask = _keep_mask(student, mask, labels, ignore_index)
    _check(student, teacher, mask, reduction)
    temperature = float(temperature)
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite positive number, got {temperature}")
    grad = torch.is_grad_enabled()
    sg = bool(grad and student.requires_grad)
    tg = bool(grad and teacher.requires_grad)
    if mask is not None and mask.device != student.device:
        mask = mask.to(student.device)
    if group is None:
        loss, _, _ = torch.ops.divkit.divergence_from_logits(
            student, teacher, mask, theta, key, temperature, reduction, sg, tg)
    else:
        loss, _, _ = torch.ops.divkit.vocab_parallel_divergence(
            student, teacher, mask, theta, key, temperature, reduction, sg, tg, group)
    return loss


def divergence_loss(student_logits, teacher_logits, f="kl", *, params=None, temperature=1.0,
                    mask=None, labels=None, ignore_index=-100, reduction="mean",
                    process_group=None):
    """See :func:`numeric.torch.divergence_loss` (the public documentation)."""
    if torch.compiler.is_compiling():
        if not isinstance(f, str):
            raise TypeError("under torch.compile pass f as a catalog name or a key of "
                            "numeric.torch.register(f), or use numeric.torch.DivergenceLoss")
        key, names, values = _catalog_entry(f)
    else:
        key, names, values = _entry(f)
    # the values are checked against the family's domain where the op binds them
    theta = _theta(names, values, params)
    group = None if process_group is None else register_group(process_group)
    return _apply(student_logits, teacher_logits, key=key, theta=theta,
                  temperature=temperature, mask=mask, labels=labels,
                  ignore_index=ignore_index, reduction=reduction, group=group)


class DivergenceLoss(torch.nn.Module):
    """See :class:`numeric.torch.DivergenceLoss` (the public documentation)."""

    def __init__(self, f="kl", *, params=None, temperature=1.0, reduction="mean",
                 ignore_index=-100, process_group=None):
        super().__init__()
        key, names, values = register(f, params)
        check_reduction(reduction)
        temperature = float(temperature)
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite positive number, got {temperature}")
        self.key = key
        self.names = names
        self.temperature = temperature
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.process_group = process_group
        self._group = None if process_group is None else register_group(process_group)
        # run-time parameter values: a plain CPU tensor written in place by set_params, so
        # a compiled step sees a new value without a new trace
        self.theta = torch.tensor(values, dtype=torch.float64)

    @property
    def params(self) -> dict:
        """The current parameter values, ``{name: float}``."""
        return dict(zip(self.names, self.theta.tolist(), strict=True))

    def set_params(self, **values) -> None:
        """Change parameter values in place (a β schedule): validated against the family's
        domain; no new derivation, no recompilation of a compiled step."""
        fam = _family(self.key)
        cur = self.params
        cur.update({k: float(v) for k, v in values.items()})
        _, _, vals = register(fam, cur)
        with torch.no_grad():
            self.theta.copy_(torch.tensor(vals, dtype=torch.float64))

    def extra_repr(self) -> str:
        shown = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return (f"f={self.key!r}{', ' + shown if shown else ''}, temperature={self.temperature:g}, "
                f"reduction={self.reduction!r}"
                + (", vocab-parallel" if self.process_group is not None else ""))

    def forward(self, student_logits, teacher_logits, labels=None, *, mask=None):
        return _apply(student_logits, teacher_logits, key=self.key, theta=self.theta,
                      temperature=self.temperature, mask=mask, labels=labels,
                      ignore_index=self.ignore_index, reduction=self.reduction,
                      group=self._group)


def _doc():
    from numeric import torch as public

    DivergenceLoss.__doc__ = public._DIVERGENCE_LOSS_DOC
    DivergenceLoss.__module__ = "numeric.torch"


_doc()
