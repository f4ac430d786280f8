// CPU kernels of dgp_ops::warp_perspective and its backward.
//
// Forward: at::parallel_for over output rows of the whole batch; each pixel computes its
// source from the per-item normalised inverse and samples all channels.
// Backward: no atomics. With at least as many items as threads, items are split among
// threads and each writes only its own image and H gradient. With fewer items, each item's
// output rows are split among threads that scatter into private image-gradient buffers,
// summed afterwards; H-gradient partials are reduced per thread.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "warp/warp_kernel.h"

namespace dgp_ops {
namespace warp {
namespace {

void check_inputs(const at::Tensor& image, const at::Tensor& H, int interp, int pad) {
  TORCH_CHECK(image.dim() == 4, "warp_perspective: image must be (B, C, H, W), got ",
              image.sizes());
  TORCH_CHECK(H.dim() == 3 && H.size(0) == image.size(0) && H.size(1) == 3 && H.size(2) == 3,
              "warp_perspective: H must be (B, 3, 3) with B = image.size(0), got ", H.sizes());
  TORCH_CHECK(image.scalar_type() == at::kFloat || image.scalar_type() == at::kDouble,
              "warp_perspective: image must be float32 or float64");
  TORCH_CHECK(H.scalar_type() == image.scalar_type(),
              "warp_perspective: H must have the dtype of image");
  TORCH_CHECK(image.size(2) > 0 && image.size(3) > 0,
              "warp_perspective: image height and width must be positive");
  TORCH_CHECK(interp >= 0, "warp_perspective: mode must be 'bilinear' or 'nearest'");
  TORCH_CHECK(pad >= 0,
              "warp_perspective: padding_mode must be 'zeros', 'border' or 'reflection'");
}

template <typename T>
std::vector<ItemParams> prepare_all(const at::Tensor& Hc) {
  const int64_t B = Hc.size(0);
  std::vector<ItemParams> params(static_cast<size_t>(B));
  const T* hp = Hc.data_ptr<T>();
  for (int64_t b = 0; b < B; ++b) params[b] = prepare_item<T>(hp + b * 9);
  return params;
}

template <typename T, int INTERP, int PAD>
void forward_impl(const at::Tensor& img, const std::vector<ItemParams>& params, at::Tensor& out) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  const int64_t oh = out.size(2), ow = out.size(3);
  const int64_t plane = H * W, out_plane = oh * ow;
  const T* ip = img.data_ptr<T>();
  T* op = out.data_ptr<T>();
  std::vector<T> Ns(static_cast<size_t>(B) * 9);
  for (int64_t b = 0; b < B; ++b)
    for (int k = 0; k < 9; ++k) Ns[b * 9 + k] = static_cast<T>(params[b].N[k]);
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, ow * C));
  at::parallel_for(0, B * oh, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / oh, y = r % oh;
      T* orow = op + b * C * out_plane + y * ow;
      if (!params[b].valid) {
        for (int64_t c = 0; c < C; ++c) std::fill_n(orow + c * out_plane, ow, T(0));
        continue;
      }
      const T* N = Ns.data() + b * 9;
      const T* src = ip + b * C * plane;
      const T yy = static_cast<T>(y);
      Footprint<T> f;
      for (int64_t x = 0; x < ow; ++x) {
        if (footprint<T, INTERP, PAD>(N, static_cast<T>(x), yy, H, W, f)) {
          sample_pixel<T, INTERP, PAD>(f, src, C, W, plane, orow + x, out_plane);
        } else {
          for (int64_t c = 0; c < C; ++c) orow[x + c * out_plane] = T(0);
        }
      }
    }
  });
}

// Backward over output rows [y0, y1) of item b: scatters into gimg (nullptr to skip) and
// adds dL/dN into dN.
template <typename T, int INTERP, int PAD>
void backward_rows(const T* gout_b, const T* img_b, T* gimg, const T* N, int64_t C, int64_t H,
                   int64_t W, int64_t oh, int64_t ow, int64_t y0, int64_t y1, bool need_h,
                   double dN[9]) {
  const int64_t plane = H * W, out_plane = oh * ow;
  auto add = [](T* p, T v) { *p += v; };
  Footprint<T> f;
  for (int64_t y = y0; y < y1; ++y) {
    T acc[9] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    const T yy = static_cast<T>(y);
    const T* grow = gout_b + y * ow;
    for (int64_t x = 0; x < ow; ++x) {
      const T xx = static_cast<T>(x);
      if (!footprint<T, INTERP, PAD>(N, xx, yy, H, W, f)) continue;
      backward_pixel<T, INTERP, PAD>(f, xx, yy, img_b, gimg, grow + x, C, W, plane, out_plane,
                                     need_h, acc, add);
    }
    for (int k = 0; k < 9; ++k) dN[k] += static_cast<double>(acc[k]);
  }
}

template <typename T, int INTERP, int PAD>
void backward_impl(const at::Tensor& gout, const at::Tensor& img,
                   const std::vector<ItemParams>& params, at::Tensor& gimg_t, at::Tensor& gH_t,
                   bool need_img, bool need_h) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  const int64_t oh = gout.size(2), ow = gout.size(3);
  const int64_t plane = H * W, out_plane = oh * ow, item = C * plane;
  const T* gp = gout.data_ptr<T>();
  const T* ip = img.data_ptr<T>();
  T* gimg = need_img ? gimg_t.data_ptr<T>() : nullptr;
  T* gH = gH_t.data_ptr<T>();
  std::vector<T> Ns(static_cast<size_t>(B) * 9);
  for (int64_t b = 0; b < B; ++b)
    for (int k = 0; k < 9; ++k) Ns[b * 9 + k] = static_cast<T>(params[b].N[k]);
  auto store_h = [&](int64_t b, const double dN[9]) {
    double dH[9];
    finish_h_grad(params[b], dN, dH);
    for (int k = 0; k < 9; ++k) gH[b * 9 + k] = need_h ? static_cast<T>(dH[k]) : T(0);
  };
  const int64_t nthreads = at::get_num_threads();
  if (B >= nthreads || oh < 2) {
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        double dN[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
        if (params[b].valid)
          backward_rows<T, INTERP, PAD>(gp + b * C * out_plane, ip + b * item,
                                        gimg ? gimg + b * item : nullptr, Ns.data() + b * 9, C,
                                        H, W, oh, ow, 0, oh, need_h, dN);
        store_h(b, dN);
      }
    });
    return;
  }
  // Few items: split each item's rows into chunks. Chunk 0 writes the real gradient, the
  // others private buffers that are summed in afterwards.
  const int64_t chunks = std::min(nthreads, oh);
  std::vector<T> partial(need_img ? static_cast<size_t>((chunks - 1) * item) : 0);
  std::vector<double> dNs(static_cast<size_t>(chunks) * 9);
  for (int64_t b = 0; b < B; ++b) {
    std::fill(partial.begin(), partial.end(), T(0));
    std::fill(dNs.begin(), dNs.end(), 0.0);
    if (!params[b].valid) {
      store_h(b, dNs.data());
      continue;
    }
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t y0 = oh * k / chunks, y1 = oh * (k + 1) / chunks;
        T* dst = nullptr;
        if (need_img) dst = k == 0 ? gimg + b * item : partial.data() + (k - 1) * item;
        backward_rows<T, INTERP, PAD>(gp + b * C * out_plane, ip + b * item, dst,
                                      Ns.data() + b * 9, C, H, W, oh, ow, y0, y1, need_h,
                                      dNs.data() + k * 9);
      }
    });
    if (need_img && chunks > 1) {
      T* g = gimg + b * item;
      at::parallel_for(0, item, 32768, [&](int64_t begin, int64_t end) {
        for (int64_t k = 1; k < chunks; ++k) {
          const T* p = partial.data() + (k - 1) * item;
          for (int64_t i = begin; i < end; ++i) g[i] += p[i];
        }
      });
    }
    double dN[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = 0; k < chunks; ++k)
      for (int j = 0; j < 9; ++j) dN[j] += dNs[k * 9 + j];
    store_h(b, dN);
  }
}

template <typename F>
void dispatch_modes(int interp, int pad, F&& f) {
  // f receives the modes as integral constants.
  if (interp == kBilinear) {
    if (pad == kZeros) return f(std::integral_constant<int, kBilinear>{},
                                std::integral_constant<int, kZeros>{});
    if (pad == kBorder) return f(std::integral_constant<int, kBilinear>{},
                                 std::integral_constant<int, kBorder>{});
    return f(std::integral_constant<int, kBilinear>{}, std::integral_constant<int, kReflection>{});
  }
  if (pad == kZeros) return f(std::integral_constant<int, kNearest>{},
                              std::integral_constant<int, kZeros>{});
  if (pad == kBorder) return f(std::integral_constant<int, kNearest>{},
                               std::integral_constant<int, kBorder>{});
  return f(std::integral_constant<int, kNearest>{}, std::integral_constant<int, kReflection>{});
}

at::Tensor warp_perspective_cpu(const at::Tensor& image, const at::Tensor& H, int64_t out_h,
                                int64_t out_w, c10::string_view mode,
                                c10::string_view padding_mode) {
  const int interp = interp_code(mode), pad = padding_code(padding_mode);
  check_inputs(image, H, interp, pad);
  TORCH_CHECK(out_h > 0 && out_w > 0, "warp_perspective: out_h and out_w must be positive");
  const at::Tensor img = image.contiguous(), Hc = H.contiguous();
  at::Tensor out = at::empty({img.size(0), img.size(1), out_h, out_w}, img.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_cpu", [&] {
    const auto params = prepare_all<scalar_t>(Hc);
    dispatch_modes(interp, pad, [&](auto I, auto P) {
      forward_impl<scalar_t, decltype(I)::value, decltype(P)::value>(img, params, out);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> warp_perspective_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& image, const at::Tensor& H,
    c10::string_view mode, c10::string_view padding_mode, bool image_requires_grad,
    bool H_requires_grad) {
  const int interp = interp_code(mode), pad = padding_code(padding_mode);
  check_inputs(image, H, interp, pad);
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == image.size(0) &&
                  grad_output.size(1) == image.size(1),
              "warp_perspective_backward: grad_output must be (B, C, out_h, out_w)");
  TORCH_CHECK(grad_output.scalar_type() == image.scalar_type(),
              "warp_perspective_backward: grad_output must have the dtype of image");
  const at::Tensor img = image.contiguous(), Hc = H.contiguous();
  const at::Tensor g = grad_output.contiguous();
  at::Tensor gimg = at::zeros_like(img);
  at::Tensor gH = at::zeros_like(Hc);
  if (g.numel() == 0 || (!image_requires_grad && !H_requires_grad)) return {gimg, gH};
  const bool need_h = H_requires_grad && interp == kBilinear;
  if (!image_requires_grad && !need_h) return {gimg, gH};
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_backward_cpu", [&] {
    const auto params = prepare_all<scalar_t>(Hc);
    dispatch_modes(interp, pad, [&](auto I, auto P) {
      backward_impl<scalar_t, decltype(I)::value, decltype(P)::value>(
          g, img, params, gimg, gH, image_requires_grad, need_h);
    });
  });
  return {gimg, gH};
}

}  // namespace

TORCH_LIBRARY_IMPL(dgp_ops, CPU, m) {
  m.impl("warp_perspective", &warp_perspective_cpu);
  m.impl("warp_perspective_backward", &warp_perspective_backward_cpu);
}

}  // namespace warp
}  // namespace dgp_ops
