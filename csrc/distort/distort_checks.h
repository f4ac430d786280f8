// Argument checks shared by the CPU and CUDA launchers of the distorted warp ops, on top of the
// warp's (warp_checks.h): K (B, 3, 3) and dist (B, D) with the dtype of H and on its device, a
// known lens model and a coefficient count it takes; dgp_ops/distort.py repeats them for the
// fake kernels with the same messages. Values are not checked here (an item with an unusable K
// or coefficients is all zeros; the public function can reject them before the call).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <string_view>
#include <tuple>

#include "common/checks.h"
#include "distort/distort_kernel.h"
#include "warp/warp_checks.h"

namespace dgp_ops {
namespace distort {

constexpr const char* kForwardOp = "warp_perspective_distorted";
constexpr const char* kBackwardOp = "warp_perspective_distorted_backward";

// Codes (model, interp, pad), after checking K, dist and the names.
inline std::tuple<int, int, int> check_camera(const char* op, const at::Tensor& H,
                                              const at::Tensor& K, const at::Tensor& dist,
                                              c10::string_view model, c10::string_view mode,
                                              c10::string_view padding_mode) {
  using checks::Arg;
  const Arg h{op, "H", H}, k{op, "K", K}, d{op, "dist", dist};
  checks::shape(k, {H.size(0), 3, 3}, "(B, 3, 3)");
  checks::like(k, h);
  checks::shape(d, {H.size(0), -1}, "(B, D)");
  checks::like(d, h);
  const int m = model_code(std::string_view(model.data(), model.size()));
  TORCH_CHECK_VALUE(m >= 0, op, ": model must be 'pinhole' or 'fisheye', got '", model, "'");
  const int64_t D = dist.size(1);
  if (m == kPinhole) {
    TORCH_CHECK_VALUE(D == 4 || D == 5 || D == 8, op,
                      ": dist must have 4, 5 or 8 coefficients (k1, k2, p1, p2[, k3[, k4, k5, "
                      "k6]]) for model 'pinhole', got ", D);
  } else {
    TORCH_CHECK_VALUE(D == 4, op,
                      ": dist must have 4 coefficients (k1, k2, k3, k4) for model 'fisheye', "
                      "got ", D);
  }
  const auto [interp, pad] = warp::check_modes(op, mode, padding_mode);
  return {m, interp, pad};
}

inline std::tuple<int, int, int> check_forward_args(const at::Tensor& image, const at::Tensor& H,
                                                    const at::Tensor& K, const at::Tensor& dist,
                                                    int64_t out_h, int64_t out_w,
                                                    c10::string_view model,
                                                    c10::string_view mode,
                                                    c10::string_view padding_mode) {
  warp::check_image_and_h(kForwardOp, image, H, /*allow_uint8=*/true);
  warp::check_out_size(kForwardOp, out_h, out_w);
  return check_camera(kForwardOp, H, K, dist, model, mode, padding_mode);
}

inline std::tuple<int, int, int> check_backward_args(
    const at::Tensor& grad_output, const at::Tensor& image, const at::Tensor& H,
    const at::Tensor& K, const at::Tensor& dist, c10::string_view model, c10::string_view mode,
    c10::string_view padding_mode) {
  const char* op = kBackwardOp;
  warp::check_image_and_h(op, image, H, /*allow_uint8=*/false);
  const checks::Arg g{op, "grad_output", grad_output};
  checks::shape(g, {image.size(0), image.size(1), -1, -1}, "(B, C, out_h, out_w)");
  checks::like(g, {op, "image", image});
  warp::check_out_size(op, grad_output.size(2), grad_output.size(3));
  return check_camera(op, H, K, dist, model, mode, padding_mode);
}

}  // namespace distort
}  // namespace dgp_ops
