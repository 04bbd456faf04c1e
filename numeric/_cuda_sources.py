r"""The from-logits row kernel's sources for CUDA and the host, from ``numeric/kernels/``.

The kernels are files (``numeric/kernels/``, see :mod:`numeric.codegen._files`); this module
assembles them into single texts per divergence — what ``cupy.RawModule`` compiles and what
``tests/numeric/cuda_emu.h`` runs on the host — and gives the host row kernel as a numpy
callable. P = softmax(teacher/T) is the first argument, Q = softmax(student/T) the second;
the mathematics is written in ``divkit_row.h``:

.. code-block:: text

    pass 1  online log-sum-exp of the teacher and the student row
    pass 2  compensated row sums D = Σ qF, m_s = Σ q g, m_t = Σ p h
    pass 3  grad_student = (q g - q m_s)·scale, grad_teacher = (p h - p m_t)·scale

with :math:`\partial D_f(P\|Q)/\partial b_j = q_j (g_j - \sum_i q_i g_i)` and
:math:`\partial D_f/\partial a_j = p_j (h_j - \sum_i p_i h_i)`.

CUDA entry points, for ``T`` = ``float`` (``_f32``) and ``double`` (``_f64``)::

    extern "C" __global__ void divkit_<name>_<f32|f64>_rows(long long rows, long long V,
        const T *teacher, const T *student, T temperature, T grad_scale,
        const unsigned char *keep, const double *cst, T *loss,
        T *grad_student, T *grad_teacher)

``python -m numeric._cuda_sources DIR`` writes every catalog source into DIR;
``tests/numeric/golden/`` keeps the JS sources, which a test regenerates byte for byte.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from numeric import _abi
from numeric._forms import forms
from numeric.codegen._files import (
    ENTRY_FILES,
    amalgamate,
    family_name,
    fixed_files,
    forms_hash,
    forms_header_of,
)

__all__ = [
    "constants_layout",
    "kernel_constants",
    "TARGETS",
    "row_kernel_source",
    "row_kernel_entry",
    "catalog_sources",
    "write_catalog_sources",
    "host_row_kernel",
]

#: Target → file extension.
TARGETS = {"cuda": "cu", "c": "c"}

_DTYPE_TAG = {"float32": "f32", "float64": "f64"}

#: The forms' hash (kept under its old name for the cupy launcher's cache key).
_forms_hash = forms_hash


def constants_layout(n_theta: int) -> dict:
    """Offsets of the ``cst`` array (:func:`numeric._abi.layout`)."""
    return _abi.layout(n_theta)


def kernel_constants(bound) -> np.ndarray:
    """The ``cst`` array of ``bound`` (:func:`numeric._abi.kernel_constants`)."""
    return _abi.kernel_constants(bound)


def row_kernel_source(f, *, target: str = "cuda", dtypes=("float32", "float64"),
                      name: str | None = None, params=None) -> str:
    """The row-kernel source of ``f`` (catalog name, family or FDivergence) for ``target``,
    as one text: the files of ``numeric/kernels/`` with the family's printed forms.

    One source serves every parameter value of the family (of its region near a special
    value, or of an endpoint): the values and the per-value constants come at run time in
    ``cst`` (:func:`kernel_constants`).

    Parameters
    ----------
    f : str, theory.fdiv.Family or theory.fdiv.FDivergence
    target : {"cuda", "c"}
        ``"cuda"``: ``divkit_rows.cu`` (kernels ``<name>_f32_rows``, ``<name>_f64_rows``);
        ``"c"``: ``divkit_host.c`` (the host row and probability kernels, in double).
    dtypes : sequence of {"float32", "float64"}
        CUDA: the kernels to include.
    name : str, optional
        ``DK_FAMILY``; default ``divkit_<catalog name>``.
    params : dict, optional
        Parameter values; they select the region (the forms).

    Returns
    -------
    str
        The source, with a header naming the generator, its parameters, the forms' hash,
        and the sympy and codegen versions.
    """
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {sorted(TARGETS)}, got {target!r}")
    bound = forms(f, **(params or {}))
    family = name or family_name(f, bound)
    files = dict(fixed_files())
    if target == "cuda":
        dtypes = tuple(dtypes)
        for d in dtypes:
            if d not in _DTYPE_TAG:
                raise ValueError(f"dtypes: expected float32/float64, got {d!r}")
        if len(dtypes) == 1:  # keep only that dtype's instantiation
            files[ENTRY_FILES["cuda"]] = _only_dtype(files[ENTRY_FILES["cuda"]], dtypes[0])
    else:
        dtypes = ("float64",)
    forms_text = forms_header_of(bound.family_forms, target=target, dtypes=dtypes, name=family)
    files["divkit_forms.h"] = forms_text
    head, _, _ = forms_text.partition("\n#undef")
    return head + "\n\n" + amalgamate(files, ENTRY_FILES[target])


def _only_dtype(text: str, dtype: str) -> str:
    """``divkit_rows.cu`` with the other dtype's instantiation block removed."""
    other = "f64" if dtype == "float32" else "f32"
    start = text.index(f'#include "divkit_dtype_{other}.h"')
    end = text.find("DK_ROWS_KERNEL(DK_(rows))", start) + len("DK_ROWS_KERNEL(DK_(rows))")
    return text[:start] + text[end:]


def row_kernel_entry(f, *, dtype: str = "float32", params=None) -> tuple[str, str]:
    """``(source, kernel name)`` of the CUDA row kernel of ``f`` for one dtype.

    What a launcher hands to ``cupy.RawModule(code=source)`` (cupy is not imported here):
    launch with one block per row or fewer (the kernel strides over rows), ``blockDim.x`` a
    multiple of 32 up to 1024, no dynamic shared memory, arguments as in the module
    docstring. Compile without ``--use_fast_math``.

    Examples
    --------
    >>> source, name = row_kernel_entry("kl", dtype="float64")
    >>> name, 'extern "C" __global__ void divkit_kl_f64_rows(' in source
    ('divkit_kl_f64_rows', True)
    """
    if dtype not in _DTYPE_TAG:
        raise ValueError(f"dtype: expected one of {sorted(_DTYPE_TAG)}, got {dtype!r}")
    bound = forms(f, **(params or {}))
    base = family_name(f, bound)
    source = row_kernel_source(f, target="cuda", dtypes=(dtype,), name=base, params=params)
    return source, f"{base}_{_DTYPE_TAG[dtype]}_rows"


def catalog_sources() -> dict[str, str]:
    """File name → source for every catalog divergence (default parameters), both targets."""
    from theory import fdiv

    out = {}
    for n in fdiv.names():
        for target, ext in TARGETS.items():
            out[f"{family_name(n)}.{ext}"] = row_kernel_source(n, target=target)
    return out


def write_catalog_sources(directory: Path) -> list[Path]:
    """Write every catalog source (both targets) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, text in catalog_sources().items():
        path = directory / fname
        path.write_text(text)
        written.append(path)
    return written


def host_row_kernel(f, *, dtype: str = "float64", params=None):
    """The host-compiled row kernel of ``f`` (:mod:`numeric._cpu`) as a numpy callable.

    Returns
    -------
    callable
        ``fn(teacher, student, *, temperature=1.0, grad_scale=None, keep=None,
        student_grad=True, teacher_grad=True) -> (loss, grad_student, grad_teacher)``
        for 2-D (rows, V) arrays; the loss in ``dtype``, gradients ``None`` when not asked
        for; ``grad_scale`` defaults to ``1/temperature`` (gradients with respect to the
        raw logits, per row, no reduction); rows with ``keep`` 0 have loss and gradient 0.
    """
    from numeric import _cpu

    if dtype not in _DTYPE_TAG:
        raise ValueError(f"dtype: expected one of {sorted(_DTYPE_TAG)}, got {dtype!r}")
    bound = forms(f, **(params or {}))
    kern = _cpu.host_kernel(bound)
    cst = _abi.kernel_constants(bound)
    np_dtype = np.dtype(dtype)

    def run(teacher, student, *, temperature=1.0, grad_scale=None, keep=None,
            student_grad=True, teacher_grad=True):
        t = np.ascontiguousarray(teacher, dtype=np_dtype)
        s = np.ascontiguousarray(student, dtype=np_dtype)
        if t.ndim != 2 or t.shape != s.shape:
            raise ValueError(f"teacher and student must be 2-D of one shape, got {t.shape}, "
                             f"{s.shape}")
        rows, v = t.shape
        gs = np.empty_like(t) if student_grad else None
        gt = np.empty_like(t) if teacher_grad else None
        scale = 1.0 / temperature if grad_scale is None else grad_scale
        loss, _ = kern.from_logits(cst, t, s, temperature=temperature, grad_scale=scale,
                                   gs=gs, gt=gt)
        if keep is not None:
            k = np.asarray(keep).astype(bool)
            if k.shape != (rows,):
                raise ValueError(f"keep must have shape ({rows},), got {k.shape}")
            loss[~k] = 0.0
            for g in (gs, gt):
                if g is not None:
                    g[~k] = 0.0
        return loss.astype(np_dtype), gs, gt

    run.source = kern.source
    return run


if __name__ == "__main__":  # pragma: no cover - the regeneration command
    if len(sys.argv) != 2:
        sys.exit("usage: python -m numeric._cuda_sources DIR")
    for written in write_catalog_sources(Path(sys.argv[1])):
        print(written)
