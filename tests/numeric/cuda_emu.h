// cuda_emu.h — run CUDA kernel source on the host, for tests only (g++ -std=c++20 -pthread).
//
// The exact generated .cu text is compiled as C++ after this header:
//   * __global__, __device__, __forceinline__ vanish; __shared__ becomes `static`. Blocks of a
//     launch run one after another (never two at once, a mutex serialises launches), so a
//     static array is exactly one block's shared memory.
//   * every thread of a block is a std::thread; threadIdx, blockIdx, blockDim, gridDim are
//     thread_local; __syncthreads() is a std::barrier over the block; a thread that returns
//     from the kernel drops out of its barriers (as an exited thread does on the device).
//   * warps are 32 consecutive linear thread ids; __shfl_*_sync / __syncwarp / __ballot_sync /
//     __any_sync / __all_sync exchange through a per-warp slot array with a per-warp
//     std::barrier (double-buffered, one barrier per shuffle). Only full-warp masks are
//     emulated; anything else aborts with a message (the generated kernels use 0xffffffff).
//   * math: the C library (<cmath>), float and double overloads; __int_as_float and friends
//     by memcpy. No fast-math, no FMA contraction (compile with -ffp-contract=off).
//
// Export a kernel for ctypes with DK_EMU_EXPORT(kernel_name): it defines
//   extern "C" int dk_emu_launch_<kernel_name>(unsigned gx, unsigned gy, unsigned gz,
//                                              unsigned bx, unsigned by, unsigned bz,
//                                              void **args)
// where args[i] points at the value of the i-th kernel parameter (cuLaunchKernel's
// kernelParams convention). Returns 0, or a nonzero code with a message on stderr for an
// invalid launch. A launch that does not finish within $DK_EMU_TIMEOUT seconds (default 300;
// e.g. a __syncthreads that not every thread reaches) aborts the process with a message
// instead of hanging.
#pragma once

#include <math.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;
constexpr int warpSize = 32;

// ------------------------------------------------------------------------------ math
using std::isfinite;
using std::isinf;
using std::isnan;
using std::max;
using std::min;

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
inline float __uint_as_float(unsigned x) { float f; std::memcpy(&f, &x, 4); return f; }
inline unsigned __float_as_uint(float x) { unsigned i; std::memcpy(&i, &x, 4); return i; }
inline double __longlong_as_double(long long x) { double d; std::memcpy(&d, &x, 8); return d; }
inline long long __double_as_longlong(double x) { long long i; std::memcpy(&i, &x, 8); return i; }

// ------------------------------------------------------------------------------ runtime
namespace dk_emu {

struct Warp {
    std::barrier<> bar;
    int size;
    alignas(8) unsigned char slot[2][32][8];
    explicit Warp(int n) : bar(n), size(n) {}
};

struct Block {
    std::barrier<> bar;
    std::vector<std::unique_ptr<Warp>> warps;
    explicit Block(int n) : bar(n) {
        for (int w = 0; w * 32 < n; ++w) {
            warps.emplace_back(std::make_unique<Warp>(std::min(32, n - w * 32)));
        }
    }
};

struct ThreadState {
    Block *block = nullptr;
    Warp *warp = nullptr;
    int lane = 0;
    int buf = 0;
};

inline thread_local ThreadState self;

[[noreturn]] inline void fail(const char *what) {
    std::fprintf(stderr, "cuda_emu: %s\n", what);
    std::fflush(stderr);
    std::abort();
}

inline void check_mask(unsigned mask) {
    const int n = self.warp->size;
    const unsigned full = n == 32 ? 0xffffffffu : ((1u << n) - 1u);
    if (mask != 0xffffffffu && mask != full) {
        fail("only full-warp masks are emulated in warp intrinsics");
    }
}

// every lane of the warp publishes `v`; returns the value published by lane `src`
template <class T>
T exchange(T v, int src) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp exchange of <= 8 bytes");
    Warp &w = *self.warp;
    const int b = self.buf;
    self.buf ^= 1;
    std::memcpy(w.slot[b][self.lane], &v, sizeof(T));
    w.bar.arrive_and_wait();
    if (src < 0 || src >= w.size) {
        return v;
    }
    T r;
    std::memcpy(&r, w.slot[b][src], sizeof(T));
    return r;
}

}  // namespace dk_emu

inline void __syncthreads() { dk_emu::self.block->bar.arrive_and_wait(); }

inline void __syncwarp(unsigned mask = 0xffffffffu) {
    dk_emu::check_mask(mask);
    dk_emu::self.warp->bar.arrive_and_wait();
}

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
    dk_emu::check_mask(mask);
    const int lane = dk_emu::self.lane;
    return dk_emu::exchange(var, (lane & ~(width - 1)) + (src_lane & (width - 1)));
}

template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
    dk_emu::check_mask(mask);
    const int lane = dk_emu::self.lane;
    const int src = lane ^ lane_mask;
    // a lane may read from its own or an earlier group of `width`, else it keeps its value
    return dk_emu::exchange(var, (src & ~(width - 1)) > (lane & ~(width - 1)) ? lane : src);
}

template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    dk_emu::check_mask(mask);
    const int lane = dk_emu::self.lane;
    const int pos = (lane & (width - 1)) + static_cast<int>(delta);
    return dk_emu::exchange(var, pos < width ? lane + static_cast<int>(delta) : lane);
}

template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    dk_emu::check_mask(mask);
    const int lane = dk_emu::self.lane;
    const int pos = (lane & (width - 1)) - static_cast<int>(delta);
    return dk_emu::exchange(var, pos >= 0 ? lane - static_cast<int>(delta) : lane);
}

inline unsigned __ballot_sync(unsigned mask, int predicate) {
    dk_emu::check_mask(mask);
    dk_emu::Warp &w = *dk_emu::self.warp;
    unsigned out = 0;
    // one exchange per lane keeps every lane in the same barrier phase
    for (int l = 0; l < w.size; ++l) {
        out |= (dk_emu::exchange(predicate != 0 ? 1 : 0, l) != 0 ? 1u : 0u) << l;
    }
    return out;
}

inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0u; }

inline int __all_sync(unsigned mask, int predicate) {
    const int n = dk_emu::self.warp->size;
    const unsigned full = n == 32 ? 0xffffffffu : ((1u << n) - 1u);
    return __ballot_sync(mask, predicate) == full;
}

namespace dk_emu {

template <class... A>
using Values = std::tuple<std::remove_cv_t<std::remove_reference_t<A>>...>;

template <class... A, std::size_t... I>
Values<A...> read_args(void **args, std::index_sequence<I...>) {
    return Values<A...>(*static_cast<std::remove_cv_t<std::remove_reference_t<A>> *>(args[I])...);
}

inline double timeout_seconds() {
    const char *env = std::getenv("DK_EMU_TIMEOUT");
    const double t = env ? std::atof(env) : 0.0;
    return t > 0.0 ? t : 300.0;
}

// Run `kernel` over the grid; args as cuLaunchKernel's kernelParams. 0 on success.
template <class... A>
int launch(void (*kernel)(A...), dim3 grid, dim3 block, void **args) {
    static std::mutex launch_mutex;
    const long long nthreads = 1LL * block.x * block.y * block.z;
    if (nthreads < 1 || nthreads > 1024 || block.z > 64) {
        std::fprintf(stderr, "cuda_emu: invalid block (%u, %u, %u)\n", block.x, block.y, block.z);
        return 1;
    }
    if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535 || grid.z > 65535) {
        std::fprintf(stderr, "cuda_emu: invalid grid (%u, %u, %u)\n", grid.x, grid.y, grid.z);
        return 2;
    }
    const Values<A...> values = read_args<A...>(args, std::index_sequence_for<A...>{});
    std::lock_guard<std::mutex> guard(launch_mutex);
    const auto limit = std::chrono::duration<double>(timeout_seconds());
    for (unsigned bz = 0; bz < grid.z; ++bz) {
        for (unsigned by = 0; by < grid.y; ++by) {
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                Block blk(static_cast<int>(nthreads));
                std::mutex done_mutex;
                std::condition_variable done_cv;
                int done = 0;
                std::vector<std::thread> threads;
                threads.reserve(static_cast<std::size_t>(nthreads));
                for (long long t = 0; t < nthreads; ++t) {
                    threads.emplace_back([&, t] {
                        threadIdx = dim3(static_cast<unsigned>(t % block.x),
                                         static_cast<unsigned>((t / block.x) % block.y),
                                         static_cast<unsigned>(t / (1LL * block.x * block.y)));
                        blockIdx = dim3(bx, by, bz);
                        blockDim = block;
                        gridDim = grid;
                        self.block = &blk;
                        self.warp = blk.warps[static_cast<std::size_t>(t / 32)].get();
                        self.lane = static_cast<int>(t % 32);
                        self.buf = 0;
                        std::apply(kernel, values);
                        self.warp->bar.arrive_and_drop();
                        blk.bar.arrive_and_drop();
                        {
                            std::lock_guard<std::mutex> lk(done_mutex);
                            ++done;
                        }
                        done_cv.notify_one();
                    });
                }
                {
                    std::unique_lock<std::mutex> lk(done_mutex);
                    if (!done_cv.wait_for(lk, limit, [&] { return done == nthreads; })) {
                        fail("launch timed out: a __syncthreads or warp intrinsic that not every "
                             "thread of the block reaches (deadlock)?");
                    }
                }
                for (auto &th : threads) {
                    th.join();
                }
            }
        }
    }
    return 0;
}

}  // namespace dk_emu

#define DK_EMU_EXPORT(kernel)                                                                   \
    extern "C" int dk_emu_launch_##kernel(unsigned gx, unsigned gy, unsigned gz, unsigned bx,   \
                                          unsigned by, unsigned bz, void **args) {              \
        return dk_emu::launch(kernel, dim3(gx, gy, gz), dim3(bx, by, bz), args);                \
    }
