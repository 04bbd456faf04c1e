/* divkit_dtype_f64.h — select double for the dtype-generic kernel headers that follow
 * (see divkit_dtype_f32.h). */
#undef DK_T
#undef DK_M
#undef DK_TAG
#undef DK_ZERO
#undef DK_ONE
#undef DK_LN2
#undef DK_NEG_INF
#undef DK_NAN
#undef DK_F32
#define DK_T double
#define DK_M(fn) fn
#define DK_TAG f64
#define DK_ZERO 0.0
#define DK_ONE 1.0
#define DK_LN2 0.693147180559945309417
#ifdef DK_CUDA
#define DK_NEG_INF (-__longlong_as_double(0x7ff0000000000000LL))
#define DK_NAN __longlong_as_double(0x7ff8000000000000LL)
#else
#define DK_NEG_INF (-(double)INFINITY)
#define DK_NAN ((double)NAN)
#endif
#define DK_F32 0
