// Small kernels with hand-known results: tests/numeric/test_cuda_emu_header.py
extern "C" __global__ void warp_ops(int *out)
{
    const int lane = threadIdx.x & 31;
    const int base = (blockIdx.x * blockDim.x + threadIdx.x) * 6;
    int s = lane;
    for (int o = 16; o > 0; o >>= 1) {
        s += __shfl_xor_sync(0xffffffffu, s, o);
    }
    out[base + 0] = s;                                             /* 0 + ... + 31 = 496 */
    out[base + 1] = __shfl_down_sync(0xffffffffu, lane, 3);        /* lane + 3, or own */
    out[base + 2] = __shfl_up_sync(0xffffffffu, lane, 1, 8);       /* within groups of 8 */
    out[base + 3] = __shfl_sync(0xffffffffu, lane * 10, 5);        /* lane 5's value: 50 */
    out[base + 4] = (int)__ballot_sync(0xffffffffu, lane % 2);     /* odd lanes */
    out[base + 5] = __shfl_xor_sync(0xffffffffu, lane, 4, 8);      /* partner in its 8-group */
}

extern "C" __global__ void block_sum(long long n, const double *__restrict__ x, double *out)
{
    __shared__ double part[1024];
    for (long long row = blockIdx.x; row < n; row += gridDim.x) {
        const int t = threadIdx.x + threadIdx.y * blockDim.x;
        const int nt = blockDim.x * blockDim.y;
        part[t] = x[row * nt + t];
        __syncthreads();
        for (int h = nt / 2; h > 0; h >>= 1) {
            if (t < h) {
                part[t] += part[t + h];
            }
            __syncthreads();
        }
        if (t == 0) {
            out[row] = part[0];
        }
        __syncthreads();
    }
}

extern "C" __global__ void early_exit(int *out)
{
    if (threadIdx.x >= 40) {
        return;                                /* a whole warp and part of another leave */
    }
    __syncthreads();
    out[threadIdx.x] = (int)(threadIdx.x + blockDim.x);
}
