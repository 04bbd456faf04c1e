/* divkit_host_elements.h — the element terms of a block of a from-logits row on the host
 * (double), vectorised: for element X (loss, gs, gt, ngs, ngt) the loop evaluates the lo
 * form where ell <= 0 and the hi form where ell > 0, and the Taylor polynomial where |ell|
 * is below the series radius, lane by lane (both branches computed, one selected: no
 * branch, so that the loop vectorises with the vector math library); an element whose
 * value is not finite (a -inf logit, an overflow, 0 * inf) is then evaluated by the careful
 * scalar term of divkit_elements.h, which starts with the same forms. Needs the f64
 * instantiation of divkit_common.h, the forms and divkit_elements.h. */

#define DK_HOST_BLOCK_TERMS(X, OFF)                                                          \
    static void DK_(X##_block)(int n, const double *restrict zt,                       \
        const double *restrict zs, const double *restrict ell, const double *restrict q,      \
        const double *restrict p, dk_rowc_f64 rc, const double *restrict cst,                 \
        double *restrict out)                                                                 \
    {                                                                                        \
        const double rad = cst[(OFF) + DK_EL_RADIUS];                                        \
        int bad = 0;                                                                         \
        _Pragma("omp simd reduction(|:bad)")                                                 \
        for (int k = 0; k < n; ++k) {                                                        \
            const double e = ell[k];                                                         \
            const double lo = DK_(X##_lo)(e, q[k] DK_THETA);                                 \
            const double hi = DK_(X##_hi)(e, p[k] DK_THETA);                                 \
            double v = e <= 0.0 ? lo : hi;                                                   \
            v = fabs(e) < rad ? q[k] * dk_poly_f64(cst + (OFF) + DK_EL_SERIES, e) : v;       \
            v = isfinite(e) ? v : NAN;                                                       \
            bad |= !isfinite(v);                                                             \
            out[k] = v;                                                                      \
        }                                                                                    \
        if (bad) {                                                                           \
            for (int k = 0; k < n; ++k) {                                                    \
                if (!isfinite(out[k])) {                                                     \
                    out[k] = DK_(X##_term)(zt[k], zs[k], rc, cst);                           \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    }

DK_HOST_BLOCK_TERMS(loss, DK_CST_LOSS)
DK_HOST_BLOCK_TERMS(gs, DK_CST_GS)
DK_HOST_BLOCK_TERMS(gt, DK_CST_GT)
DK_HOST_BLOCK_TERMS(ngs, DK_CST_NGS)
DK_HOST_BLOCK_TERMS(ngt, DK_CST_NGT)

#undef DK_HOST_BLOCK_TERMS

/* the probability kernel's term (divkit_prob.h) where r = p/q is not a normal float or the
   fast forms overflowed */
static inline double DK_(prob_slow)(double p, double q, const double *cst)
{
    /* the zero-mass limits, and the weights inside the exponentials where r = p/q is not a
       normal float or the term overflowed */
    if (p == 0.0 || q == 0.0) {
        if (p == 0.0 && q == 0.0) {
            return 0.0;
        }
        return p == 0.0 ? dk_limit_f64(q, cst[DK_CST_LOSS + DK_EL_AT_P_ZERO])
                        : dk_limit_f64(p, cst[DK_CST_LOSS + DK_EL_AT_Q_ZERO]);
    }
    const double a = log(p), b = log(q), ell = a - b;
    if (fabs(ell) < cst[DK_CST_LOSS + DK_EL_RADIUS]) {
        return q * dk_poly_f64(cst + DK_CST_LOSS + DK_EL_SERIES, ell);
    }
    double out;
    if (ell <= 0.0) {
        out = DK_(prob_lo_log)(ell, b DK_THETA);
        if (!isfinite(out)) {
            out = DK_(prob_lo_exp)(ell, b DK_THETA);
        }
    } else {
        out = DK_(prob_hi_log)(ell, a DK_THETA);
        if (!isfinite(out)) {
            out = DK_(prob_hi_exp)(ell, a DK_THETA);
        }
    }
    /* still not finite: NaN marks the row for the numpy evaluation, which has the family's
       general forms as a further fallback */
    return isfinite(out) ? out : NAN;
}
