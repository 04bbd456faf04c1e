r"""CUDA (and host C) source of the fused from-logits divergence kernels, generated from f.

For a generator :math:`f` the per-element expressions of :mod:`numeric._forms` (the same
ones the numpy kernels evaluate: loss term :math:`qF(r)`, student-gradient term
:math:`q\hat g(r)`, teacher-gradient term :math:`p\hat h(r)`, each in a ``lo`` branch in
:math:`(\ell, q)` and a ``hi`` branch in :math:`(\ell, p)`, and the zero-mass limits) are
printed by :mod:`numeric.codegen` for CUDA and for host C, and wrapped in one row kernel:

.. code-block:: text

    pass 1  online log-sum-exp of the teacher and the student row (max M, compensated
            sum S of exp(x - M), rescaled when the max grows); -inf logits add nothing
    pass 2  per element: z = x - M, l = (z_t - z_s) - (log S_t - log S_s),
            p = exp(z_t)/S_t, q = exp(z_s)/S_s, terms from the lo branch (the hi branch
            where lo is not finite and l > 0; the zero-mass limits where a log-probability
            is -inf); compensated row sums D = Σ qF, m = Σ q g, m_t = Σ p h
    pass 3  grad_student = (q g - q m)·scale, grad_teacher = (p h - p m_t)·scale
            (NaN for the whole row where m or m_t is not finite)

with :math:`\partial D_f(P\|Q)/\partial b_j = q_j (g_j - \sum_i q_i g_i)` and
:math:`\partial D_f/\partial a_j = p_j (h_j - \sum_i p_i h_i)` (DESIGN.md, "The gradient
every from-logits kernel needs"); P = softmax(teacher/τ) first, Q = softmax(student/τ).

The row body is one text shared by both targets: on the host it runs with one "thread"
(``tid = 0, nthreads = 1``) and the block reductions are identities; on the GPU one block
handles a row (grid-stride over rows), ``blockDim.x`` a multiple of 32 (≤ 1024), and the
reductions use warp shuffles and 96 elements of shared memory. Every sum is compensated
(TwoSum), so the float32 kernels accumulate with float32 storage but about float64
accuracy. Compile without fast-math (``--use_fast_math`` would flush subnormals and use
approximate ``exp``/``log``).

Generated entry points, for ``T`` = ``float`` (``_f32``) and ``double`` (``_f64``)::

    void divkit_<name>_<f32|f64>_rows(long long rows, long long V,
        const T *teacher, const T *student, T temperature, T grad_scale,
        const unsigned char *keep,      /* NULL, or 0 drops a row: loss 0, gradients 0 */
        T *loss,                        /* rows; D_f(P||Q) per row, not reduced */
        T *grad_student, T *grad_teacher)   /* rows x V each, or NULL */

(host C: a plain function; CUDA: ``extern "C" __global__``). Logits are row-major and
contiguous; the gradients are with respect to the raw logits when
``grad_scale = 1/temperature``.

Sources are generated on demand (nothing is committed); ``python -m numeric._cuda_sources
DIR`` writes every catalog source into DIR, and ``tests/numeric/golden/`` keeps one golden
file per target that a test regenerates byte for byte.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import sys
from pathlib import Path

import numpy as np
import sympy

from numeric._forms import ELL, LOG_P, LOG_Q, P, Q, forms, log_weighted
from numeric._series import SERIES_TERMS
from numeric.codegen import CODEGEN_VERSION
from numeric.codegen._source import _c_function, _c_helper, program
from numeric.codegen.printers import DTYPES, CPrinter, CudaPrinter

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


def _base_name(f, family) -> str:
    """``divkit_<catalog name>`` (or the family's name, as an identifier)."""
    if isinstance(f, str):
        return f"divkit_{_slug(f)}"
    if family.key[0] == "catalog":
        return f"divkit_{_slug(family.key[1])}"
    return f"divkit_{_slug(family.name)}"


def _slug(name: str) -> str:
    text = "".join(c if c.isalnum() else "_" for c in str(name)).strip("_").lower()
    return text or "f"


# --------------------------------------------------------------------------- helpers

_HOST_REDUCE = """#define DK_BLOCK_LSE{S}(pm, ps, pc, pj) ((void)0)
#define DK_BLOCK_SUM{S}(s, c, phi, plo) dk_split{S}(s, c, phi, plo)"""

_COMMON = """{Q} {T} dk_limit{S}({T} w, double c)
{{
    /* the zero-mass term w * c, or c itself when the limit is infinite (or NaN) */
    return isfinite(c) ? w * ({T})c : ({T})c;
}}

{Q} {T} dk_poly{S}(const double *c, {T} x)
{{
    /* Horner on the {K} Taylor coefficients c[0..{K}) of an element around ell = 0 */
    {T} acc = ({T})c[{K} - 1];
    for (int k = {K} - 2; k >= 0; --k) {{
        acc = acc * x + ({T})c[k];
    }}
    return acc;
}}

{Q} void dk_two_sum{S}({T} *s, {T} *c, {T} x)
{{
    /* s + c += x with the rounding error of s + x kept in c (Knuth's TwoSum); an
       infinite sum stays in s alone (inf - inf in the error term would be NaN) */
    const {T} t = *s + x;
    if (isfinite(t)) {{
        const {T} bp = t - *s;
        *c += (*s - (t - bp)) + (x - bp);
    }}
    *s = t;
}}

{Q} void dk_split{S}({T} s, {T} c, {T} *hi, {T} *lo)
{{
    /* hi = fl(s + c) and the exact rest lo = s + c - hi (TwoSum); lo = 0 if hi is not
       finite */
    const {T} t = s + c;
    const {T} bp = t - s;
    *hi = t;
    *lo = isfinite(t) ? (s - (t - bp)) + (c - bp) : {ZERO};
}}

{Q} void dk_lse_push{S}({T} *m, {T} *s, {T} *c, long long *j, {T} x, long long i)
{{
    /* online row max m (first argmax j) and s + c = sum over i != j of exp(x_i - m):
       the max itself contributes the implicit 1, so 1 - p_j = s/(1 + s) keeps its
       relative accuracy on a nearly one-hot row; -inf adds nothing */
    if (x == {NEG_INF}) {{
        return;
    }}
    if (x > *m) {{
        if (*m != {NEG_INF}) {{
            const {T} f = exp{S}(*m - x);
            *s *= f;
            *c *= f;
            dk_two_sum{S}(s, c, f);
        }}
        *m = x;
        *j = i;
        return;
    }}
    dk_two_sum{S}(s, c, exp{S}(x - *m));
}}

{Q} void dk_lse_merge{S}({T} *m, {T} *s, {T} *c, long long *j, {T} m2, {T} s2, {T} c2,
    long long j2)
{{
    /* merge two partial (max, sum without the max, compensation, argmax) */
    if (m2 == {NEG_INF}) {{
        return;
    }}
    if (*m == {NEG_INF}) {{
        *m = m2;
        *s = s2;
        *c = c2;
        *j = j2;
        return;
    }}
    if (m2 > *m || (m2 == *m && j2 < *j)) {{
        const {T} f = exp{S}(*m - m2);
        *s *= f;
        *c *= f;
        dk_two_sum{S}(s, c, f);
        *m = m2;
        *j = j2;
    }} else {{
        const {T} f = exp{S}(m2 - *m);
        s2 *= f;
        c2 *= f;
        dk_two_sum{S}(&s2, &c2, f);
    }}
    dk_two_sum{S}(s, c, s2);
    *c += c2;
}}"""

_CUDA_REDUCE = """__device__ void dk_block_lse{S}({T} *m, {T} *s, {T} *c, long long *j, {T} *sh,
    long long *shj)
{{
    /* block-wide merge of (max, sum, compensation, argmax); every thread gets it */
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = threadIdx.x >> 5;
    const unsigned nwarps = (blockDim.x + 31u) >> 5;
    for (int o = 16; o > 0; o >>= 1) {{
        const {T} m2 = __shfl_xor_sync(0xffffffffu, *m, o);
        const {T} s2 = __shfl_xor_sync(0xffffffffu, *s, o);
        const {T} c2 = __shfl_xor_sync(0xffffffffu, *c, o);
        const long long j2 = __shfl_xor_sync(0xffffffffu, *j, o);
        dk_lse_merge{S}(m, s, c, j, m2, s2, c2, j2);
    }}
    __syncthreads();
    if (lane == 0) {{
        sh[warp] = *m;
        sh[32 + warp] = *s;
        sh[64 + warp] = *c;
        shj[warp] = *j;
    }}
    __syncthreads();
    if (warp == 0) {{
        {T} m1 = lane < nwarps ? sh[lane] : {NEG_INF};
        {T} s1 = lane < nwarps ? sh[32 + lane] : {ZERO};
        {T} c1 = lane < nwarps ? sh[64 + lane] : {ZERO};
        long long j1 = lane < nwarps ? shj[lane] : 0;
        for (int o = 16; o > 0; o >>= 1) {{
            const {T} m2 = __shfl_xor_sync(0xffffffffu, m1, o);
            const {T} s2 = __shfl_xor_sync(0xffffffffu, s1, o);
            const {T} c2 = __shfl_xor_sync(0xffffffffu, c1, o);
            const long long j2 = __shfl_xor_sync(0xffffffffu, j1, o);
            dk_lse_merge{S}(&m1, &s1, &c1, &j1, m2, s2, c2, j2);
        }}
        if (lane == 0) {{
            sh[0] = m1;
            sh[32] = s1;
            sh[64] = c1;
            shj[0] = j1;
        }}
    }}
    __syncthreads();
    *m = sh[0];
    *s = sh[32];
    *c = sh[64];
    *j = shj[0];
}}

__device__ void dk_block_sum{S}({T} s, {T} c, {T} *hi, {T} *lo, {T} *sh)
{{
    /* block-wide compensated sum; every thread gets it as hi + lo (hi = fl(sum)) */
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = threadIdx.x >> 5;
    const unsigned nwarps = (blockDim.x + 31u) >> 5;
    for (int o = 16; o > 0; o >>= 1) {{
        const {T} s2 = __shfl_xor_sync(0xffffffffu, s, o);
        const {T} c2 = __shfl_xor_sync(0xffffffffu, c, o);
        dk_two_sum{S}(&s, &c, s2);
        c += c2;
    }}
    __syncthreads();
    if (lane == 0) {{
        sh[warp] = s;
        sh[32 + warp] = c;
    }}
    __syncthreads();
    if (warp == 0) {{
        {T} s1 = lane < nwarps ? sh[lane] : {ZERO};
        {T} c1 = lane < nwarps ? sh[32 + lane] : {ZERO};
        for (int o = 16; o > 0; o >>= 1) {{
            const {T} s2 = __shfl_xor_sync(0xffffffffu, s1, o);
            const {T} c2 = __shfl_xor_sync(0xffffffffu, c1, o);
            dk_two_sum{S}(&s1, &c1, s2);
            c1 += c2;
        }}
        if (lane == 0) {{
            dk_split{S}(s1, c1, &sh[0], &sh[32]);
        }}
    }}
    __syncthreads();
    *hi = sh[0];
    *lo = sh[32];
}}

#define DK_BLOCK_LSE{S}(pm, ps, pc, pj) dk_block_lse{S}(pm, ps, pc, pj, dk_shared, dk_shared_j)
#define DK_BLOCK_SUM{S}(s, c, phi, plo) dk_block_sum{S}(s, c, phi, plo, dk_shared)"""

_ROW_BODY = """        const {T} *xt = teacher + row * V;
        const {T} *xs = student + row * V;
        if (keep != 0 && keep[row] == 0) {{
            if (tid == 0) {{
                loss[row] = {ZERO};
            }}
            for (long long i = tid; i < V; i += nthreads) {{
                if (grad_student != 0) {{
                    grad_student[row * V + i] = {ZERO};
                }}
                if (grad_teacher != 0) {{
                    grad_teacher[row * V + i] = {ZERO};
                }}
            }}
            continue;
        }}
        /* pass 1: online max, argmax and sum of exp(x - max) without the max, both rows */
        {T} mt = {NEG_INF}, st = {ZERO}, ct = {ZERO};
        {T} ms = {NEG_INF}, ss = {ZERO}, cs = {ZERO};
        long long jt = 0, js = 0;
        for (long long i = tid; i < V; i += nthreads) {{
            dk_lse_push{S}(&mt, &st, &ct, &jt, unit ? xt[i] : xt[i] / temperature, i);
            dk_lse_push{S}(&ms, &ss, &cs, &js, unit ? xs[i] : xs[i] / temperature, i);
        }}
        DK_BLOCK_LSE{S}(&mt, &st, &ct, &jt);
        DK_BLOCK_LSE{S}(&ms, &ss, &cs, &js);
        {T} rs[4];
        rs[0] = st + ct;                 /* so_t: sum of exp(z_t) over i != argmax */
        rs[1] = ss + cs;                 /* so_s */
        rs[2] = log1p{S}(rs[0]);         /* log S_t */
        rs[3] = log1p{S}(rs[1]);         /* log S_s */
        /* pass 2: loss sum; gradient sums without the row's argmax term, and that term */
        {T} acc[10];
        for (int k = 0; k < 10; ++k) {{
            acc[k] = {ZERO};
        }}
        for (long long i = tid; i < V; i += nthreads) {{
            const {T} zt = (unit ? xt[i] : xt[i] / temperature) - mt;
            const {T} zs = (unit ? xs[i] : xs[i] / temperature) - ms;
            {T} lv, gv, hv;
            {NAME}_terms(zt, zs, rs, cst, &lv, &gv, &hv);
            dk_two_sum{S}(&acc[0], &acc[1], lv);
            if (i == js) {{
                acc[4] = gv;
            }} else {{
                dk_two_sum{S}(&acc[2], &acc[3], gv);
            }}
            if (i == jt) {{
                acc[7] = hv;
            }} else {{
                dk_two_sum{S}(&acc[5], &acc[6], hv);
            }}
        }}
        {T} d, d_lo, g_o, g_o_lo, g_j, g_j_lo, h_o, h_o_lo, h_j, h_j_lo;
        DK_BLOCK_SUM{S}(acc[0], acc[1], &d, &d_lo);
        DK_BLOCK_SUM{S}(acc[2], acc[3], &g_o, &g_o_lo);
        DK_BLOCK_SUM{S}(acc[4], {ZERO}, &g_j, &g_j_lo);
        DK_BLOCK_SUM{S}(acc[5], acc[6], &h_o, &h_o_lo);
        DK_BLOCK_SUM{S}(acc[7], {ZERO}, &h_j, &h_j_lo);
        if (tid == 0) {{
            loss[row] = d < {ZERO} ? {ZERO} : d;
        }}
        if (grad_student == 0 && grad_teacher == 0) {{
            continue;
        }}
        /* nearly equal rows: gradient forms that vanish at r = 1 (uniform per row) */
        const int near_s = cst[{FLAGS_C}] != 0.0 && (double)d < cst[{FLAGS_C} + 2];
        const int near_t = cst[{FLAGS_C} + 1] != 0.0 && (double)d < cst[{FLAGS_C} + 3];
        if (near_s || near_t) {{
            for (int k = 0; k < 10; ++k) {{
                acc[k] = {ZERO};
            }}
            for (long long i = tid; i < V; i += nthreads) {{
                const {T} zt = (unit ? xt[i] : xt[i] / temperature) - mt;
                const {T} zs = (unit ? xs[i] : xs[i] / temperature) - ms;
                {T} gv, hv;
                {NAME}_near_terms(zt, zs, rs, cst, &gv, &hv);
                if (i == js) {{
                    acc[4] = gv;
                }} else {{
                    dk_two_sum{S}(&acc[2], &acc[3], gv);
                }}
                if (i == jt) {{
                    acc[7] = hv;
                }} else {{
                    dk_two_sum{S}(&acc[5], &acc[6], hv);
                }}
            }}
            {T} a_o, a_o_lo, a_j, a_j_lo, b_o, b_o_lo, b_j, b_j_lo;
            DK_BLOCK_SUM{S}(acc[2], acc[3], &a_o, &a_o_lo);
            DK_BLOCK_SUM{S}(acc[4], {ZERO}, &a_j, &a_j_lo);
            DK_BLOCK_SUM{S}(acc[5], acc[6], &b_o, &b_o_lo);
            DK_BLOCK_SUM{S}(acc[7], {ZERO}, &b_j, &b_j_lo);
            if (near_s) {{
                g_o = a_o;
                g_o_lo = a_o_lo;
                g_j = a_j;
            }}
            if (near_t) {{
                h_o = b_o;
                h_o_lo = b_o_lo;
                h_j = b_j;
            }}
        }}
        /* m = sum_i w_i g_i as the exact pair (hi, lo); gradient w_j (g_j - m) = w g - w m
           rounded once (fma); at the argmax J: g_J (1 - w_J) - w_J sum_{{i != J}} w_i g_i,
           1 - w_J = so/(1 + so), so nothing cancels on a nearly one-hot row */
        {T} m_s, m_s_lo, m_t, m_t_lo;
        {{
            {T} s_ = g_o, c_ = g_o_lo;
            dk_two_sum{S}(&s_, &c_, g_j);
            dk_split{S}(s_, c_, &m_s, &m_s_lo);
            s_ = h_o;
            c_ = h_o_lo;
            dk_two_sum{S}(&s_, &c_, h_j);
            dk_split{S}(s_, c_, &m_t, &m_t_lo);
        }}
        const int ok_s = isfinite(m_s);
        const int ok_t = isfinite(m_t);
        const int flat = d == {ZERO};
        /* pass 3: write the gradients, times grad_scale */
        for (long long i = tid; i < V; i += nthreads) {{
            const {T} zt = (unit ? xt[i] : xt[i] / temperature) - mt;
            const {T} zs = (unit ? xs[i] : xs[i] / temperature) - ms;
            {T} lv, gv, hv, gn, hn;
            {NAME}_terms(zt, zs, rs, cst, &lv, &gv, &hv);
            if (near_s || near_t) {{
                {NAME}_near_terms(zt, zs, rs, cst, &gn, &hn);
                gv = near_s ? gn : gv;
                hv = near_t ? hn : hv;
            }}
            if (grad_student != 0) {{
                const {T} q = exp{S}(zs) / ({ONE} + rs[1]);
                {T} g;
                if (i == js) {{
                    g = gv * (rs[1] / ({ONE} + rs[1])) - q * (g_o + g_o_lo);
                }} else {{
                    g = fma{S}(-q, m_s, gv) - q * m_s_lo;
                }}
                g = ok_s ? g * grad_scale : {NAN};
                grad_student[row * V + i] = flat ? {ZERO} : g;
            }}
            if (grad_teacher != 0) {{
                const {T} p = exp{S}(zt) / ({ONE} + rs[0]);
                {T} h;
                if (i == jt) {{
                    h = hv * (rs[0] / ({ONE} + rs[0])) - p * (h_o + h_o_lo);
                }} else {{
                    h = fma{S}(-p, m_t, hv) - p * m_t_lo;
                }}
                h = ok_t ? h * grad_scale : {NAN};
                grad_teacher[row * V + i] = flat ? {ZERO} : h;
            }}
        }}"""

_TERMS = """{Q} void {NAME}_terms({T} zt, {T} zs, const {T} *rs, const double *cst, {T} *loss, {T} *gs,
    {T} *gt)
{{
    /* one element: a = zt - log S_t, b = zs - log S_s, l = a - b, p = e^a, q = e^b;
       cst: the parameters and the per-value constants (layout in numeric._cuda_sources) */
    if (zt == {NEG_INF} || zs == {NEG_INF}) {{
        if (zt == {NEG_INF} && zs == {NEG_INF}) {{
            *loss = {ZERO};
            *gs = {ZERO};
            *gt = {ZERO};
        }} else if (zt == {NEG_INF}) {{
            /* p = 0 < q: the term is q X(0+) */
            const {T} q = exp{S}(zs - rs[3]);
            *loss = dk_limit{S}(q, cst[{LOSS_C}]);
            *gs = dk_limit{S}(q, cst[{GS_C}]);
            *gt = dk_limit{S}(q, cst[{GT_C}]);
        }} else {{
            /* q = 0 < p: the term is p lim X(u)/u, u -> oo */
            const {T} p = exp{S}(zt - rs[2]);
            *loss = dk_limit{S}(p, cst[{LOSS_C} + 1]);
            *gs = dk_limit{S}(p, cst[{GS_C} + 1]);
            *gt = dk_limit{S}(p, cst[{GT_C} + 1]);
        }}
        return;
    }}
    /* the branch weighted by the larger probability: lo (q) for l <= 0, hi (p) for
       l > 0, so that a tiny (or subnormal) weight never multiplies a huge exponential */
    const {T} ell = (zt - zs) - (rs[2] - rs[3]);
    if (ell <= {ZERO}) {{
        const {T} q = exp{S}(zs) / ({ONE} + rs[1]);
        {NAME}_lo(ell, q{TH}, loss, gs, gt);
    }} else {{
        const {T} p = exp{S}(zt) / ({ONE} + rs[0]);
        {NAME}_hi(ell, p{TH}, loss, gs, gt);
    }}
    if (!(isfinite(*loss) && isfinite(*gs) && isfinite(*gt))) {{
        /* overflow or 0*inf: the same branch with the weight inside the exponentials */
        if (ell <= {ZERO}) {{
            {NAME}_lo_log(ell, zs - rs[3]{TH}, loss, gs, gt);
        }} else {{
            {NAME}_hi_log(ell, zt - rs[2]{TH}, loss, gs, gt);
        }}
    }}
    if (!(isfinite(*loss) && isfinite(*gs) && isfinite(*gt))) {{
        /* a weighted expm1 overflowed (0*inf): every exponential merged with the weight */
        {T} l2, g2, h2;
        if (ell <= {ZERO}) {{
            {NAME}_lo_exp(ell, zs - rs[3]{TH}, &l2, &g2, &h2);
        }} else {{
            {NAME}_hi_exp(ell, zt - rs[2]{TH}, &l2, &g2, &h2);
        }}
        *loss = isfinite(*loss) ? *loss : l2;
        *gs = isfinite(*gs) ? *gs : g2;
        *gt = isfinite(*gt) ? *gt : h2;
    }}
    /* near r = 1: the Taylor polynomial (no cancellation), weight q */
    const {T} fl = fabs{S}(ell);
    if (fl < ({T})cst[{LOSS_C} + 2] || fl < ({T})cst[{GS_C} + 2] || fl < ({T})cst[{GT_C} + 2]) {{
        const {T} q = exp{S}(zs) / ({ONE} + rs[1]);
        if (fl < ({T})cst[{LOSS_C} + 2]) {{
            *loss = q * dk_poly{S}(cst + {LOSS_C} + 3, ell);
        }}
        if (fl < ({T})cst[{GS_C} + 2]) {{
            *gs = q * dk_poly{S}(cst + {GS_C} + 3, ell);
        }}
        if (fl < ({T})cst[{GT_C} + 2]) {{
            *gt = q * dk_poly{S}(cst + {GT_C} + 3, ell);
        }}
    }}
}}

{Q} void {NAME}_near_terms({T} zt, {T} zs, const {T} *rs, const double *cst, {T} *gs, {T} *gt)
{{
    /* the gradient terms that vanish at r = 1, for nearly equal rows */
    if (zt == {NEG_INF} || zs == {NEG_INF}) {{
        if (zt == {NEG_INF} && zs == {NEG_INF}) {{
            *gs = {ZERO};
            *gt = {ZERO};
        }} else if (zt == {NEG_INF}) {{
            const {T} q = exp{S}(zs - rs[3]);
            *gs = dk_limit{S}(q, cst[{NGS_C}]);
            *gt = dk_limit{S}(q, cst[{NGT_C}]);
        }} else {{
            const {T} p = exp{S}(zt - rs[2]);
            *gs = dk_limit{S}(p, cst[{NGS_C} + 1]);
            *gt = dk_limit{S}(p, cst[{NGT_C} + 1]);
        }}
        return;
    }}
    const {T} ell = (zt - zs) - (rs[2] - rs[3]);
    if (ell <= {ZERO}) {{
        {NAME}_near_lo_log(ell, zs - rs[3]{TH}, gs, gt);
    }} else {{
        {NAME}_near_hi_log(ell, zt - rs[2]{TH}, gs, gt);
    }}
    const {T} fl = fabs{S}(ell);
    if (fl < ({T})cst[{NGS_C} + 2] || fl < ({T})cst[{NGT_C} + 2]) {{
        const {T} q = exp{S}(zs) / ({ONE} + rs[1]);
        if (fl < ({T})cst[{NGS_C} + 2]) {{
            *gs = q * dk_poly{S}(cst + {NGS_C} + 3, ell);
        }}
        if (fl < ({T})cst[{NGT_C} + 2]) {{
            *gt = q * dk_poly{S}(cst + {NGT_C} + 3, ell);
        }}
    }}
}}"""

#: Log-weight symbols of the careful branches: a = log p, b = log q.
_LA, _LB = LOG_P, LOG_Q


@functools.lru_cache(maxsize=512)
def _program(exprs: tuple, args: tuple):
    """Rewrite + cse of one element function (shared by both targets and dtypes)."""
    return program(exprs, list(args))


def _forms_hash(ff) -> str:
    parts = []
    for el in (ff.loss, ff.grad_student, ff.grad_teacher, ff.grad_student_near,
               ff.grad_teacher_near):
        parts.append(sympy.srepr((el.lo, el.hi)))
    parts.append(repr(ff.theta))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


#: Order of the per-element blocks in the constants array.
_ELEMENTS = ("LOSS", "GS", "GT", "NGS", "NGT")


def constants_layout(n_theta: int) -> dict:
    """Offsets in the ``cst`` array every row kernel takes (float64):

    ``cst[0:n_theta]`` the parameters (in the order of the family forms' ``theta``); then,
    per element (loss, student gradient, teacher gradient, and the two gradient forms for
    nearly equal rows), ``[X(0+), lim X(u)/u, series radius, c_0 … c_{K-1}]``; then the
    near-row flags ``[use_s, use_t, threshold_s, threshold_t]``.
    """
    out, off = {}, n_theta
    for key in _ELEMENTS:
        out[key] = off
        off += 3 + SERIES_TERMS
    out["FLAGS"] = off
    out["SIZE"] = off + 4
    return out


def kernel_constants(bound) -> np.ndarray:
    """The ``cst`` array of a row kernel for the parameter values of ``bound``
    (:class:`numeric._forms.BoundForms`); computed once per bound (read-only)."""
    cached = bound.__dict__.get("_kernel_constants")
    if cached is None:
        cached = bound.__dict__["_kernel_constants"] = _kernel_constants(bound)
        cached.setflags(write=False)
    return cached


def _kernel_constants(bound) -> np.ndarray:
    ff = bound.family_forms
    layout = constants_layout(len(ff.theta))
    cst = np.zeros(layout["SIZE"], dtype=np.float64)
    cst[: len(ff.theta)] = bound.theta
    names = {"LOSS": "loss", "GS": ff.grad_student.name, "GT": ff.grad_teacher.name,
             "NGS": "grad_student_near", "NGT": "grad_teacher_near"}
    for key in _ELEMENTS:
        el = bound._bind(names[key])
        off = layout[key]
        cst[off], cst[off + 1] = el.at_p_zero, el.at_q_zero
        if el.series is not None:
            coeffs, radius = el.series
            cst[off + 2] = radius
            cst[off + 3: off + 3 + len(coeffs)] = coeffs
    flags = layout["FLAGS"]
    # a value whose zero-anchored gradient form is not usable takes the r = 1 form on
    # every row (threshold +inf); otherwise rows with D below the threshold do
    for i, g in enumerate(("grad_student", "grad_teacher")):
        symbolic_main = getattr(ff, g).name == g
        uses_main = getattr(bound, g).name == g
        if symbolic_main and not uses_main:
            cst[flags + i], cst[flags + 2 + i] = 1.0, np.inf
        elif symbolic_main:
            cst[flags + i], cst[flags + 2 + i] = 1.0, bound.near_threshold[g]
    return cst


def _dtype_block(fm, base: str, target: str, dtype: str) -> str:
    """Everything of one dtype: helpers, element functions, terms, row kernel."""
    cuda = target == "cuda"
    ctype, _, suffix = DTYPES[dtype]
    name = f"{base}_{_DTYPE_TAG[dtype]}"
    qualifier = "__device__ __forceinline__" if cuda else "static inline"
    printer_cls = CudaPrinter if cuda else CPrinter
    lit = printer_cls(dtype)
    fill = {
        "Q": qualifier,
        "T": ctype,
        "S": suffix,
        "NAME": name,
        "ZERO": lit._float_literal(sympy.Integer(0)),
        "ONE": lit._float_literal(sympy.Integer(1)),
        "NEG_INF": lit.doprint(-sympy.oo),
        "NAN": lit.doprint(sympy.nan),
    }
    ff = fm  # FamilyForms: symbolic in the parameters, which the kernel reads from cst
    main = (ff.loss, ff.grad_student, ff.grad_teacher)
    near = (ff.grad_student_near, ff.grad_teacher_near)
    theta = list(ff.theta)
    specs = [
        ("lo", [el.lo for el in main], [ELL, Q]),
        ("hi", [el.hi for el in main], [ELL, P]),
        ("lo_log", [log_weighted(el.lo, Q, _LB) for el in main], [ELL, _LB]),
        ("hi_log", [log_weighted(el.hi, P, _LA) for el in main], [ELL, _LA]),
        ("near_lo_log", [log_weighted(el.lo, Q, _LB) for el in near], [ELL, _LB]),
        ("near_hi_log", [log_weighted(el.hi, P, _LA) for el in near], [ELL, _LA]),
        ("lo_exp", [log_weighted(el.lo, Q, _LB, elementary=True) for el in main], [ELL, _LB]),
        ("hi_exp", [log_weighted(el.hi, P, _LA, elementary=True) for el in main], [ELL, _LA]),
    ]
    functions = []
    helper_kinds: set[str] = set()
    for suffix_name, exprs, args in specs:
        prog = _program(tuple(exprs), tuple(args + theta))
        printer = printer_cls(dtype, prog.names)
        functions.append(_c_function(prog, f"{name}_{suffix_name}", dtype, printer, qualifier))
        helper_kinds |= printer.helpers_used
    layout = constants_layout(len(theta))
    for key in ("LOSS", "GS", "GT", "NGS", "NGT"):
        fill[f"{key}_C"] = str(layout[key])
    fill["FLAGS_C"] = str(layout["FLAGS"])
    fill["K"] = str(SERIES_TERMS)
    fill["TH"] = "".join(f", ({ctype})cst[{k}]" for k in range(len(theta)))
    reduce_block = (_CUDA_REDUCE if cuda else _HOST_REDUCE).format(**fill)
    helpers = "".join(_c_helper(k, dtype, qualifier) for k in sorted(helper_kinds))
    common_guard = f"DIVKIT_ROW_COMMON_{suffix.upper() or 'D'}_{'CUDA' if cuda else 'C'}"
    common = f"#ifndef {common_guard}\n#define {common_guard}\n" + _COMMON.format(**fill)
    common += "\n\n" + reduce_block + "\n#endif\n"
    params = (
        f"long long rows, long long V, const {ctype} *{{R}}teacher, "
        f"const {ctype} *{{R}}student, {ctype} temperature, {ctype} grad_scale, "
        f"const unsigned char *{{R}}keep, const double *{{R}}cst, {ctype} *{{R}}loss, "
        f"{ctype} *{{R}}grad_student, {ctype} *{{R}}grad_teacher"
    )
    body = _ROW_BODY.format(**fill)
    unit = f"    const int unit = temperature == {fill['ONE']};\n"
    if cuda:
        kernel = (
            f'extern "C" __global__ void {name}_rows({params.format(R="__restrict__ ")})\n'
            "{\n"
            f"    __shared__ {ctype} dk_shared[96];\n"
            "    __shared__ long long dk_shared_j[32];\n"
            "    const long long tid = threadIdx.x;\n"
            "    const long long nthreads = blockDim.x;\n"
            + unit
            + "    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {\n"
            + body
            + "\n        __syncthreads();\n    }\n}\n"
        )
    else:
        kernel = (
            f"void {name}_rows({params.format(R='restrict ')})\n"
            "{\n"
            "    const long long tid = 0;\n"
            "    const long long nthreads = 1;\n"
            + unit
            + "    for (long long row = 0; row < rows; ++row) {\n"
            + body
            + "\n    }\n}\n"
        )
    parts = [helpers, common, *functions, _TERMS.format(**fill) + "\n", kernel]
    return "\n".join(p for p in parts if p)


def row_kernel_source(
    f, *, target: str = "cuda", dtypes=("float32", "float64"), name: str | None = None,
    params=None,
) -> str:
    """The row-kernel source of ``f`` (catalog name, family or FDivergence) for ``target``.

    One source serves every parameter value of the family (of its region near a special
    value, or of an endpoint): the values and the per-value constants come at run time
    in ``cst`` (:func:`kernel_constants`).

    Parameters
    ----------
    f : str, theory.fdiv.Family or theory.fdiv.FDivergence
    params : dict, optional
        Parameter values; they select the region (the forms), not the source's content
        otherwise.
    target : {"cuda", "c"}
    dtypes : sequence of {"float32", "float64"}
        One kernel per dtype, ``<name>_f32_rows`` / ``<name>_f64_rows``.
    name : str, optional
        Base name; default ``divkit_<catalog name>``.

    Returns
    -------
    str
        The source, with a header naming the generator, its parameters, the forms' hash,
        and the sympy and codegen versions.
    """
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {sorted(TARGETS)}, got {target!r}")
    bound = forms(f, **(params or {}))
    ff = bound.family_forms
    base = name or _base_name(f, ff.family)
    comment = [
        "divkit numeric._cuda_sources — generated code, do not edit (python -m numeric._cuda_sources)",
        f"codegen version: {CODEGEN_VERSION}; sympy {sympy.__version__}",
        f"family: {ff!r}; run-time parameters cst[0:{len(ff.theta)}] = "
        f"({', '.join(map(str, ff.theta))})",
        f"f(u) = {sympy.sstr(ff._gen)}",
        f"forms hash: sha256:{_forms_hash(ff)}",
        "D_f(P||Q) = sum_i q_i f(p_i/q_i), P = softmax(teacher/T), Q = softmax(student/T)",
        "dD/d(student_j) = q_j (g_j - sum_i q_i g_i),  g = f(r) - r f'(r) - c_g",
        "dD/d(teacher_j) = p_j (h_j - sum_i p_i h_i),  h = f'(r) - c_h",
    ]
    for el in (ff.loss, ff.grad_student, ff.grad_teacher):
        comment.append(f"{el.name}: lo = {sympy.sstr(el.lo)}")
        comment.append(f"{el.name}: hi = {sympy.sstr(el.hi)}")
    comment.append("zero-mass limits and the Taylor series near r = 1: per value, in cst "
                   "(numeric._cuda_sources.constants_layout)")
    header = "".join(f"// {line}\n" for line in comment)
    pre = "" if target == "cuda" else "#include <math.h>\n"
    blocks = [_dtype_block(ff, base, target, d) for d in dtypes]
    return header + "\n" + pre + ("\n" if pre else "") + "\n".join(blocks)


def row_kernel_entry(f, *, dtype: str = "float32", params=None) -> tuple[str, str]:
    """``(source, kernel name)`` of the CUDA row kernel of ``f`` for one dtype.

    What a launcher hands to ``cupy.RawKernel(source, name)`` (cupy is not imported here):
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
    base = _base_name(f, bound.family)
    source = row_kernel_source(f, target="cuda", dtypes=(dtype,), name=base, params=params)
    return source, f"{base}_{_DTYPE_TAG[dtype]}_rows"


def catalog_sources() -> dict[str, str]:
    """File name → source for every catalog divergence (default parameters), both targets."""
    from theory import fdiv

    out = {}
    for n in fdiv.names():
        for target, ext in TARGETS.items():
            out[f"divkit_{_slug(n)}.{ext}"] = row_kernel_source(n, target=target)
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


# --------------------------------------------------------------------------- host runner


def host_row_kernel(f, *, dtype: str = "float64", params=None):
    """The host-compiled row kernel of ``f`` as a numpy callable (through ctypes).

    Returns
    -------
    callable
        ``fn(teacher, student, *, temperature=1.0, grad_scale=None, keep=None,
        student_grad=True, teacher_grad=True) -> (loss, grad_student, grad_teacher)``
        for 2-D (rows, V) arrays; gradients are ``None`` when not asked for;
        ``grad_scale`` defaults to ``1/temperature`` (gradients with respect to the raw
        logits, per row, no reduction).
    """
    from numeric.codegen import compile_c

    if dtype not in _DTYPE_TAG:
        raise ValueError(f"dtype: expected one of {sorted(_DTYPE_TAG)}, got {dtype!r}")
    bound = forms(f, **(params or {}))
    base = _base_name(f, bound.family)
    cst = kernel_constants(bound)
    # both dtypes in one compile unit, as row_kernel_source(name, target='c') gives
    text = row_kernel_source(f, target="c", name=base, params=params)
    lib = compile_c(text)
    fn = getattr(lib, f"{base}_{_DTYPE_TAG[dtype]}_rows")
    ct = ctypes.c_float if dtype == "float32" else ctypes.c_double
    fn.argtypes = [
        ctypes.c_longlong,
        ctypes.c_longlong,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ct,
        ct,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    fn.restype = None
    np_dtype = np.dtype(dtype)

    def run(
        teacher, student, *, temperature=1.0, grad_scale=None, keep=None, student_grad=True, teacher_grad=True
    ):
        t = np.ascontiguousarray(teacher, dtype=np_dtype)
        s = np.ascontiguousarray(student, dtype=np_dtype)
        if t.ndim != 2 or t.shape != s.shape:
            raise ValueError(f"teacher and student must be 2-D of one shape, got {t.shape}, {s.shape}")
        rows, v = t.shape
        loss = np.empty(rows, dtype=np_dtype)
        gs = np.empty_like(t) if student_grad else None
        gt = np.empty_like(t) if teacher_grad else None
        k = None
        if keep is not None:
            k = np.ascontiguousarray(keep, dtype=np.uint8)
            if k.shape != (rows,):
                raise ValueError(f"keep must have shape ({rows},), got {k.shape}")
        scale = 1.0 / temperature if grad_scale is None else grad_scale
        fn(
            rows,
            v,
            t.ctypes.data,
            s.ctypes.data,
            temperature,
            scale,
            None if k is None else k.ctypes.data,
            cst.ctypes.data,
            loss.ctypes.data,
            None if gs is None else gs.ctypes.data,
            None if gt is None else gt.ctypes.data,
        )
        return loss, gs, gt

    run.source = text
    return run


if __name__ == "__main__":  # pragma: no cover - the regeneration command
    if len(sys.argv) != 2:
        sys.exit("usage: python -m numeric._cuda_sources DIR")
    for written in write_catalog_sources(Path(sys.argv[1])):
        print(written)
