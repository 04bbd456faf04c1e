/* divkit_host_rows.h — the from-logits row kernel on the host CPU, for logits of type DK_IN
 * (float or double; included once per type by divkit_host.c). Arithmetic in double.
 *
 * Same mathematics as divkit_row.h (see there), laid out for a CPU core: a row is walked in
 * blocks of DK_BLOCK entries, each pass a few vectorised loops over the block:
 *   pass 1  per block the max (one read of each input), the online rescaling of the sum
 *           when the max grows, and the block's sum of exp(x - max) without the argmax;
 *   pass 2  per block z, ell, p, q, the element terms (divkit_host_elements.h), their
 *           compensated sums (the argmax terms held out);
 *   pass 3  (gradients only) the same terms again and the gradient written once.
 * A row is at most a few hundred KiB of logits, so passes 2 and 3 read it from the cache.
 *
 *   status[row]: bit 0 set when the row's logits are valid (no NaN, no +inf, not all -inf);
 *                bit 1 when the loss sum is not finite; bit 2 when a gradient sum is not
 *                finite (the caller evaluates such rows again in numpy). */

#define DK_HR(x) DK_(DK_CAT(x, DK_CAT(_in, DK_IN_TAG)))

static inline void DK_HR(load)(int n, const DK_IN *restrict x, double temperature, int unit,
    double m, double *restrict z)
{
    if (unit) {
#pragma omp simd
        for (int k = 0; k < n; ++k) {
            z[k] = (double)x[k] - m;
        }
    } else {
#pragma omp simd
        for (int k = 0; k < n; ++k) {
            z[k] = (double)x[k] / temperature - m;
        }
    }
}

static void DK_HR(lse)(long long V, const DK_IN *restrict x, double temperature, int unit,
    double *m_out, double *so_out, long long *j_out, int *valid, double *restrict e_keep,
    double *restrict m_keep)
{
    /* online max m, first argmax j, so = sum over i != j of exp(x_i - m) (compensated);
       e_keep (if not NULL) gets exp(x_i - m_b) and m_keep[b] the max m_b the block b was
       taken against, so that pass 2 has exp(x_i - max) as one product */
    double buf[DK_BLOCK];
    double m = -INFINITY, s = 0.0, c = 0.0;
    long long j = 0;
    int bad = 0;
    for (long long i0 = 0; i0 < V; i0 += DK_BLOCK) {
        const int n = V - i0 < DK_BLOCK ? (int)(V - i0) : DK_BLOCK;
        DK_HR(load)(n, x + i0, temperature, unit, 0.0, buf);
        double bm = -INFINITY;
#pragma omp simd reduction(max : bm) reduction(| : bad)
        for (int k = 0; k < n; ++k) {
            const double v = buf[k];
            bad |= isnan(v) | (v == INFINITY);
            bm = v > bm ? v : bm;
        }
        if (bm == -INFINITY) {
            if (e_keep != NULL) {
                for (int k = 0; k < n; ++k) {
                    e_keep[i0 + k] = 0.0;
                }
                m_keep[i0 / DK_BLOCK] = 0.0;
            }
            continue;
        }
        if (bm > m) {
            if (m != -INFINITY) {
                const double f = exp(m - bm);
                s *= f;
                c *= f;
                dk_two_sum_f64(&s, &c, f);
            }
            m = bm;
            int k = 0;
            while (buf[k] != bm) {
                ++k;
            }
            j = i0 + k;
        }
        double sb = 0.0;
        const long long jb = j - i0; /* the argmax's place in this block, or outside it */
        if (e_keep != NULL) {
            double *eb = e_keep + i0;
#pragma omp simd reduction(+ : sb)
            for (int k = 0; k < n; ++k) {
                const double e = exp(buf[k] - m);
                eb[k] = e;
                sb += k == jb ? 0.0 : e;
            }
            m_keep[i0 / DK_BLOCK] = m;
        } else {
#pragma omp simd reduction(+ : sb)
            for (int k = 0; k < n; ++k) {
                const double e = exp(buf[k] - m);
                sb += k == jb ? 0.0 : e;
            }
        }
        dk_neumaier_f64(&s, &c, sb);
    }
    *m_out = m;
    *so_out = s + c;
    *j_out = j;
    *valid = !bad && m != -INFINITY;
}

/* the block's z_t, z_s, ell, p, q; with et/es (the exponentials of pass 1, against the
   maxima mbt/mbs) p and q are one product each instead of an exp and a division */
static inline void DK_HR(block_prep)(int n, const DK_IN *restrict xt, const DK_IN *restrict xs,
    double temperature, int unit, double mt, double ms, dk_rowc_f64 rc, double *restrict zt,
    double *restrict zs, double *restrict ell, double *restrict p, double *restrict q,
    const double *restrict et, const double *restrict es, double mbt, double mbs)
{
    DK_HR(load)(n, xt, temperature, unit, mt, zt);
    DK_HR(load)(n, xs, temperature, unit, ms, zs);
    const double dl = rc.lse_t - rc.lse_s, st = 1.0 + rc.so_t, ss = 1.0 + rc.so_s;
    if (et != NULL) {
        const double ft = exp(mbt - mt) / st, fs = exp(mbs - ms) / ss;
#pragma omp simd
        for (int k = 0; k < n; ++k) {
            ell[k] = (zt[k] - zs[k]) - dl;
            p[k] = et[k] * ft;
            q[k] = es[k] * fs;
        }
        return;
    }
#pragma omp simd
    for (int k = 0; k < n; ++k) {
        ell[k] = (zt[k] - zs[k]) - dl;
        p[k] = exp(zt[k]) / st;
        q[k] = exp(zs[k]) / ss;
    }
}

/* block sum of t without the entry at jb (its value goes to *tj); compensated into (s, c) */
static inline void DK_HR(block_sum)(int n, const double *restrict t, long long jb, double *s,
    double *c, double *tj)
{
    double sb = 0.0;
#pragma omp simd reduction(+ : sb)
    for (int k = 0; k < n; ++k) {
        sb += k == jb ? 0.0 : t[k];
    }
    if (jb >= 0 && jb < n) {
        *tj = t[jb];
    }
    dk_neumaier_f64(s, c, sb);
}

/* the gradient of one block: w (g - m) times scale, written as DK_IN */
static inline void DK_HR(block_grad)(int n, const double *restrict t, const double *restrict w,
    double m, double m_lo, double scale, int ok, int flat, long long jb, double tj_exact,
    DK_IN *restrict out)
{
    if (flat) {
#pragma omp simd
        for (int k = 0; k < n; ++k) {
            out[k] = (DK_IN)0.0;
        }
        return;
    }
    if (!ok) {
        for (int k = 0; k < n; ++k) {
            out[k] = (DK_IN)NAN;
        }
        return;
    }
#pragma omp simd
    for (int k = 0; k < n; ++k) {
        out[k] = (DK_IN)((fma(-w[k], m, t[k]) - w[k] * m_lo) * scale);
    }
    if (jb >= 0 && jb < n) {
        out[jb] = (DK_IN)(tj_exact * scale);
    }
}

void DK_HR(rows)(long long rows, long long V, const DK_IN *restrict teacher,
    const DK_IN *restrict student, double temperature, double grad_scale,
    const double *restrict cst, double *restrict loss, DK_IN *restrict grad_student,
    DK_IN *restrict grad_teacher, unsigned char *restrict status)
{
    double zt[DK_BLOCK], zs[DK_BLOCK], ell[DK_BLOCK], p[DK_BLOCK], q[DK_BLOCK], t[DK_BLOCK];
    const int unit = temperature == 1.0;
    const int want_s = grad_student != 0, want_t = grad_teacher != 0;
    /* the gradient terms and weights of pass 2, kept for pass 3 (a row's worth: in the
       cache), so that pass 3 only writes; NULL (allocation failed): pass 3 recomputes */
    double *keep_s = want_s ? (double *)malloc(2 * (size_t)V * sizeof(double)) : NULL;
    double *keep_t = want_t ? (double *)malloc(2 * (size_t)V * sizeof(double)) : NULL;
    /* the exponentials of pass 1 (both rows) and the maxima they were taken against */
    const long long nb = (V + DK_BLOCK - 1) / DK_BLOCK;
    double *ex = (double *)malloc((2 * (size_t)V + 2 * (size_t)nb) * sizeof(double));
    double *ext = ex, *exs = ex != NULL ? ex + V : NULL;
    double *mbt = ex != NULL ? ex + 2 * V : NULL, *mbs = ex != NULL ? ex + 2 * V + nb : NULL;
    for (long long row = 0; row < rows; ++row) {
        const DK_IN *xt = teacher + row * V;
        const DK_IN *xs = student + row * V;
        double mt, ms, so_t, so_s;
        long long jt, js;
        int vt, vs;
        DK_HR(lse)(V, xt, temperature, unit, &mt, &so_t, &jt, &vt, ext, mbt);
        DK_HR(lse)(V, xs, temperature, unit, &ms, &so_s, &js, &vs, exs, mbs);
        if (!(vt && vs)) {
            status[row] = 0;
            loss[row] = NAN;
            continue;
        }
        dk_rowc_f64 rc;
        rc.so_t = so_t;
        rc.so_s = so_s;
        rc.lse_t = log1p(so_t);
        rc.lse_s = log1p(so_s);
        /* pass 2: the loss sum, and the gradient sums with the argmax terms held out */
        double d_s = 0.0, d_c = 0.0, d_j = 0.0;
        double g_s = 0.0, g_c = 0.0, g_j = 0.0, h_s = 0.0, h_c = 0.0, h_j = 0.0;
        for (long long i0 = 0; i0 < V; i0 += DK_BLOCK) {
            const int n = V - i0 < DK_BLOCK ? (int)(V - i0) : DK_BLOCK;
            DK_HR(block_prep)(n, xt + i0, xs + i0, temperature, unit, mt, ms, rc, zt, zs, ell,
                              p, q, ex != NULL ? ext + i0 : NULL, ex != NULL ? exs + i0 : NULL,
                              ex != NULL ? mbt[i0 / DK_BLOCK] : 0.0,
                              ex != NULL ? mbs[i0 / DK_BLOCK] : 0.0);
            DK_(loss_block)(n, zt, zs, ell, q, p, rc, cst, t);
            DK_HR(block_sum)(n, t, -1, &d_s, &d_c, &d_j);
            if (want_s) {
                DK_(gs_block)(n, zt, zs, ell, q, p, rc, cst, t);
                DK_HR(block_sum)(n, t, js - i0, &g_s, &g_c, &g_j);
                if (keep_s != NULL) {
                    memcpy(keep_s + i0, t, (size_t)n * sizeof(double));
                    memcpy(keep_s + V + i0, q, (size_t)n * sizeof(double));
                }
            }
            if (want_t) {
                DK_(gt_block)(n, zt, zs, ell, q, p, rc, cst, t);
                DK_HR(block_sum)(n, t, jt - i0, &h_s, &h_c, &h_j);
                if (keep_t != NULL) {
                    memcpy(keep_t + i0, t, (size_t)n * sizeof(double));
                    memcpy(keep_t + V + i0, p, (size_t)n * sizeof(double));
                }
            }
        }
        const double d = d_s + d_c;
        loss[row] = d < 0.0 ? 0.0 : d;
        unsigned char st = isfinite(d) ? 1 : 3;
        if (!want_s && !want_t) {
            status[row] = st;
            continue;
        }
        /* nearly equal rows: the gradient forms that vanish at r = 1 */
        const int near_s = want_s && cst[DK_CST_FLAGS + DK_FLAG_USE_NEAR_S] != 0.0
                           && d < cst[DK_CST_FLAGS + DK_FLAG_THRESHOLD_S];
        const int near_t = want_t && cst[DK_CST_FLAGS + DK_FLAG_USE_NEAR_T] != 0.0
                           && d < cst[DK_CST_FLAGS + DK_FLAG_THRESHOLD_T];
        if (near_s || near_t) {
            if (near_s) {
                g_s = g_c = g_j = 0.0;
            }
            if (near_t) {
                h_s = h_c = h_j = 0.0;
            }
            for (long long i0 = 0; i0 < V; i0 += DK_BLOCK) {
                const int n = V - i0 < DK_BLOCK ? (int)(V - i0) : DK_BLOCK;
                DK_HR(block_prep)(n, xt + i0, xs + i0, temperature, unit, mt, ms, rc, zt, zs,
                                  ell, p, q, ex != NULL ? ext + i0 : NULL,
                                  ex != NULL ? exs + i0 : NULL,
                                  ex != NULL ? mbt[i0 / DK_BLOCK] : 0.0,
                                  ex != NULL ? mbs[i0 / DK_BLOCK] : 0.0);
                if (near_s) {
                    DK_(ngs_block)(n, zt, zs, ell, q, p, rc, cst, t);
                    DK_HR(block_sum)(n, t, js - i0, &g_s, &g_c, &g_j);
                }
                if (near_t) {
                    DK_(ngt_block)(n, zt, zs, ell, q, p, rc, cst, t);
                    DK_HR(block_sum)(n, t, jt - i0, &h_s, &h_c, &h_j);
                }
            }
        }
        /* m = sum_i w_i g_i as the exact pair (hi, lo) */
        double m_s, m_s_lo, m_t, m_t_lo;
        {
            double s_ = g_s, c_ = g_c;
            dk_two_sum_f64(&s_, &c_, g_j);
            dk_split_f64(s_, c_, &m_s, &m_s_lo);
            s_ = h_s;
            c_ = h_c;
            dk_two_sum_f64(&s_, &c_, h_j);
            dk_split_f64(s_, c_, &m_t, &m_t_lo);
        }
        const int ok_s = isfinite(m_s), ok_t = isfinite(m_t);
        if ((want_s && !ok_s) || (want_t && !ok_t)) {
            st |= 4;
        }
        status[row] = st;
        const int flat = d == 0.0;
        /* at the argmax J: g_J (1 - w_J) - w_J sum_{i != J} w_i g_i, 1 - w_J = so / (1 + so) */
        const double qj = 1.0 / (1.0 + so_s), pj = 1.0 / (1.0 + so_t);
        const double gj_exact = g_j * (so_s / (1.0 + so_s)) - qj * (g_s + g_c);
        const double hj_exact = h_j * (so_t / (1.0 + so_t)) - pj * (h_s + h_c);
        /* pass 3: the gradients (from the kept terms, or recomputed) */
        const int again_s = want_s && (near_s || keep_s == NULL);
        const int again_t = want_t && (near_t || keep_t == NULL);
        for (long long i0 = 0; i0 < V; i0 += DK_BLOCK) {
            const int n = V - i0 < DK_BLOCK ? (int)(V - i0) : DK_BLOCK;
            if (!flat && (again_s || again_t)) {
                DK_HR(block_prep)(n, xt + i0, xs + i0, temperature, unit, mt, ms, rc, zt, zs,
                                  ell, p, q, ex != NULL ? ext + i0 : NULL,
                                  ex != NULL ? exs + i0 : NULL,
                                  ex != NULL ? mbt[i0 / DK_BLOCK] : 0.0,
                                  ex != NULL ? mbs[i0 / DK_BLOCK] : 0.0);
            }
            if (want_s) {
                const double *ts = t, *ws = q;
                if (!flat && again_s) {
                    if (near_s) {
                        DK_(ngs_block)(n, zt, zs, ell, q, p, rc, cst, t);
                    } else {
                        DK_(gs_block)(n, zt, zs, ell, q, p, rc, cst, t);
                    }
                } else if (!flat) {
                    ts = keep_s + i0;
                    ws = keep_s + V + i0;
                }
                DK_HR(block_grad)(n, ts, ws, m_s, m_s_lo, grad_scale, ok_s, flat, js - i0,
                                  gj_exact, grad_student + row * V + i0);
            }
            if (want_t) {
                const double *tt = t, *wt = p;
                if (!flat && again_t) {
                    if (near_t) {
                        DK_(ngt_block)(n, zt, zs, ell, q, p, rc, cst, t);
                    } else {
                        DK_(gt_block)(n, zt, zs, ell, q, p, rc, cst, t);
                    }
                } else if (!flat) {
                    tt = keep_t + i0;
                    wt = keep_t + V + i0;
                }
                DK_HR(block_grad)(n, tt, wt, m_t, m_t_lo, grad_scale, ok_t, flat, jt - i0,
                                  hj_exact, grad_teacher + row * V + i0);
            }
        }
    }
    free(keep_s);
    free(keep_t);
    free(ex);
}

#undef DK_HR
