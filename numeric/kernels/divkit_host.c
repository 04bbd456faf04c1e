/* divkit_host.c — the host CPU kernels of one family: the from-logits row kernel
 * (divkit_host_rows.h, float and double logits) and the probability kernel
 * (divkit_prob.h). Needs the family's generated divkit_forms.h.
 *
 * Entry points (DK_FAMILY = divkit_<name>; arithmetic in double for both input types):
 *
 *   void <family>_f64_rows_in<f32|f64>(long long rows, long long V, const T *teacher,
 *       const T *student, double temperature, double grad_scale, const double *cst,
 *       double *loss, T *grad_student, T *grad_teacher, unsigned char *status)
 *   void <family>_f64_prob_rows_<f32|f64>(long long rows, long long V, const T *p,
 *       const T *q, const double *cst, double *std_sum, double *diff, double *spread,
 *       unsigned char *status)
 *   void <family>_f64_prob_diff_<f32|f64>(long long rows, long long V, const T *p,
 *       const T *q, const unsigned char *sel, double *diff)
 *
 * Compile with -fopenmp-simd (the simd pragmas only; no OpenMP runtime) and, for the
 * vector math library (glibc's libmvec, <= 4 ulp), -DDK_VECTOR_MATH and -lmvec; never
 * -ffast-math. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef DK_VECTOR_MATH
/* the vector variants of glibc's libmvec for the loops marked omp simd */
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double log1p(double);
#pragma omp declare simd notinbranch
double expm1(double);
#pragma omp declare simd notinbranch
double pow(double, double);
#endif

#undef DK_Q
#define DK_Q static inline

#ifndef DK_BLOCK
#define DK_BLOCK 256
#endif

/* which parts to build (all by default; numeric/_cpu.py builds one kernel and one input
   type per library, which halves the compile twice) */
#ifndef DK_HOST_ROWS
#define DK_HOST_ROWS 1
#endif
#ifndef DK_HOST_PROB
#define DK_HOST_PROB 1
#endif
#ifndef DK_IN_F32
#define DK_IN_F32 1
#endif
#ifndef DK_IN_F64
#define DK_IN_F64 1
#endif

#include "divkit_dtype_f64.h"
#include "divkit_common.h"
#include "divkit_forms.h"
#if DK_HOST_ROWS
#include "divkit_elements.h"
#include "divkit_host_elements.h"
#endif
#if DK_HOST_PROB
#include "divkit_prob_slow.h"
#endif

#if DK_IN_F32
#define DK_IN float
#define DK_IN_TAG f32
#if DK_HOST_ROWS
#include "divkit_host_rows.h"
#endif
#if DK_HOST_PROB
#include "divkit_prob.h"
#endif
#undef DK_IN
#undef DK_IN_TAG
#endif

#if DK_IN_F64
#define DK_IN double
#define DK_IN_TAG f64
#if DK_HOST_ROWS
#include "divkit_host_rows.h"
#endif
#if DK_HOST_PROB
#include "divkit_prob.h"
#endif
#undef DK_IN
#undef DK_IN_TAG
#endif
