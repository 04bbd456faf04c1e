// divkit numeric._cuda_sources — generated code, do not edit (python -m numeric._cuda_sources)
// codegen version: 1; sympy 1.14.0
// family: FamilyForms('js'); run-time parameters cst[0:1] = (beta)
// f(u) = beta*u*log(u) - (beta*u - beta + 1)*log(beta*u - beta + 1)
// forms hash: sha256:bb0f2db95eef3b3929c4292b7714d696ad24004f551371a2da1dbd0c06980fa5
// D_f(P||Q) = sum_i q_i f(p_i/q_i), P = softmax(teacher/T), Q = softmax(student/T)
// dD/d(student_j) = q_j (g_j - sum_i q_i g_i),  g = f(r) - r f'(r) - c_g
// dD/d(teacher_j) = p_j (h_j - sum_i p_i h_i),  h = f'(r) - c_h
// loss: lo = q*(beta*ell*exp(ell) + xlog1py(-beta*exp(ell) + beta - 1, beta*exp(ell) - beta))
// loss: hi = p*(beta*ell - beta*(ell + log(beta - beta*exp(-ell) + exp(-ell))) + beta*(ell + log(beta - beta*exp(-ell) + exp(-ell)))*exp(-ell) - (ell + log(beta - beta*exp(-ell) + exp(-ell)))*exp(-ell))
// grad_student: lo = q*(beta - 1)*softplus(ell + log(-beta/(beta - 1)))
// grad_student: hi = p*(beta*exp(-ell)*softplus(ell + log(-beta/(beta - 1))) - exp(-ell)*softplus(ell + log(-beta/(beta - 1))))
// grad_teacher: lo = -beta*q*exp(ell)*softplus(-ell + log((1 - beta)/beta))
// grad_teacher: hi = -beta*p*softplus(-ell + log(-1 + 1/beta))
// zero-mass limits and the Taylor series near r = 1: per value, in cst (numeric._cuda_sources.constants_layout)

#include <math.h>

#ifndef DIVKIT_HELPER_SOFTPLUSF_C
#define DIVKIT_HELPER_SOFTPLUSF_C
static inline float divkit_softplusf(float x)
{
    /* log(1 + exp(x)) = logaddexp(0, x), numpy's branch order */
    if (x == 0.0f) {
        return 0.6931472f;
    }
    if (x < 0.0f) {
        return log1pf(expf(x));
    }
    if (x > 0.0f) {
        return x + log1pf(expf(-x));
    }
    return x;
}
#endif
#ifndef DIVKIT_HELPER_XLOG1PYF_C
#define DIVKIT_HELPER_XLOG1PYF_C
static inline float divkit_xlog1pyf(float x, float y)
{
    return x == 0.0f ? 0.0f : x * log1pf(y);
}
#endif

#ifndef DIVKIT_ROW_COMMON_F_C
#define DIVKIT_ROW_COMMON_F_C
static inline float dk_limitf(float w, double c)
{
    /* the zero-mass term w * c, or c itself when the limit is infinite (or NaN) */
    return isfinite(c) ? w * (float)c : (float)c;
}

static inline float dk_polyf(const double *c, float x)
{
    /* Horner on the 24 Taylor coefficients c[0..24) of an element around ell = 0 */
    float acc = (float)c[24 - 1];
    for (int k = 24 - 2; k >= 0; --k) {
        acc = acc * x + (float)c[k];
    }
    return acc;
}

static inline void dk_two_sumf(float *s, float *c, float x)
{
    /* s + c += x with the rounding error of s + x kept in c (Knuth's TwoSum); an
       infinite sum stays in s alone (inf - inf in the error term would be NaN) */
    const float t = *s + x;
    if (isfinite(t)) {
        const float bp = t - *s;
        *c += (*s - (t - bp)) + (x - bp);
    }
    *s = t;
}

static inline void dk_splitf(float s, float c, float *hi, float *lo)
{
    /* hi = fl(s + c) and the exact rest lo = s + c - hi (TwoSum); lo = 0 if hi is not
       finite */
    const float t = s + c;
    const float bp = t - s;
    *hi = t;
    *lo = isfinite(t) ? (s - (t - bp)) + (c - bp) : 0.0f;
}

static inline void dk_lse_pushf(float *m, float *s, float *c, long long *j, float x, long long i)
{
    /* online row max m (first argmax j) and s + c = sum over i != j of exp(x_i - m):
       the max itself contributes the implicit 1, so 1 - p_j = s/(1 + s) keeps its
       relative accuracy on a nearly one-hot row; -inf adds nothing */
    if (x == -(float)INFINITY) {
        return;
    }
    if (x > *m) {
        if (*m != -(float)INFINITY) {
            const float f = expf(*m - x);
            *s *= f;
            *c *= f;
            dk_two_sumf(s, c, f);
        }
        *m = x;
        *j = i;
        return;
    }
    dk_two_sumf(s, c, expf(x - *m));
}

static inline void dk_lse_mergef(float *m, float *s, float *c, long long *j, float m2, float s2, float c2,
    long long j2)
{
    /* merge two partial (max, sum without the max, compensation, argmax) */
    if (m2 == -(float)INFINITY) {
        return;
    }
    if (*m == -(float)INFINITY) {
        *m = m2;
        *s = s2;
        *c = c2;
        *j = j2;
        return;
    }
    if (m2 > *m || (m2 == *m && j2 < *j)) {
        const float f = expf(*m - m2);
        *s *= f;
        *c *= f;
        dk_two_sumf(s, c, f);
        *m = m2;
        *j = j2;
    } else {
        const float f = expf(m2 - *m);
        s2 *= f;
        c2 *= f;
        dk_two_sumf(&s2, &c2, f);
    }
    dk_two_sumf(s, c, s2);
    *c += c2;
}

#define DK_BLOCK_LSEf(pm, ps, pc, pj) ((void)0)
#define DK_BLOCK_SUMf(s, c, phi, plo) dk_splitf(s, c, phi, plo)
#endif

static inline void divkit_js_f32_lo(float ell, float q, float beta, float *out0, float *out1, float *out2)
{
    const float t0 = beta*expf(ell);
    const float t1 = t0 - beta;
    const float t2 = -1.0f + beta;
    *out0 = q*(t0*ell + divkit_xlog1pyf(-1.0f - t1, t1));
    *out1 = t2*q*divkit_softplusf(ell + logf(-beta/t2));
    *out2 = -t0*q*divkit_softplusf(-ell + logf(-t2/beta));
}

static inline void divkit_js_f32_hi(float ell, float p, float beta, float *out0, float *out1, float *out2)
{
    const float t0 = expf(-ell);
    const float t1 = t0*beta;
    const float t2 = ell + logf(t0 + beta - t1);
    const float t3 = divkit_softplusf(ell + logf(-beta/(-1.0f + beta)));
    *out0 = p*(t1*t2 + beta*ell - t0*t2 - t2*beta);
    *out1 = p*(t1*t3 - t0*t3);
    *out2 = -beta*p*divkit_softplusf(-ell + logf(-1.0f + 1.0f/beta));
}

static inline void divkit_js_f32_lo_log(float ell, float log_q, float beta, float *out0, float *out1, float *out2)
{
    const float t0 = beta*expf(ell + log_q);
    const float t1 = expf(log_q);
    const float t2 = -beta + beta*expf(ell);
    const float t3 = -1.0f + beta;
    const float t4 = t1*divkit_softplusf(ell + logf(-beta/t3));
    *out0 = t0*ell + divkit_xlog1pyf(t1*(-1.0f - t2), t2);
    *out1 = -t4 + t4*beta;
    *out2 = -t0*divkit_softplusf(-ell + logf(-t3/beta));
}

static inline void divkit_js_f32_hi_log(float ell, float log_p, float beta, float *out0, float *out1, float *out2)
{
    const float t0 = beta*expf(log_p);
    const float t1 = expf(-ell);
    const float t2 = ell + logf(t1 + beta - t1*beta);
    const float t3 = expf(log_p - ell);
    const float t4 = t2*t3;
    const float t5 = t3*divkit_softplusf(ell + logf(-beta/(-1.0f + beta)));
    *out0 = -t4 + t0*ell + t4*beta - t0*t2;
    *out1 = -t5 + t5*beta;
    *out2 = -t0*divkit_softplusf(-ell + logf(-1.0f + 1.0f/beta));
}

static inline void divkit_js_f32_near_lo_log(float ell, float log_q, float beta, float *out0, float *out1)
{
    const float t0 = expf(log_q);
    const float t1 = beta*expf(ell);
    const float t2 = t1 - beta;
    *out0 = divkit_xlog1pyf(t0*(-1.0f + beta), t2);
    *out1 = -divkit_xlog1pyf(t0*t1, t2) + beta*ell*expf(ell + log_q);
}

static inline void divkit_js_f32_near_hi_log(float ell, float log_p, float beta, float *out0, float *out1)
{
    const float t0 = expf(-ell);
    const float t1 = ell + logf(t0 + beta - t0*beta);
    const float t2 = t1*expf(log_p - ell);
    const float t3 = beta*expf(log_p);
    *out0 = -t2 + t2*beta;
    *out1 = t3*ell - t1*t3;
}

static inline void divkit_js_f32_lo_exp(float ell, float log_q, float beta, float *out0, float *out1, float *out2)
{
    const float t0 = beta*expf(ell + log_q);
    const float t1 = expf(log_q);
    const float t2 = -beta + beta*expf(ell);
    const float t3 = -1.0f + beta;
    const float t4 = t1*divkit_softplusf(ell + logf(-beta/t3));
    *out0 = t0*ell + divkit_xlog1pyf(t1*(-1.0f - t2), t2);
    *out1 = -t4 + t4*beta;
    *out2 = -t0*divkit_softplusf(-ell + logf(-t3/beta));
}

static inline void divkit_js_f32_hi_exp(float ell, float log_p, float beta, float *out0, float *out1, float *out2)
{
    const float t0 = beta*expf(log_p);
    const float t1 = expf(-ell);
    const float t2 = ell + logf(t1 + beta - t1*beta);
    const float t3 = expf(log_p - ell);
    const float t4 = t2*t3;
    const float t5 = t3*divkit_softplusf(ell + logf(-beta/(-1.0f + beta)));
    *out0 = -t4 + t0*ell + t4*beta - t0*t2;
    *out1 = -t5 + t5*beta;
    *out2 = -t0*divkit_softplusf(-ell + logf(-1.0f + 1.0f/beta));
}

static inline void divkit_js_f32_terms(float zt, float zs, const float *rs, const double *cst, float *loss, float *gs,
    float *gt)
{
    /* one element: a = zt - log S_t, b = zs - log S_s, l = a - b, p = e^a, q = e^b;
       cst: the parameters and the per-value constants (layout in numeric._cuda_sources) */
    if (zt == -(float)INFINITY || zs == -(float)INFINITY) {
        if (zt == -(float)INFINITY && zs == -(float)INFINITY) {
            *loss = 0.0f;
            *gs = 0.0f;
            *gt = 0.0f;
        } else if (zt == -(float)INFINITY) {
            /* p = 0 < q: the term is q X(0+) */
            const float q = expf(zs - rs[3]);
            *loss = dk_limitf(q, cst[1]);
            *gs = dk_limitf(q, cst[28]);
            *gt = dk_limitf(q, cst[55]);
        } else {
            /* q = 0 < p: the term is p lim X(u)/u, u -> oo */
            const float p = expf(zt - rs[2]);
            *loss = dk_limitf(p, cst[1 + 1]);
            *gs = dk_limitf(p, cst[28 + 1]);
            *gt = dk_limitf(p, cst[55 + 1]);
        }
        return;
    }
    /* the branch weighted by the larger probability: lo (q) for l <= 0, hi (p) for
       l > 0, so that a tiny (or subnormal) weight never multiplies a huge exponential */
    const float ell = (zt - zs) - (rs[2] - rs[3]);
    if (ell <= 0.0f) {
        const float q = expf(zs) / (1.0f + rs[1]);
        divkit_js_f32_lo(ell, q, (float)cst[0], loss, gs, gt);
    } else {
        const float p = expf(zt) / (1.0f + rs[0]);
        divkit_js_f32_hi(ell, p, (float)cst[0], loss, gs, gt);
    }
    if (!(isfinite(*loss) && isfinite(*gs) && isfinite(*gt))) {
        /* overflow or 0*inf: the same branch with the weight inside the exponentials */
        if (ell <= 0.0f) {
            divkit_js_f32_lo_log(ell, zs - rs[3], (float)cst[0], loss, gs, gt);
        } else {
            divkit_js_f32_hi_log(ell, zt - rs[2], (float)cst[0], loss, gs, gt);
        }
    }
    if (!(isfinite(*loss) && isfinite(*gs) && isfinite(*gt))) {
        /* a weighted expm1 overflowed (0*inf): every exponential merged with the weight */
        float l2, g2, h2;
        if (ell <= 0.0f) {
            divkit_js_f32_lo_exp(ell, zs - rs[3], (float)cst[0], &l2, &g2, &h2);
        } else {
            divkit_js_f32_hi_exp(ell, zt - rs[2], (float)cst[0], &l2, &g2, &h2);
        }
        *loss = isfinite(*loss) ? *loss : l2;
        *gs = isfinite(*gs) ? *gs : g2;
        *gt = isfinite(*gt) ? *gt : h2;
    }
    /* near r = 1: the Taylor polynomial (no cancellation), weight q */
    const float fl = fabsf(ell);
    if (fl < (float)cst[1 + 2] || fl < (float)cst[28 + 2] || fl < (float)cst[55 + 2]) {
        const float q = expf(zs) / (1.0f + rs[1]);
        if (fl < (float)cst[1 + 2]) {
            *loss = q * dk_polyf(cst + 1 + 3, ell);
        }
        if (fl < (float)cst[28 + 2]) {
            *gs = q * dk_polyf(cst + 28 + 3, ell);
        }
        if (fl < (float)cst[55 + 2]) {
            *gt = q * dk_polyf(cst + 55 + 3, ell);
        }
    }
}

static inline void divkit_js_f32_near_terms(float zt, float zs, const float *rs, const double *cst, float *gs, float *gt)
{
    /* the gradient terms that vanish at r = 1, for nearly equal rows */
    if (zt == -(float)INFINITY || zs == -(float)INFINITY) {
        if (zt == -(float)INFINITY && zs == -(float)INFINITY) {
            *gs = 0.0f;
            *gt = 0.0f;
        } else if (zt == -(float)INFINITY) {
            const float q = expf(zs - rs[3]);
            *gs = dk_limitf(q, cst[82]);
            *gt = dk_limitf(q, cst[109]);
        } else {
            const float p = expf(zt - rs[2]);
            *gs = dk_limitf(p, cst[82 + 1]);
            *gt = dk_limitf(p, cst[109 + 1]);
        }
        return;
    }
    const float ell = (zt - zs) - (rs[2] - rs[3]);
    if (ell <= 0.0f) {
        divkit_js_f32_near_lo_log(ell, zs - rs[3], (float)cst[0], gs, gt);
    } else {
        divkit_js_f32_near_hi_log(ell, zt - rs[2], (float)cst[0], gs, gt);
    }
    const float fl = fabsf(ell);
    if (fl < (float)cst[82 + 2] || fl < (float)cst[109 + 2]) {
        const float q = expf(zs) / (1.0f + rs[1]);
        if (fl < (float)cst[82 + 2]) {
            *gs = q * dk_polyf(cst + 82 + 3, ell);
        }
        if (fl < (float)cst[109 + 2]) {
            *gt = q * dk_polyf(cst + 109 + 3, ell);
        }
    }
}

void divkit_js_f32_rows(long long rows, long long V, const float *restrict teacher, const float *restrict student, float temperature, float grad_scale, const unsigned char *restrict keep, const double *restrict cst, float *restrict loss, float *restrict grad_student, float *restrict grad_teacher)
{
    const long long tid = 0;
    const long long nthreads = 1;
    const int unit = temperature == 1.0f;
    for (long long row = 0; row < rows; ++row) {
        const float *xt = teacher + row * V;
        const float *xs = student + row * V;
        if (keep != 0 && keep[row] == 0) {
            if (tid == 0) {
                loss[row] = 0.0f;
            }
            for (long long i = tid; i < V; i += nthreads) {
                if (grad_student != 0) {
                    grad_student[row * V + i] = 0.0f;
                }
                if (grad_teacher != 0) {
                    grad_teacher[row * V + i] = 0.0f;
                }
            }
            continue;
        }
        /* pass 1: online max, argmax and sum of exp(x - max) without the max, both rows */
        float mt = -(float)INFINITY, st = 0.0f, ct = 0.0f;
        float ms = -(float)INFINITY, ss = 0.0f, cs = 0.0f;
        long long jt = 0, js = 0;
        for (long long i = tid; i < V; i += nthreads) {
            dk_lse_pushf(&mt, &st, &ct, &jt, unit ? xt[i] : xt[i] / temperature, i);
            dk_lse_pushf(&ms, &ss, &cs, &js, unit ? xs[i] : xs[i] / temperature, i);
        }
        DK_BLOCK_LSEf(&mt, &st, &ct, &jt);
        DK_BLOCK_LSEf(&ms, &ss, &cs, &js);
        float rs[4];
        rs[0] = st + ct;                 /* so_t: sum of exp(z_t) over i != argmax */
        rs[1] = ss + cs;                 /* so_s */
        rs[2] = log1pf(rs[0]);         /* log S_t */
        rs[3] = log1pf(rs[1]);         /* log S_s */
        /* pass 2: loss sum; gradient sums without the row's argmax term, and that term */
        float acc[10];
        for (int k = 0; k < 10; ++k) {
            acc[k] = 0.0f;
        }
        for (long long i = tid; i < V; i += nthreads) {
            const float zt = (unit ? xt[i] : xt[i] / temperature) - mt;
            const float zs = (unit ? xs[i] : xs[i] / temperature) - ms;
            float lv, gv, hv;
            divkit_js_f32_terms(zt, zs, rs, cst, &lv, &gv, &hv);
            dk_two_sumf(&acc[0], &acc[1], lv);
            if (i == js) {
                acc[4] = gv;
            } else {
                dk_two_sumf(&acc[2], &acc[3], gv);
            }
            if (i == jt) {
                acc[7] = hv;
            } else {
                dk_two_sumf(&acc[5], &acc[6], hv);
            }
        }
        float d, d_lo, g_o, g_o_lo, g_j, g_j_lo, h_o, h_o_lo, h_j, h_j_lo;
        DK_BLOCK_SUMf(acc[0], acc[1], &d, &d_lo);
        DK_BLOCK_SUMf(acc[2], acc[3], &g_o, &g_o_lo);
        DK_BLOCK_SUMf(acc[4], 0.0f, &g_j, &g_j_lo);
        DK_BLOCK_SUMf(acc[5], acc[6], &h_o, &h_o_lo);
        DK_BLOCK_SUMf(acc[7], 0.0f, &h_j, &h_j_lo);
        if (tid == 0) {
            loss[row] = d < 0.0f ? 0.0f : d;
        }
        if (grad_student == 0 && grad_teacher == 0) {
            continue;
        }
        /* nearly equal rows: gradient forms that vanish at r = 1 (uniform per row) */
        const int near_s = cst[136] != 0.0 && (double)d < cst[136 + 2];
        const int near_t = cst[136 + 1] != 0.0 && (double)d < cst[136 + 3];
        if (near_s || near_t) {
            for (int k = 0; k < 10; ++k) {
                acc[k] = 0.0f;
            }
            for (long long i = tid; i < V; i += nthreads) {
                const float zt = (unit ? xt[i] : xt[i] / temperature) - mt;
                const float zs = (unit ? xs[i] : xs[i] / temperature) - ms;
                float gv, hv;
                divkit_js_f32_near_terms(zt, zs, rs, cst, &gv, &hv);
                if (i == js) {
                    acc[4] = gv;
                } else {
                    dk_two_sumf(&acc[2], &acc[3], gv);
                }
                if (i == jt) {
                    acc[7] = hv;
                } else {
                    dk_two_sumf(&acc[5], &acc[6], hv);
                }
            }
            float a_o, a_o_lo, a_j, a_j_lo, b_o, b_o_lo, b_j, b_j_lo;
            DK_BLOCK_SUMf(acc[2], acc[3], &a_o, &a_o_lo);
            DK_BLOCK_SUMf(acc[4], 0.0f, &a_j, &a_j_lo);
            DK_BLOCK_SUMf(acc[5], acc[6], &b_o, &b_o_lo);
            DK_BLOCK_SUMf(acc[7], 0.0f, &b_j, &b_j_lo);
            if (near_s) {
                g_o = a_o;
                g_o_lo = a_o_lo;
                g_j = a_j;
            }
            if (near_t) {
                h_o = b_o;
                h_o_lo = b_o_lo;
                h_j = b_j;
            }
        }
        /* m = sum_i w_i g_i as the exact pair (hi, lo); gradient w_j (g_j - m) = w g - w m
           rounded once (fma); at the argmax J: g_J (1 - w_J) - w_J sum_{i != J} w_i g_i,
           1 - w_J = so/(1 + so), so nothing cancels on a nearly one-hot row */
        float m_s, m_s_lo, m_t, m_t_lo;
        {
            float s_ = g_o, c_ = g_o_lo;
            dk_two_sumf(&s_, &c_, g_j);
            dk_splitf(s_, c_, &m_s, &m_s_lo);
            s_ = h_o;
            c_ = h_o_lo;
            dk_two_sumf(&s_, &c_, h_j);
            dk_splitf(s_, c_, &m_t, &m_t_lo);
        }
        const int ok_s = isfinite(m_s);
        const int ok_t = isfinite(m_t);
        const int flat = d == 0.0f;
        /* pass 3: write the gradients, times grad_scale */
        for (long long i = tid; i < V; i += nthreads) {
            const float zt = (unit ? xt[i] : xt[i] / temperature) - mt;
            const float zs = (unit ? xs[i] : xs[i] / temperature) - ms;
            float lv, gv, hv, gn, hn;
            divkit_js_f32_terms(zt, zs, rs, cst, &lv, &gv, &hv);
            if (near_s || near_t) {
                divkit_js_f32_near_terms(zt, zs, rs, cst, &gn, &hn);
                gv = near_s ? gn : gv;
                hv = near_t ? hn : hv;
            }
            if (grad_student != 0) {
                const float q = expf(zs) / (1.0f + rs[1]);
                float g;
                if (i == js) {
                    g = gv * (rs[1] / (1.0f + rs[1])) - q * (g_o + g_o_lo);
                } else {
                    g = fmaf(-q, m_s, gv) - q * m_s_lo;
                }
                g = ok_s ? g * grad_scale : (float)NAN;
                grad_student[row * V + i] = flat ? 0.0f : g;
            }
            if (grad_teacher != 0) {
                const float p = expf(zt) / (1.0f + rs[0]);
                float h;
                if (i == jt) {
                    h = hv * (rs[0] / (1.0f + rs[0])) - p * (h_o + h_o_lo);
                } else {
                    h = fmaf(-p, m_t, hv) - p * m_t_lo;
                }
                h = ok_t ? h * grad_scale : (float)NAN;
                grad_teacher[row * V + i] = flat ? 0.0f : h;
            }
        }
    }
}

#ifndef DIVKIT_HELPER_SOFTPLUS_C
#define DIVKIT_HELPER_SOFTPLUS_C
static inline double divkit_softplus(double x)
{
    /* log(1 + exp(x)) = logaddexp(0, x), numpy's branch order */
    if (x == 0.0) {
        return 0.6931471805599453;
    }
    if (x < 0.0) {
        return log1p(exp(x));
    }
    if (x > 0.0) {
        return x + log1p(exp(-x));
    }
    return x;
}
#endif
#ifndef DIVKIT_HELPER_XLOG1PY_C
#define DIVKIT_HELPER_XLOG1PY_C
static inline double divkit_xlog1py(double x, double y)
{
    return x == 0.0 ? 0.0 : x * log1p(y);
}
#endif

#ifndef DIVKIT_ROW_COMMON_D_C
#define DIVKIT_ROW_COMMON_D_C
static inline double dk_limit(double w, double c)
{
    /* the zero-mass term w * c, or c itself when the limit is infinite (or NaN) */
    return isfinite(c) ? w * (double)c : (double)c;
}

static inline double dk_poly(const double *c, double x)
{
    /* Horner on the 24 Taylor coefficients c[0..24) of an element around ell = 0 */
    double acc = (double)c[24 - 1];
    for (int k = 24 - 2; k >= 0; --k) {
        acc = acc * x + (double)c[k];
    }
    return acc;
}

static inline void dk_two_sum(double *s, double *c, double x)
{
    /* s + c += x with the rounding error of s + x kept in c (Knuth's TwoSum); an
       infinite sum stays in s alone (inf - inf in the error term would be NaN) */
    const double t = *s + x;
    if (isfinite(t)) {
        const double bp = t - *s;
        *c += (*s - (t - bp)) + (x - bp);
    }
    *s = t;
}

static inline void dk_split(double s, double c, double *hi, double *lo)
{
    /* hi = fl(s + c) and the exact rest lo = s + c - hi (TwoSum); lo = 0 if hi is not
       finite */
    const double t = s + c;
    const double bp = t - s;
    *hi = t;
    *lo = isfinite(t) ? (s - (t - bp)) + (c - bp) : 0.0;
}

static inline void dk_lse_push(double *m, double *s, double *c, long long *j, double x, long long i)
{
    /* online row max m (first argmax j) and s + c = sum over i != j of exp(x_i - m):
       the max itself contributes the implicit 1, so 1 - p_j = s/(1 + s) keeps its
       relative accuracy on a nearly one-hot row; -inf adds nothing */
    if (x == -(double)INFINITY) {
        return;
    }
    if (x > *m) {
        if (*m != -(double)INFINITY) {
            const double f = exp(*m - x);
            *s *= f;
            *c *= f;
            dk_two_sum(s, c, f);
        }
        *m = x;
        *j = i;
        return;
    }
    dk_two_sum(s, c, exp(x - *m));
}

static inline void dk_lse_merge(double *m, double *s, double *c, long long *j, double m2, double s2, double c2,
    long long j2)
{
    /* merge two partial (max, sum without the max, compensation, argmax) */
    if (m2 == -(double)INFINITY) {
        return;
    }
    if (*m == -(double)INFINITY) {
        *m = m2;
        *s = s2;
        *c = c2;
        *j = j2;
        return;
    }
    if (m2 > *m || (m2 == *m && j2 < *j)) {
        const double f = exp(*m - m2);
        *s *= f;
        *c *= f;
        dk_two_sum(s, c, f);
        *m = m2;
        *j = j2;
    } else {
        const double f = exp(m2 - *m);
        s2 *= f;
        c2 *= f;
        dk_two_sum(&s2, &c2, f);
    }
    dk_two_sum(s, c, s2);
    *c += c2;
}

#define DK_BLOCK_LSE(pm, ps, pc, pj) ((void)0)
#define DK_BLOCK_SUM(s, c, phi, plo) dk_split(s, c, phi, plo)
#endif

static inline void divkit_js_f64_lo(double ell, double q, double beta, double *out0, double *out1, double *out2)
{
    const double t0 = beta*exp(ell);
    const double t1 = t0 - beta;
    const double t2 = -1.0 + beta;
    *out0 = q*(t0*ell + divkit_xlog1py(-1.0 - t1, t1));
    *out1 = t2*q*divkit_softplus(ell + log(-beta/t2));
    *out2 = -t0*q*divkit_softplus(-ell + log(-t2/beta));
}

static inline void divkit_js_f64_hi(double ell, double p, double beta, double *out0, double *out1, double *out2)
{
    const double t0 = exp(-ell);
    const double t1 = t0*beta;
    const double t2 = ell + log(t0 + beta - t1);
    const double t3 = divkit_softplus(ell + log(-beta/(-1.0 + beta)));
    *out0 = p*(t1*t2 + beta*ell - t0*t2 - t2*beta);
    *out1 = p*(t1*t3 - t0*t3);
    *out2 = -beta*p*divkit_softplus(-ell + log(-1.0 + 1.0/beta));
}

static inline void divkit_js_f64_lo_log(double ell, double log_q, double beta, double *out0, double *out1, double *out2)
{
    const double t0 = beta*exp(ell + log_q);
    const double t1 = exp(log_q);
    const double t2 = -beta + beta*exp(ell);
    const double t3 = -1.0 + beta;
    const double t4 = t1*divkit_softplus(ell + log(-beta/t3));
    *out0 = t0*ell + divkit_xlog1py(t1*(-1.0 - t2), t2);
    *out1 = -t4 + t4*beta;
    *out2 = -t0*divkit_softplus(-ell + log(-t3/beta));
}

static inline void divkit_js_f64_hi_log(double ell, double log_p, double beta, double *out0, double *out1, double *out2)
{
    const double t0 = beta*exp(log_p);
    const double t1 = exp(-ell);
    const double t2 = ell + log(t1 + beta - t1*beta);
    const double t3 = exp(log_p - ell);
    const double t4 = t2*t3;
    const double t5 = t3*divkit_softplus(ell + log(-beta/(-1.0 + beta)));
    *out0 = -t4 + t0*ell + t4*beta - t0*t2;
    *out1 = -t5 + t5*beta;
    *out2 = -t0*divkit_softplus(-ell + log(-1.0 + 1.0/beta));
}

static inline void divkit_js_f64_near_lo_log(double ell, double log_q, double beta, double *out0, double *out1)
{
    const double t0 = exp(log_q);
    const double t1 = beta*exp(ell);
    const double t2 = t1 - beta;
    *out0 = divkit_xlog1py(t0*(-1.0 + beta), t2);
    *out1 = -divkit_xlog1py(t0*t1, t2) + beta*ell*exp(ell + log_q);
}

static inline void divkit_js_f64_near_hi_log(double ell, double log_p, double beta, double *out0, double *out1)
{
    const double t0 = exp(-ell);
    const double t1 = ell + log(t0 + beta - t0*beta);
    const double t2 = t1*exp(log_p - ell);
    const double t3 = beta*exp(log_p);
    *out0 = -t2 + t2*beta;
    *out1 = t3*ell - t1*t3;
}

static inline void divkit_js_f64_lo_exp(double ell, double log_q, double beta, double *out0, double *out1, double *out2)
{
    const double t0 = beta*exp(ell + log_q);
    const double t1 = exp(log_q);
    const double t2 = -beta + beta*exp(ell);
    const double t3 = -1.0 + beta;
    const double t4 = t1*divkit_softplus(ell + log(-beta/t3));
    *out0 = t0*ell + divkit_xlog1py(t1*(-1.0 - t2), t2);
    *out1 = -t4 + t4*beta;
    *out2 = -t0*divkit_softplus(-ell + log(-t3/beta));
}

static inline void divkit_js_f64_hi_exp(double ell, double log_p, double beta, double *out0, double *out1, double *out2)
{
    const double t0 = beta*exp(log_p);
    const double t1 = exp(-ell);
    const double t2 = ell + log(t1 + beta - t1*beta);
    const double t3 = exp(log_p - ell);
    const double t4 = t2*t3;
    const double t5 = t3*divkit_softplus(ell + log(-beta/(-1.0 + beta)));
    *out0 = -t4 + t0*ell + t4*beta - t0*t2;
    *out1 = -t5 + t5*beta;
    *out2 = -t0*divkit_softplus(-ell + log(-1.0 + 1.0/beta));
}

static inline void divkit_js_f64_terms(double zt, double zs, const double *rs, const double *cst, double *loss, double *gs,
    double *gt)
{
    /* one element: a = zt - log S_t, b = zs - log S_s, l = a - b, p = e^a, q = e^b;
       cst: the parameters and the per-value constants (layout in numeric._cuda_sources) */
    if (zt == -(double)INFINITY || zs == -(double)INFINITY) {
        if (zt == -(double)INFINITY && zs == -(double)INFINITY) {
            *loss = 0.0;
            *gs = 0.0;
            *gt = 0.0;
        } else if (zt == -(double)INFINITY) {
            /* p = 0 < q: the term is q X(0+) */
            const double q = exp(zs - rs[3]);
            *loss = dk_limit(q, cst[1]);
            *gs = dk_limit(q, cst[28]);
            *gt = dk_limit(q, cst[55]);
        } else {
            /* q = 0 < p: the term is p lim X(u)/u, u -> oo */
            const double p = exp(zt - rs[2]);
            *loss = dk_limit(p, cst[1 + 1]);
            *gs = dk_limit(p, cst[28 + 1]);
            *gt = dk_limit(p, cst[55 + 1]);
        }
        return;
    }
    /* the branch weighted by the larger probability: lo (q) for l <= 0, hi (p) for
       l > 0, so that a tiny (or subnormal) weight never multiplies a huge exponential */
    const double ell = (zt - zs) - (rs[2] - rs[3]);
    if (ell <= 0.0) {
        const double q = exp(zs) / (1.0 + rs[1]);
        divkit_js_f64_lo(ell, q, (double)cst[0], loss, gs, gt);
    } else {
        const double p = exp(zt) / (1.0 + rs[0]);
        divkit_js_f64_hi(ell, p, (double)cst[0], loss, gs, gt);
    }
    if (!(isfinite(*loss) && isfinite(*gs) && isfinite(*gt))) {
        /* overflow or 0*inf: the same branch with the weight inside the exponentials */
        if (ell <= 0.0) {
            divkit_js_f64_lo_log(ell, zs - rs[3], (double)cst[0], loss, gs, gt);
        } else {
            divkit_js_f64_hi_log(ell, zt - rs[2], (double)cst[0], loss, gs, gt);
        }
    }
    if (!(isfinite(*loss) && isfinite(*gs) && isfinite(*gt))) {
        /* a weighted expm1 overflowed (0*inf): every exponential merged with the weight */
        double l2, g2, h2;
        if (ell <= 0.0) {
            divkit_js_f64_lo_exp(ell, zs - rs[3], (double)cst[0], &l2, &g2, &h2);
        } else {
            divkit_js_f64_hi_exp(ell, zt - rs[2], (double)cst[0], &l2, &g2, &h2);
        }
        *loss = isfinite(*loss) ? *loss : l2;
        *gs = isfinite(*gs) ? *gs : g2;
        *gt = isfinite(*gt) ? *gt : h2;
    }
    /* near r = 1: the Taylor polynomial (no cancellation), weight q */
    const double fl = fabs(ell);
    if (fl < (double)cst[1 + 2] || fl < (double)cst[28 + 2] || fl < (double)cst[55 + 2]) {
        const double q = exp(zs) / (1.0 + rs[1]);
        if (fl < (double)cst[1 + 2]) {
            *loss = q * dk_poly(cst + 1 + 3, ell);
        }
        if (fl < (double)cst[28 + 2]) {
            *gs = q * dk_poly(cst + 28 + 3, ell);
        }
        if (fl < (double)cst[55 + 2]) {
            *gt = q * dk_poly(cst + 55 + 3, ell);
        }
    }
}

static inline void divkit_js_f64_near_terms(double zt, double zs, const double *rs, const double *cst, double *gs, double *gt)
{
    /* the gradient terms that vanish at r = 1, for nearly equal rows */
    if (zt == -(double)INFINITY || zs == -(double)INFINITY) {
        if (zt == -(double)INFINITY && zs == -(double)INFINITY) {
            *gs = 0.0;
            *gt = 0.0;
        } else if (zt == -(double)INFINITY) {
            const double q = exp(zs - rs[3]);
            *gs = dk_limit(q, cst[82]);
            *gt = dk_limit(q, cst[109]);
        } else {
            const double p = exp(zt - rs[2]);
            *gs = dk_limit(p, cst[82 + 1]);
            *gt = dk_limit(p, cst[109 + 1]);
        }
        return;
    }
    const double ell = (zt - zs) - (rs[2] - rs[3]);
    if (ell <= 0.0) {
        divkit_js_f64_near_lo_log(ell, zs - rs[3], (double)cst[0], gs, gt);
    } else {
        divkit_js_f64_near_hi_log(ell, zt - rs[2], (double)cst[0], gs, gt);
    }
    const double fl = fabs(ell);
    if (fl < (double)cst[82 + 2] || fl < (double)cst[109 + 2]) {
        const double q = exp(zs) / (1.0 + rs[1]);
        if (fl < (double)cst[82 + 2]) {
            *gs = q * dk_poly(cst + 82 + 3, ell);
        }
        if (fl < (double)cst[109 + 2]) {
            *gt = q * dk_poly(cst + 109 + 3, ell);
        }
    }
}

void divkit_js_f64_rows(long long rows, long long V, const double *restrict teacher, const double *restrict student, double temperature, double grad_scale, const unsigned char *restrict keep, const double *restrict cst, double *restrict loss, double *restrict grad_student, double *restrict grad_teacher)
{
    const long long tid = 0;
    const long long nthreads = 1;
    const int unit = temperature == 1.0;
    for (long long row = 0; row < rows; ++row) {
        const double *xt = teacher + row * V;
        const double *xs = student + row * V;
        if (keep != 0 && keep[row] == 0) {
            if (tid == 0) {
                loss[row] = 0.0;
            }
            for (long long i = tid; i < V; i += nthreads) {
                if (grad_student != 0) {
                    grad_student[row * V + i] = 0.0;
                }
                if (grad_teacher != 0) {
                    grad_teacher[row * V + i] = 0.0;
                }
            }
            continue;
        }
        /* pass 1: online max, argmax and sum of exp(x - max) without the max, both rows */
        double mt = -(double)INFINITY, st = 0.0, ct = 0.0;
        double ms = -(double)INFINITY, ss = 0.0, cs = 0.0;
        long long jt = 0, js = 0;
        for (long long i = tid; i < V; i += nthreads) {
            dk_lse_push(&mt, &st, &ct, &jt, unit ? xt[i] : xt[i] / temperature, i);
            dk_lse_push(&ms, &ss, &cs, &js, unit ? xs[i] : xs[i] / temperature, i);
        }
        DK_BLOCK_LSE(&mt, &st, &ct, &jt);
        DK_BLOCK_LSE(&ms, &ss, &cs, &js);
        double rs[4];
        rs[0] = st + ct;                 /* so_t: sum of exp(z_t) over i != argmax */
        rs[1] = ss + cs;                 /* so_s */
        rs[2] = log1p(rs[0]);         /* log S_t */
        rs[3] = log1p(rs[1]);         /* log S_s */
        /* pass 2: loss sum; gradient sums without the row's argmax term, and that term */
        double acc[10];
        for (int k = 0; k < 10; ++k) {
            acc[k] = 0.0;
        }
        for (long long i = tid; i < V; i += nthreads) {
            const double zt = (unit ? xt[i] : xt[i] / temperature) - mt;
            const double zs = (unit ? xs[i] : xs[i] / temperature) - ms;
            double lv, gv, hv;
            divkit_js_f64_terms(zt, zs, rs, cst, &lv, &gv, &hv);
            dk_two_sum(&acc[0], &acc[1], lv);
            if (i == js) {
                acc[4] = gv;
            } else {
                dk_two_sum(&acc[2], &acc[3], gv);
            }
            if (i == jt) {
                acc[7] = hv;
            } else {
                dk_two_sum(&acc[5], &acc[6], hv);
            }
        }
        double d, d_lo, g_o, g_o_lo, g_j, g_j_lo, h_o, h_o_lo, h_j, h_j_lo;
        DK_BLOCK_SUM(acc[0], acc[1], &d, &d_lo);
        DK_BLOCK_SUM(acc[2], acc[3], &g_o, &g_o_lo);
        DK_BLOCK_SUM(acc[4], 0.0, &g_j, &g_j_lo);
        DK_BLOCK_SUM(acc[5], acc[6], &h_o, &h_o_lo);
        DK_BLOCK_SUM(acc[7], 0.0, &h_j, &h_j_lo);
        if (tid == 0) {
            loss[row] = d < 0.0 ? 0.0 : d;
        }
        if (grad_student == 0 && grad_teacher == 0) {
            continue;
        }
        /* nearly equal rows: gradient forms that vanish at r = 1 (uniform per row) */
        const int near_s = cst[136] != 0.0 && (double)d < cst[136 + 2];
        const int near_t = cst[136 + 1] != 0.0 && (double)d < cst[136 + 3];
        if (near_s || near_t) {
            for (int k = 0; k < 10; ++k) {
                acc[k] = 0.0;
            }
            for (long long i = tid; i < V; i += nthreads) {
                const double zt = (unit ? xt[i] : xt[i] / temperature) - mt;
                const double zs = (unit ? xs[i] : xs[i] / temperature) - ms;
                double gv, hv;
                divkit_js_f64_near_terms(zt, zs, rs, cst, &gv, &hv);
                if (i == js) {
                    acc[4] = gv;
                } else {
                    dk_two_sum(&acc[2], &acc[3], gv);
                }
                if (i == jt) {
                    acc[7] = hv;
                } else {
                    dk_two_sum(&acc[5], &acc[6], hv);
                }
            }
            double a_o, a_o_lo, a_j, a_j_lo, b_o, b_o_lo, b_j, b_j_lo;
            DK_BLOCK_SUM(acc[2], acc[3], &a_o, &a_o_lo);
            DK_BLOCK_SUM(acc[4], 0.0, &a_j, &a_j_lo);
            DK_BLOCK_SUM(acc[5], acc[6], &b_o, &b_o_lo);
            DK_BLOCK_SUM(acc[7], 0.0, &b_j, &b_j_lo);
            if (near_s) {
                g_o = a_o;
                g_o_lo = a_o_lo;
                g_j = a_j;
            }
            if (near_t) {
                h_o = b_o;
                h_o_lo = b_o_lo;
                h_j = b_j;
            }
        }
        /* m = sum_i w_i g_i as the exact pair (hi, lo); gradient w_j (g_j - m) = w g - w m
           rounded once (fma); at the argmax J: g_J (1 - w_J) - w_J sum_{i != J} w_i g_i,
           1 - w_J = so/(1 + so), so nothing cancels on a nearly one-hot row */
        double m_s, m_s_lo, m_t, m_t_lo;
        {
            double s_ = g_o, c_ = g_o_lo;
            dk_two_sum(&s_, &c_, g_j);
            dk_split(s_, c_, &m_s, &m_s_lo);
            s_ = h_o;
            c_ = h_o_lo;
            dk_two_sum(&s_, &c_, h_j);
            dk_split(s_, c_, &m_t, &m_t_lo);
        }
        const int ok_s = isfinite(m_s);
        const int ok_t = isfinite(m_t);
        const int flat = d == 0.0;
        /* pass 3: write the gradients, times grad_scale */
        for (long long i = tid; i < V; i += nthreads) {
            const double zt = (unit ? xt[i] : xt[i] / temperature) - mt;
            const double zs = (unit ? xs[i] : xs[i] / temperature) - ms;
            double lv, gv, hv, gn, hn;
            divkit_js_f64_terms(zt, zs, rs, cst, &lv, &gv, &hv);
            if (near_s || near_t) {
                divkit_js_f64_near_terms(zt, zs, rs, cst, &gn, &hn);
                gv = near_s ? gn : gv;
                hv = near_t ? hn : hv;
            }
            if (grad_student != 0) {
                const double q = exp(zs) / (1.0 + rs[1]);
                double g;
                if (i == js) {
                    g = gv * (rs[1] / (1.0 + rs[1])) - q * (g_o + g_o_lo);
                } else {
                    g = fma(-q, m_s, gv) - q * m_s_lo;
                }
                g = ok_s ? g * grad_scale : (double)NAN;
                grad_student[row * V + i] = flat ? 0.0 : g;
            }
            if (grad_teacher != 0) {
                const double p = exp(zt) / (1.0 + rs[0]);
                double h;
                if (i == jt) {
                    h = hv * (rs[0] / (1.0 + rs[0])) - p * (h_o + h_o_lo);
                } else {
                    h = fma(-p, m_t, hv) - p * m_t_lo;
                }
                h = ok_t ? h * grad_scale : (double)NAN;
                grad_teacher[row * V + i] = flat ? 0.0 : h;
            }
        }
    }
}
