// CPU kernels of dgp_ops::warp_perspective_distorted and its backward, around the per-pixel
// functions of distort_kernel.h.
//
// Forward: at::parallel_for over output rows of the whole batch. Backward: no atomics; with at
// least as many items as threads, each thread owns whole items; with fewer, each item's rows
// are split among threads that scatter into private image-gradient buffers, summed afterwards.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <tuple>
#include <vector>

#include "common/reduced_precision.h"
#include "distort/distort_checks.h"
#include "distort/distort_kernel.h"
#include "warp/warp_cpu.h"

namespace dgp_ops {
namespace distort {
namespace {

template <typename T>
std::vector<DistortParams> prepare_all(const at::Tensor& Hc, const at::Tensor& Kc,
                                       const at::Tensor& dc, int model, int64_t out_h,
                                       int64_t out_w) {
  const int64_t B = Hc.size(0), D = dc.size(1);
  std::vector<DistortParams> params(static_cast<size_t>(B));
  const T* hp = Hc.const_data_ptr<T>();
  const T* kp = Kc.const_data_ptr<T>();
  const T* dp = dc.const_data_ptr<T>();
  const double cx = 0.5 * static_cast<double>(out_w - 1), cy = 0.5 * static_cast<double>(out_h - 1);
  for (int64_t b = 0; b < B; ++b)
    params[b] = prepare_item<T>(hp + b * 9, kp + b * 9, dp + b * D, static_cast<int>(D), model,
                             cx, cy);
  return params;
}

template <typename T>
std::vector<T> n_matrices(const std::vector<DistortParams>& params) {
  std::vector<T> Ns(params.size() * 9);
  for (size_t b = 0; b < params.size(); ++b)
    for (int k = 0; k < 9; ++k) Ns[b * 9 + k] = static_cast<T>(params[b].warp.N[k]);
  return Ns;
}

// Whether no item has distortion (a pinhole lens, every coefficient zero): the batch is then
// the plain warp's, computed by its kernels (with their row-wise fast paths) so that the
// results are exactly warp_perspective's.
bool none_distorted(int model, const at::Tensor& dc) {
  return model == kPinhole && !at::any(dc != 0).item<bool>();  // CPU: nothing to wait for
}

// Zeroes the items (dim 0) of t whose camera the kernels cannot use (prepare_item's test of K
// and the coefficients; H is the plain warp's business).
void zero_unusable_items(at::Tensor& t, const at::Tensor& Kc, const at::Tensor& dc) {
  if (t.dim() == 0 || t.size(0) == 0) return;
  const at::Tensor k = Kc.reshape({-1, 9});
  const at::Tensor ok = at::isfinite(k).all(1) & k.select(1, 3).eq(0) & k.select(1, 6).eq(0) &
                        k.select(1, 7).eq(0) & k.select(1, 8).eq(1) & k.select(1, 0).ne(0) &
                        k.select(1, 4).ne(0) & at::isfinite(dc).all(1);
  if (!ok.all().item<bool>()) t.index_put_({~ok}, 0);
}

int64_t row_grain(int64_t ow, int64_t C) {
  return std::max<int64_t>(1, 4096 / std::max<int64_t>(1, ow * C));
}

template <typename T, int MODEL, int INTERP, int PAD>
void forward_impl(const at::Tensor& img, const std::vector<DistortParams>& params,
                  at::Tensor& out) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  const int64_t oh = out.size(2), ow = out.size(3);
  const int64_t plane = H * W, out_plane = oh * ow;
  const T* ip = img.const_data_ptr<T>();
  T* op = out.mutable_data_ptr<T>();
  const std::vector<T> Ns = n_matrices<T>(params);
  at::parallel_for(0, B * oh, row_grain(ow, C), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / oh, y = r % oh;
      T* orow = op + b * C * out_plane + y * ow;
      for (int64_t x = 0; x < ow; ++x)
        forward_pixel<T, MODEL, INTERP, PAD>(params[b], Ns.data() + b * 9, static_cast<T>(x),
                                             static_cast<T>(y), ip + b * C * plane, C, H, W,
                                             orow + x, out_plane);
    }
  });
}

// uint8 images in NCHW or channels-last memory, read in place.
template <int MODEL, int INTERP, int PAD>
void forward_u8_impl(const at::Tensor& img, const std::vector<DistortParams>& params,
                     at::Tensor& out) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  const int64_t oh = out.size(2), ow = out.size(3), out_plane = oh * ow;
  const int64_t sb = img.stride(0), sc = img.stride(1), sy = img.stride(2), sx = img.stride(3);
  const uint8_t* ip = img.const_data_ptr<uint8_t>();
  uint8_t* op = out.mutable_data_ptr<uint8_t>();
  const std::vector<float> Nf = n_matrices<float>(params);
  at::parallel_for(0, B * oh, row_grain(ow, C), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / oh, y = r % oh;
      uint8_t* orow = op + b * C * out_plane + y * ow;
      for (int64_t x = 0; x < ow; ++x)
        forward_pixel_u8<MODEL, INTERP, PAD>(params[b], Nf.data() + b * 9, x, y, ip + b * sb, C,
                                             H, W, sc, sy, sx, orow + x, out_plane);
    }
  });
}

// Rows [y0, y1) of item b's backward.
template <typename T, int MODEL, int INTERP, int PAD>
void backward_rows(const DistortParams& p, const T* N, const T* gout_b, const int64_t gs[3],
                   const T* img_b, T* gimg, int64_t C, int64_t H, int64_t W, int64_t ow,
                   int64_t y0, int64_t y1, bool need_h, double dN[9]) {
  auto add = [](T* q, T v) { *q += v; };
  for (int64_t y = y0; y < y1; ++y) {
    T acc[9] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    for (int64_t x = 0; x < ow; ++x)
      backward_pixel<T, MODEL, INTERP, PAD>(p, N, static_cast<T>(x), static_cast<T>(y), img_b,
                                            gimg, gout_b + y * gs[1] + x * gs[2], C, H, W,
                                            gs[0], need_h, acc, add);
    for (int k = 0; k < 9; ++k) dN[k] += static_cast<double>(acc[k]);
  }
}

template <typename T, int MODEL, int INTERP, int PAD>
void backward_impl(const at::Tensor& gout, const at::Tensor& img,
                   const std::vector<DistortParams>& params, at::Tensor& gimg_t,
                   at::Tensor& gH_t, bool need_img, bool need_h) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  const int64_t oh = gout.size(2), ow = gout.size(3), item = C * H * W;
  const int64_t gs[3] = {gout.stride(1), gout.stride(2), gout.stride(3)};
  const int64_t gsb = gout.stride(0);
  const T* gp = gout.const_data_ptr<T>();
  const T* ip = img.const_data_ptr<T>();
  T* gimg = need_img ? gimg_t.mutable_data_ptr<T>() : nullptr;
  const std::vector<T> Ns = n_matrices<T>(params);
  auto store_h = [&](int64_t b, const double dN[9]) {
    if (!need_h) return;
    double dH[9];
    warp::finish_h_grad(params[b].warp, dN, dH);
    T* gH = gH_t.mutable_data_ptr<T>();
    for (int k = 0; k < 9; ++k) gH[b * 9 + k] = static_cast<T>(dH[k]);
  };
  const int64_t nthreads = at::get_num_threads();
  if (B >= nthreads || oh < 2) {
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        double dN[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
        backward_rows<T, MODEL, INTERP, PAD>(params[b], Ns.data() + b * 9, gp + b * gsb, gs,
                                             ip + b * item, need_img ? gimg + b * item : nullptr,
                                             C, H, W, ow, 0, oh, need_h, dN);
        store_h(b, dN);
      }
    });
    return;
  }
  const int64_t chunks = std::min(nthreads, oh);
  std::vector<T> partial(need_img ? static_cast<size_t>((chunks - 1) * item) : 0);
  std::vector<double> dNs(static_cast<size_t>(chunks) * 9);
  for (int64_t b = 0; b < B; ++b) {
    std::fill(dNs.begin(), dNs.end(), 0.0);
    std::fill(partial.begin(), partial.end(), T(0));
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        T* dst = nullptr;
        if (need_img) dst = k == 0 ? gimg + b * item : partial.data() + (k - 1) * item;
        backward_rows<T, MODEL, INTERP, PAD>(params[b], Ns.data() + b * 9, gp + b * gsb, gs,
                                             ip + b * item, dst, C, H, W, ow, oh * k / chunks,
                                             oh * (k + 1) / chunks, need_h, dNs.data() + k * 9);
      }
    });
    if (need_img) {
      T* g = gimg + b * item;
      for (int64_t k = 1; k < chunks; ++k) {
        const T* q = partial.data() + (k - 1) * item;
        for (int64_t i = 0; i < item; ++i) g[i] += q[i];
      }
    }
    double dN[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = 0; k < chunks; ++k)
      for (int j = 0; j < 9; ++j) dN[j] += dNs[k * 9 + j];
    store_h(b, dN);
  }
}

at::Tensor forward_cpu(const at::Tensor& image, const at::Tensor& H, const at::Tensor& K,
                       const at::Tensor& dist, int64_t out_h, int64_t out_w,
                       c10::string_view model, c10::string_view mode,
                       c10::string_view padding_mode) {
  const auto [m, interp, pad] =
      check_forward_args(image, H, K, dist, out_h, out_w, model, mode, padding_mode);
  if (is_reduced(H))  // a half image has a half H; a uint8 image may have one
    return in_float32(H.scalar_type(), forward_cpu, image, H, K, dist, out_h, out_w, model, mode,
                      padding_mode);
  const at::Tensor Hc = H.contiguous(), Kc = K.contiguous(), dc = dist.contiguous();
  if (none_distorted(m, dc)) {
    at::Tensor out = warp::warp_perspective_cpu(image, H, out_h, out_w, mode, padding_mode);
    zero_unusable_items(out, Kc, dc);
    return out;
  }
  const bool u8 = image.scalar_type() == at::kByte;
  const at::Tensor img =
      u8 && image.is_contiguous(at::MemoryFormat::ChannelsLast) ? image : image.contiguous();
  const std::array<int64_t, 4> out_sizes = {img.size(0), img.size(1), out_h, out_w};
  at::Tensor out = at::empty(out_sizes, img.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(Hc.scalar_type(), "warp_perspective_distorted_cpu", [&] {
    const auto params = prepare_all<scalar_t>(Hc, Kc, dc, m, out_h, out_w);
    dispatch(m, interp, pad, [&](auto M, auto I, auto P) {
      constexpr int kM = decltype(M)::value, kI = decltype(I)::value, kP = decltype(P)::value;
      if (u8)
        forward_u8_impl<kM, kI, kP>(img, params, out);
      else
        forward_impl<scalar_t, kM, kI, kP>(img, params, out);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> backward_cpu(const at::Tensor& grad_output,
                                                const at::Tensor& image, const at::Tensor& H,
                                                const at::Tensor& K, const at::Tensor& dist,
                                                c10::string_view model, c10::string_view mode,
                                                c10::string_view padding_mode,
                                                bool image_requires_grad, bool H_requires_grad) {
  const auto [m, interp, pad] =
      check_backward_args(grad_output, image, H, K, dist, model, mode, padding_mode);
  if (is_reduced(H))
    return in_float32(H.scalar_type(), backward_cpu, grad_output, image, H, K, dist, model, mode,
                      padding_mode, image_requires_grad, H_requires_grad);
  const at::Tensor img = image.contiguous(), Hc = H.contiguous(), Kc = K.contiguous(),
                   dc = dist.contiguous();
  if (none_distorted(m, dc)) {
    auto [gi, gh] = warp::warp_perspective_backward_cpu(grad_output, image, H, mode, padding_mode,
                                                        image_requires_grad, H_requires_grad);
    zero_unusable_items(gi, Kc, dc);
    zero_unusable_items(gh, Kc, dc);
    return {gi, gh};
  }
  const bool need_h = H_requires_grad && interp == warp::kBilinear;
  at::Tensor gimg = image_requires_grad ? at::zeros_like(img) : at::empty({0}, img.options());
  at::Tensor gH = H_requires_grad ? at::zeros_like(Hc) : at::empty({0}, Hc.options());
  if (img.numel() == 0 || grad_output.numel() == 0 || (!image_requires_grad && !need_h))
    return {gimg, gH};
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_distorted_backward_cpu", [&] {
    const auto params = prepare_all<scalar_t>(Hc, Kc, dc, m, grad_output.size(2),
                                              grad_output.size(3));
    dispatch(m, interp, pad, [&](auto M, auto I, auto P) {
      backward_impl<scalar_t, decltype(M)::value, decltype(I)::value, decltype(P)::value>(
          grad_output, img, params, gimg, gH, image_requires_grad, need_h);
    });
  });
  return {gimg, gH};
}

}  // namespace

TORCH_LIBRARY_IMPL(dgp_ops, CPU, m) {
  m.impl("warp_perspective_distorted", &forward_cpu);
  m.impl("warp_perspective_distorted_backward", &backward_cpu);
}

}  // namespace distort
}  // namespace dgp_ops
