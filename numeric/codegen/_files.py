"""The generated kernels of one f as files: what ``divkit codegen`` writes.

:func:`kernel_files` returns ``{relative file name: text}`` — self-contained sources of the
fused from-logits row kernel and of the probability kernel of ``f`` for one target, and a
``README.md`` with the C signature of each entry point, the ``cst`` layout and a launch
example; :func:`kernel_constants` returns the named ``cst`` offsets and the float64
constants for given parameter values. One source serves every parameter value of the
family (of its region near a special value): the values come at run time in ``cst``.

Targets: ``"c"`` (host C99; compile with ``-std=c99 -O2 -fopenmp-simd -fno-fast-math
-ffp-contract=off``), ``"cuda"`` (CUDA C++, compile with nvcc without ``--use_fast_math``)
and ``"numpy"`` (a Python module of the element forms for any array namespace).

>>> from numeric.codegen import kernel_constants, kernel_files
>>> files = kernel_files("js", target="c", params={"beta": 0.3})
>>> "README.md" in files and all(text for text in files.values())
True
>>> layout, cst = kernel_constants("js", params={"beta": 0.3})
>>> float(cst[layout["beta"]]), cst.shape == (layout["SIZE"],)
(0.3, True)
"""

from __future__ import annotations

import numpy as np
import sympy

__all__ = ["kernel_files", "kernel_constants"]

_TARGETS = ("c", "cuda", "numpy")
_DTYPES = ("float32", "float64")
_TAG = {"float32": "f32", "float64": "f64"}
_CTYPE = {"float32": "float", "float64": "double"}

#: The flags the C sources are written for (``-Wall -Werror`` clean with them).
C_FLAGS = ("-std=c99", "-O2", "-fopenmp-simd", "-fno-fast-math", "-ffp-contract=off")


def _bound(f, params):
    from numeric._forms import forms

    if params is not None and not isinstance(params, dict):
        raise TypeError(f"params must be a dict of parameter values, got {type(params).__name__}")
    return forms(f, **(params or {}))


def kernel_constants(f, *, params=None) -> tuple[dict[str, int], np.ndarray]:
    """Named offsets of the ``cst`` array and its float64 values for ``params``.

    Parameters
    ----------
    f : str, theory.fdiv.FDivergence or theory.fdiv.Family
        A catalog name, a generator, or a family.
    params : dict, optional, keyword-only
        Parameter values (e.g. ``{"beta": 0.3}``); default the family's defaults.

    Returns
    -------
    (dict, numpy.ndarray)
        ``{name: offset}`` — each run-time parameter by its symbol's name (a parameter
        near a special value appears as ``eps_<name>``, the offset from it), then
        ``LOSS``, ``GS``, ``GT``, ``NGS``, ``NGT`` (per element: zero-mass limits, series
        radius and coefficients), ``FLAGS`` and ``SIZE`` — and the constants, a read-only
        float64 array of length ``SIZE``.
    """
    from numeric._cuda_sources import constants_layout
    from numeric._cuda_sources import kernel_constants as _constants

    bound = _bound(f, params)
    theta = bound.family_forms.theta
    layout = {str(s): i for i, s in enumerate(theta)}
    layout.update(constants_layout(len(theta)))
    return layout, _constants(bound)


def _base(f, bound) -> str:
    """``divkit_<catalog name>``, or ``divkit_f_<8 hex digits of the forms' hash>`` for a
    user generator (its text makes a poor file name)."""
    from numeric._cuda_sources import _base_name, _forms_hash

    fam = bound.family
    if isinstance(f, str) or fam.key[0] == "catalog":
        return _base_name(f, fam)
    return f"divkit_f_{_forms_hash(bound.family_forms)[:8]}"


def kernel_files(f, *, target, dtype="float32", params=None) -> dict[str, str]:
    """The kernel sources of ``f`` for ``target`` as ``{relative file name: text}``.

    Parameters
    ----------
    f : str, theory.fdiv.FDivergence or theory.fdiv.Family
        A catalog name, a generator, or a family. D_f(P||Q) = sum_i q_i f(p_i/q_i) with P
        the teacher (first argument), Q the student.
    target : {"c", "cuda", "numpy"}, keyword-only
    dtype : {"float32", "float64"}, keyword-only
        Element type of the row kernel's logits and outputs (the probability kernel takes
        both input types and sums in float64).
    params : dict, optional, keyword-only
        Parameter values; they select the forms (a region near a special value) and the
        constants written in the README.

    Returns
    -------
    dict
        Source files and ``README.md``.
    """
    if target not in _TARGETS:
        raise ValueError(f"target: expected one of {', '.join(_TARGETS)}, got {target!r}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype: expected one of {', '.join(_DTYPES)}, got {dtype!r}")
    bound = _bound(f, params)
    base = _base(f, bound)
    layout, cst = kernel_constants(f, params=params)
    files: dict[str, str] = {}
    if target in ("c", "cuda"):
        from numeric._cpu import kernel_source
        from numeric._cuda_sources import row_kernel_source

        ext = "c" if target == "c" else "cu"
        files[f"{base}_rows.{ext}"] = row_kernel_source(
            f, target=target, dtypes=(dtype,), name=base, params=params)
        if target == "c":
            files[f"{base}_prob.c"] = (_prob_header(bound)
                                       + kernel_source(bound.family_forms, f"{base}_prob"))
    else:
        files[f"{base}_forms.py"] = _numpy_module(bound, base)
    files["README.md"] = _readme(f, bound, base, target, dtype, layout, cst, files)
    return files


def _c_double(x) -> str:
    x = float(x)
    if x != x:
        return "NAN"
    if x in (float("inf"), float("-inf")):
        return "INFINITY" if x > 0 else "-INFINITY"
    return repr(x)


def _prob_header(bound) -> str:
    ff = bound.family_forms
    return (f"// divkit probability kernel, generated code, do not edit\n"
            f"// family: {ff!r}; f(u) = {sympy.sstr(ff._gen)}\n"
            f"// sum_i q_i F(p_i/q_i) with F(u) = f(u) - f'(1)(u - 1); "
            f"D_f(P||Q) = std_sum + f'(1) * diff\n\n")


def _numpy_module(bound, base: str) -> str:
    """The element forms (loss term q F(r) of the lo branch, in ell = log r and q) as numpy."""
    from numeric._forms import ELL, Q
    from numeric.codegen import source

    ff = bound.family_forms
    text = source(ff.loss.lo, target="numpy", name=f"{base}_loss_lo",
                  args=[ELL, Q, *ff.theta])
    return text


def _readme(f, bound, base, target, dtype, layout, cst, files) -> str:
    ff = bound.family_forms
    tag, ct = _TAG[dtype], _CTYPE[dtype]
    names = ", ".join(f"`{n}`" for n in files)
    theta = ", ".join(f"cst[{layout[str(s)]}] = {s}" for s in ff.theta) or "none"
    values = ", ".join(f"{s} = {v!r}" for s, v in zip(ff.theta, bound.theta, strict=True))
    lines = [
        f"# divkit kernels for {base[len('divkit_'):]} ({target}, {dtype})",
        "",
        f"f(u) = `{sympy.sstr(ff._gen)}`; D_f(P||Q) = sum_i q_i f(p_i/q_i), P the teacher "
        "(first argument), Q the student.",
        "",
        f"Files: {names}. Generated by `divkit codegen`; do not edit.",
        "",
        "## The cst array (float64, read-only)",
        "",
        f"Run-time parameters: {theta}" + (f" (here {values})" if values else "") + ".",
        "Per element block (LOSS, GS, GT, NGS, NGT) at its offset: `[X(0+), lim X(u)/u, "
        "series radius, c_0 ... c_{K-1}]`; FLAGS: `[use_s, use_t, threshold_s, threshold_t]`.",
        "",
        "| name | offset |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in layout.items()],
        "",
        "Values for these parameters:",
        "",
        "```",
        f"double cst[{cst.size}] = {{{', '.join(_c_double(x) for x in cst)}}};",
        "```",
        "",
    ]
    if target in ("c", "cuda"):
        q = 'extern "C" __global__ ' if target == "cuda" else ""
        lines += [
            "## Fused row kernel (from logits)",
            "",
            "```c",
            f"{q}void {base}_{tag}_rows(long long rows, long long V,",
            f"    const {ct} *teacher, const {ct} *student, {ct} temperature, {ct} grad_scale,",
            "    const unsigned char *keep,   /* NULL, or 0 drops a row */",
            "    const double *cst,           /* the constants above */",
            f"    {ct} *loss,                  /* rows: D_f(P||Q) per row */",
            f"    {ct} *grad_student, {ct} *grad_teacher);   /* rows x V each, or NULL */",
            "```",
            "",
            "P = softmax(teacher/T), Q = softmax(student/T); with grad_scale = 1/T the "
            "gradients are with respect to the raw logits: dD/d(student_j) = "
            "q_j (g_j - sum_i q_i g_i), dD/d(teacher_j) = p_j (h_j - sum_i p_i h_i).",
            "",
        ]
    if target == "c":
        lines += [
            "## Probability kernel",
            "",
            "```c",
            f"void {base}_prob_rows_f64(long long rows, long long V, const double *p,",
            "    const double *q, const double *cst, double *std_sum, double *diff,",
            "    double *spread, unsigned char *status);   /* also _f32: float p, q */",
            "```",
            "",
            "D_f(P||Q) = std_sum + f'(1) diff per row; status 1 done, 0 a negative/NaN/inf "
            "entry, 2 a row to evaluate another way.",
            "",
            "## Build and launch",
            "",
            "```sh",
            f"cc {' '.join(C_FLAGS)} -Wall -Werror -shared -fPIC -o lib{base}.so *.c",
            "```",
            "",
            "```c",
            f"{base}_{tag}_rows(rows, V, teacher, student, 1, 1, NULL, cst, loss, gs, gt);",
            "```",
        ]
    elif target == "cuda":
        lines += [
            "## Build and launch",
            "",
            "```sh",
            f"nvcc -c -O3 -o {base}_rows.o {base}_rows.cu   # or --ptx; never --use_fast_math",
            "```",
            "",
            "One block per row or fewer (the kernel strides over rows), blockDim.x a multiple "
            "of 32 up to 1024, no dynamic shared memory:",
            "",
            "```c",
            f"{base}_{tag}_rows<<<min(rows, 65535), 256>>>(rows, V, teacher, student, 1, 1,",
            "    NULL, d_cst, loss, grad_student, grad_teacher);",
            "```",
            "",
            "With cupy: `cupy.RawKernel(source, name)` and the same arguments. The probability "
            "kernel is host C (target c).",
        ]
    else:
        lines += [
            "## numpy",
            "",
            f"`{base}_loss_lo(ell, q, {', '.join(map(str, ff.theta))}{', ' if ff.theta else ''}"
            "xp=numpy)`: the loss term q F(r) at ell = log(p/q) (finite, moderate ratios); "
            "sum it over a row for D_f(P||Q).",
        ]
    return "\n".join(lines) + "\n"
