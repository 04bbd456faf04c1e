r"""The cupy route of numeric's public kernels: launchers for the generated CUDA row kernels.

Three layers: the device code generated from f
(:func:`numeric._cuda_sources.row_kernel_entry`), this launcher (sizes, contiguity, dtype,
the argument list), and the public functions of :mod:`numeric._api`, which call in here when
an input is a cupy array. cupy is imported on the first cupy input, never by ``import
numeric``.

Kernels are ``cupy.RawModule`` objects built from the generated source and cached per
(f, dtype, compute capability) in this process (cupy also keeps the compiled binary on disk).
They run on cupy's current stream (``RawKernel.__call__`` launches there; every allocation
here is stream-ordered through cupy's memory pool); nothing here synchronises the device
except where a docstring says so.

The argument list of a kernel is built in one place, :func:`kernel_args`, by parameter
*name* from the entry signature parsed out of the generated source, and each scalar is
converted to the C type that signature declares. A kernel parameter the launcher has no
value for is a clear error, so a new parameter of the generator (a run-time parameter
vector ``theta``, say) needs one new entry in the ``values`` mapping of
:func:`_launch_rows` and nothing else.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass

import numpy as np

from numeric import _backend

__all__ = [
    "KernelParam",
    "NVRTC_OPTIONS",
    "kernel_params",
    "kernel_args",
    "launch_config",
    "compute_dtype",
    "divergence_from_logits",
    "via_host",
]

#: NVRTC options of every divkit kernel: IEEE division and square root, no flush of float32
#: subnormals to zero (cupy's ElementwiseKernel defaults would flush them).
NVRTC_OPTIONS = ("--std=c++14", "-ftz=false", "-prec-div=true", "-prec-sqrt=true")

#: C scalar type of a kernel parameter → numpy type passed by value.
_C_SCALARS = {
    "long long": np.int64, "long long int": np.int64, "int": np.int32, "unsigned": np.uint32,
    "unsigned int": np.uint32, "float": np.float32, "double": np.float64,
    "unsigned char": np.uint8,
}

_ENTRY = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')


@dataclass(frozen=True)
class KernelParam:
    """One parameter of a kernel entry: its name, C base type, and whether it is a pointer."""

    name: str
    ctype: str
    pointer: bool


def kernel_params(source: str, name: str) -> tuple[KernelParam, ...]:
    """The parameters of ``extern "C" __global__ void name(...)`` in ``source``, in order.

    >>> src = 'extern "C" __global__ void k(long long n, const float *__restrict__ x, float s)'
    >>> [(p.name, p.ctype, p.pointer) for p in kernel_params(src, "k")]
    [('n', 'long long', False), ('x', 'float', True), ('s', 'float', False)]
    """
    for found, params in _ENTRY.findall(source):
        if found != name:
            continue
        out = []
        for raw in params.split(","):
            text = " ".join(raw.replace("__restrict__", " ").replace("const ", " ").split())
            pointer = "*" in text
            base, _, pname = text.replace("*", " ").rpartition(" ")
            base = " ".join(base.split())
            if not pointer and base not in _C_SCALARS:
                raise ValueError(f"kernel {name}: parameter {raw.strip()!r} has a scalar type the "
                                 "launcher does not pass")
            out.append(KernelParam(pname, base, pointer))
        return tuple(out)
    raise ValueError(f"no kernel entry {name!r} in the generated source")


def kernel_args(params, values) -> tuple:
    """The argument tuple of a launch: ``values[p.name]`` for each parameter, in order.

    Pointers are passed as given (a device array, or ``None`` for a NULL pointer); scalars
    are converted to the numpy type of their declared C type (``float`` → ``numpy.float32``),
    so a float64 temperature never reaches a ``float`` parameter as 8 bytes.

    Raises
    ------
    KeyError
        A kernel parameter without a value (names the parameter).

    >>> ps = (KernelParam("n", "long long", False), KernelParam("x", "float", True),
    ...       KernelParam("s", "float", False))
    >>> args = kernel_args(ps, {"n": 3, "x": None, "s": 0.5})
    >>> [type(a).__name__ for a in args]
    ['int64', 'NoneType', 'float32']
    """
    out = []
    for p in params:
        if p.name not in values:
            raise KeyError(f"kernel parameter {p.name!r} ({p.ctype}{' *' if p.pointer else ''}) "
                           "has no value in the launcher")
        value = values[p.name]
        out.append(value if p.pointer else _C_SCALARS[p.ctype](value))
    return tuple(out)


def launch_config(rows: int, v: int, *, sm_count: int = 132,
                  max_threads_per_sm: int = 2048) -> tuple[int, int]:
    """``(grid, block)`` of a row-kernel launch: one block per row, grid-stride beyond.

    ``block`` is a multiple of 32 in [32, 1024]: about one thread per 4 elements of a row,
    so a short row does not leave hundreds of idle threads and a long one (V ≥ 4096) gets
    1024. ``grid`` is the number of rows, capped at 32 waves of resident blocks (the kernel
    strides over the remaining rows).

    >>> launch_config(7, 33), launch_config(4096, 128256), launch_config(1, 1271)
    ((7, 32), (4096, 1024), (1, 320))
    >>> launch_config(10**7, 32000, sm_count=132)
    (8448, 1024)
    """
    if rows < 1 or v < 1:
        raise ValueError(f"launch_config: rows and V must be positive, got {rows}, {v}")
    block = min(1024, 32 * max(1, math.ceil(math.ceil(v / 4) / 32)))
    resident = max(1, sm_count) * max(1, max_threads_per_sm // block)
    return min(rows, 32 * resident), block


def compute_dtype(dtype) -> str:
    """The kernel dtype for an input dtype: float64 (and integers) → "float64";
    float32, float16, bfloat16 → "float32" (float32 accumulation).

    >>> compute_dtype(np.float16), compute_dtype(np.int64), compute_dtype(np.float32)
    ('float32', 'float64', 'float32')
    """
    name = getattr(dtype, "name", None)
    if not isinstance(name, str):  # a scalar type such as numpy.float32
        dtype = np.dtype(dtype)
        name = dtype.name
    if name in ("float16", "bfloat16", "float32"):
        return "float32"
    if name == "float64":
        return "float64"
    kind = getattr(dtype, "kind", "")
    if isinstance(kind, str) and kind and kind in "iub":
        return "float64"
    raise TypeError(f"unsupported dtype {name}; use float16, bfloat16, float32 or float64")


# --------------------------------------------------------------------------- kernels

_lock = threading.Lock()
_kernels: dict = {}


_devices: dict = {}


def _device(cp) -> tuple[str, int, int]:
    """(compute capability, multiprocessors, threads per multiprocessor) of the current
    device, read once per device."""
    device = cp.cuda.Device()
    key = int(getattr(device, "id", 0))
    hit = _devices.get(key)
    if hit is None:
        attrs = device.attributes
        hit = (str(device.compute_capability), int(attrs.get("MultiProcessorCount", 132)),
               int(attrs.get("MaxThreadsPerMultiProcessor", 2048)))
        _devices[key] = hit
    return hit


def _kernel(cp, f, dtype: str, arch: str, params=None):
    """``(function, params)`` of the row kernel of ``f``, compiled once per (family forms,
    dtype, arch): every parameter value of a family (region) shares it."""
    from numeric._forms import forms

    key = (forms(f, **(params or {})).family_forms, dtype, arch)
    with _lock:
        hit = _kernels.get(key)
    if hit is not None:
        return hit
    from numeric._cuda_sources import row_kernel_entry

    source, name = row_kernel_entry(f, dtype=dtype, params=params)
    params = kernel_params(source, name)
    try:
        module = cp.RawModule(code=source, options=NVRTC_OPTIONS)
        function = module.get_function(name)
    except Exception as exc:  # NVRTC missing or refusing: say what, and where it comes from
        raise RuntimeError(
            f"compiling the CUDA kernel {name} for compute capability {arch} failed: {exc}. "
            "The NVRTC of divkit's 'cuda12'/'cuda13' extra must match the installed driver."
        ) from exc
    with _lock:
        _kernels.setdefault(key, (function, params))
        return _kernels[key]


def _launch_rows(cp, f, dtype, t2, s2, *, temperature, grad_scale, keep, loss, gs, gt,
                 fparams=None):
    """Launch the row kernel on (rows, V) contiguous inputs of the kernel dtype."""
    from numeric._cuda_sources import kernel_constants
    from numeric._forms import forms

    rows, v = t2.shape
    arch, sm_count, per_sm = _device(cp)
    function, params = _kernel(cp, f, dtype, arch, fparams)
    cst = cp.asarray(kernel_constants(forms(f, **(fparams or {}))))
    grid, block = launch_config(rows, v, sm_count=sm_count, max_threads_per_sm=per_sm)
    values = {
        "rows": rows,
        "V": v,
        "teacher": t2,
        "student": s2,
        "temperature": temperature,
        "grad_scale": grad_scale,
        "keep": keep,
        "loss": loss,
        "grad_student": gs,
        "grad_teacher": gt,
        "cst": cst,
    }
    function((grid,), (block,), kernel_args(params, values))


# --------------------------------------------------------------------------- public routes


def _out_dtype(cp, dtype):
    name = getattr(dtype, "name", "")
    return dtype if name in ("float16", "bfloat16", "float32", "float64") else np.dtype(np.float64)


#: Bytes of kernel-dtype copies per launch when inputs or gradients must be converted.
CHUNK_BYTES = 256 * 2**20


def _chunk_rows(n: int, v: int, grads: int) -> int:
    """Rows per launch so that the converted inputs and gradients fit :data:`CHUNK_BYTES`
    (float32: 4 bytes per entry, two inputs and ``grads`` gradients).

    >>> _chunk_rows(4096, 128256, 1)
    174
    """
    return max(1, min(n, CHUNK_BYTES // (4 * v * (2 + grads))))


def _direct(t_rows, s_rows, gs, gt, kdt) -> bool:
    """Whether the kernel can read the inputs and write the gradients in place."""
    arrays = [a for a in (t_rows, s_rows, gs, gt) if a is not None]
    return all(a.dtype.name == kdt and a.flags.c_contiguous for a in arrays)


def _kernel_view(cp, g, i, j, kdt):
    """Rows i:j of the gradient ``g`` if it has the kernel dtype, else a scratch buffer."""
    if g is None:
        return None
    return g[i:j] if g.dtype.name == kdt else cp.empty((j - i, g.shape[1]), dtype=kdt)


def divergence_from_logits(f, teacher_logits, student_logits, *, axis=-1, temperature=1.0,
                           mask=None, reduction="mean", return_grad=False, teacher_grad=False,
                           params=None):
    r"""cupy route of :func:`numeric.divergence_from_logits` (same arguments and results).

    The generated row kernel of ``f``: per row, the log-sum-exps of both
    logit rows, the divergence and the gradient sums, then the gradient write; float32
    kernels for float32/float16/bfloat16 inputs (float32 accumulation, compensated sums),
    float64 kernels for float64 (and integer) inputs. Results are cupy arrays on the
    current device, computed on cupy's current stream.

    Peak extra device memory (beyond the inputs and the returned gradients): ``rows ×
    itemsize`` for the per-row losses, plus ``rows`` bytes for a mask — no ``rows × V``
    temporary — when both inputs have the kernel dtype (float32 or float64) and are
    contiguous along ``axis=-1``: one launch. Otherwise (float16/bfloat16 or mixed dtypes;
    the generated kernels load and store float and double only) the rows go through the
    kernel in chunks, converted to the kernel dtype in scratch buffers of at most
    :data:`CHUNK_BYTES` (256 MiB) together, gradients rounded back per chunk; with
    ``axis`` other than the last, ``moveaxis(...).reshape`` also copies each input once in
    its own dtype.

    Not checked on the device (that would need a device→host synchronisation): NaN or
    ``+inf`` logits and kept rows whose logits are all ``-inf`` give NaN in their row.
    With a cupy ``mask`` and ``reduction="mean"`` the number of kept rows is
    read back to the host (one synchronisation); a numpy mask avoids it.
    """
    from numeric._api import check_axis, grad_flags, reduction_factor

    cp = _backend.require_cupy()
    student, teacher = grad_flags(return_grad, teacher_grad)  # validated by the caller
    t, s = teacher_logits, student_logits
    for name, x in (("teacher_logits", t), ("student_logits", s)):
        if not _backend.is_cupy_array(x):
            raise TypeError(f"{name}: expected a cupy array like the other logits, got "
                            f"{type(x).__module__}.{type(x).__name__}; arrays from different "
                            "libraries cannot be mixed")
    if t.shape != s.shape:
        raise ValueError(f"teacher_logits and student_logits must have the same shape, got "
                         f"{t.shape} and {s.shape}")
    kdt = "float64" if "float64" in (compute_dtype(t.dtype), compute_dtype(s.dtype)) else "float32"
    dt_t, dt_s = _out_dtype(cp, t.dtype), _out_dtype(cp, s.dtype)
    ax = check_axis(axis, t.ndim, "teacher_logits")
    temperature = float(temperature)
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite positive number, got {temperature}")
    v = t.shape[ax]
    batch = tuple(d for i, d in enumerate(t.shape) if i != ax)
    n = math.prod(batch)
    keep, kept = _keep(cp, mask, batch, n, reduction)
    scale = reduction_factor(reduction, kept, batch)
    # rows x V views (a copy in the input dtype only where axis is not the last one)
    t_rows = cp.moveaxis(t, ax, -1).reshape(n, v)
    s_rows = cp.moveaxis(s, ax, -1).reshape(n, v)
    gs = cp.empty((n, v), dtype=dt_s) if student else None  # the returned gradients
    gt = cp.empty((n, v), dtype=dt_t) if teacher else None
    loss_rows = cp.empty(n, dtype=kdt)
    if not (n and v):
        loss_rows.fill(0)
    step = n if _direct(t_rows, s_rows, gs, gt, kdt) else _chunk_rows(n, v, student + teacher)
    for i in range(0, n if v else 0, max(step, 1)):
        j = min(n, i + step)
        # rows i:j in the kernel dtype: the arrays themselves when they already are, else
        # chunk-sized copies (float16/bfloat16, mixed dtypes, strided rows)
        gs_k = _kernel_view(cp, gs, i, j, kdt)
        gt_k = _kernel_view(cp, gt, i, j, kdt)
        _launch_rows(cp, f, kdt, cp.ascontiguousarray(t_rows[i:j], dtype=kdt),
                     cp.ascontiguousarray(s_rows[i:j], dtype=kdt), temperature=temperature,
                     grad_scale=scale / temperature, keep=None if keep is None else keep[i:j],
                     loss=loss_rows[i:j], gs=gs_k, gt=gt_k,
                     fparams=params)
        for g, g_k in ((gs, gs_k), (gt, gt_k)):
            if g is not None and g_k.dtype != g.dtype:
                g[i:j] = g_k  # rounded to the input dtype
    res_dt = dt_t if dt_t == dt_s else np.dtype(kdt)
    if reduction == "none":
        loss = loss_rows.reshape(batch).astype(res_dt, copy=False)
    else:
        loss = (loss_rows.sum(dtype=cp.float64) * scale).astype(res_dt)
    if not student:
        return loss
    out = [loss]
    for g in (gs, gt):
        if g is None:
            continue
        g = g.reshape(batch + (v,))
        out.append(g if ax == t.ndim - 1 else cp.moveaxis(g, -1, ax))
    return tuple(out)


def _keep(cp, mask, batch, n, reduction):
    """``(keep, kept)``: the uint8 row mask on the device (or None) and the kept count."""
    if mask is None:
        return None, n
    if _backend.is_cupy_array(mask):
        if tuple(mask.shape) != batch:
            raise ValueError(f"mask must have the shape of the rows {batch}, got {mask.shape}")
        if mask.dtype != np.dtype(bool):
            raise ValueError(f"mask must be boolean (True keeps a row), got dtype {mask.dtype}")
        keep = cp.ascontiguousarray(mask).reshape(n).view(cp.uint8)
        kept = int(mask.sum()) if reduction == "mean" else n
        return keep, kept
    m = np.asarray(mask)
    if m.shape != batch:
        raise ValueError(f"mask must have the shape of the rows {batch}, got {m.shape}")
    if m.dtype != bool:
        raise ValueError(f"mask must be boolean (True keeps a row), got dtype {m.dtype}")
    return cp.asarray(np.ascontiguousarray(m.reshape(n), dtype=np.uint8)), int(m.sum())


def via_host(fn, *args, **kwargs):
    """Run the numpy implementation ``fn`` on host copies of the cupy arguments; results
    (arrays, tuples, :class:`numeric.PolicyResult`) come back as cupy arrays.

    For the kernels that have no generated device code yet (:func:`numeric.divergence`,
    :func:`numeric.fdpo_loss`, :func:`numeric.policy_from_reward`): correct, but it copies
    every cupy argument to the host and every result back (synchronising the stream).
    """
    cp = _backend.require_cupy()
    host_args = [cp.asnumpy(a) if _backend.is_cupy_array(a) else a for a in args]
    host_kwargs = {k: cp.asnumpy(a) if _backend.is_cupy_array(a) else a for k, a in kwargs.items()}
    return _to_device(cp, fn(*host_args, **host_kwargs))


def _to_device(cp, res):
    if isinstance(res, np.ndarray | np.generic):
        return cp.asarray(res)
    if isinstance(res, tuple):
        items = [_to_device(cp, r) for r in res]
        return type(res)(*items) if hasattr(res, "_fields") else tuple(items)
    return res
