// Argument checks shared by the CPU and CUDA launchers of the warp ops: ranks, sizes that
// agree between arguments, dtypes, devices, output size and mode names, with errors naming
// the argument; dgp_ops/warp.py repeats them for the fake kernels with the same messages.
// Homography values are not checked here: an H that is not invertible gives an all-zero item
// (the public function can reject it before the call).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <string_view>
#include <utility>

#include "common/checks.h"
#include "warp/warp_kernel.h"

namespace dgp_ops {
namespace warp {

constexpr const char* kForwardOp = "warp_perspective";
constexpr const char* kBackwardOp = "warp_perspective_backward";

// Mode codes (interp, pad) of the mode strings.
inline std::pair<int, int> check_modes(const char* op, c10::string_view mode,
                                       c10::string_view padding_mode) {
  const int interp = interp_code(std::string_view(mode.data(), mode.size()));
  const int pad = padding_code(std::string_view(padding_mode.data(), padding_mode.size()));
  TORCH_CHECK_VALUE(interp >= 0, op, ": mode must be 'bilinear' or 'nearest', got '", mode,
                    "'");
  TORCH_CHECK_VALUE(pad >= 0, op,
                    ": padding_mode must be 'zeros', 'border' or 'reflection', got '",
                    padding_mode, "'");
  return {interp, pad};
}

// image (B, C, H, W) and H (B, 3, 3). Images are floating (float16, bfloat16, float32, float64)
// with H of the same dtype, or (forward only) uint8 with a floating H.
inline void check_image_and_h(const char* op, const at::Tensor& image, const at::Tensor& H,
                              bool allow_uint8) {
  using checks::Arg;
  const Arg img{op, "image", image}, h{op, "H", H};
  checks::shape(img, {-1, -1, -1, -1}, "(B, C, H, W)");
  const bool is_u8 = image.scalar_type() == at::kByte;
  if (allow_uint8) {
    const at::ScalarType t = image.scalar_type();
    TORCH_CHECK_TYPE(is_u8 || t == at::kFloat || t == at::kDouble || t == at::kHalf ||
                         t == at::kBFloat16,
                     op, ": image must be uint8, float16, bfloat16, float32 or float64, got ",
                     checks::dtype_name(t));
  } else {
    checks::floating(img);
  }
  checks::shape(h, {image.size(0), 3, 3}, "(B, 3, 3)");
  checks::floating(h);
  if (is_u8)
    checks::same_device(h, img);
  else
    checks::like(h, img);
  TORCH_CHECK_VALUE(image.size(2) > 0 && image.size(3) > 0, op,
                    ": image height and width must be positive, got ", image.sizes());
  // One item is addressed with int32 offsets (plus a one-pixel margin of the bilinear taps).
  TORCH_CHECK_VALUE(
      image.size(1) * image.size(2) * image.size(3) <
          checks::kMaxInt32Elements - 2 * (image.size(3) + 1) * image.size(1),
      op, ": one image must have fewer than 2^31 elements, got ", image.sizes());
}

inline void check_out_size(const char* op, int64_t out_h, int64_t out_w) {
  TORCH_CHECK_VALUE(out_h > 0 && out_w > 0, op, ": out_h and out_w must be positive, got (",
                    out_h, ", ", out_w, ")");
  TORCH_CHECK_VALUE(out_h * out_w < checks::kMaxInt32Elements, op,
                    ": out_h * out_w must be below 2^31, got (", out_h, ", ", out_w, ")");
}

inline std::pair<int, int> check_forward_args(const at::Tensor& image, const at::Tensor& H,
                                              int64_t out_h, int64_t out_w,
                                              c10::string_view mode,
                                              c10::string_view padding_mode) {
  check_image_and_h(kForwardOp, image, H, /*allow_uint8=*/true);
  check_out_size(kForwardOp, out_h, out_w);
  return check_modes(kForwardOp, mode, padding_mode);
}

inline std::pair<int, int> check_backward_args(const at::Tensor& grad_output,
                                               const at::Tensor& image, const at::Tensor& H,
                                               c10::string_view mode,
                                               c10::string_view padding_mode) {
  const char* op = kBackwardOp;
  check_image_and_h(op, image, H, /*allow_uint8=*/false);
  const checks::Arg g{op, "grad_output", grad_output};
  checks::shape(g, {image.size(0), image.size(1), -1, -1}, "(B, C, out_h, out_w)");
  checks::like(g, {op, "image", image});
  check_out_size(op, grad_output.size(2), grad_output.size(3));
  return check_modes(op, mode, padding_mode);
}

}  // namespace warp
}  // namespace dgp_ops
