// float16 and bfloat16 arguments of the ops run in float32. Each launcher checks its arguments
// as given (half types are accepted like float32 and float64, with the same rules of agreement),
// then hands a half call to in_float32, which calls the launcher again with float32 copies of
// the half tensors and casts its float32 results back to the half type. The kernels therefore
// only ever see float32 or float64; the extra copies are of the (small) inputs and outputs.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>
#include <utility>

namespace dgp_ops {

inline bool is_reduced(const at::Tensor& t) {
  return t.defined() && (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16);
}

namespace detail {

inline at::Tensor up(const at::Tensor& t, at::ScalarType half) {
  return t.defined() && t.scalar_type() == half ? t.to(at::kFloat) : t;
}
template <typename A>
inline const A& up(const A& a, at::ScalarType) {
  return a;
}

inline at::Tensor down(const at::Tensor& t, at::ScalarType half) {
  return t.defined() && t.scalar_type() == at::kFloat ? t.to(half) : t;
}
template <typename... Ts>
inline std::tuple<Ts...> down(const std::tuple<Ts...>& r, at::ScalarType half) {
  return std::apply([&](const auto&... t) { return std::tuple<Ts...>(down(t, half)...); }, r);
}

}  // namespace detail

// launcher(args...) with the tensors of dtype `half` in float32, its float32 results in `half`.
template <typename F, typename... A>
inline auto in_float32(at::ScalarType half, F&& launcher, const A&... args) {
  return detail::down(launcher(detail::up(args, half)...), half);
}

}  // namespace dgp_ops
