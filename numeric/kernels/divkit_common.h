/* divkit_common.h — the helpers every divkit kernel shares, for one dtype.
 *
 * Include after divkit_dtype_f32.h or divkit_dtype_f64.h (which define DK_T, DK_M, DK_TAG);
 * each dtype's helpers are defined once per translation unit. DK_Q is the function
 * qualifier of the target ("static inline" on the host, "__device__ __forceinline__" in
 * CUDA; DK_CUDA is defined for CUDA). Contents:
 *   - the helpers the printed element forms call (divkit_xlogy, divkit_softplus, ...);
 *   - dk_limit_*   a zero-mass term w * c, or c itself when the limit is infinite;
 *   - dk_poly_*    the Taylor polynomial of an element around ell = 0 (Estrin's scheme);
 *   - dk_two_sum_*, dk_split_*, dk_neumaier_*   compensated sums (Knuth, Neumaier);
 *   - dk_lse_push_*, dk_lse_merge_*   the online log-sum-exp of a row (max, argmax, and the
 *     sum of exp(x - max) over the other entries, so 1 - p_max = s / (1 + s) keeps its
 *     relative accuracy on a nearly one-hot row);
 *   - on CUDA, the block-wide versions of the last two (warp shuffles, shared memory). */
#ifndef DK_NAMES_DEFINED
#define DK_NAMES_DEFINED
#define DK_CAT_(a, b) a##b
#define DK_CAT(a, b) DK_CAT_(a, b)
/* a helper of the current dtype: dk_poly -> dk_poly_f32 */
#define DK_H(x) DK_CAT(x, DK_CAT(_, DK_TAG))
/* a function of the current family and dtype: terms -> divkit_kl_f32_terms */
#define DK_(x) DK_CAT(DK_FAMILY, DK_CAT(_, DK_CAT(DK_TAG, DK_CAT(_, x))))
#endif

#if DK_F32 && !defined(DK_COMMON_F32_DONE)
#define DK_COMMON_F32_DONE
#define DK_COMMON_BODY
#elif !DK_F32 && !defined(DK_COMMON_F64_DONE)
#define DK_COMMON_F64_DONE
#define DK_COMMON_BODY
#endif

#ifdef DK_COMMON_BODY
#undef DK_COMMON_BODY

/* ---- the helpers of the printed forms ------------------------------------------------ */
/* Written without branches around the calls (both values computed, one selected), so that a
   loop over them vectorises with the vector math library; the selected value is the one the
   branching form gives. */

DK_Q DK_T DK_M(divkit_xlogy)(DK_T x, DK_T y)
{
    const DK_T l = DK_M(log)(y);
    return x == DK_ZERO ? DK_ZERO : x * l;
}

DK_Q DK_T DK_M(divkit_xlog1py)(DK_T x, DK_T y)
{
    const DK_T l = DK_M(log1p)(y);
    return x == DK_ZERO ? DK_ZERO : x * l;
}

DK_Q DK_T DK_M(divkit_log1mexp)(DK_T x)
{
    /* log(1 - exp(x)), x <= 0 (Maechler 2012) */
    const DK_T near = DK_M(log)(-DK_M(expm1)(x));
    const DK_T far = DK_M(log1p)(-DK_M(exp)(x));
    return x > -DK_LN2 ? near : far;
}

DK_Q DK_T DK_M(divkit_logaddexp)(DK_T x, DK_T y)
{
    /* numpy's npy_logaddexp: max + log1p(exp(-|x - y|)); x + log 2 where x == y (also for
       infinities of one sign), NaN where x - y is NaN otherwise */
    const DK_T d = x - y;
    const DK_T r = (d > DK_ZERO ? x : y) + DK_M(log1p)(DK_M(exp)(-DK_M(fabs)(d)));
    return x == y ? x + DK_LN2 : (d == d ? r : d);
}

DK_Q DK_T DK_M(divkit_softplus)(DK_T x)
{
    /* log(1 + exp(x)) = logaddexp(0, x): log1p(exp(x)) for x < 0, x + log1p(exp(-x)) for
       x > 0 (numpy's branches, as one expression), log 2 at 0, NaN for NaN */
    const DK_T r = (x > DK_ZERO ? x : DK_ZERO) + DK_M(log1p)(DK_M(exp)(-DK_M(fabs)(x)));
    return x == DK_ZERO ? DK_LN2 : r;
}

DK_Q DK_T DK_M(divkit_sign)(DK_T x)
{
    return x > DK_ZERO ? DK_ONE : (x < DK_ZERO ? -DK_ONE : x);
}

/* the row constants every element needs: so = sum of exp(z) over the entries other than the
   row's argmax (z = x - max), lse = log(1 + so) = log S, teacher (_t) and student (_s) */
typedef struct {
    DK_T so_t;
    DK_T so_s;
    DK_T lse_t;
    DK_T lse_s;
} DK_H(dk_rowc);

/* ---- element helpers ------------------------------------------------------------------ */

DK_Q DK_T DK_H(dk_limit)(DK_T w, double c)
{
    /* the zero-mass term w * c, or c itself when the limit is infinite (or NaN) */
    return isfinite(c) ? w * (DK_T)c : (DK_T)c;
}

DK_Q DK_T DK_H(dk_poly)(const double *c, DK_T x)
{
    /* sum_k c[k] x^k over the DK_SERIES_TERMS (= 24) Taylor coefficients of an element
       around ell = 0, by Estrin's scheme written out: independent products, so a block
       of elements vectorises */
    const DK_T x2 = x * x;
    const DK_T x4 = x2 * x2;
    const DK_T x8 = x4 * x4;
    const DK_T x16 = x8 * x8;
#define DK_P2(k) ((DK_T)c[k] + (DK_T)c[(k) + 1] * x)
#define DK_P4(k) (DK_P2(k) + DK_P2((k) + 2) * x2)
#define DK_P8(k) (DK_P4(k) + DK_P4((k) + 4) * x4)
    return (DK_P8(0) + DK_P8(8) * x8) + DK_P8(16) * x16;
#undef DK_P2
#undef DK_P4
#undef DK_P8
}

/* ---- compensated sums ----------------------------------------------------------------- */

DK_Q void DK_H(dk_two_sum)(DK_T *s, DK_T *c, DK_T x)
{
    /* s + c += x with the rounding error of s + x kept in c (Knuth's TwoSum); an
       infinite sum stays in s alone (inf - inf in the error term would be NaN) */
    const DK_T t = *s + x;
    if (isfinite(t)) {
        const DK_T bp = t - *s;
        *c += (*s - (t - bp)) + (x - bp);
    }
    *s = t;
}

DK_Q void DK_H(dk_split)(DK_T s, DK_T c, DK_T *hi, DK_T *lo)
{
    /* hi = fl(s + c) and the exact rest lo = s + c - hi (TwoSum); lo = 0 if hi is not
       finite */
    const DK_T t = s + c;
    const DK_T bp = t - s;
    *hi = t;
    *lo = isfinite(t) ? (s - (t - bp)) + (c - bp) : DK_ZERO;
}

DK_Q void DK_H(dk_neumaier)(DK_T *s, DK_T *c, DK_T x)
{
    /* s + c += x, Neumaier's compensated sum; an infinite sum stays in s alone */
    const DK_T t = *s + x;
    if (isfinite(t)) {
        *c += DK_M(fabs)(*s) >= DK_M(fabs)(x) ? (*s - t) + x : (x - t) + *s;
    }
    *s = t;
}

/* ---- online log-sum-exp --------------------------------------------------------------- */

DK_Q void DK_H(dk_lse_push)(DK_T *m, DK_T *s, DK_T *c, long long *j, DK_T x, long long i)
{
    /* online row max m (first argmax j) and s + c = sum over i != j of exp(x_i - m):
       the max itself contributes the implicit 1; -inf adds nothing */
    if (x == DK_NEG_INF) {
        return;
    }
    if (x > *m) {
        if (*m != DK_NEG_INF) {
            const DK_T f = DK_M(exp)(*m - x);
            *s *= f;
            *c *= f;
            DK_H(dk_two_sum)(s, c, f);
        }
        *m = x;
        *j = i;
        return;
    }
    DK_H(dk_two_sum)(s, c, DK_M(exp)(x - *m));
}

DK_Q void DK_H(dk_lse_merge)(DK_T *m, DK_T *s, DK_T *c, long long *j, DK_T m2, DK_T s2, DK_T c2,
    long long j2)
{
    /* merge two partial (max, sum without the max, compensation, argmax) */
    if (m2 == DK_NEG_INF) {
        return;
    }
    if (*m == DK_NEG_INF) {
        *m = m2;
        *s = s2;
        *c = c2;
        *j = j2;
        return;
    }
    if (m2 > *m || (m2 == *m && j2 < *j)) {
        const DK_T f = DK_M(exp)(*m - m2);
        *s *= f;
        *c *= f;
        DK_H(dk_two_sum)(s, c, f);
        *m = m2;
        *j = j2;
    } else {
        const DK_T f = DK_M(exp)(m2 - *m);
        s2 *= f;
        c2 *= f;
        DK_H(dk_two_sum)(&s2, &c2, f);
    }
    DK_H(dk_two_sum)(s, c, s2);
    *c += c2;
}

#ifdef DK_CUDA
/* ---- block-wide reductions (one block per row) ---------------------------------------- */

__device__ void DK_H(dk_block_lse)(DK_T *m, DK_T *s, DK_T *c, long long *j, DK_T *sh,
    long long *shj)
{
    /* block-wide merge of (max, sum, compensation, argmax); every thread gets it */
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = threadIdx.x >> 5;
    const unsigned nwarps = (blockDim.x + 31u) >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        const DK_T m2 = __shfl_xor_sync(0xffffffffu, *m, o);
        const DK_T s2 = __shfl_xor_sync(0xffffffffu, *s, o);
        const DK_T c2 = __shfl_xor_sync(0xffffffffu, *c, o);
        const long long j2 = __shfl_xor_sync(0xffffffffu, *j, o);
        DK_H(dk_lse_merge)(m, s, c, j, m2, s2, c2, j2);
    }
    __syncthreads();
    if (lane == 0) {
        sh[warp] = *m;
        sh[32 + warp] = *s;
        sh[64 + warp] = *c;
        shj[warp] = *j;
    }
    __syncthreads();
    if (warp == 0) {
        DK_T m1 = lane < nwarps ? sh[lane] : DK_NEG_INF;
        DK_T s1 = lane < nwarps ? sh[32 + lane] : DK_ZERO;
        DK_T c1 = lane < nwarps ? sh[64 + lane] : DK_ZERO;
        long long j1 = lane < nwarps ? shj[lane] : 0;
        for (int o = 16; o > 0; o >>= 1) {
            const DK_T m2 = __shfl_xor_sync(0xffffffffu, m1, o);
            const DK_T s2 = __shfl_xor_sync(0xffffffffu, s1, o);
            const DK_T c2 = __shfl_xor_sync(0xffffffffu, c1, o);
            const long long j2 = __shfl_xor_sync(0xffffffffu, j1, o);
            DK_H(dk_lse_merge)(&m1, &s1, &c1, &j1, m2, s2, c2, j2);
        }
        if (lane == 0) {
            sh[0] = m1;
            sh[32] = s1;
            sh[64] = c1;
            shj[0] = j1;
        }
    }
    __syncthreads();
    *m = sh[0];
    *s = sh[32];
    *c = sh[64];
    *j = shj[0];
}

__device__ void DK_H(dk_block_sum)(DK_T s, DK_T c, DK_T *hi, DK_T *lo, DK_T *sh)
{
    /* block-wide compensated sum; every thread gets it as hi + lo (hi = fl(sum)) */
    const unsigned lane = threadIdx.x & 31u;
    const unsigned warp = threadIdx.x >> 5;
    const unsigned nwarps = (blockDim.x + 31u) >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        const DK_T s2 = __shfl_xor_sync(0xffffffffu, s, o);
        const DK_T c2 = __shfl_xor_sync(0xffffffffu, c, o);
        DK_H(dk_two_sum)(&s, &c, s2);
        c += c2;
    }
    __syncthreads();
    if (lane == 0) {
        sh[warp] = s;
        sh[32 + warp] = c;
    }
    __syncthreads();
    if (warp == 0) {
        DK_T s1 = lane < nwarps ? sh[lane] : DK_ZERO;
        DK_T c1 = lane < nwarps ? sh[32 + lane] : DK_ZERO;
        for (int o = 16; o > 0; o >>= 1) {
            const DK_T s2 = __shfl_xor_sync(0xffffffffu, s1, o);
            const DK_T c2 = __shfl_xor_sync(0xffffffffu, c1, o);
            DK_H(dk_two_sum)(&s1, &c1, s2);
            c1 += c2;
        }
        if (lane == 0) {
            DK_H(dk_split)(s1, c1, &sh[0], &sh[32]);
        }
    }
    __syncthreads();
    *hi = sh[0];
    *lo = sh[32];
}
#endif /* DK_CUDA */

#endif /* DK_COMMON_BODY */
