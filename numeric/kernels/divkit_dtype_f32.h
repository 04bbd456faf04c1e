/* divkit_dtype_f32.h — select float for the dtype-generic kernel headers that follow.
 *
 * The headers divkit_common.h, divkit_elements.h and divkit_row.h are written once for a
 * type DK_T; including this file (or divkit_dtype_f64.h) before them instantiates them.
 * DK_M(fn) is the math function of the type (expf / exp), DK_TAG the name tag. */
#undef DK_T
#undef DK_M
#undef DK_TAG
#undef DK_ZERO
#undef DK_ONE
#undef DK_LN2
#undef DK_NEG_INF
#undef DK_NAN
#undef DK_F32
#define DK_T float
#define DK_M(fn) fn##f
#define DK_TAG f32
#define DK_ZERO 0.0f
#define DK_ONE 1.0f
#define DK_LN2 0.693147180559945309417f
#ifdef DK_CUDA
#define DK_NEG_INF (-__int_as_float(0x7f800000))
#define DK_NAN __int_as_float(0x7fffffff)
#else
#define DK_NEG_INF (-INFINITY)
#define DK_NAN ((float)NAN)
#endif
#define DK_F32 1
