// Argument checks shared by the CPU and CUDA launchers of the DLT ops: everything memory
// safety depends on (ranks, sizes that agree between arguments, dtypes, devices, the layout
// of `saved`) plus the scalar arguments, with errors naming the argument.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <utility>

#include "common/checks.h"
#include "dlt/dlt_kernel.h"

namespace dgp_ops {
namespace dlt {

constexpr const char* kForwardOp = "weighted_dlt_translation";
constexpr const char* kBackwardOp = "weighted_dlt_translation_backward";

inline void check_forward_args(const char* op, const at::Tensor& points3d,
                               const at::Tensor& points2d, const at::Tensor& K,
                               const at::Tensor& weights, double damping) {
  using checks::Arg;
  const Arg p3{op, "points3d", points3d}, p2{op, "points2d", points2d};
  const Arg k{op, "K", K}, w{op, "weights", weights};
  checks::shape(p3, {-1, -1, 3}, "(B, N, 3)");
  checks::floating(p3);
  const int64_t B = points3d.size(0), N = points3d.size(1);
  TORCH_CHECK_VALUE(N >= 2, op, ": points3d must have N >= 2 points, got N = ", N);
  checks::shape(p2, {B, N, 2}, "(B, N, 2)");
  checks::shape(k, {B, 3, 3}, "(B, 3, 3)");
  checks::shape(w, {B, N}, "(B, N)");
  checks::like(p2, p3);
  checks::like(k, p3);
  checks::like(w, p3);
  TORCH_CHECK_VALUE(std::isfinite(damping) && damping >= 0.0, op,
                    ": damping must be finite and >= 0, got ", damping);
}

// `saved` must be the (B, kSaved) float64 tensor the forward op returned for this batch.
inline void check_saved(const char* op, const at::Tensor& saved, const at::Tensor& points3d) {
  checks::defined({op, "saved", saved});
  TORCH_CHECK_VALUE(saved.scalar_type() == at::kDouble && saved.dim() == 2 &&
                        saved.size(0) == points3d.size(0) && saved.size(1) == kSaved,
                    op, ": saved must be the (B, ", kSaved,
                    ") float64 tensor returned by weighted_dlt_translation for this batch, got ",
                    checks::dtype_name(saved.scalar_type()), " ", saved.sizes());
  checks::same_device({op, "saved", saved}, {op, "points3d", points3d});
}

inline void check_backward_args(const at::Tensor& grad_t, const at::Tensor& points3d,
                                const at::Tensor& points2d, const at::Tensor& K,
                                const at::Tensor& weights, const at::Tensor& saved,
                                double damping) {
  const char* op = kBackwardOp;
  check_forward_args(op, points3d, points2d, K, weights, damping);
  const checks::Arg g{op, "grad_t", grad_t};
  checks::shape(g, {points3d.size(0), 3}, "(B, 3)");
  checks::like(g, {op, "points3d", points3d});
  check_saved(op, saved, points3d);
}

// K as (data, item stride): one shared 3x3 matrix (stride 0) when K is a batch-expanded view,
// so that it is neither copied B times nor inverted once per item on the CPU; else a
// contiguous (B, 3, 3).
inline std::pair<at::Tensor, int64_t> intrinsics_view(const at::Tensor& K) {
  if (K.size(0) > 0 && K.stride(0) == 0) return {K.select(0, 0).contiguous(), 0};
  return {K.contiguous(), 9};
}

}  // namespace dlt
}  // namespace dgp_ops
