/* divkit_host_block.h — the terms of element DK_X (cst block DK_X_OFF) on a block of a
 * from-logits row, host, double: included once per element by divkit_host_elements.h
 * (which describes it); DK_X and DK_X_OFF are undefined at the end. */

static void DK_(DK_CAT(DK_X, _block))(int n, const double *restrict zt, const double *restrict zs,
    const double *restrict ell, const double *restrict q, const double *restrict p,
    dk_rowc_f64 rc, const double *restrict cst, double *restrict out)
{
    const double rad = cst[DK_X_OFF + DK_EL_RADIUS];
    const double *coef = cst + DK_X_OFF + DK_EL_SERIES;
    /* the block sorted into lists without a branch, each list gathered into contiguous
       arrays, evaluated by a vectorised loop (every exponential an unconditional vector
       call, no entry evaluated twice) and scattered back:
         |ell| < radius            the Taylor polynomial;
         ell <= -1/2, ell >= 1/2   the lo / hi forms in r = p/q, s = q/p: the exponentials
                                   of ell that are powers of the ratio come from p and q
                                   (1 - r and s - 1 are not small there);
         the rest                  the lo / hi forms in ell (their exponentials), where
                                   r - 1 computed from p/q would cancel; NaN goes here. */
    int ilo[DK_BLOCK], ihi[DK_BLOCK], ilr[DK_BLOCK], ihr[DK_BLOCK], iser[DK_BLOCK];
    int nlo = 0, nhi = 0, nlr = 0, nhr = 0, nser = 0;
    for (int k = 0; k < n; ++k) {
        const double e = ell[k];
        const int ser = fabs(e) < rad;
        const int lr = !ser & (e <= -0.5);
        const int hr = !ser & (e >= 0.5);
        const int lo = !ser & !lr & (e <= 0.0);
        iser[nser] = k;
        nser += ser;
        ilr[nlr] = k;
        nlr += lr;
        ihr[nhr] = k;
        nhr += hr;
        ilo[nlo] = k;
        nlo += lo;
        ihi[nhi] = k;
        nhi += !ser & !lr & !hr & !lo;
    }
    double ge[DK_BLOCK], gw[DK_BLOCK], gr[DK_BLOCK];
    for (int j = 0; j < nlr; ++j) {
        ge[j] = ell[ilr[j]];
        gw[j] = q[ilr[j]];
        gr[j] = p[ilr[j]];
    }
#pragma omp simd
    for (int j = 0; j < nlr; ++j) {
        ge[j] = DK_(DK_CAT(DK_X, _lo_r))(ge[j], gw[j], gr[j] / gw[j] DK_THETA);
    }
    for (int j = 0; j < nlr; ++j) {
        out[ilr[j]] = ge[j];
    }
    for (int j = 0; j < nhr; ++j) {
        ge[j] = ell[ihr[j]];
        gw[j] = p[ihr[j]];
        gr[j] = q[ihr[j]];
    }
#pragma omp simd
    for (int j = 0; j < nhr; ++j) {
        ge[j] = DK_(DK_CAT(DK_X, _hi_r))(ge[j], gw[j], gr[j] / gw[j] DK_THETA);
    }
    for (int j = 0; j < nhr; ++j) {
        out[ihr[j]] = ge[j];
    }
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
