// The library dgp_ops_emu: the schemas of dgp_ops's ops (the same text as csrc/dgp_ops.cpp,
// which test_emu_kernels.py checks) whose CPU kernels are the CUDA launchers run under the
// host emulation (emu_dlt.cpp, emu_warp_forward.cpp, emu_warp_backward.cpp,
// emu_distort.cpp), the emulator's
// launch limits and counters, and small kernels that show what the emulator reports
// (test_emulator.py).
#include <torch/library.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/gpu.h"

namespace {

using dgp_ops::gpu::kFullMask;
using dgp_ops::gpu::warp_sum;

std::vector<int64_t> set_grid_limits(int64_t max_grid_x, int64_t max_grid_y) {
  TORCH_CHECK(max_grid_x > 0 && max_grid_y > 0, "grid limits must be positive");
  auto& lim = dgp_emu::limits();
  std::vector<int64_t> previous = {lim.max_grid_x, lim.max_grid_y};
  lim.max_grid_x = max_grid_x;
  lim.max_grid_y = max_grid_y;
  return previous;
}

int64_t launches() { return dgp_emu::stats().launches; }

// ---- kernels of the emulator's own tests ----------------------------------------------------

__global__ void sum_of_lanes(double* out) {
  const double v = warp_sum(static_cast<double>(threadIdx.x));
  if (threadIdx.x % 32 == 0) gpuAtomicAdd(out, v);
}

__global__ void early_exit_before_shuffle(double* out) {
  if (threadIdx.x % 32 >= 20) return;
  const double v = warp_sum(1.0);
  if (threadIdx.x == 0) *out = v;
}

__global__ void barrier_after_exit(double* out) {
  if (threadIdx.x == blockDim.x - 1) return;
  __syncthreads();
  if (threadIdx.x == 0) *out = 1.0;
}

// Warp 0 waits at the barrier; in warp 1 lane 31 does too, while lanes 0-30 wait in a shuffle
// that names lane 31.
__global__ void barrier_against_shuffle(double* out) {
  if (threadIdx.x < 32 || threadIdx.x == 63) {
    __syncthreads();
  } else {
    const double v = warp_sum(1.0);
    if (threadIdx.x == 32) *out = v;
  }
}

// A block of 40 threads: warp 1 has 8 lanes.
__global__ void full_mask_on_short_warp(double* out) {
  const double v = warp_sum(1.0);
  if (threadIdx.x == 32) *out = v;
}

__global__ void short_warp_own_mask(double* out) {
  if (threadIdx.x < 32) return;
  double v = 1.0;
  for (int s = 4; s > 0; s /= 2) v += __shfl_down_sync(0xffu, v, s, 8);
  if (threadIdx.x == 32) *out = v;
}

__global__ void atomic_adds(double* d, float* f) {
  gpuAtomicAdd(d, 0.5);
  gpuAtomicAdd(f, 0.25f);
}

// Odd lanes never write their slot; lane 0 adds every slot.
__global__ void shared_read_unwritten(double* out) {
  DGP_SHARED(double[32], slots);
  if (threadIdx.x % 2 == 0) slots[threadIdx.x] = 1.0;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (int i = 0; i < 32; ++i) s += slots[i];
    *out = s;
  }
}

__global__ void shared_every_slot(double* out) {
  DGP_SHARED(double[32], slots);
  slots[threadIdx.x] = 1.0;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (int i = 0; i < 32; ++i) s += slots[i];
    *out = s;
  }
}

__global__ void shared_too_large(double* out) {
  DGP_SHARED(double[7000], big);
  big[threadIdx.x] = 1.0;
  *out = big[0];
}

__global__ void nothing(double*) {}

// Runs one of the kernels above and returns what it wrote to its output (the first output
// for atomic_adds: the double sum, the float sum added to it times 1000).
double selftest(std::string name) {
  using dgp_ops::gpu::launch;
  std::vector<double> out(1, 0.0);
  std::vector<float> outf(1, 0.0f);
  const auto s = dgp_ops::gpu::current_stream();
  if (name == "sum_of_lanes") {
    launch(sum_of_lanes, dim3(1), dim3(64), s, out.data());
  } else if (name == "early_exit_before_shuffle") {
    launch(early_exit_before_shuffle, dim3(1), dim3(32), s, out.data());
  } else if (name == "barrier_after_exit") {
    launch(barrier_after_exit, dim3(1), dim3(64), s, out.data());
  } else if (name == "barrier_against_shuffle") {
    launch(barrier_against_shuffle, dim3(1), dim3(64), s, out.data());
  } else if (name == "full_mask_on_short_warp") {
    launch(full_mask_on_short_warp, dim3(1), dim3(40), s, out.data());
  } else if (name == "short_warp_own_mask") {
    launch(short_warp_own_mask, dim3(1), dim3(40), s, out.data());
  } else if (name == "atomic_adds") {
    launch(atomic_adds, dim3(8), dim3(256), s, out.data(), outf.data());
    return out[0] + 1000.0 * outf[0];
  } else if (name == "shared_read_unwritten") {
    launch(shared_read_unwritten, dim3(1), dim3(32), s, out.data());
  } else if (name == "shared_every_slot") {
    launch(shared_every_slot, dim3(2), dim3(32), s, out.data());
  } else if (name == "shared_too_large") {
    launch(shared_too_large, dim3(1), dim3(32), s, out.data());
  } else if (name == "grid_beyond_limit") {
    launch(nothing, dim3(1, static_cast<unsigned>(dgp_emu::limits().max_grid_y + 1)), dim3(32),
           s, out.data());
  } else {
    TORCH_CHECK(false, "unknown self-test ", name);
  }
  return out[0];
}

}  // namespace

TORCH_LIBRARY(dgp_ops_emu, m) {
  m.def(
      "weighted_dlt_translation(Tensor points3d, Tensor points2d, Tensor K, Tensor weights, "
      "float damping=0.0) -> (Tensor, Tensor, Tensor)");
  m.def(
      "weighted_dlt_translation_backward(Tensor grad_t, Tensor points3d, Tensor points2d, "
      "Tensor K, Tensor weights, Tensor saved, float damping=0.0) -> (Tensor, Tensor, Tensor, "
      "Tensor)");
  m.def(
      "warp_perspective(Tensor image, Tensor H, int out_h, int out_w, str mode='bilinear', "
      "str padding_mode='zeros') -> Tensor");
  m.def(
      "warp_perspective_backward(Tensor grad_output, Tensor image, Tensor H, str mode, "
      "str padding_mode, bool image_requires_grad, bool H_requires_grad) -> (Tensor, Tensor)");
  m.def(
      "warp_perspective_distorted(Tensor image, Tensor H, Tensor K, Tensor dist, int out_h, "
      "int out_w, str model='pinhole', str mode='bilinear', str padding_mode='zeros') -> Tensor");
  m.def(
      "warp_perspective_distorted_backward(Tensor grad_output, Tensor image, Tensor H, "
      "Tensor K, Tensor dist, str model, str mode, str padding_mode, bool image_requires_grad, "
      "bool H_requires_grad) -> (Tensor, Tensor)");
  m.def("set_grid_limits(int max_grid_x, int max_grid_y) -> int[]", &set_grid_limits);
  m.def("launches() -> int", &launches);
  m.def("selftest(str name) -> float", &selftest);
}
