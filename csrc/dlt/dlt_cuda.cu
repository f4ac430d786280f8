// CUDA kernels of the weighted DLT translation ops: one thread per batch item running the
// same per-item functions as the CPU kernels.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>
#include <torch/types.h>

#include <tuple>

#include "dlt/dlt_checks.h"
#include "dlt/dlt_kernel.h"

namespace dgp_ops {
namespace {

constexpr int kThreads = 128;

template <typename T>
__global__ void dlt_forward_kernel(const T* __restrict__ p3, const T* __restrict__ p2,
                                   const T* __restrict__ K, const T* __restrict__ w, int64_t B,
                                   int64_t N, double damping, T* __restrict__ t,
                                   bool* __restrict__ valid, double* __restrict__ saved) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  double kinv[9];
  const bool kinv_ok = dlt::load_kinv(K + b * 9, kinv);
  valid[b] = dlt::forward_item(p3 + b * N * 3, p2 + b * N * 2, kinv, kinv_ok, w + b * N, N,
                               damping, t + b * 3, saved + b * dlt::kSaved);
}

template <typename T>
__global__ void dlt_backward_kernel(const T* __restrict__ gt, const T* __restrict__ p3,
                                    const T* __restrict__ p2, const T* __restrict__ K,
                                    const T* __restrict__ w, const double* __restrict__ saved,
                                    int64_t B, int64_t N, double damping, T* __restrict__ g3,
                                    T* __restrict__ g2, T* __restrict__ gK, T* __restrict__ gw) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  double kinv[9];
  const bool kinv_ok = dlt::load_kinv(K + b * 9, kinv);
  dlt::backward_item(gt + b * 3, p3 + b * N * 3, p2 + b * N * 2, kinv, kinv_ok, w + b * N,
                     saved + b * dlt::kSaved, N, damping, g3 + b * N * 3, g2 + b * N * 2,
                     gK + b * 9, gw + b * N);
}

unsigned int num_blocks(int64_t B) { return static_cast<unsigned int>((B + kThreads - 1) / kThreads); }

std::tuple<at::Tensor, at::Tensor, at::Tensor> dlt_forward_cuda(const at::Tensor& points3d,
                                                    const at::Tensor& points2d,
                                                    const at::Tensor& K,
                                                    const at::Tensor& weights, double damping) {
  dlt::check_forward_args(dlt::kForwardOp, points3d, points2d, K, weights, damping);
  const c10::cuda::CUDAGuard guard(points3d.device());
  // The same value check as the CPU kernel's (which does it while reading the weights); the
  // error needs the answer on the host, so this synchronises with the device.
  TORCH_CHECK_VALUE(!weights.lt(0).any().item<bool>(),
                    "weighted_dlt_translation: weights must be non-negative");
  const auto p3 = points3d.contiguous();
  const auto p2 = points2d.contiguous();
  const auto k = K.contiguous();
  const auto w = weights.contiguous();
  const int64_t B = p3.size(0), N = p3.size(1);
  auto t = at::empty({B, 3}, p3.options());
  auto valid = at::empty({B}, p3.options().dtype(at::kBool));
  auto saved = at::empty({B, dlt::kSaved}, p3.options().dtype(at::kDouble));
  if (B == 0) return {t, valid, saved};
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(p3.scalar_type(), "weighted_dlt_translation_cuda", [&] {
    dlt_forward_kernel<scalar_t><<<num_blocks(B), kThreads, 0, stream>>>(
        p3.const_data_ptr<scalar_t>(), p2.const_data_ptr<scalar_t>(),
        k.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), B, N, damping,
        t.mutable_data_ptr<scalar_t>(), valid.mutable_data_ptr<bool>(),
        saved.mutable_data_ptr<double>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {t, valid, saved};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dlt_backward_cuda(
    const at::Tensor& grad_t, const at::Tensor& points3d, const at::Tensor& points2d,
    const at::Tensor& K, const at::Tensor& weights, const at::Tensor& saved, double damping) {
  dlt::check_backward_args(grad_t, points3d, points2d, K, weights, saved, damping);
  const c10::cuda::CUDAGuard guard(points3d.device());
  const auto gt = grad_t.contiguous();
  const auto sv = saved.contiguous();
  const auto p3 = points3d.contiguous();
  const auto p2 = points2d.contiguous();
  const auto k = K.contiguous();
  const auto w = weights.contiguous();
  const int64_t B = p3.size(0), N = p3.size(1);
  auto g3 = at::empty_like(p3);
  auto g2 = at::empty_like(p2);
  auto gK = at::empty_like(k);
  auto gw = at::empty_like(w);
  if (B == 0) return {g3, g2, gK, gw};
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(p3.scalar_type(), "weighted_dlt_translation_backward_cuda", [&] {
    dlt_backward_kernel<scalar_t><<<num_blocks(B), kThreads, 0, stream>>>(
        gt.const_data_ptr<scalar_t>(), p3.const_data_ptr<scalar_t>(),
        p2.const_data_ptr<scalar_t>(), k.const_data_ptr<scalar_t>(),
        w.const_data_ptr<scalar_t>(), sv.const_data_ptr<double>(), B, N, damping,
        g3.mutable_data_ptr<scalar_t>(),
        g2.mutable_data_ptr<scalar_t>(), gK.mutable_data_ptr<scalar_t>(),
        gw.mutable_data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {g3, g2, gK, gw};
}

}  // namespace

TORCH_LIBRARY_IMPL(dgp_ops, CUDA, m) {
  m.impl("weighted_dlt_translation", &dlt_forward_cuda);
  m.impl("weighted_dlt_translation_backward", &dlt_backward_cuda);
}

}  // namespace dgp_ops
