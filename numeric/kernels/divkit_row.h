/* divkit_row.h — the from-logits row kernel body for CUDA (one block per row), for the
 * current family (DK_FAMILY) and dtype (DK_T); the host runs the same text through
 * tests/numeric/cuda_emu.h.
 *
 * P = softmax(teacher / T) is the first argument, Q = softmax(student / T) the second:
 * D_f(P||Q) = sum_i q_i F(p_i / q_i) with the standardised F(u) = f(u) - f'(1)(u - 1), and
 *     dD/d(student_j) = q_j (g_j - sum_i q_i g_i),   dD/d(teacher_j) = p_j (h_j - sum_i p_i h_i)
 * with g = f(r) - r f'(r) - c_g and h = f'(r) - c_h (the element terms of divkit_elements.h).
 *
 *   pass 1  online log-sum-exp of both rows (max, argmax, compensated sum without the max)
 *   pass 2  compensated row sums D = sum q F, m_s = sum q g, m_t = sum p h (each with the
 *           argmax term held out); rows with D below a threshold take the gradient forms
 *           that vanish at r = 1 (a second sum)
 *   pass 3  grad_student = (q g - q m_s) * grad_scale, grad_teacher = (p h - p m_t) *
 *           grad_scale; at the argmax J: g_J (1 - q_J) - q_J sum_{i != J} q_i g_i, with
 *           1 - q_J = so / (1 + so), so nothing cancels on a nearly one-hot row; NaN for a
 *           whole row whose m is not finite, 0 for a row with D = 0 (P = Q).
 * Every sum is compensated (TwoSum), so float32 accumulates to about float64 accuracy. */

DK_Q void DK_(row)(long long row, long long V, const DK_T *__restrict__ teacher,
    const DK_T *__restrict__ student, DK_T temperature, DK_T grad_scale,
    const unsigned char *__restrict__ keep, const double *__restrict__ cst,
    DK_T *__restrict__ loss, DK_T *__restrict__ grad_student, DK_T *__restrict__ grad_teacher,
    DK_T *dk_shared, long long *dk_shared_j)
{
    const long long tid = threadIdx.x;
    const long long nthreads = blockDim.x;
    const int unit = temperature == DK_ONE;
    const DK_T *xt = teacher + row * V;
    const DK_T *xs = student + row * V;
    if (keep != 0 && keep[row] == 0) {
        if (tid == 0) {
            loss[row] = DK_ZERO;
        }
        for (long long i = tid; i < V; i += nthreads) {
            if (grad_student != 0) {
                grad_student[row * V + i] = DK_ZERO;
            }
            if (grad_teacher != 0) {
                grad_teacher[row * V + i] = DK_ZERO;
            }
        }
        return;
    }
    /* pass 1 */
    DK_T mt = DK_NEG_INF, st = DK_ZERO, ct = DK_ZERO;
    DK_T ms = DK_NEG_INF, ss = DK_ZERO, cs = DK_ZERO;
    long long jt = 0, js = 0;
    for (long long i = tid; i < V; i += nthreads) {
        DK_H(dk_lse_push)(&mt, &st, &ct, &jt, unit ? xt[i] : xt[i] / temperature, i);
        DK_H(dk_lse_push)(&ms, &ss, &cs, &js, unit ? xs[i] : xs[i] / temperature, i);
    }
    DK_H(dk_block_lse)(&mt, &st, &ct, &jt, dk_shared, dk_shared_j);
    DK_H(dk_block_lse)(&ms, &ss, &cs, &js, dk_shared, dk_shared_j);
    DK_H(dk_rowc) rc;
    rc.so_t = st + ct;
    rc.so_s = ss + cs;
    rc.lse_t = DK_M(log1p)(rc.so_t);
    rc.lse_s = DK_M(log1p)(rc.so_s);
    /* pass 2 */
    const int want_s = grad_student != 0, want_t = grad_teacher != 0;
    DK_T d_s = DK_ZERO, d_c = DK_ZERO;
    DK_T g_s = DK_ZERO, g_c = DK_ZERO, g_j = DK_ZERO;
    DK_T h_s = DK_ZERO, h_c = DK_ZERO, h_j = DK_ZERO;
    for (long long i = tid; i < V; i += nthreads) {
        const DK_T zt = (unit ? xt[i] : xt[i] / temperature) - mt;
        const DK_T zs = (unit ? xs[i] : xs[i] / temperature) - ms;
        DK_H(dk_two_sum)(&d_s, &d_c, DK_(loss_term)(zt, zs, rc, cst));
        if (want_s) {
            const DK_T gv = DK_(gs_term)(zt, zs, rc, cst);
            if (i == js) {
                g_j = gv;
            } else {
                DK_H(dk_two_sum)(&g_s, &g_c, gv);
            }
        }
        if (want_t) {
            const DK_T hv = DK_(gt_term)(zt, zs, rc, cst);
            if (i == jt) {
                h_j = hv;
            } else {
                DK_H(dk_two_sum)(&h_s, &h_c, hv);
            }
        }
    }
    DK_T d, d_lo, g_o, g_o_lo, g_jj, g_j_lo, h_o, h_o_lo, h_jj, h_j_lo;
    DK_H(dk_block_sum)(d_s, d_c, &d, &d_lo, dk_shared);
    DK_H(dk_block_sum)(g_s, g_c, &g_o, &g_o_lo, dk_shared);
    DK_H(dk_block_sum)(g_j, DK_ZERO, &g_jj, &g_j_lo, dk_shared);
    DK_H(dk_block_sum)(h_s, h_c, &h_o, &h_o_lo, dk_shared);
    DK_H(dk_block_sum)(h_j, DK_ZERO, &h_jj, &h_j_lo, dk_shared);
    if (tid == 0) {
        loss[row] = d < DK_ZERO ? DK_ZERO : d;
    }
    if (!want_s && !want_t) {
        return;
    }
    /* nearly equal rows: the gradient forms that vanish at r = 1 */
    const int near_s = want_s && cst[DK_CST_FLAGS + DK_FLAG_USE_NEAR_S] != 0.0
                       && (double)d < cst[DK_CST_FLAGS + DK_FLAG_THRESHOLD_S];
    const int near_t = want_t && cst[DK_CST_FLAGS + DK_FLAG_USE_NEAR_T] != 0.0
                       && (double)d < cst[DK_CST_FLAGS + DK_FLAG_THRESHOLD_T];
    if (near_s || near_t) {
        g_s = g_c = g_j = h_s = h_c = h_j = DK_ZERO;
        for (long long i = tid; i < V; i += nthreads) {
            const DK_T zt = (unit ? xt[i] : xt[i] / temperature) - mt;
            const DK_T zs = (unit ? xs[i] : xs[i] / temperature) - ms;
            if (near_s) {
                const DK_T gv = DK_(ngs_term)(zt, zs, rc, cst);
                if (i == js) {
                    g_j = gv;
                } else {
                    DK_H(dk_two_sum)(&g_s, &g_c, gv);
                }
            }
            if (near_t) {
                const DK_T hv = DK_(ngt_term)(zt, zs, rc, cst);
                if (i == jt) {
                    h_j = hv;
                } else {
                    DK_H(dk_two_sum)(&h_s, &h_c, hv);
                }
            }
        }
        DK_T a_o, a_o_lo, a_j, a_j_lo, b_o, b_o_lo, b_j, b_j_lo;
        DK_H(dk_block_sum)(g_s, g_c, &a_o, &a_o_lo, dk_shared);
        DK_H(dk_block_sum)(g_j, DK_ZERO, &a_j, &a_j_lo, dk_shared);
        DK_H(dk_block_sum)(h_s, h_c, &b_o, &b_o_lo, dk_shared);
        DK_H(dk_block_sum)(h_j, DK_ZERO, &b_j, &b_j_lo, dk_shared);
        if (near_s) {
            g_o = a_o;
            g_o_lo = a_o_lo;
            g_jj = a_j;
        }
        if (near_t) {
            h_o = b_o;
            h_o_lo = b_o_lo;
            h_jj = b_j;
        }
    }
    /* m = sum_i w_i g_i as the exact pair (hi, lo) */
    DK_T m_s, m_s_lo, m_t, m_t_lo;
    {
        DK_T s_ = g_o, c_ = g_o_lo;
        DK_H(dk_two_sum)(&s_, &c_, g_jj);
        DK_H(dk_split)(s_, c_, &m_s, &m_s_lo);
        s_ = h_o;
        c_ = h_o_lo;
        DK_H(dk_two_sum)(&s_, &c_, h_jj);
        DK_H(dk_split)(s_, c_, &m_t, &m_t_lo);
    }
    const int ok_s = isfinite(m_s);
    const int ok_t = isfinite(m_t);
    const int flat = d == DK_ZERO;
    /* pass 3 */
    for (long long i = tid; i < V; i += nthreads) {
        const DK_T zt = (unit ? xt[i] : xt[i] / temperature) - mt;
        const DK_T zs = (unit ? xs[i] : xs[i] / temperature) - ms;
        if (want_s) {
            const DK_T gv = near_s ? DK_(ngs_term)(zt, zs, rc, cst) : DK_(gs_term)(zt, zs, rc, cst);
            const DK_T q = DK_M(exp)(zs) / (DK_ONE + rc.so_s);
            DK_T g;
            if (i == js) {
                g = gv * (rc.so_s / (DK_ONE + rc.so_s)) - q * (g_o + g_o_lo);
            } else {
                g = DK_M(fma)(-q, m_s, gv) - q * m_s_lo;
            }
            g = ok_s ? g * grad_scale : DK_NAN;
            grad_student[row * V + i] = flat ? DK_ZERO : g;
        }
        if (want_t) {
            const DK_T hv = near_t ? DK_(ngt_term)(zt, zs, rc, cst) : DK_(gt_term)(zt, zs, rc, cst);
            const DK_T p = DK_M(exp)(zt) / (DK_ONE + rc.so_t);
            DK_T h;
            if (i == jt) {
                h = hv * (rc.so_t / (DK_ONE + rc.so_t)) - p * (h_o + h_o_lo);
            } else {
                h = DK_M(fma)(-p, m_t, hv) - p * m_t_lo;
            }
            h = ok_t ? h * grad_scale : DK_NAN;
            grad_teacher[row * V + i] = flat ? DK_ZERO : h;
        }
    }
}
