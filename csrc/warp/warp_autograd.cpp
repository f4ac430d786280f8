// Autograd and Autocast kernels of the perspective warp, registered in C++. Its backward asks
// the backward op only for the gradients autograd needs (needs_input_grad), so an image that
// does not require grad costs no image-sized work or memory. Fake kernels stay in dgp_ops/warp.py.
#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include <string>
#include <tuple>

#include "common/autograd_util.h"
#include "warp/warp_checks.h"

namespace dgp_ops {
namespace warp {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Tensor = at::Tensor;

using ForwardSig = Tensor(const Tensor&, const Tensor&, int64_t, int64_t, c10::string_view,
                          c10::string_view);
using BackwardSig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                               c10::string_view, c10::string_view, bool, bool);

Tensor call_forward(const Tensor& image, const Tensor& H, int64_t oh, int64_t ow,
                    c10::string_view mode, c10::string_view pad) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("dgp_ops::warp_perspective", "")
                             .typed<ForwardSig>();
  return op.call(image, H, oh, ow, mode, pad);
}

std::tuple<Tensor, Tensor> call_backward(const Tensor& g, const Tensor& image, const Tensor& H,
                                         c10::string_view mode, c10::string_view pad,
                                         bool need_image, bool need_h) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("dgp_ops::warp_perspective_backward", "")
                             .typed<BackwardSig>();
  return op.call(g, image, H, mode, pad, need_image, need_h);
}

struct BackwardFunction : public torch::autograd::Function<BackwardFunction> {
  static variable_list forward(AutogradContext*, const Tensor& g, const Tensor& image,
                               const Tensor& H, c10::string_view mode, c10::string_view pad,
                               bool need_image, bool need_h) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const auto [gi, gh] = call_backward(g, image, H, mode, pad, need_image, need_h);
    return {gi, gh};
  }
  static variable_list backward(AutogradContext*, variable_list) {
    double_backward_not_supported(kForwardOp);
  }
};

struct ForwardFunction : public torch::autograd::Function<ForwardFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& image, const Tensor& H,
                               int64_t oh, int64_t ow, c10::string_view mode,
                               c10::string_view pad) {
    Tensor out;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      out = call_forward(image, H, oh, ow, mode, pad);
    }
    // uint8 warps have no gradient.
    if (!out.is_floating_point()) ctx->mark_non_differentiable({out});
    ctx->save_for_backward({image, H});
    ctx->saved_data["mode"] = std::string(mode.data(), mode.size());
    ctx->saved_data["padding_mode"] = std::string(pad.data(), pad.size());
    return {out};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const std::string mode = ctx->saved_data["mode"].toStringRef();
    const std::string pad = ctx->saved_data["padding_mode"].toStringRef();
    const bool need_image = ctx->needs_input_grad(0), need_h = ctx->needs_input_grad(1);
    const auto g = BackwardFunction::apply(grads[0], s[0], s[1], c10::string_view(mode),
                                           c10::string_view(pad), need_image, need_h);
    return {need_image ? g[0] : Tensor(), need_h ? g[1] : Tensor(), Tensor(), Tensor(),
            Tensor(), Tensor()};
  }
};

Tensor forward_autograd(const Tensor& image, const Tensor& H, int64_t oh, int64_t ow,
                        c10::string_view mode, c10::string_view pad) {
  return ForwardFunction::apply(image, H, oh, ow, mode, pad)[0];
}

// Under torch.autocast: the fp32 cast policy (float16/bfloat16 images and H run in float32,
// float64 and uint8 stay as they are).
template <c10::DeviceType D>
Tensor fp32(const Tensor& t) {
  return at::autocast::cached_cast(at::kFloat, t, D);
}

template <c10::DeviceType D>
Tensor forward_autocast(const Tensor& image, const Tensor& H, int64_t oh, int64_t ow,
                        c10::string_view mode, c10::string_view pad) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(D));
  return call_forward(fp32<D>(image), fp32<D>(H), oh, ow, mode, pad);
}

template <c10::DeviceType D>
std::tuple<Tensor, Tensor> backward_autocast(const Tensor& g, const Tensor& image,
                                             const Tensor& H, c10::string_view mode,
                                             c10::string_view pad, bool need_image,
                                             bool need_h) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(D));
  return call_backward(fp32<D>(g), fp32<D>(image), fp32<D>(H), mode, pad, need_image, need_h);
}

}  // namespace

TORCH_LIBRARY_IMPL(dgp_ops, Autograd, m) {
  m.impl("warp_perspective", &forward_autograd);
  // The backward op is not differentiable (the forward's backward raises on double backward
  // itself); the standard fallback says so and lets torch.func transforms call it.
  m.impl("warp_perspective_backward", torch::autograd::autogradNotImplementedFallback());
}

TORCH_LIBRARY_IMPL(dgp_ops, AutocastCUDA, m) {
  m.impl("warp_perspective", &forward_autocast<c10::DeviceType::CUDA>);
  m.impl("warp_perspective_backward", &backward_autocast<c10::DeviceType::CUDA>);
}

TORCH_LIBRARY_IMPL(dgp_ops, AutocastCPU, m) {
  m.impl("warp_perspective", &forward_autocast<c10::DeviceType::CPU>);
  m.impl("warp_perspective_backward", &backward_autocast<c10::DeviceType::CPU>);
}

}  // namespace warp
}  // namespace dgp_ops
