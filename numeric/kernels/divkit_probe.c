/* divkit_probe.c — what numeric/_cpu.py compiles once to learn whether the host compiler
 * takes the flags of the kernels (-march=native, -fopenmp-simd, the vector math library):
 * dk_probe(n, x) sets x[i] = exp(x[i]). */
#include <math.h>

#ifdef DK_VECTOR_MATH
#pragma omp declare simd notinbranch
double exp(double);
#endif

void dk_probe(int n, double *x)
{
#pragma omp simd
    for (int i = 0; i < n; ++i) {
        x[i] = exp(x[i]);
    }
}
