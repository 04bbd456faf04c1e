/* divkit_elements.h — one element of a from-logits row, evaluated carefully, for the current
 * family (DK_FAMILY) and dtype (DK_T).
 *
 * Needs the printed element forms of the family (the generated divkit_forms header): for
 * each element X in loss, gs, gt, ngs, ngt (the loss term q F(r); the student- and
 * teacher-gradient terms q g(r) and p h(r); and their forms that vanish at r = 1, for
 * nearly equal rows) the functions
 *     X_lo(ell, q, theta...)      q X(e^ell), for ell <= 0 (weight q, the larger one)
 *     X_hi(ell, p, theta...)      p X(e^ell) / e^ell, for ell > 0 (weight p)
 *     X_lo_log(ell, b, theta...)  the same with the weight inside the exponentials,
 *     X_hi_log(ell, a, theta...)  b = log q, a = log p (an overflowed or 0 * inf term)
 *     X_lo_exp, X_hi_exp          every exponential merged with the weight
 * and DK_THETA, the parameter arguments ", (DK_T)cst[0], ..." from the cst array.
 *
 * With z_t = x_t - max x_t, z_s likewise, a = z_t - log S_t, b = z_s - log S_s and
 * ell = a - b = log(p / q), the term of element X is
 *   - q X(0+) where p = 0 < q, p lim X(u)/u where q = 0 < p, 0 where p = q = 0;
 *   - the lo form for ell <= 0, the hi form for ell > 0 (so that a tiny or subnormal weight
 *     never multiplies a huge exponential), then the _log and _exp variants if the value is
 *     not finite;
 *   - q times the Taylor polynomial of X in ell where |ell| is below its radius.
 * The constants (zero-mass limits, radius, coefficients) come per parameter value in cst
 * at the offsets DK_CST_<X> + DK_EL_* (numeric/_abi.py prints them). */

#define DK_ELEMENT_TERM(X, OFF)                                                              \
    DK_Q DK_T DK_(X##_term)(DK_T zt, DK_T zs, DK_H(dk_rowc) rc, const double *cst)         \
    {                                                                                        \
        if (zt == DK_NEG_INF || zs == DK_NEG_INF) {                                          \
            if (zt == DK_NEG_INF && zs == DK_NEG_INF) {                                      \
                return DK_ZERO;                                                              \
            }                                                                                \
            if (zt == DK_NEG_INF) {                                                          \
                return DK_H(dk_limit)(DK_M(exp)(zs - rc.lse_s), cst[(OFF) + DK_EL_AT_P_ZERO]); \
            }                                                                                \
            return DK_H(dk_limit)(DK_M(exp)(zt - rc.lse_t), cst[(OFF) + DK_EL_AT_Q_ZERO]);   \
        }                                                                                    \
        const DK_T ell = (zt - zs) - (rc.lse_t - rc.lse_s);                                  \
        const DK_T q = DK_M(exp)(zs) / (DK_ONE + rc.so_s);                                   \
        DK_T v;                                                                              \
        if (ell <= DK_ZERO) {                                                                \
            v = DK_(X##_lo)(ell, q DK_THETA);                                                \
            if (!isfinite(v)) {                                                              \
                v = DK_(X##_lo_log)(ell, zs - rc.lse_s DK_THETA);                            \
            }                                                                                \
            if (!isfinite(v)) {                                                              \
                v = DK_(X##_lo_exp)(ell, zs - rc.lse_s DK_THETA);                            \
            }                                                                                \
        } else {                                                                             \
            const DK_T p = DK_M(exp)(zt) / (DK_ONE + rc.so_t);                               \
            v = DK_(X##_hi)(ell, p DK_THETA);                                                \
            if (!isfinite(v)) {                                                              \
                v = DK_(X##_hi_log)(ell, zt - rc.lse_t DK_THETA);                            \
            }                                                                                \
            if (!isfinite(v)) {                                                              \
                v = DK_(X##_hi_exp)(ell, zt - rc.lse_t DK_THETA);                            \
            }                                                                                \
        }                                                                                    \
        if (DK_M(fabs)(ell) < (DK_T)cst[(OFF) + DK_EL_RADIUS]) {                             \
            v = q * DK_H(dk_poly)(cst + (OFF) + DK_EL_SERIES, ell);                          \
        }                                                                                    \
        return v;                                                                            \
    }

DK_ELEMENT_TERM(loss, DK_CST_LOSS)
DK_ELEMENT_TERM(gs, DK_CST_GS)
DK_ELEMENT_TERM(gt, DK_CST_GT)
DK_ELEMENT_TERM(ngs, DK_CST_NGS)
DK_ELEMENT_TERM(ngt, DK_CST_NGT)

#undef DK_ELEMENT_TERM
