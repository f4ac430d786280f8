// Autograd and Autocast kernels of the weighted DLT ops, registered in C++ so that a forward +
// backward costs two dispatcher calls and no Python. Fake kernels stay in dgp_ops/dlt.py.
#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include <tuple>

#include "common/autograd_util.h"
#include "dlt/dlt_checks.h"

namespace dgp_ops {
namespace dlt {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Tensor = at::Tensor;

using ForwardSig = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&,
                                                      const Tensor&, const Tensor&, double);
using BackwardSig = std::tuple<Tensor, Tensor, Tensor, Tensor>(
    const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
    double);

std::tuple<Tensor, Tensor, Tensor> call_forward(const Tensor& p3, const Tensor& p2,
                                                const Tensor& K, const Tensor& w, double d) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("dgp_ops::weighted_dlt_translation", "")
                             .typed<ForwardSig>();
  return op.call(p3, p2, K, w, d);
}

std::tuple<Tensor, Tensor, Tensor, Tensor> call_backward(const Tensor& gt, const Tensor& p3,
                                                         const Tensor& p2, const Tensor& K,
                                                         const Tensor& w, const Tensor& saved,
                                                         double d) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("dgp_ops::weighted_dlt_translation_backward", "")
                             .typed<BackwardSig>();
  return op.call(gt, p3, p2, K, w, saved, d);
}

// The backward op under autograd: its own derivative is not implemented.
struct BackwardFunction : public torch::autograd::Function<BackwardFunction> {
  static variable_list forward(AutogradContext*, const Tensor& gt, const Tensor& p3,
                               const Tensor& p2, const Tensor& K, const Tensor& w,
                               const Tensor& saved, double damping) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const auto [g3, g2, gK, gw] = call_backward(gt, p3, p2, K, w, saved, damping);
    return {g3, g2, gK, gw};
  }
  static variable_list backward(AutogradContext*, variable_list) {
    double_backward_not_supported(kForwardOp);
  }
};

struct ForwardFunction : public torch::autograd::Function<ForwardFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& p3, const Tensor& p2,
                               const Tensor& K, const Tensor& w, double damping) {
    Tensor t, valid, saved;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      std::tie(t, valid, saved) = call_forward(p3, p2, K, w, damping);
    }
    ctx->mark_non_differentiable({valid, saved});
    ctx->save_for_backward({p3, p2, K, w, saved});
    ctx->saved_data["damping"] = damping;
    return {t, valid, saved};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const double damping = ctx->saved_data["damping"].toDouble();
    const auto g = BackwardFunction::apply(grads[0], s[0], s[1], s[2], s[3], s[4], damping);
    variable_list out(5);
    for (size_t i = 0; i < 4; ++i)
      if (ctx->needs_input_grad(i)) out[i] = g[i];
    return out;
  }
};

std::tuple<Tensor, Tensor, Tensor> forward_autograd(const Tensor& p3, const Tensor& p2,
                                                    const Tensor& K, const Tensor& w,
                                                    double damping) {
  const auto r = ForwardFunction::apply(p3, p2, K, w, damping);
  return {r[0], r[1], r[2]};
}

// Under torch.autocast: the fp32 cast policy (float16/bfloat16 inputs run in float32, float64
// stays float64), as for torch's own precision-sensitive ops.
template <c10::DeviceType D>
Tensor fp32(const Tensor& t) {
  return at::autocast::cached_cast(at::kFloat, t, D);
}

template <c10::DeviceType D>
std::tuple<Tensor, Tensor, Tensor> forward_autocast(const Tensor& p3, const Tensor& p2,
                                                    const Tensor& K, const Tensor& w,
                                                    double damping) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(D));
  return call_forward(fp32<D>(p3), fp32<D>(p2), fp32<D>(K), fp32<D>(w), damping);
}

template <c10::DeviceType D>
std::tuple<Tensor, Tensor, Tensor, Tensor> backward_autocast(const Tensor& gt, const Tensor& p3,
                                                             const Tensor& p2, const Tensor& K,
                                                             const Tensor& w,
                                                             const Tensor& saved,
                                                             double damping) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(D));
  return call_backward(fp32<D>(gt), fp32<D>(p3), fp32<D>(p2), fp32<D>(K), fp32<D>(w), saved,
                       damping);
}

}  // namespace

TORCH_LIBRARY_IMPL(dgp_ops, Autograd, m) {
  m.impl("weighted_dlt_translation", &forward_autograd);
  // The backward op is not differentiable (the forward's backward raises on double backward
  // itself); the standard fallback says so and lets torch.func transforms call it.
  m.impl("weighted_dlt_translation_backward", torch::autograd::autogradNotImplementedFallback());
}

TORCH_LIBRARY_IMPL(dgp_ops, AutocastCUDA, m) {
  m.impl("weighted_dlt_translation", &forward_autocast<c10::DeviceType::CUDA>);
  m.impl("weighted_dlt_translation_backward", &backward_autocast<c10::DeviceType::CUDA>);
}

TORCH_LIBRARY_IMPL(dgp_ops, AutocastCPU, m) {
  m.impl("weighted_dlt_translation", &forward_autocast<c10::DeviceType::CPU>);
  m.impl("weighted_dlt_translation_backward", &backward_autocast<c10::DeviceType::CPU>);
}

}  // namespace dlt
}  // namespace dgp_ops
