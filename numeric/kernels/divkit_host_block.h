/* divkit_host_block.h — the terms of element DK_X (cst block DK_X_OFF) on a block of a
 * from-logits row, host, double: included once per element by divkit_host_elements.h
 * (which describes it); DK_X and DK_X_OFF are undefined at the end. */

static void DK_(DK_CAT(DK_X, _block))(int n, const double *restrict zt, const double *restrict zs,
    const double *restrict ell, const double *restrict q, const double *restrict p,
    dk_rowc_f64 rc, const double *restrict cst, double *restrict out)
{
    const double rad = cst[DK_X_OFF + DK_EL_RADIUS];
    const double *coef = cst + DK_X_OFF + DK_EL_SERIES;
    /* the block sorted into lists without a branch: ell <= 0 (lo form), ell > 0 or NaN (hi
       form), and |ell| below the series radius; each list gathered into contiguous arrays
       and evaluated by a vectorised loop (every exponential an unconditional vector call,
       no entry evaluated twice), the values scattered back */
    int ilo[DK_BLOCK], ihi[DK_BLOCK], iser[DK_BLOCK];
    int nlo = 0, nhi = 0, nser = 0;
    for (int k = 0; k < n; ++k) {
        const double e = ell[k];
        const int lo = e <= 0.0;
        ilo[nlo] = k;
        nlo += lo;
        ihi[nhi] = k;
        nhi += !lo;
        iser[nser] = k;
        nser += fabs(e) < rad;
    }
    double ge[DK_BLOCK], gw[DK_BLOCK];
    for (int j = 0; j < nlo; ++j) {
        ge[j] = ell[ilo[j]];
        gw[j] = q[ilo[j]];
    }
#pragma omp simd
    for (int j = 0; j < nlo; ++j) {
        ge[j] = DK_(DK_CAT(DK_X, _lo))(ge[j], gw[j] DK_THETA);
    }
    for (int j = 0; j < nlo; ++j) {
        out[ilo[j]] = ge[j];
    }
    for (int j = 0; j < nhi; ++j) {
        ge[j] = ell[ihi[j]];
        gw[j] = p[ihi[j]];
    }
#pragma omp simd
    for (int j = 0; j < nhi; ++j) {
        ge[j] = DK_(DK_CAT(DK_X, _hi))(ge[j], gw[j] DK_THETA);
    }
    for (int j = 0; j < nhi; ++j) {
        out[ihi[j]] = ge[j];
    }
    if (nser > 0) {
        for (int j = 0; j < nser; ++j) {
            ge[j] = ell[iser[j]];
        }
#pragma omp simd
        for (int j = 0; j < nser; ++j) {
            ge[j] = dk_poly_f64(coef, ge[j]);
        }
        for (int j = 0; j < nser; ++j) {
            out[iser[j]] = q[iser[j]] * ge[j];
        }
    }
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int k = 0; k < n; ++k) {
        const double v = isfinite(ell[k]) ? out[k] : NAN;
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
