/* divkit_host_elements.h — the element terms of a block of a from-logits row on the host
 * (double), vectorised: for element X (loss, gs, gt, ngs, ngt) the loop evaluates the lo
 * form where ell <= 0 and the hi form where ell > 0, and the Taylor polynomial where |ell|
 * is below the series radius, lane by lane (both branches computed, one selected: no
 * branch, so that the loop vectorises with the vector math library); an element whose
 * value is not finite (a -inf logit, an overflow, 0 * inf) is then evaluated by the careful
 * scalar term of divkit_elements.h, which starts with the same forms. Needs the f64
 * instantiation of divkit_common.h, the forms and divkit_elements.h. */

/* one function per element: divkit_host_block.h instantiated with DK_X (the element's
   name) and DK_X_OFF (its cst block) */
#define DK_X loss
#define DK_X_OFF DK_CST_LOSS
#include "divkit_host_block.h"
#define DK_X gs
#define DK_X_OFF DK_CST_GS
#include "divkit_host_block.h"
#define DK_X gt
#define DK_X_OFF DK_CST_GT
#include "divkit_host_block.h"
#define DK_X ngs
#define DK_X_OFF DK_CST_NGS
#include "divkit_host_block.h"
#define DK_X ngt
#define DK_X_OFF DK_CST_NGT
#include "divkit_host_block.h"

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
