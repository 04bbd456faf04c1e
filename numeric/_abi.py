r"""The kernel ABI: the ``cst`` constants layout and the entry-point signatures.

Every kernel target reads its per-value constants from one float64 array ``cst`` laid out
here, and nowhere else: the numpy path reads :func:`layout` through the bound forms, the
host C and CUDA sources read the same offsets as ``#define`` names printed by
:func:`c_defines` into the family's generated ``divkit_forms.h`` (``DK_CST_LOSS``,
``DK_EL_RADIUS``, ...), so a kernel file never indexes ``cst`` by a bare number.

Layout for a family with ``n`` run-time parameters (``K`` = :data:`SERIES_TERMS`)::

    cst[THETA + k]                 the k-th parameter (order of the family forms' theta)
    cst[<X> + AT_P_ZERO]           X(0+): the term is q X(0+) where p = 0 < q
    cst[<X> + AT_Q_ZERO]           lim X(u)/u as u -> oo: the term is p times it where q = 0
    cst[<X> + RADIUS]              |ell| below which the Taylor polynomial is used (0: never)
    cst[<X> + SERIES + k]          its k-th coefficient in ell = log(p/q), k < K
    cst[FLAGS + USE_NEAR_S/T]      1: the student/teacher gradient may take the form that
                                   vanishes at r = 1 on nearly equal rows
    cst[FLAGS + THRESHOLD_S/T]     ... on rows whose divergence is below this

for the elements ``<X>`` = ``LOSS`` (loss term :math:`qF(r)`), ``GS``/``GT`` (student and
teacher gradient terms :math:`q\hat g`, :math:`p\hat h`), ``NGS``/``NGT`` (their forms that
vanish at :math:`r = 1`).

Examples
--------
>>> lay = layout(1)
>>> lay["THETA"], lay["LOSS"], lay["GS"] - lay["LOSS"] == ELEMENT_SIZE
(0, 1, True)
"""

from __future__ import annotations

import numpy as np

from numeric._series import SERIES_TERMS

__all__ = [
    "ELEMENTS",
    "ELEMENT_FIELDS",
    "FLAG_FIELDS",
    "ELEMENT_SIZE",
    "SERIES_TERMS",
    "layout",
    "kernel_constants",
    "c_defines",
    "describe",
    "ROW_KERNEL_SIGNATURE",
    "HOST_ROWS_SIGNATURE",
    "PROB_ROWS_SIGNATURE",
]

#: Per-element blocks of ``cst``, in order: (offset name, element of the family forms).
ELEMENTS = (("LOSS", "loss"), ("GS", "grad_student"), ("GT", "grad_teacher"),
            ("NGS", "grad_student_near"), ("NGT", "grad_teacher_near"))

#: Offsets inside one element block.
ELEMENT_FIELDS = {"AT_P_ZERO": 0, "AT_Q_ZERO": 1, "RADIUS": 2, "SERIES": 3}

#: Size of one element block.
ELEMENT_SIZE = 3 + SERIES_TERMS

#: Offsets inside the flags block.
FLAG_FIELDS = {"USE_NEAR_S": 0, "USE_NEAR_T": 1, "THRESHOLD_S": 2, "THRESHOLD_T": 3}

#: The CUDA row kernel, ``<family>_<f32|f64>_rows`` (T = float or double).
ROW_KERNEL_SIGNATURE = (
    ("long long", "rows"), ("long long", "V"), ("const T *", "teacher"),
    ("const T *", "student"), ("T", "temperature"), ("T", "grad_scale"),
    ("const unsigned char *", "keep"), ("const double *", "cst"), ("T *", "loss"),
    ("T *", "grad_student"), ("T *", "grad_teacher"),
)

#: The host from-logits kernel, ``<family>_f64_rows_in<f32|f64>`` (T = the logits' type).
HOST_ROWS_SIGNATURE = (
    ("long long", "rows"), ("long long", "V"), ("const T *", "teacher"),
    ("const T *", "student"), ("double", "temperature"), ("double", "grad_scale"),
    ("const double *", "cst"), ("double *", "loss"), ("T *", "grad_student"),
    ("T *", "grad_teacher"), ("unsigned char *", "status"),
)

#: The host probability kernel, ``<family>_f64_prob_rows_<f32|f64>``.
PROB_ROWS_SIGNATURE = (
    ("long long", "rows"), ("long long", "V"), ("const T *", "p"), ("const T *", "q"),
    ("const double *", "cst"), ("double *", "std_sum"), ("double *", "diff"),
    ("double *", "spread"), ("unsigned char *", "status"),
)


def layout(n_theta: int) -> dict[str, int]:
    """Named offsets of ``cst`` for a family with ``n_theta`` run-time parameters:
    ``THETA``, one per element block (``LOSS``, ``GS``, ``GT``, ``NGS``, ``NGT``),
    ``FLAGS`` and the total ``SIZE``."""
    if int(n_theta) != n_theta or n_theta < 0:
        raise ValueError(f"n_theta must be a nonnegative integer, got {n_theta!r}")
    out, off = {"THETA": 0}, int(n_theta)
    for key, _ in ELEMENTS:
        out[key] = off
        off += ELEMENT_SIZE
    out["FLAGS"] = off
    out["SIZE"] = off + len(FLAG_FIELDS)
    return out


def kernel_constants(bound) -> np.ndarray:
    """The read-only ``cst`` array for the parameter values of ``bound``
    (:class:`numeric._forms.BoundForms`), computed once per bound."""
    cached = bound.__dict__.get("_kernel_constants")
    if cached is None:
        cached = _kernel_constants(bound)
        cached.setflags(write=False)
        bound.__dict__["_kernel_constants"] = cached
    return cached


def _bound_element(bound, name: str):
    """The bound element ``name`` of ``bound``, through its cached attributes where one
    holds it (a binding computes the zero-mass limits and the Taylor series: the cost of a
    new parameter value)."""
    for attr in ("loss", "grad_student", "grad_teacher", "grad_student_near",
                 "grad_teacher_near"):
        el = getattr(bound, attr)
        if el is not None and el.form.name == name:
            return el
    return bound._bind(name)


def _kernel_constants(bound) -> np.ndarray:
    ff = bound.family_forms
    lay = layout(len(ff.theta))
    cst = np.zeros(lay["SIZE"], dtype=np.float64)
    cst[lay["THETA"]: lay["THETA"] + len(ff.theta)] = bound.theta
    flags = lay["FLAGS"]
    # a value whose zero-anchored gradient form is not usable takes the r = 1 form on every
    # row (threshold +inf); otherwise rows with D below the threshold do
    use_near = {}
    for g, use, thr in (("grad_student", "USE_NEAR_S", "THRESHOLD_S"),
                        ("grad_teacher", "USE_NEAR_T", "THRESHOLD_T")):
        symbolic_main = getattr(ff, g).name == g
        uses_main = getattr(bound, g).name == g
        use_near[g] = symbolic_main
        if symbolic_main:
            cst[flags + FLAG_FIELDS[use]] = 1.0
            cst[flags + FLAG_FIELDS[thr]] = bound.near_threshold[g] if uses_main else np.inf
    names = {"LOSS": "loss", "GS": ff.grad_student.name, "GT": ff.grad_teacher.name,
             "NGS": "grad_student_near" if use_near["grad_student"] else None,
             "NGT": "grad_teacher_near" if use_near["grad_teacher"] else None}
    for key, _ in ELEMENTS:
        if names[key] is None:  # a form the kernels never take at this value: zeros
            continue
        el = _bound_element(bound, names[key])
        off = lay[key]
        cst[off + ELEMENT_FIELDS["AT_P_ZERO"]] = el.at_p_zero
        cst[off + ELEMENT_FIELDS["AT_Q_ZERO"]] = el.at_q_zero
        if el.series is not None:
            coeffs, radius = el.series
            cst[off + ELEMENT_FIELDS["RADIUS"]] = radius
            start = off + ELEMENT_FIELDS["SERIES"]
            cst[start: start + len(coeffs)] = coeffs
    return cst


def c_defines(n_theta: int) -> list[tuple[str, str]]:
    """``(name, value)`` of the C macros of the layout: ``DK_CST_<block>``, ``DK_EL_<field>``,
    ``DK_FLAG_<field>``, ``DK_CST_SIZE``, ``DK_SERIES_TERMS``, ``DK_NTHETA`` and
    ``DK_THETA`` (the parameter arguments the printed forms take, read from ``cst``)."""
    lay = layout(n_theta)
    out = [("DK_NTHETA", str(n_theta)), ("DK_SERIES_TERMS", str(SERIES_TERMS))]
    out += [(f"DK_CST_{k}", str(v)) for k, v in lay.items()]
    out += [(f"DK_EL_{k}", str(v)) for k, v in ELEMENT_FIELDS.items()]
    out += [(f"DK_FLAG_{k}", str(v)) for k, v in FLAG_FIELDS.items()]
    theta = "".join(f", (DK_T)cst[DK_CST_THETA + {k}]" for k in range(n_theta))
    out.append(("DK_THETA", theta))
    return out


def describe(n_theta: int, theta_names=()) -> list[tuple[int, str]]:
    """``(offset, meaning)`` of every ``cst`` entry (for documentation)."""
    lay = layout(n_theta)
    rows = [(lay["THETA"] + k, f"parameter {theta_names[k] if k < len(theta_names) else k}")
            for k in range(n_theta)]
    meaning = {"LOSS": "loss term q F(r)", "GS": "student-gradient term q g(r)",
               "GT": "teacher-gradient term p h(r)",
               "NGS": "student-gradient term vanishing at r = 1",
               "NGT": "teacher-gradient term vanishing at r = 1"}
    for key, _ in ELEMENTS:
        off = lay[key]
        rows.append((off, f"{meaning[key]}: X(0+) (p = 0 limit)"))
        rows.append((off + 1, f"{meaning[key]}: lim X(u)/u, u -> oo (q = 0 limit)"))
        rows.append((off + 2, f"{meaning[key]}: Taylor radius in ell (0 = no series)"))
        rows.append((off + 3, f"{meaning[key]}: Taylor coefficients c_0 .. c_{SERIES_TERMS - 1} "
                              f"(offsets {off + 3}..{off + 2 + SERIES_TERMS})"))
    flags = lay["FLAGS"]
    rows += [(flags, "1: student gradient may use the r = 1 form on nearly equal rows"),
             (flags + 1, "1: teacher gradient may use the r = 1 form on nearly equal rows"),
             (flags + 2, "divergence below which a row uses the student r = 1 form"),
             (flags + 3, "divergence below which a row uses the teacher r = 1 form")]
    return rows
