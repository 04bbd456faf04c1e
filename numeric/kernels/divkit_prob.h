/* divkit_prob.h — the probability kernel of numeric.divergence on the host: row sums of the
 * standardised terms q F(p/q) >= 0 for probabilities of type DK_IN (float or double; the
 * arithmetic in double), one pass. Included once per type by divkit_host.c.
 *
 * Per element r = p/q once, and the branch weighted by the larger probability: prob_lo
 * (weight q, r <= 1) or prob_hi (weight p, s = q/p < 1), the family's forms with every
 * e^(c ell) written as a power of r or s (numeric/_cpu.py prints them); the Taylor
 * polynomial of the term where |ell| is below its radius; the zero-mass limits where p or q
 * is 0; the log-weight forms (weights inside the exponentials) where r is not a normal
 * float or the term overflowed. DK_PROB_ARITHMETIC (printed) is 1 when both forms are
 * arithmetic and square roots only: then both are computed and blended branch-free;
 * otherwise the block is sorted into lists, each list through its own form.
 *
 *   std_sum[row] = sum_i q_i F(p_i/q_i) (Neumaier), diff[row] = sum_i (p_i - q_i),
 *   spread[row] = sum_i |p_i - q_i| (the scale of diff's rounding error), status[row]:
 *   1 done, 0 an entry is negative, NaN or infinite, 2 a term no C form could evaluate
 *   (the caller evaluates the row in numpy). */

#define DK_PR(x) DK_(DK_CAT(x, DK_CAT(_, DK_IN_TAG)))


void DK_PR(prob_rows)(long long rows, long long V, const DK_IN *restrict p,
    const DK_IN *restrict q, const double *restrict cst, double *restrict std_sum,
    double *restrict diff, double *restrict spread, unsigned char *restrict status)
{
    for (long long row = 0; row < rows; ++row) {
        const DK_IN *pr = p + row * V;
        const DK_IN *qr = q + row * V;
        double s = 0.0, c = 0.0, d = 0.0, dc = 0.0, m = 0.0;
        int ok = 1, redo = 0;
        double r[DK_BLOCK], ell[DK_BLOCK], t[DK_BLOCK];
        int iser[DK_BLOCK], ibad[DK_BLOCK];
        double se[DK_BLOCK];
        const double rad = cst[DK_CST_LOSS + DK_EL_RADIUS];
        for (long long i0 = 0; i0 < V; i0 += DK_BLOCK) {
            const int n = V - i0 < DK_BLOCK ? (int)(V - i0) : DK_BLOCK;
            const DK_IN *pb = pr + i0;
            const DK_IN *qb = qr + i0;
            double db = 0.0, mb = 0.0;
#pragma omp simd reduction(+ : db, mb) reduction(& : ok)
            for (int j = 0; j < n; ++j) {
                const double pj = (double)pb[j], qj = (double)qb[j];
                ok &= (pj >= 0.0) & (qj >= 0.0) & (pj <= DBL_MAX) & (qj <= DBL_MAX);
                r[j] = pj / qj;
                db += pj - qj;
                mb += fabs(pj - qj);
            }
#pragma omp simd
            for (int j = 0; j < n; ++j) {
                /* log p/q = log r - log(1 + d), r = (p/q)(1 + d) rounded: the rounding d of
                   the ratio, exact from the fma residual r q - p, is all of ell when the rows
                   differ by a few ulps (log r alone: TV and chi2 of rows 1 ulp apart 10 % off) */
                const double pj = (double)pb[j];
                const double d = fma(r[j], (double)qb[j], -pj);
                ell[j] = log(r[j]) - (pj > 0.0 ? d / pj : 0.0);
            }
            int nser = 0, nbad = 0;
#if DK_PROB_ARITHMETIC
            /* lo and hi forms of arithmetic and square roots only: both computed, the one
               of the branch selected (an overflow in the other is never read) */
#pragma omp simd
            for (int j = 0; j < n; ++j) {
                const double e = ell[j], pj = (double)pb[j], qj = (double)qb[j];
                const double lo = DK_(prob_lo)(e, qj, r[j] DK_THETA);
                const double hi = DK_(prob_hi)(e, pj, qj / pj DK_THETA);
                t[j] = e < 0.0 ? lo : hi;
            }
            /* the elements near r = 1 (series) and the ratios that are not normal floats
               (slow), listed branch-free */
            for (int j = 0; j < n; ++j) {
                const int normal = (r[j] >= DBL_MIN) & (r[j] <= DBL_MAX);
                iser[nser] = j;
                nser += normal & (fabs(ell[j]) < rad);
                ibad[nbad] = j;
                nbad += !normal;
            }
#else
            /* lo and hi forms with further calls (log1p, exp, ...): the block sorted into
               lists, branch-free, each list through its own form */
            int ilo[DK_BLOCK], ihi[DK_BLOCK];
            int nlo = 0, nhi = 0;
            for (int j = 0; j < n; ++j) {
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
            }
            for (int k = 0; k < nlo; ++k) {
                const int j = ilo[k];
                t[j] = DK_(prob_lo)(ell[j], (double)qb[j], r[j] DK_THETA);
            }
            for (int k = 0; k < nhi; ++k) {
                const int j = ihi[k];
                t[j] = DK_(prob_hi)(ell[j], (double)pb[j], (double)qb[j] / (double)pb[j] DK_THETA);
            }
#endif
            /* the series on the gathered elements (contiguous: the loop vectorises) */
            for (int k = 0; k < nser; ++k) {
                se[k] = ell[iser[k]];
            }
#pragma omp simd
            for (int k = 0; k < nser; ++k) {
                se[k] = dk_poly_f64(cst + DK_CST_LOSS + DK_EL_SERIES, se[k]);
            }
            for (int k = 0; k < nser; ++k) {
                const int j = iser[k];
                t[j] = (double)qb[j] * se[k];
            }
            for (int k = 0; k < nbad; ++k) {
                const int j = ibad[k];
                t[j] = DK_(prob_slow)((double)pb[j], (double)qb[j], cst);
                redo |= isnan(t[j]);
            }
            double sb = 0.0;
#pragma omp simd reduction(+ : sb)
            for (int j = 0; j < n; ++j) {
                sb += t[j];
            }
            if (!isfinite(sb)) {
                /* an overflow (or a NaN from the branch not taken): those terms again, the
                   slow way; an infinite zero-mass limit stays infinite */
                sb = 0.0;
                for (int j = 0; j < n; ++j) {
                    if (!isfinite(t[j])) {
                        t[j] = DK_(prob_slow)((double)pb[j], (double)qb[j], cst);
                    }
                    redo |= isnan(t[j]);
                    sb += t[j];
                }
            }
            dk_neumaier_f64(&s, &c, sb);
            dk_neumaier_f64(&d, &dc, db);
            m += mb;
        }
        std_sum[row] = isfinite(s) ? s + c : s;
        diff[row] = d + dc;
        spread[row] = m;
        status[row] = (unsigned char)(ok ? (redo ? 2 : 1) : 0);
    }
}

void DK_PR(prob_diff)(long long rows, long long V, const DK_IN *restrict p,
    const DK_IN *restrict q, const unsigned char *restrict sel, double *restrict diff)
{
    /* sum_i (p_i - q_i) to (almost) the exact value, for rows where f'(1) times its
       rounding error would show in the divergence */
    for (long long row = 0; row < rows; ++row) {
        if (!sel[row]) {
            continue;
        }
        const DK_IN *pr = p + row * V;
        const DK_IN *qr = q + row * V;
        double s = 0.0, c = 0.0;
        for (long long i = 0; i < V; ++i) {
            dk_neumaier_f64(&s, &c, (double)pr[i]);
            dk_neumaier_f64(&s, &c, -(double)qr[i]);
        }
        diff[row] = s + c;
    }
}

#undef DK_PR
