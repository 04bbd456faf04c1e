/* divkit_prob_slow.h — the probability kernel's careful term, shared by both input types of
 * divkit_prob.h (needs the family's prob_* forms and the f64 helpers). */

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
