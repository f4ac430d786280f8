// The CPU kernels of dgp_ops::warp_perspective and its backward (warp_cpu.cpp), for the
// distorted warp's CPU launcher, which hands them batches without distortion.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <tuple>

namespace dgp_ops {
namespace warp {

at::Tensor warp_perspective_cpu(const at::Tensor& image, const at::Tensor& H, int64_t out_h,
                                int64_t out_w, c10::string_view mode,
                                c10::string_view padding_mode);

std::tuple<at::Tensor, at::Tensor> warp_perspective_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& image, const at::Tensor& H,
    c10::string_view mode, c10::string_view padding_mode, bool image_requires_grad,
    bool H_requires_grad);

}  // namespace warp
}  // namespace dgp_ops
