// What the CUDA kernels and their launchers (csrc/*/..._cuda.cuh) use of CUDA, for nvcc or for
// the host emulation of the tests (DGP_CUDA_EMU, csrc/emu/cuda_emu.h). Kernels are plain CUDA
// (__global__, threadIdx, __syncthreads, __shfl_down_sync, gpuAtomicAdd) except for shared
// memory, declared with DGP_SHARED, and launches, which go through gpu::launch.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <utility>

#if defined(__CUDACC__)
#include <ATen/cuda/Atomic.cuh>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#elif defined(DGP_CUDA_EMU)
#include "emu/cuda_emu.h"
#else
#error "common/gpu.h is compiled by nvcc, or by a host compiler with DGP_CUDA_EMU defined"
#endif

namespace dgp_ops {
namespace gpu {

template <typename T>
using type_t = T;

// DGP_SHARED(double[9][8], partial) declares a block-shared array `partial` of that type.
#if defined(__CUDACC__)
#define DGP_SHARED(type, name) __shared__ ::dgp_ops::gpu::type_t<type> name
#else
#define DGP_SHARED(type, name) \
  ::dgp_ops::gpu::type_t<type>& name = ::dgp_emu::shared<::dgp_ops::gpu::type_t<type>>()
#endif

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kMaxBlockThreads = 1024;

// Sum over the 32 lanes of a warp, in lane 0 (every lane of the warp must call it).
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int s = kWarpSize / 2; s > 0; s /= 2) v += __shfl_down_sync(kFullMask, v, s);
  return v;
}

// The sums of v[0..N) over the threads of a block of kWarps warps, in a fixed order (warp
// shuffles, then warp 0 over the warps' sums), written to out[0..N) by thread 0. Every thread
// of the block must call it.
template <int kWarps, int N, typename V>
__device__ __forceinline__ void block_sum(const V (&v)[N], double* out) {
  static_assert(kWarps <= kWarpSize, "warp 0 reduces one partial sum per warp of the block");
  DGP_SHARED(double[N][kWarps], warp_sums);
  const int lane = threadIdx.x % kWarpSize, warp_id = threadIdx.x / kWarpSize;
  for (int k = 0; k < N; ++k) {
    const double s = warp_sum(static_cast<double>(v[k]));
    if (lane == 0) warp_sums[k][warp_id] = s;
  }
  __syncthreads();
  if (warp_id == 0) {
    for (int k = 0; k < N; ++k) {
      const double s = warp_sum(lane < kWarps ? warp_sums[k][lane] : 0.0);
      if (lane == 0) out[k] = s;
    }
  }
}

#if defined(__CUDACC__)

using Stream = cudaStream_t;
inline Stream current_stream() { return at::cuda::getCurrentCUDAStream(); }
using DeviceGuard = c10::cuda::CUDAGuard;
// Largest gridDim.x and gridDim.y of a launch (every architecture since sm_30).
inline int64_t max_grid_x() { return 2147483647; }
inline int64_t max_grid_y() { return 65535; }

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Stream stream, Args&&... args) {
  kernel<<<grid, block, 0, stream>>>(std::forward<Args>(args)...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

#else

using Stream = dgp_emu::Stream;
inline Stream current_stream() { return {}; }
struct DeviceGuard {
  explicit DeviceGuard(c10::Device) {}
};
// The emulated limits, which tests may lower.
inline int64_t max_grid_x() { return dgp_emu::limits().max_grid_x; }
inline int64_t max_grid_y() { return dgp_emu::limits().max_grid_y; }

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Stream, Args&&... args) {
  dgp_emu::launch(grid, block, [&] { kernel(args...); });
}

#endif

// Launches over n items with items_per_block items per block along gridDim.x: calls
// launch(first, end, grid) for consecutive ranges [first, end) covering [0, n), each within the
// grid limit (one launch unless n is beyond it).
template <typename Launch>
void for_each_launch_x(int64_t n, int64_t items_per_block, Launch&& launch) {
  const int64_t most = max_grid_x() * items_per_block;
  for (int64_t first = 0; first < n; first += most) {
    const int64_t end = n - first < most ? n : first + most;
    launch(first, end, dim3(static_cast<unsigned>((end - first + items_per_block - 1) /
                                                  items_per_block)));
  }
}

// Launches over n items with one item per blockIdx.y and blocks_x blocks along x (the item's
// pixels): calls launch(first, grid) with the item of blockIdx.y = first + blockIdx.y.
template <typename Launch>
void for_each_launch_y(int64_t n, int64_t blocks_x, Launch&& launch) {
  const int64_t most = max_grid_y();
  for (int64_t first = 0; first < n; first += most) {
    const int64_t count = n - first < most ? n - first : most;
    launch(first, dim3(static_cast<unsigned>(blocks_x), static_cast<unsigned>(count)));
  }
}

}  // namespace gpu
}  // namespace dgp_ops
