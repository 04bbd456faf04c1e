r"""The kernel source files of a divergence: the fixed files of ``numeric/kernels/`` plus the
family's printed element forms.

The kernels are C/CUDA files in the package (``numeric/kernels/*.h``, ``*.c``, ``*.cu``),
written once: the shared helpers (``divkit_common.h``), the careful element terms
(``divkit_elements.h``), the CUDA row kernel (``divkit_row.h``, ``divkit_rows.cu``), the host
row kernel (``divkit_host_rows.h``, ``divkit_host_elements.h``) and the probability kernel
(``divkit_prob.h``), both compiled through ``divkit_host.c``. What depends on the divergence
is one generated header, ``divkit_forms.h``: the ``cst`` offsets (:mod:`numeric._abi`), the
family's name and parameter arguments, and the element forms printed from
:mod:`numeric._forms` by :mod:`numeric.codegen` — a function per element and branch, the
only C text that Python writes.

:func:`kernel_files` returns them as ``{relative name: text}`` (a directory a user can build
from); :func:`amalgamate` inlines the local ``#include "..."`` lines into one text (what
``cupy.RawModule`` and the host compiler get); :func:`kernel_constants` gives the ``cst``
array of a parameter value with its named offsets.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import numpy as np
import sympy

from numeric import _abi
from numeric._forms import ELL, LOG_P, LOG_Q, P, Q, forms, log_weighted

__all__ = ["KERNEL_DIR", "ENTRY_FILES", "kernel_files", "kernel_constants", "amalgamate",
           "forms_header", "forms_header_of", "family_name", "forms_hash", "fixed_files"]

#: The package's kernel source files.
KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernels"

#: Entry file of each target.
ENTRY_FILES = {"cuda": "divkit_rows.cu", "c": "divkit_host.c"}

#: Elements of the row kernels: (name in C, attribute of the family forms).
_ROW_ELEMENTS = (("loss", "loss"), ("gs", "grad_student"), ("gt", "grad_teacher"),
                 ("ngs", "grad_student_near"), ("ngt", "grad_teacher_near"))

_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"[ \t]*$', re.M)

_TAG = {"float32": "f32", "float64": "f64"}


@functools.cache
def fixed_files() -> dict[str, str]:
    """The package's kernel files, ``{name: text}``."""
    return {p.name: p.read_text() for p in sorted(KERNEL_DIR.iterdir())
            if p.suffix in (".h", ".c", ".cu")}


def _slug(name: str) -> str:
    text = "".join(c if c.isalnum() else "_" for c in str(name)).strip("_").lower()
    return text or "f"


def family_name(f, bound=None) -> str:
    """``divkit_<catalog name>`` (or the family's name as an identifier): ``DK_FAMILY``."""
    if isinstance(f, str):
        return f"divkit_{_slug(f)}"
    bound = bound if bound is not None else forms(f)
    family = bound.family_forms.family
    if family.key[0] == "catalog":
        return f"divkit_{_slug(family.key[1])}"
    return f"divkit_{_slug(family.name)}"


def forms_hash(ff) -> str:
    """sha256 of the family forms' element expressions and parameters."""
    parts = []
    for el in (ff.loss, ff.grad_student, ff.grad_teacher, ff.grad_student_near,
               ff.grad_teacher_near):
        parts.append(sympy.srepr((el.lo, el.hi)))
    parts.append(repr(ff.theta))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------- printed forms


@functools.lru_cache(maxsize=2048)
def _program(expr, args: tuple, plain: bool):
    """Rewrite (unless ``plain``) + cse of one element expression."""
    from numeric.codegen._source import program

    return program(expr, list(args), passes=() if plain else None)


_R = sympy.Symbol("dk_r", positive=True)  # p/q (prob lo branch) or q/p (prob hi branch)


def _power_of_ratio(coeff, ratio):
    """``e^{c ell}`` as a power of ``ratio`` (= e^{±ell}) for a small rational ``c``."""
    if not coeff.is_Rational or coeff == 0 or coeff.q > 2 or abs(coeff) > 4:
        return None
    return ratio ** coeff


def _in_ratio(expr, sign: int):
    r"""``expr`` with ``exp(c ell)``/``expm1(c ell)``/``softplus(c ell)`` written with
    ``_R = e^{sign ell}`` where ``c`` is a small rational: :math:`\ell = \log r` carries no
    more information than the rounded :math:`r`, and :math:`r^{\pm1} - 1` is exact on
    :math:`[1/2, 2]` (Sterbenz), so one ``log`` per element replaces a ``log`` and several
    ``exp`` in the probability kernel."""
    from numeric.codegen.nodes import expm1, softplus

    def coeff_of(arg):
        c, rest = arg.as_coeff_Mul()
        if rest != ELL:
            return None
        return sympy.Rational(c) * sign if c.is_Rational else None

    def rule(e):
        c = coeff_of(e.args[0])
        power = None if c is None else _power_of_ratio(c, _R)
        if power is None:
            return e
        if isinstance(e, sympy.exp):
            return power
        if isinstance(e, expm1):
            return power - 1
        return sympy.log(1 + power)

    return expr.replace(lambda e: isinstance(e, (sympy.exp, expm1, softplus)), rule)


def _arithmetic(expr) -> bool:
    """Whether ``expr`` is rational arithmetic and square roots only."""
    for e in sympy.preorder_traversal(expr):
        if isinstance(e, sympy.Function):
            return False
        if isinstance(e, sympy.Pow) and not (e.exp.is_Integer or abs(e.exp) == sympy.S.Half):
            return False
    return True


def _row_specs(ff):
    """(suffix, expression, arguments) of every printed row-kernel function."""
    out = []
    for cname, attr in _ROW_ELEMENTS:
        el = getattr(ff, attr)
        out += [
            (f"{cname}_lo", el.lo, (ELL, Q)),
            (f"{cname}_hi", el.hi, (ELL, P)),
            (f"{cname}_lo_log", log_weighted(el.lo, Q, LOG_Q), (ELL, LOG_Q)),
            (f"{cname}_hi_log", log_weighted(el.hi, P, LOG_P), (ELL, LOG_P)),
            (f"{cname}_lo_exp", log_weighted(el.lo, Q, LOG_Q, elementary=True), (ELL, LOG_Q)),
            (f"{cname}_hi_exp", log_weighted(el.hi, P, LOG_P, elementary=True), (ELL, LOG_P)),
        ]
    return out


def _ratio_specs(ff):
    """The host row kernel's fast forms: ``lo``/``hi`` of every element with each
    ``exp(c ell)`` (small rational ``c``) written as a power of ``r = p/q`` (lo) or
    ``s = q/p`` (hi), which the kernel has from p and q without an exponential."""
    out = []
    for cname, attr in _ROW_ELEMENTS:
        el = getattr(ff, attr)
        out += [(f"{cname}_lo_r", _in_ratio(el.lo, +1), (ELL, Q, _R)),
                (f"{cname}_hi_r", _in_ratio(el.hi, -1), (ELL, P, _R))]
    return out


def _prob_specs(ff):
    """The probability kernel's functions: the ratio forms and the log-weight forms, printed
    without the stability rewrite (the forms are final; the rewrite would turn sqrt(r) - 1
    back into expm1(log(r)/2))."""
    el = ff.loss
    return [
        ("prob_lo", _in_ratio(el.lo, +1), (ELL, Q, _R)),
        ("prob_hi", _in_ratio(el.hi, -1), (ELL, P, _R)),
        ("prob_lo_log", log_weighted(el.lo, Q, LOG_Q), (ELL, LOG_Q)),
        ("prob_hi_log", log_weighted(el.hi, P, LOG_P), (ELL, LOG_P)),
        ("prob_lo_exp", log_weighted(el.lo, Q, LOG_Q, elementary=True), (ELL, LOG_Q)),
        ("prob_hi_exp", log_weighted(el.hi, P, LOG_P, elementary=True), (ELL, LOG_P)),
    ]


def _print_functions(specs, theta, family: str, dtype: str, cuda: bool,
                     plain: bool = False) -> list[str]:
    from numeric.codegen._source import _c_function
    from numeric.codegen.printers import CPrinter, CudaPrinter

    printer_cls = CudaPrinter if cuda else CPrinter
    out = []
    for suffix, expr, args in specs:
        prog = _program(expr, tuple(args) + tuple(theta), plain)
        printer = printer_cls(dtype, prog.names)
        text = _c_function(prog, f"{family}_{_TAG[dtype]}_{suffix}", dtype, printer, "DK_Q")
        head, body = text.split("\n{\n", 1)
        unused = [prog.names[a] for a in prog.args
                  if not re.search(rf"\b{re.escape(prog.names[a])}\b", body)]
        voids = "".join(f"    (void){n};\n" for n in unused)
        out.append(f"{head}\n{{\n{voids}{body}")
    return out


def forms_header(f, *, target: str, dtypes=("float32", "float64"), params=None,
                 name: str | None = None) -> str:
    """The generated ``divkit_forms.h`` of ``f`` for ``target`` ("c" or "cuda")."""
    bound = forms(f, **(params or {}))
    return forms_header_of(bound.family_forms, target=target, dtypes=dtypes,
                           name=name or family_name(f, bound))


def forms_header_of(ff, *, target: str, dtypes, name: str) -> str:
    """:func:`forms_header` of the family forms ``ff`` (one header serves every parameter
    value of the family region), with ``DK_FAMILY`` = ``name``."""
    from numeric.codegen import CODEGEN_VERSION

    family = name
    theta = list(ff.theta)
    cuda = target == "cuda"
    lines = [
        "divkit_forms.h — generated by numeric.codegen (kernel_files); do not edit",
        f"codegen version: {CODEGEN_VERSION}; sympy {sympy.__version__}",
        f"family: {ff!r}; run-time parameters cst[0:{len(theta)}] = "
        f"({', '.join(map(str, theta))})",
        f"f(u) = {sympy.sstr(ff._gen)}",
        f"forms hash: sha256:{forms_hash(ff)}",
        "D_f(P||Q) = sum_i q_i f(p_i/q_i), P = softmax(teacher/T), Q = softmax(student/T)",
        "dD/d(student_j) = q_j (g_j - sum_i q_i g_i),  g = f(r) - r f'(r) - c_g",
        "dD/d(teacher_j) = p_j (h_j - sum_i p_i h_i),  h = f'(r) - c_h",
    ]
    for el in (ff.loss, ff.grad_student, ff.grad_teacher):
        lines.append(f"{el.name}: lo = {sympy.sstr(el.lo)}")
        lines.append(f"{el.name}: hi = {sympy.sstr(el.hi)}")
    lines.append("zero-mass limits and Taylor series near r = 1: per value, in cst "
                 "(numeric/_abi.py)")
    head = "".join(f"// {line}\n" for line in lines)
    defines = [("DK_FAMILY", family)] + _abi.c_defines(len(theta))
    if not cuda:
        prob = _prob_specs(ff)
        arith = _arithmetic(prob[0][1]) and _arithmetic(prob[1][1])
        defines.append(("DK_PROB_ARITHMETIC", "1" if arith else "0"))
    body = [head]
    body += [f"#undef {k}\n#define {k} {v}".rstrip() for k, v in defines]
    sections = {}
    for dtype in dtypes:
        parts = []
        if cuda:
            ctype = "float" if dtype == "float32" else "double"
            params_text = ", ".join(
                f"{t.replace('T', ctype)}{'' if t.endswith('*') else ' '}{n}"
                for t, n in _abi.ROW_KERNEL_SIGNATURE)
            parts.append(f'extern "C" __global__ void {family}_{_TAG[dtype]}_rows('
                         f"{params_text});")
        parts += _print_functions(_row_specs(ff), theta, family, dtype, cuda)
        if not cuda:
            parts += _print_functions(_ratio_specs(ff), theta, family, dtype, cuda, plain=True)
            parts += _print_functions(_prob_specs(ff), theta, family, dtype, cuda, plain=True)
        sections[dtype] = "\n".join(parts)
    if len(sections) == 2:
        body.append("#if DK_F32\n" + sections["float32"] + "#else\n" + sections["float64"]
                    + "#endif")
    else:
        (dtype, text), = sections.items()
        want = "DK_F32" if dtype == "float32" else "!DK_F32"
        body.append(f"#if {want}\n{text}#endif")
    return "\n".join(body) + "\n"


# --------------------------------------------------------------------------- files


def _needed(entry: str, files: dict[str, str]) -> list[str]:
    """The files ``entry`` includes (transitively, in first-use order), itself first."""
    seen: list[str] = []

    def walk(name):
        if name in seen:
            return
        seen.append(name)
        for inc in _INCLUDE.findall(files[name]):
            if inc in files:
                walk(inc)

    walk(entry)
    return seen


def amalgamate(files: dict[str, str], entry: str) -> str:
    """``files[entry]`` with every local ``#include "name"`` replaced by that file's text
    (recursively, as often as it is included: the headers are instantiated per dtype)."""

    def expand(name, depth):
        if depth > 16:
            raise ValueError(f"#include nesting too deep at {name!r}")

        def sub(m):
            inc = m.group(1)
            if inc not in files:
                return m.group(0)
            return f"/* ---- {inc} ---- */\n" + expand(inc, depth + 1)

        return _INCLUDE.sub(sub, files[name])

    return expand(entry, 0)


def _readme(f, bound, family: str, target: str, dtype: str, entry: str) -> str:
    ff = bound.family_forms
    theta_names = [str(s) for s in ff.theta]
    lay = _abi.layout(len(theta_names))
    tag = _TAG[dtype]
    ctype = "float" if dtype == "float32" else "double"

    def sig(name, spec, t):
        args = ",\n    ".join(f"{a.replace('T', t)}{'' if a.endswith('*') else ' '}{n}"
                              for a, n in spec)
        return f"{name}(\n    {args})"

    lines = [f"# divkit kernels for {ff!r}", "",
             f"Generated by `numeric.codegen.kernel_files` (target `{target}`, dtype `{dtype}`).",
             "P = softmax(teacher / T) is the first argument, Q = softmax(student / T) the "
             "second; D_f(P||Q) = sum_i q_i f(p_i / q_i).", ""]
    if target == "cuda":
        lines += ["## Entry point", "", "```c",
                  'extern "C" __global__ void '
                  + sig(f"{family}_{tag}_rows", _abi.ROW_KERNEL_SIGNATURE, ctype) + ";", "```",
                  "", "One block per row (the kernel strides over rows), `blockDim.x` a "
                  "multiple of 32 up to 1024, no dynamic shared memory. `keep`: NULL or one "
                  "byte per row (0 drops it); `loss`: one value per row; gradients rows x V or "
                  "NULL, with respect to the raw logits when `grad_scale = 1/temperature`. "
                  "Compile without fast-math.", "", "## Build and launch", "", "```python",
                  "import cupy as cp, numpy as np",
                  "from numeric.codegen import kernel_constants",
                  f"src = open('{entry}').read()  # includes the other files (-I this folder)",
                  "mod = cp.RawModule(code=src, options=('-I.', '--std=c++17'))",
                  f"fn = mod.get_function('{family}_{tag}_rows')",
                  f"offsets, cst = kernel_constants({f!r})",
                  "fn((rows,), (256,), (np.int64(rows), np.int64(V), teacher, student, "
                  f"np.{'float32' if tag == 'f32' else 'float64'}(1.0), "
                  f"np.{'float32' if tag == 'f32' else 'float64'}(1.0), None, cp.asarray(cst), "
                  "loss, grad_student, grad_teacher))", "```"]
    elif target == "c":
        lines += ["## Entry points", "", "```c",
                  "void " + sig(f"{family}_f64_rows_in{tag}", _abi.HOST_ROWS_SIGNATURE, ctype)
                  + ";",
                  "void " + sig(f"{family}_f64_prob_rows_{tag}", _abi.PROB_ROWS_SIGNATURE, ctype)
                  + ";", "```", "",
                  "Arithmetic in double for both input types; `status` per row: bit 0 valid "
                  "logits, bit 1 loss not finite, bit 2 a gradient sum not finite. Build:", "",
                  "```sh",
                  f"cc -O3 -march=native -fopenmp-simd -fno-math-errno -fno-trapping-math "
                  f"-ffp-contract=off -DDK_VECTOR_MATH -shared -fPIC -o kernel.so {entry} "
                  "-lmvec -lm", "```", "",
                  "Call from the same process with `ctypes` (the GIL is released during the "
                  "call), rows split over threads as you like: rows are independent."]
    else:
        args = ", ".join(["ell", "w", *theta_names, "xp=numpy"])
        lines += ["## numpy", "",
                  f"Each `{family}_<element>_<lo|hi>.py` defines `{family}_<element>_<lo|hi>"
                  f"({args})` for arrays of any namespace: element `loss` (q F(r)), `gs` "
                  "(the student-gradient term q g(r)) or `gt` (the teacher-gradient term "
                  "p h(r)); branch `lo` takes ell = log(p/q) <= 0 and w = q, `hi` takes "
                  "ell > 0 and w = p. Summed over a row, `loss` is "
                  "D_f(P||Q) - f'(1) sum_i (p_i - q_i)."]
    lines += ["", "## cst layout (float64)", "", "| offset | meaning |", "|---|---|"]
    lines += [f"| {o} | {m} |" for o, m in _abi.describe(len(theta_names), theta_names)]
    lines += ["", f"Size {lay['SIZE']}; named offsets in `divkit_forms.h` "
              "(`DK_CST_*`, `DK_EL_*`, `DK_FLAG_*`). `kernel_constants(f, params=...)` returns "
              "the offsets and the array for a parameter value."]
    return "\n".join(lines) + "\n"


def _numpy_files(bound, family: str) -> dict[str, str]:
    """``{<family>_<element>_<lo|hi>.py: numpy source}``: the lo form in (ell, q) and the hi
    form in (ell, p) of the loss and both gradient terms, parameters as arguments."""
    from numeric.codegen import source

    ff = bound.family_forms
    out = {}
    for cname, attr in _ROW_ELEMENTS[:3]:
        el = getattr(ff, attr)
        for branch, expr, w in (("lo", el.lo, Q), ("hi", el.hi, P)):
            name = f"{family}_{cname}_{branch}"
            out[f"{name}.py"] = source(expr, target="numpy", name=name,
                                       args=[ELL, w, *ff.theta])
    return out


def kernel_files(f, *, target: str, dtype: str = "float32", params=None) -> dict[str, str]:
    """The self-contained kernel sources of ``f``: ``{relative file name: text}``.

    Parameters
    ----------
    f : str, theory.fdiv.Family or theory.fdiv.FDivergence
        The divergence (a catalog name, a family, or a member).
    target : {"c", "cuda", "numpy"}
        ``"cuda"``: the CUDA row kernel (``divkit_rows.cu``); ``"c"``: the host row kernel and
        probability kernel (``divkit_host.c``); ``"numpy"``: one Python module per element
        form (``<family>_<loss|gs|gt>_<lo|hi>.py``, each defining that function for any
        array namespace), the forms every kernel evaluates.
    dtype : {"float32", "float64"}
        The element dtype of the CUDA kernel (the host kernels compute in double and take
        both input types).
    params : dict, optional
        Parameter values; they choose the family's forms (its region near a special value),
        the values themselves are run-time constants (:func:`kernel_constants`).

    Returns
    -------
    dict of str to str
        The fixed files the entry includes, the generated ``divkit_forms.h`` and a
        ``README.md`` with each entry point's C signature, the ``cst`` layout and a launch
        example.

    Examples
    --------
    >>> files = kernel_files("kl", target="c")
    >>> sorted(files)[:3]
    ['README.md', 'divkit_common.h', 'divkit_dtype_f64.h']
    >>> "divkit_kl_f64_rows_inf32(" in files["README.md"]
    True
    """
    if target not in ("c", "cuda", "numpy"):
        raise ValueError(f"target: expected 'c', 'cuda' or 'numpy', got {target!r}")
    if dtype not in _TAG:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    bound = forms(f, **(params or {}))
    family = family_name(f, bound)
    fixed = fixed_files()
    out: dict[str, str] = {}
    if target == "numpy":
        out.update(_numpy_files(bound, family))
    for t in () if target == "numpy" else (target,):
        entry = ENTRY_FILES[t]
        forms_text = forms_header(f, target=t, params=params, name=family,
                                  dtypes=("float32", "float64") if t == "cuda" else ("float64",))
        files = dict(fixed)
        files["divkit_forms.h"] = forms_text
        for name in _needed(entry, files):
            out[name] = files[name]
    readme_target = target
    out["README.md"] = _readme(f, bound, family, readme_target, dtype,
                               ENTRY_FILES.get(target, "divkit_host.c"))
    return dict(sorted(out.items()))


def kernel_constants(f, *, params=None) -> tuple[dict[str, int], np.ndarray]:
    """The named ``cst`` offsets and the float64 constants array of ``f`` at ``params``.

    Returns
    -------
    offsets : dict of str to int
        ``THETA``, ``LOSS``, ``GS``, ``GT``, ``NGS``, ``NGT``, ``FLAGS``, ``SIZE`` and the
        in-block offsets ``EL_AT_P_ZERO``, ``EL_AT_Q_ZERO``, ``EL_RADIUS``, ``EL_SERIES``,
        ``FLAG_USE_NEAR_S``, ``FLAG_USE_NEAR_T``, ``FLAG_THRESHOLD_S``, ``FLAG_THRESHOLD_T``.
    cst : numpy.ndarray
        float64, read-only.

    Examples
    --------
    >>> offsets, cst = kernel_constants("alpha", params={"alpha": 0.3})
    >>> float(cst[offsets["THETA"]]), cst.size == offsets["SIZE"]
    (0.3, True)
    """
    bound = forms(f, **(params or {}))
    offsets = dict(_abi.layout(len(bound.family_forms.theta)))
    offsets.update({f"EL_{k}": v for k, v in _abi.ELEMENT_FIELDS.items()})
    offsets.update({f"FLAG_{k}": v for k, v in _abi.FLAG_FIELDS.items()})
    return offsets, _abi.kernel_constants(bound)
