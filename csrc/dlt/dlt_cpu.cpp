// CPU kernels of the weighted DLT translation ops: one parallel_for over batch items.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <tuple>

#include "common/cpu_dispatch.h"
#include "common/reduced_precision.h"
#include "dlt/dlt_checks.h"
#include "dlt/dlt_kernel.h"

namespace dgp_ops {
namespace {

constexpr int64_t kGrain = 64;

// The per-item loops are compiled for the x86-64-v3 ISA level and for the baseline and picked
// at run time (common/cpu_dispatch.h); DGP_FLATTEN inlines the per-item functions into each
// so the per-point loops are vectorised 8 floats / 4 doubles wide there.
template <typename T>
DGP_ALWAYS_INLINE void forward_range_body(
    int64_t begin, int64_t end, int64_t N, double damping, const T* p3d, const T* p2d,
    const T* kd, int64_t ks, const T* wd, T* td, bool* vd, double* sd) {
  double kinv[9] = {};  // read only when kinv_ok (zeroed: -Wmaybe-uninitialized)
  bool kinv_ok = false;
  for (int64_t b = begin; b < end; ++b) {
    if (ks != 0 || b == begin) kinv_ok = dlt::load_kinv(kd + b * ks, kinv);
    vd[b] = dlt::forward_item(p3d + b * N * 3, p2d + b * N * 2, kinv, kinv_ok, wd + b * N, N,
                              damping, td + b * 3, sd + b * dlt::kSaved);
  }
}

template <typename T>
DGP_ALWAYS_INLINE void backward_range_body(
    int64_t begin, int64_t end, int64_t N, double damping, const T* gtd, const T* p3d,
    const T* p2d, const T* kd, int64_t ks, const T* wd, const double* sd, T* g3d, T* g2d,
    T* gKd, T* gwd) {
  double kinv[9] = {};  // read only when kinv_ok (zeroed: -Wmaybe-uninitialized)
  bool kinv_ok = false;
  for (int64_t b = begin; b < end; ++b) {
    if (ks != 0 || b == begin) kinv_ok = dlt::load_kinv(kd + b * ks, kinv);
    dlt::backward_item(gtd + b * 3, p3d + b * N * 3, p2d + b * N * 2, kinv, kinv_ok,
                       wd + b * N, sd + b * dlt::kSaved, N, damping, g3d + b * N * 3,
                       g2d + b * N * 2, gKd + b * 9, gwd + b * N);
  }
}

template <typename T>
DGP_FLATTEN void forward_range_baseline(int64_t begin, int64_t end, int64_t N, double damping,
                                    const T* p3d, const T* p2d, const T* kd, int64_t ks,
                                    const T* wd, T* td, bool* vd, double* sd) {
  forward_range_body<T>(begin, end, N, damping, p3d, p2d, kd, ks, wd, td, vd, sd);
}

template <typename T>
DGP_FLATTEN void backward_range_baseline(int64_t begin, int64_t end, int64_t N, double damping,
                                     const T* gtd, const T* p3d, const T* p2d, const T* kd,
                                     int64_t ks, const T* wd, const double* sd, T* g3d, T* g2d,
                                     T* gKd, T* gwd) {
  backward_range_body<T>(begin, end, N, damping, gtd, p3d, p2d, kd, ks, wd, sd, g3d, g2d, gKd,
                         gwd);
}

#ifdef DGP_HAVE_V3
template <typename T>
DGP_TARGET_V3 DGP_FLATTEN void forward_range_v3(int64_t begin, int64_t end, int64_t N,
                                                double damping, const T* p3d, const T* p2d,
                                                const T* kd, int64_t ks, const T* wd, T* td,
                                                bool* vd, double* sd) {
  forward_range_body<T>(begin, end, N, damping, p3d, p2d, kd, ks, wd, td, vd, sd);
}

template <typename T>
DGP_TARGET_V3 DGP_FLATTEN void backward_range_v3(int64_t begin, int64_t end, int64_t N,
                                                 double damping, const T* gtd, const T* p3d,
                                                 const T* p2d, const T* kd, int64_t ks,
                                                 const T* wd, const double* sd, T* g3d, T* g2d,
                                                 T* gKd, T* gwd) {
  backward_range_body<T>(begin, end, N, damping, gtd, p3d, p2d, kd, ks, wd, sd, g3d, g2d, gKd,
                         gwd);
}
#endif

template <typename T>
void forward_range(int64_t begin, int64_t end, int64_t N, double damping, const T* p3d,
                   const T* p2d, const T* kd, int64_t ks, const T* wd, T* td, bool* vd,
                   double* sd) {
#ifdef DGP_HAVE_V3
  if (cpu_has_v3())
    return forward_range_v3<T>(begin, end, N, damping, p3d, p2d, kd, ks, wd, td, vd, sd);
#endif
  forward_range_baseline<T>(begin, end, N, damping, p3d, p2d, kd, ks, wd, td, vd, sd);
}

template <typename T>
void backward_range(int64_t begin, int64_t end, int64_t N, double damping, const T* gtd,
                    const T* p3d, const T* p2d, const T* kd, int64_t ks, const T* wd,
                    const double* sd, T* g3d, T* g2d, T* gKd, T* gwd) {
#ifdef DGP_HAVE_V3
  if (cpu_has_v3())
    return backward_range_v3<T>(begin, end, N, damping, gtd, p3d, p2d, kd, ks, wd, sd, g3d,
                                g2d, gKd, gwd);
#endif
  backward_range_baseline<T>(begin, end, N, damping, gtd, p3d, p2d, kd, ks, wd, sd, g3d, g2d, gKd,
                         gwd);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> dlt_forward_cpu(const at::Tensor& points3d,
                                                   const at::Tensor& points2d,
                                                   const at::Tensor& K, const at::Tensor& weights,
                                                   double damping) {
  dlt::check_forward_args(dlt::kForwardOp, points3d, points2d, K, weights, damping);
  if (is_reduced(points3d))
    return in_float32(points3d.scalar_type(), dlt_forward_cpu, points3d, points2d, K, weights,
                      damping);
  const auto p3 = points3d.contiguous();
  const auto p2 = points2d.contiguous();
  const auto [k, ks] = dlt::intrinsics_view(K);
  const auto w = weights.contiguous();
  const int64_t B = p3.size(0), N = p3.size(1);
  auto t = at::empty({B, 3}, p3.options());
  auto valid = at::empty({B}, p3.options().dtype(at::kBool));
  auto saved = at::empty({B, dlt::kSaved}, p3.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(p3.scalar_type(), "weighted_dlt_translation_cpu", [&] {
    const scalar_t* p3d = p3.const_data_ptr<scalar_t>();
    const scalar_t* p2d = p2.const_data_ptr<scalar_t>();
    const scalar_t* kd = k.const_data_ptr<scalar_t>();
    const scalar_t* wd = w.const_data_ptr<scalar_t>();
    scalar_t* td = t.mutable_data_ptr<scalar_t>();
    bool* vd = valid.mutable_data_ptr<bool>();
    double* sd = saved.mutable_data_ptr<double>();
    at::parallel_for(0, B, kGrain, [&](int64_t begin, int64_t end) {
      forward_range<scalar_t>(begin, end, N, damping, p3d, p2d, kd, ks, wd, td, vd, sd);
    });
  });
  return {t, valid, saved};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> dlt_backward_cpu(
    const at::Tensor& grad_t, const at::Tensor& points3d, const at::Tensor& points2d,
    const at::Tensor& K, const at::Tensor& weights, const at::Tensor& saved, double damping) {
  dlt::check_backward_args(grad_t, points3d, points2d, K, weights, saved, damping);
  if (is_reduced(points3d))
    return in_float32(points3d.scalar_type(), dlt_backward_cpu, grad_t, points3d, points2d, K,
                      weights, saved, damping);
  const auto gt = grad_t.contiguous();
  const auto sv = saved.contiguous();
  const auto p3 = points3d.contiguous();
  const auto p2 = points2d.contiguous();
  const auto [k, ks] = dlt::intrinsics_view(K);
  const auto w = weights.contiguous();
  const int64_t B = p3.size(0), N = p3.size(1);
  auto g3 = at::empty_like(p3);
  auto g2 = at::empty_like(p2);
  auto gK = at::empty({B, 3, 3}, p3.options());
  auto gw = at::empty_like(w);
  AT_DISPATCH_FLOATING_TYPES(p3.scalar_type(), "weighted_dlt_translation_backward_cpu", [&] {
    const scalar_t* gtd = gt.const_data_ptr<scalar_t>();
    const scalar_t* p3d = p3.const_data_ptr<scalar_t>();
    const scalar_t* p2d = p2.const_data_ptr<scalar_t>();
    const scalar_t* kd = k.const_data_ptr<scalar_t>();
    const scalar_t* wd = w.const_data_ptr<scalar_t>();
    const double* sd = sv.const_data_ptr<double>();
    scalar_t* g3d = g3.mutable_data_ptr<scalar_t>();
    scalar_t* g2d = g2.mutable_data_ptr<scalar_t>();
    scalar_t* gKd = gK.mutable_data_ptr<scalar_t>();
    scalar_t* gwd = gw.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B, kGrain, [&](int64_t begin, int64_t end) {
      backward_range<scalar_t>(begin, end, N, damping, gtd, p3d, p2d, kd, ks, wd, sd, g3d,
                               g2d, gKd, gwd);
    });
  });
  return {g3, g2, gK, gw};
}

}  // namespace

TORCH_LIBRARY_IMPL(dgp_ops, CPU, m) {
  m.impl("weighted_dlt_translation", &dlt_forward_cpu);
  m.impl("weighted_dlt_translation_backward", &dlt_backward_cpu);
}

}  // namespace dgp_ops
