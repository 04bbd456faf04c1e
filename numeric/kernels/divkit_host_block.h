/* divkit_host_block.h — the terms of element DK_X (cst block DK_X_OFF) on a block of a
 * from-logits row, host, double: included once per element by divkit_host_elements.h
 * (which describes it); DK_X and DK_X_OFF are undefined at the end. */

static void DK_(DK_CAT(DK_X, _block))(int n, const double *restrict zt, const double *restrict zs,
    const double *restrict ell, const double *restrict q, const double *restrict p,
    dk_rowc_f64 rc, const double *restrict cst, double *restrict out)
{
    const double rad = cst[DK_X_OFF + DK_EL_RADIUS];
    const double *coef = cst + DK_X_OFF + DK_EL_SERIES;
    /* four loops, each vectorised: the lo form, the hi form (every exponential an
       unconditional vector call), the series, then the selection (no load or call under a
       condition, so that it is branch-free) */
    double lo[DK_BLOCK], hi[DK_BLOCK], ser[DK_BLOCK];
#pragma omp simd
    for (int k = 0; k < n; ++k) {
        lo[k] = DK_(DK_CAT(DK_X, _lo))(ell[k], q[k] DK_THETA);
    }
#pragma omp simd
    for (int k = 0; k < n; ++k) {
        hi[k] = DK_(DK_CAT(DK_X, _hi))(ell[k], p[k] DK_THETA);
    }
    if (rad > 0.0) {
#pragma omp simd
        for (int k = 0; k < n; ++k) {
            ser[k] = q[k] * dk_poly_f64(coef, ell[k]);
        }
    }
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int k = 0; k < n; ++k) {
        const double e = ell[k];
        double v = e <= 0.0 ? lo[k] : hi[k];
        v = fabs(e) < rad ? ser[k] : v;
        v = isfinite(e) ? v : NAN;
        bad |= !isfinite(v);
        out[k] = v;
    }
    if (bad) {
        for (int k = 0; k < n; ++k) {
            if (!isfinite(out[k])) {
                out[k] = DK_(DK_CAT(DK_X, _term))(zt[k], zs[k], rc, cst);
            }
        }
    }
}

#undef DK_X
#undef DK_X_OFF
