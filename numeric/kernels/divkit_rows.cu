/* divkit_rows.cu — the CUDA entry points of the from-logits row kernel.
 *
 * Needs the family's generated forms header divkit_forms.h (included once per dtype), which
 * defines DK_FAMILY, the cst offsets, the printed element forms of both dtypes and the
 * prototypes of the two kernels below:
 *
 *   extern "C" __global__ void <family>_f32_rows(long long rows, long long V,
 *       const float *teacher, const float *student, float temperature, float grad_scale,
 *       const unsigned char *keep, const double *cst, float *loss,
 *       float *grad_student, float *grad_teacher)
 *   (and _f64_rows with double)
 *
 * One block per row (grid-stride over rows), blockDim.x a multiple of 32 up to 1024, no
 * dynamic shared memory. keep: NULL or one byte per row (0 drops it: loss 0, gradients 0);
 * loss: one value per row, not reduced; grad_student, grad_teacher: rows x V or NULL;
 * gradients are with respect to the raw logits when grad_scale = 1 / temperature.
 * Compile without fast-math (no flushed subnormals, no approximate exp / log). */
#ifndef DK_CUDA
#define DK_CUDA
#endif
#undef DK_Q
#define DK_Q __device__ __forceinline__

/* the kernels' linkage (their literal prototypes are in divkit_forms.h) */
#define DK_KERNEL_LINKAGE extern "C" __global__
#define DK_ROWS_KERNEL(NAME)                                                                 \
    DK_KERNEL_LINKAGE void NAME(long long rows, long long V,                             \
        const DK_T *__restrict__ teacher, const DK_T *__restrict__ student,                 \
        DK_T temperature, DK_T grad_scale, const unsigned char *__restrict__ keep,           \
        const double *__restrict__ cst, DK_T *__restrict__ loss,                             \
        DK_T *__restrict__ grad_student, DK_T *__restrict__ grad_teacher)                    \
    {                                                                                        \
        __shared__ DK_T dk_shared[96];                                                       \
        __shared__ long long dk_shared_j[32];                                                \
        for (long long row = blockIdx.x; row < rows; row += gridDim.x) {                     \
            DK_(row)(row, V, teacher, student, temperature, grad_scale, keep, cst, loss,     \
                     grad_student, grad_teacher, dk_shared, dk_shared_j);                    \
            __syncthreads();                                                                 \
        }                                                                                    \
    }

#include "divkit_dtype_f32.h"
#include "divkit_common.h"
#include "divkit_forms.h"
#include "divkit_elements.h"
#include "divkit_row.h"
DK_ROWS_KERNEL(DK_(rows))

#include "divkit_dtype_f64.h"
#include "divkit_common.h"
#include "divkit_forms.h"
#include "divkit_elements.h"
#include "divkit_row.h"
DK_ROWS_KERNEL(DK_(rows))

#undef DK_ROWS_KERNEL
