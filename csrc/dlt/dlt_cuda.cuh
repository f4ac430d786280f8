// CUDA kernels of the weighted DLT translation ops and their launchers, written against
// common/gpu.h so that nvcc compiles them into the extension (dlt_cuda.cu) and a host compiler
// runs them under the emulation of the tests (tests/cuda_emu).
//
// One warp per item: lane l takes points l, l + 32, ... (neighbouring lanes read neighbouring
// points), the lanes' sums are added with warp shuffles and lane 0 finishes the item with the
// same per-item functions as the CPU kernel (dlt_kernel.h). One launch per forward and one per
// backward (inputs that are not contiguous are copied first; a batch-expanded K is read in
// place). Values are never read on the host: a negative weight makes its item invalid.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <tuple>

#include "common/gpu.h"
#include "common/reduced_precision.h"
#include "dlt/dlt_checks.h"
#include "dlt/dlt_kernel.h"

namespace dgp_ops {
namespace dlt {
namespace cuda {

constexpr int kItemsPerBlock = 4;
constexpr int kThreads = kItemsPerBlock * gpu::kWarpSize;
static_assert(kThreads % gpu::kWarpSize == 0 && kThreads <= gpu::kMaxBlockThreads,
              "a block is a whole number of warps, one per item");

// Item of this warp: first + blockIdx.x * kItemsPerBlock + warp index.
__device__ __forceinline__ int64_t item_of_warp(int64_t first) {
  return first + static_cast<int64_t>(blockIdx.x) * kItemsPerBlock +
         threadIdx.x / gpu::kWarpSize;
}

template <typename T>
__global__ void forward_kernel(const T* __restrict__ p3, const T* __restrict__ p2,
                               const T* __restrict__ K, int64_t k_stride,
                               const T* __restrict__ w, int64_t first, int64_t end, int64_t N,
                               double damping, T* __restrict__ t, bool* __restrict__ valid,
                               double* __restrict__ saved) {
  const int64_t b = item_of_warp(first);
  if (b >= end) return;  // the whole warp: no lane of a later shuffle has exited
  const int lane = threadIdx.x % gpu::kWarpSize;
  double kinv[9];
  const bool kinv_ok = load_kinv(K + b * k_stride, kinv);
  NormalSums q;
  if (kinv_ok) add_points<gpu::kWarpSize>(p3 + b * N * 3, p2 + b * N * 2, kinv, w + b * N, lane,
                                          N, q);
  q.sw = gpu::warp_sum(q.sw);
  q.su = gpu::warp_sum(q.su);
  q.sv = gpu::warp_sum(q.sv);
  q.suu = gpu::warp_sum(q.suu);
  q.r0 = gpu::warp_sum(q.r0);
  q.r1 = gpu::warp_sum(q.r1);
  q.r2 = gpu::warp_sum(q.r2);
  q.negative = gpu::warp_sum(q.negative);
  if (lane == 0) valid[b] = solve_item(q, kinv_ok, damping, t + b * 3, saved + b * kSaved);
}

template <typename T>
__global__ void backward_kernel(const T* __restrict__ gt, const T* __restrict__ p3,
                                const T* __restrict__ p2, const T* __restrict__ K,
                                int64_t k_stride, const T* __restrict__ w,
                                const double* __restrict__ saved, int64_t first, int64_t end,
                                int64_t N, double damping, T* __restrict__ g3,
                                T* __restrict__ g2, T* __restrict__ gK, T* __restrict__ gw) {
  using C = typename PointMath<T>::type;
  const int64_t b = item_of_warp(first);
  if (b >= end) return;  // the whole warp
  const int lane = threadIdx.x % gpu::kWarpSize;
  double kinv[9];
  const bool kinv_ok = load_kinv(K + b * k_stride, kinv);
  const double* sv = saved + b * kSaved;
  T* g3b = g3 + b * N * 3;
  T* g2b = g2 + b * N * 2;
  T* gwb = gw + b * N;
  if (!has_gradient(sv, kinv_ok)) {  // the same for every lane of the warp
    zero_point_grads<gpu::kWarpSize>(lane, N, g3b, g2b, gwb);
    if (lane < 9) gK[b * 9 + lane] = T(0);
    return;
  }
  const BackwardTerms<C> bt = backward_terms<T, C>(gt + b * 3, kinv, sv, damping);
  C gkinv[6];
  backward_points<gpu::kWarpSize>(p3 + b * N * 3, p2 + b * N * 2, w + b * N, lane, N, bt.kinv,
                                  bt.lam, bt.S, g3b, g2b, gwb, gkinv);
  for (int i = 0; i < 6; ++i) gkinv[i] = gpu::warp_sum(gkinv[i]);
  if (lane == 0) k_grad<T>(gkinv, kinv, gK + b * 9);
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> forward(const at::Tensor& points3d,
                                                              const at::Tensor& points2d,
                                                              const at::Tensor& K,
                                                              const at::Tensor& weights,
                                                              double damping) {
  check_forward_args(kForwardOp, points3d, points2d, K, weights, damping);
  if (is_reduced(points3d))
    return in_float32(points3d.scalar_type(), forward, points3d, points2d, K, weights, damping);
  const gpu::DeviceGuard guard(points3d.device());
  const auto p3 = points3d.contiguous();
  const auto p2 = points2d.contiguous();
  const auto kv = intrinsics_view(K);
  const at::Tensor& k = kv.first;
  const int64_t ks = kv.second;
  const auto w = weights.contiguous();
  const int64_t B = p3.size(0), N = p3.size(1);
  auto t = at::empty({B, 3}, p3.options());
  auto valid = at::empty({B}, p3.options().dtype(at::kBool));
  auto saved = at::empty({B, kSaved}, p3.options().dtype(at::kDouble));
  const auto stream = gpu::current_stream();
  AT_DISPATCH_FLOATING_TYPES(p3.scalar_type(), "weighted_dlt_translation_cuda", [&] {
    gpu::for_each_launch_x(B, kItemsPerBlock, [&](int64_t first, int64_t end, dim3 grid) {
      gpu::launch(forward_kernel<scalar_t>, grid, dim3(kThreads), stream,
                  p3.const_data_ptr<scalar_t>(), p2.const_data_ptr<scalar_t>(),
                  k.const_data_ptr<scalar_t>(), ks, w.const_data_ptr<scalar_t>(), first, end,
                  N, damping, t.mutable_data_ptr<scalar_t>(), valid.mutable_data_ptr<bool>(),
                  saved.mutable_data_ptr<double>());
    });
  });
  return {t, valid, saved};
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward(
    const at::Tensor& grad_t, const at::Tensor& points3d, const at::Tensor& points2d,
    const at::Tensor& K, const at::Tensor& weights, const at::Tensor& saved, double damping) {
  check_backward_args(grad_t, points3d, points2d, K, weights, saved, damping);
  if (is_reduced(points3d))
    return in_float32(points3d.scalar_type(), backward, grad_t, points3d, points2d, K, weights,
                      saved, damping);
  const gpu::DeviceGuard guard(points3d.device());
  const auto gt = grad_t.contiguous();
  const auto sv = saved.contiguous();
  const auto p3 = points3d.contiguous();
  const auto p2 = points2d.contiguous();
  const auto kv = intrinsics_view(K);
  const at::Tensor& k = kv.first;
  const int64_t ks = kv.second;
  const auto w = weights.contiguous();
  const int64_t B = p3.size(0), N = p3.size(1);
  auto g3 = at::empty_like(p3);
  auto g2 = at::empty_like(p2);
  auto gK = at::empty({B, 3, 3}, p3.options());
  auto gw = at::empty_like(w);
  const auto stream = gpu::current_stream();
  AT_DISPATCH_FLOATING_TYPES(p3.scalar_type(), "weighted_dlt_translation_backward_cuda", [&] {
    gpu::for_each_launch_x(B, kItemsPerBlock, [&](int64_t first, int64_t end, dim3 grid) {
      gpu::launch(backward_kernel<scalar_t>, grid, dim3(kThreads), stream,
                  gt.const_data_ptr<scalar_t>(), p3.const_data_ptr<scalar_t>(),
                  p2.const_data_ptr<scalar_t>(), k.const_data_ptr<scalar_t>(), ks,
                  w.const_data_ptr<scalar_t>(), sv.const_data_ptr<double>(), first, end, N,
                  damping, g3.mutable_data_ptr<scalar_t>(), g2.mutable_data_ptr<scalar_t>(),
                  gK.mutable_data_ptr<scalar_t>(), gw.mutable_data_ptr<scalar_t>());
    });
  });
  return {g3, g2, gK, gw};
}

}  // namespace cuda
}  // namespace dlt
}  // namespace dgp_ops
