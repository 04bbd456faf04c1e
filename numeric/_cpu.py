r"""The compiled CPU path of :func:`numeric.divergence` (probabilities in, one pass).

One C kernel per family region (:class:`numeric._forms.FamilyForms`), printed from the same
loss forms as the numpy, host-C and CUDA row kernels and taking the parameters at run time
through the same ``cst`` array (:func:`numeric._cuda_sources.kernel_constants`). Per element
it computes :math:`r = p/q` once and evaluates the standardised term :math:`q F(r) \ge 0`:

* the branch weighted by the larger probability (``lo``: weight :math:`q`, :math:`r \le 1`;
  ``hi``: weight :math:`p`, :math:`s = q/p < 1`), with every :math:`e^{c\ell}` of the form
  (:math:`c` rational) written as a power of :math:`r` or :math:`s` and :math:`\mathrm{expm1}
  (c\ell)` as that power minus one. Nothing is lost: :math:`\ell = \log r` carries no more
  information than the rounded :math:`r`, and :math:`r^{\pm 1} - 1` is exact on
  :math:`[1/2, 2]` (Sterbenz); one ``log`` (for :math:`\ell`) per element instead of a
  ``log`` and several ``exp``;
* the Taylor polynomial of the term in :math:`\ell` where :math:`|\ell|` is below its radius
  (the per-value coefficients of :mod:`numeric._series`), as every other kernel;
* the zero-mass limits :math:`q F(0^+)`, :math:`p \lim F(u)/u` where :math:`p = 0` or
  :math:`q = 0`;
* the log-weight forms (weights inside the exponentials) where :math:`r` is not a normal
  float or the term overflowed.

Rows are summed with Neumaier's compensation, the standardised terms and
:math:`\sum_i (p_i - q_i)` separately (the caller adds :math:`f'(1)\sum_i (p_i - q_i)`).
Rows are spread over threads: Python threads calling the C function, which runs without
the GIL (no OpenMP runtime, which is not fork-safe); ``DIVKIT_NUM_THREADS`` sets the
count. float32 input is read as is and computed in float64. Without a C compiler the
numpy path of :mod:`numeric._kernels` answers; ``DIVKIT_NO_CC=1`` forces it.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading

import numpy as np
import sympy

from numeric._forms import ELL, LOG_P, LOG_Q, P, Q, log_weighted

__all__ = ["available", "divergence_rows"]

_R = sympy.Symbol("dk_r", positive=True)  # p/q (lo branch) or q/p (hi branch)

_KERNEL = """
static inline double {NAME}_slow(double p, double q, const double *cst)
{{
    /* the zero-mass limits, and the weights inside the exponentials where r = p/q is
       not a normal float or the term overflowed */
    if (p == 0.0 || q == 0.0) {{
        if (p == 0.0 && q == 0.0) {{
            return 0.0;
        }}
        return p == 0.0 ? dk_limit(q, cst[{LOSS_C}]) : dk_limit(p, cst[{LOSS_C} + 1]);
    }}
    const double a = log(p), b = log(q), ell = a - b;
    if (fabs(ell) < cst[{LOSS_C} + 2]) {{
        return q * dk_poly(cst + {LOSS_C} + 3, ell);
    }}
    double out;
    if (ell <= 0.0) {{
        out = {NAME}_lo_log(ell, b{TH});
        if (!isfinite(out)) {{
            out = {NAME}_lo_exp(ell, b{TH});
        }}
    }} else {{
        out = {NAME}_hi_log(ell, a{TH});
        if (!isfinite(out)) {{
            out = {NAME}_hi_exp(ell, a{TH});
        }}
    }}
    /* still not finite: NaN marks the row for the numpy evaluation, which has the
       family's general forms as a further fallback */
    return isfinite(out) ? out : NAN;
}}

"""

_ROWS = """
void {NAME}_rows_{TAG}(long long rows, long long V, const {IN} *restrict p,
    const {IN} *restrict q, const double *restrict cst, double *restrict std_sum,
    double *restrict diff, double *restrict spread, unsigned char *restrict status)
{{
    /* std_sum[row] = sum_i q_i F(p_i/q_i), diff[row] = sum_i (p_i - q_i), spread[row] =
       sum_i |p_i - q_i| (the scale of the rounding error of diff); status[row]:
       1 done, 0 an entry is negative, NaN or infinite (the caller then raises), 2 a term
       no C form could evaluate (the caller evaluates the row in numpy). Blocks of
       DK_BLOCK elements in passes: ratios, logs, terms, the rare fixes, the sums. */
    for (long long row = 0; row < rows; ++row) {{
        const {IN} *pr = p + row * V;
        const {IN} *qr = q + row * V;
        double s = 0.0, c = 0.0, d = 0.0, dc = 0.0, m = 0.0;
        int ok = 1, redo = 0;
        double r[DK_BLOCK], ell[DK_BLOCK], t[DK_BLOCK];
        int iser[DK_BLOCK], ibad[DK_BLOCK];
        double se[DK_BLOCK];
        const double rad = cst[{LOSS_C} + 2];
        for (long long i0 = 0; i0 < V; i0 += DK_BLOCK) {{
            const int n = V - i0 < DK_BLOCK ? (int)(V - i0) : DK_BLOCK;
            const {IN} *pb = pr + i0;
            const {IN} *qb = qr + i0;
            double db = 0.0, mb = 0.0;
#pragma omp simd reduction(+:db, mb) reduction(&:ok)
            for (int j = 0; j < n; ++j) {{
                const double pj = (double)pb[j], qj = (double)qb[j];
                ok &= (pj >= 0.0) & (qj >= 0.0) & (pj <= DBL_MAX) & (qj <= DBL_MAX);
                r[j] = pj / qj;
                db += pj - qj;
                mb += fabs(pj - qj);
            }}
            for (int j = 0; j < n; ++j) {{
                /* log p/q = log r - log(1 + d), r = (p/q)(1 + d) rounded: the rounding d of
                   the ratio, exact from the fma residual r q - p, is all of ell when the rows
                   differ by a few ulps (log r alone: TV and chi2 of rows 1 ulp apart 10 % off) */
                ell[j] = log(r[j]) - fma(r[j], (double)qb[j], -(double)pb[j]) / (double)pb[j];
            }}
{FORMS}
            /* the series on the gathered elements (contiguous: the loop vectorises) */
            for (int k = 0; k < nser; ++k) {{
                se[k] = ell[iser[k]];
            }}
#pragma omp simd
            for (int k = 0; k < nser; ++k) {{
                se[k] = dk_poly(cst + {LOSS_C} + 3, se[k]);
            }}
            for (int k = 0; k < nser; ++k) {{
                const int j = iser[k];
                t[j] = (double)qb[j] * se[k];
            }}
            for (int k = 0; k < nbad; ++k) {{
                const int j = ibad[k];
                t[j] = {NAME}_slow((double)pb[j], (double)qb[j], cst);
                redo |= isnan(t[j]);
            }}
            double sb = 0.0;
#pragma omp simd reduction(+:sb)
            for (int j = 0; j < n; ++j) {{
                sb += t[j];
            }}
            if (!isfinite(sb)) {{
                /* an overflow (or a NaN from the branch not taken): those terms again,
                   the slow way; an infinite zero-mass limit stays infinite */
                sb = 0.0;
                for (int j = 0; j < n; ++j) {{
                    if (!isfinite(t[j])) {{
                        t[j] = {NAME}_slow((double)pb[j], (double)qb[j], cst);
                    }}
                    redo |= isnan(t[j]);
                    sb += t[j];
                }}
            }}
            dk_neumaier(&s, &c, sb);
            dk_neumaier(&d, &dc, db);
            m += mb;
        }}
        std_sum[row] = isfinite(s) ? s + c : s;
        diff[row] = d + dc;
        spread[row] = m;
        status[row] = (unsigned char)(ok ? (redo ? 2 : 1) : 0);
    }}
}}
"""

#: sum_i (p_i - q_i) to (almost) the exact value, for rows where f'(1) times its rounding
#: error would show in the divergence (f'(1) large, or the divergence tiny).
_DIFF = """
void {NAME}_diff_{TAG}(long long rows, long long V, const {IN} *restrict p,
    const {IN} *restrict q, const unsigned char *restrict sel, double *restrict diff)
{{
    for (long long row = 0; row < rows; ++row) {{
        if (!sel[row]) {{
            continue;
        }}
        const {IN} *pr = p + row * V;
        const {IN} *qr = q + row * V;
        double s = 0.0, c = 0.0;
        for (long long i = 0; i < V; ++i) {{
            dk_neumaier(&s, &c, (double)pr[i]);
            dk_neumaier(&s, &c, -(double)qr[i]);
        }}
        diff[row] = s + c;
    }}
}}
"""

#: lo and hi forms of arithmetic and square roots only: both computed, blended with an
#: exact 0/1 weight (no comparison in the loop, so that it vectorises); an overflow in
#: the branch not taken gives NaN, which the overflow pass then recomputes.
_BLEND = """#pragma omp simd
            for (int j = 0; j < n; ++j) {{
                const double e = ell[j], pj = (double)pb[j], qj = (double)qb[j];
                const double lo = {NAME}_lo(e, qj, r[j]{TH});
                const double hi = {NAME}_hi(e, pj, qj / pj{TH});
                const double m = 0.5 - copysign(0.5, e); /* 1 for ell < 0, 0 for ell > 0 */
                t[j] = m * lo + (1.0 - m) * hi;
            }}
            /* the elements near r = 1 (series) and the ratios that are not normal floats
               (slow), listed branch-free */
            int nser = 0, nbad = 0;
            for (int j = 0; j < n; ++j) {{
                const int normal = (r[j] >= DBL_MIN) & (r[j] <= DBL_MAX);
                iser[nser] = j;
                nser += normal & (fabs(ell[j]) < rad);
                ibad[nbad] = j;
                nbad += !normal;
            }}"""

#: lo and hi forms with further calls (log1p, exp, ...): the block sorted into lists,
#: branch-free, each list through its own form (no mispredicted branch, no wasted call).
_LISTS = """            int ilo[DK_BLOCK], ihi[DK_BLOCK];
            int nser = 0, nlo = 0, nhi = 0, nbad = 0;
            for (int j = 0; j < n; ++j) {{
                const double e = ell[j];
                const int normal = (r[j] >= DBL_MIN) & (r[j] <= DBL_MAX);
                const int ser = normal & (fabs(e) < rad);
                const int lo = normal & !ser & (e <= 0.0);
                iser[nser] = j;
                nser += ser;
                ilo[nlo] = j;
                nlo += lo;
                ihi[nhi] = j;
                nhi += normal & !ser & !lo;
                ibad[nbad] = j;
                nbad += !normal;
            }}
            for (int k = 0; k < nlo; ++k) {{
                const int j = ilo[k];
                t[j] = {NAME}_lo(ell[j], (double)qb[j], r[j]{TH});
            }}
            for (int k = 0; k < nhi; ++k) {{
                const int j = ihi[k];
                t[j] = {NAME}_hi(ell[j], (double)pb[j], (double)qb[j] / (double)pb[j]{TH});
            }}"""

_COMMON = """#include <float.h>
#include <math.h>

#define DK_BLOCK 256

static inline double dk_limit(double w, double c)
{{
    /* the zero-mass term w * c, or c itself when the limit is infinite (or NaN) */
    return isfinite(c) ? w * c : c;
}}

static inline double dk_poly(const double *c, double x)
{{
    /* the {K} Taylor coefficients c[0..{K}) of the term around ell = 0, Estrin's scheme
       written out (no loop, independent products: a block of elements vectorises) */
{ESTRIN}
}}

static inline void dk_neumaier(double *s, double *c, double x)
{{
    /* s + c += x, Neumaier's compensated sum; an infinite sum stays in s alone */
    const double t = *s + x;
    if (isfinite(t)) {{
        *c += fabs(*s) >= fabs(x) ? (*s - t) + x : (x - t) + *s;
    }}
    *s = t;
}}
"""


def _power_of_ratio(coeff, ratio):
    """``e^{c ell}`` as a power of ``ratio`` (= e^{±ell}) for a rational ``c``, else None."""
    if not coeff.is_Rational or coeff == 0 or coeff.q > 2 or abs(coeff) > 4:
        return None
    return ratio ** coeff


def _in_ratio(expr, sign: int):
    """``expr`` with ``exp(c ell)``/``expm1(c ell)``/``softplus(c ell)`` written with
    ``_R = e^{sign ell}`` where ``c`` is a small rational (see the module docstring)."""
    from numeric.codegen.nodes import expm1, softplus

    def coeff_of(arg):
        c, rest = arg.as_coeff_Mul()
        if rest != ELL:
            return None
        return sympy.Rational(c) * sign if c.is_Rational else None

    def rule(e):
        if isinstance(e, sympy.exp):
            c = coeff_of(e.args[0])
            power = None if c is None else _power_of_ratio(c, _R)
            return e if power is None else power
        if isinstance(e, expm1):
            c = coeff_of(e.args[0])
            power = None if c is None else _power_of_ratio(c, _R)
            return e if power is None else power - 1
        if isinstance(e, softplus):
            c = coeff_of(e.args[0])
            power = None if c is None else _power_of_ratio(c, _R)
            return e if power is None else sympy.log(1 + power)
        return e

    return expr.replace(lambda e: isinstance(e, (sympy.exp, expm1, softplus)), rule)


def _estrin(k: int) -> str:
    """C statements evaluating sum_{i<k} c[i] x^i by Estrin's scheme, straight-line."""
    lines = []
    level = [f"c[{i}]" for i in range(k)]
    power, depth = "x", 0
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            name = f"e{depth}_{i // 2}"
            lines.append(f"const double {name} = {level[i]} + {level[i + 1]} * {power};")
            nxt.append(name)
        if len(level) % 2:
            nxt.append(level[-1])
        if len(nxt) > 1:
            lines.append(f"const double x{2 ** (depth + 1)} = {power} * {power};")
            power = f"x{2 ** (depth + 1)}"  # x2, x4, x8, ...
        level, depth = nxt, depth + 1
    lines.append(f"return {level[0]};")
    return "\n".join("    " + line for line in lines)


@functools.lru_cache(maxsize=256)
def _single_program(expr, args: tuple):
    """cse of one element expression (a value-returning C function). No rewrite pass: the
    forms are final (numeric._forms applied the passes), and the stability rewrites would
    turn sqrt(r) - 1 back into expm1(log(r)/2), a log and an expm1 where a sqrt does."""
    from numeric.codegen._source import program

    return program(expr, list(args), passes=())


def _arithmetic(expr) -> bool:
    """Whether ``expr`` is rational arithmetic and square roots only (cheap to evaluate
    on both branches)."""
    for e in sympy.preorder_traversal(expr):
        if isinstance(e, sympy.Function):
            return False
        if isinstance(e, sympy.Pow) and not (e.exp.is_Integer or abs(e.exp) == sympy.S.Half):
            return False
    return True


def kernel_source(ff, name: str) -> str:
    """The C source of the probability kernel of the family forms ``ff`` (both input
    dtypes; element arithmetic in float64)."""
    from numeric._cuda_sources import constants_layout
    from numeric._series import SERIES_TERMS
    from numeric.codegen._source import _c_function, _c_helper
    from numeric.codegen.printers import CPrinter

    theta = list(ff.theta)
    el = ff.loss
    specs = [
        ("lo", _in_ratio(el.lo, +1), [ELL, Q, _R]),
        ("hi", _in_ratio(el.hi, -1), [ELL, P, _R]),
        ("lo_log", log_weighted(el.lo, Q, LOG_Q), [ELL, LOG_Q]),
        ("hi_log", log_weighted(el.hi, P, LOG_P), [ELL, LOG_P]),
        ("lo_exp", log_weighted(el.lo, Q, LOG_Q, elementary=True), [ELL, LOG_Q]),
        ("hi_exp", log_weighted(el.hi, P, LOG_P, elementary=True), [ELL, LOG_P]),
    ]
    qualifier = "static inline"
    functions, kinds = [], set()
    for suffix, expr, args in specs:
        prog = _single_program(expr, tuple(args + theta))
        printer = CPrinter("float64", prog.names)
        functions.append(_c_function(prog, f"{name}_{suffix}", "float64", printer, qualifier))
        kinds |= printer.helpers_used
    layout = constants_layout(len(theta))
    fill = {
        "NAME": name,
        "LOSS_C": str(layout["LOSS"]),
        "K": str(SERIES_TERMS),
        "ESTRIN": _estrin(SERIES_TERMS),
        "TH": "".join(f", cst[{k}]" for k in range(len(theta))),
    }
    arithmetic = _arithmetic(specs[0][1]) and _arithmetic(specs[1][1])
    fill["FORMS"] = (_BLEND if arithmetic else _LISTS).format(**fill)
    parts = [_COMMON.format(**fill)]
    parts += [_c_helper(k, "float64", qualifier) for k in sorted(kinds)]
    parts += functions
    parts.append(_KERNEL.format(**fill))
    for tag, ctype in (("f64", "double"), ("f32", "float")):
        parts.append(_ROWS.format(TAG=tag, IN=ctype, **fill))
        parts.append(_DIFF.format(TAG=tag, IN=ctype, **fill))
    return "\n".join(parts)


_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _flags() -> tuple | None:
    """The compiler flags, or None without a compiler (or with ``DIVKIT_NO_CC`` set)."""
    from numeric.codegen._runtime import C_FLAGS, find_cc

    if os.environ.get("DIVKIT_NO_CC") or find_cc() is None:
        return None
    # -fopenmp-simd: the simd pragmas only (no OpenMP runtime, which is not fork-safe);
    # rows are spread over Python threads (ctypes releases the GIL)
    return tuple(f for f in C_FLAGS if f != "-O2") + ("-O3", "-fopenmp-simd", "-fno-math-errno")


def threads() -> int:
    """Threads the compiled path uses: ``DIVKIT_NUM_THREADS``, else the CPUs this process
    may run on."""
    env = os.environ.get("DIVKIT_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"DIVKIT_NUM_THREADS must be an integer, got {env!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


#: Fewest elements per thread worth a thread.
_MIN_ELEMENTS_PER_THREAD = 1 << 16


def _run_rows(fn, rows: int, v: int, arrays, itemsizes):
    """``fn(rows, V, *pointers)`` over row ranges in parallel threads; the pointer of
    ``arrays[k]`` advances by ``itemsizes[k]`` bytes per row (0: the same for every row)."""
    n = min(threads(), rows, max(1, rows * v // _MIN_ELEMENTS_PER_THREAD))
    bounds = [rows * k // n for k in range(n + 1)]

    def call(lo, hi):
        if hi > lo:
            fn(hi - lo, v, *[None if a is None else a.ctypes.data + lo * step
                             for a, step in zip(arrays, itemsizes, strict=True)])

    if n == 1:
        call(0, rows)
        return
    workers = [threading.Thread(target=call, args=(bounds[k], bounds[k + 1]))
               for k in range(1, n)]
    for w in workers:
        w.start()
    call(bounds[0], bounds[1])
    for w in workers:
        w.join()


def available() -> bool:
    """Whether the compiled path can run here (a C compiler was found)."""
    return _flags() is not None


_memo: dict[str, object] = {}


def _library(ff):
    from numeric._cuda_sources import _forms_hash
    from numeric.codegen import compile_c

    key = ff.__dict__.get("_cpu_key")
    if key is None:
        key = ff.__dict__["_cpu_key"] = _forms_hash(ff)
    lib = _memo.get(key)
    if lib is None:
        with _lock:
            lib = _memo.get(key)
            if lib is None:
                lib = compile_c(kernel_source(ff, "dk_prob"), flags=_flags())
                for tag in ("f64", "f32"):
                    fn = getattr(lib, f"dk_prob_rows_{tag}")
                    fn.argtypes = [ctypes.c_longlong, ctypes.c_longlong] + [ctypes.c_void_p] * 7
                    fn.restype = None
                    fn = getattr(lib, f"dk_prob_diff_{tag}")
                    fn.argtypes = [ctypes.c_longlong, ctypes.c_longlong] + [ctypes.c_void_p] * 4
                    fn.restype = None
                _memo[key] = lib
    return lib


def divergence_rows(bound, p, q):
    """Row sums ``(sum q F(p/q), sum (p - q), status)`` of 2-D C-contiguous arrays of one
    dtype (float32 or float64), float64 sums; ``status`` is 1 on finished rows, 0 on rows
    with a negative, NaN or infinite entry, 2 on rows to evaluate in numpy;
    ``bound`` a :class:`numeric._forms.BoundForms`."""
    from numeric._cuda_sources import kernel_constants

    lib = _library(bound.family_forms)
    tag = "f32" if p.dtype == np.float32 else "f64"
    rows, v = p.shape
    cst = kernel_constants(bound)
    std_sum = np.empty(rows, dtype=np.float64)
    diff = np.empty(rows, dtype=np.float64)
    spread = np.empty(rows, dtype=np.float64)
    status = np.empty(rows, dtype=np.uint8)
    row_bytes = v * p.itemsize
    _run_rows(getattr(lib, f"dk_prob_rows_{tag}"), rows, v,
              [p, q, cst, std_sum, diff, spread, status], [row_bytes, row_bytes, 0, 8, 8, 8, 1])
    # f'(1) sum(p - q) is added to the standardised sum: where the rounding error of the
    # blockwise sum (about 2^-50 sum |p - q|) times |f'(1)| could reach 2^-46 of the
    # result, the sum again, compensated per element
    df1 = abs(bound.df_at_one)
    if df1 != 0.0:
        with np.errstate(invalid="ignore"):
            sel = (status == 1) & (df1 * 2.0 ** -50 * spread > 2.0 ** -46 * np.abs(std_sum))
        if sel.any():
            sel8 = np.ascontiguousarray(sel, dtype=np.uint8)
            _run_rows(getattr(lib, f"dk_prob_diff_{tag}"), rows, v, [p, q, sel8, diff],
                      [row_bytes, row_bytes, 1, 8])
    return std_sum, diff, status
