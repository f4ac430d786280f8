// CPU forward of dgp_ops::warp_perspective for uint8 images (warp_cpu_u8.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace dgp_ops {
namespace warp {

// image: (B, C, H, W) uint8, NCHW or channels-last memory (read in place; other layouts are
// copied); H: (B, 3, 3) float32 or float64, already checked; interp, pad: mode codes.
// Returns the (B, C, out_h, out_w) uint8 result in NCHW memory.
at::Tensor warp_u8_cpu(const at::Tensor& image, const at::Tensor& H, int64_t out_h,
                       int64_t out_w, int interp, int pad);

}  // namespace warp
}  // namespace dgp_ops
