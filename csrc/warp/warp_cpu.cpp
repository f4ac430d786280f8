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

#include <tuple>

#include <algorithm>
#include <array>
#include <type_traits>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <vector>

#include "common/cpu_dispatch.h"
#include "common/reduced_precision.h"
#include "common/zeroed_alloc.h"
#include "warp/warp_checks.h"
#include "warp/warp_cpu.h"
#include "warp/warp_cpu_u8.h"
#include "warp/warp_kernel.h"

namespace dgp_ops {
namespace warp {
namespace {

// The items' parameters for an out_h x out_w output.
template <typename T>
std::vector<ItemParams> prepare_all(const at::Tensor& Hc, int64_t out_h, int64_t out_w) {
  const int64_t B = Hc.size(0);
  std::vector<ItemParams> params(static_cast<size_t>(B));
  const T* hp = Hc.data_ptr<T>();
  const double cx = 0.5 * static_cast<double>(out_w - 1), cy = 0.5 * static_cast<double>(out_h - 1);
  for (int64_t b = 0; b < B; ++b) params[b] = prepare_item<T>(hp + b * 9, cx, cy);
  return params;
}

// Per-row scratch of the bilinear forward: tap offsets and fractions of each output pixel.
template <typename T>
struct RowScratch {
  std::vector<int32_t> off;
  std::vector<T> fx, fy;
  std::vector<uint8_t> fast;
  explicit RowScratch(int64_t n) : off(n), fx(n), fy(n), fast(n) {}
};

// One output row of one item. Bilinear rows go in passes: (1) branch-free coordinates of
// every pixel whose four taps lie strictly inside the image (where no padding mode changes
// anything), (2) channel by channel, the four-tap blend along the row, (3) the remaining
// pixels through the general footprint, which computes bit-identical coordinates.
template <typename T, int INTERP, int PAD>
DGP_ALWAYS_INLINE void forward_row_body(const T* N, const T* src, int64_t C,
                                                            int64_t H, int64_t W, int64_t y,
                                                            int64_t ow, T* orow, int64_t out_plane,
                                                            RowScratch<T>& rs) {
  const int64_t plane = H * W;
  const T yy = static_cast<T>(y);
  Footprint<T> f;
  auto general = [&](int64_t x) {
    if (footprint<T, INTERP, PAD>(N, static_cast<T>(x), yy, H, W, f)) {
      sample_pixel<T, INTERP, PAD>(f, src, C, W, plane, orow + x, out_plane);
    } else {
      for (int64_t c = 0; c < C; ++c) orow[x + c * out_plane] = T(0);
    }
  };
  // The blend below reads the four taps of every pixel, non-interior ones at offset 0; with
  // fewer than two rows or columns no pixel is interior and those reads would leave the image.
  if (INTERP != kBilinear || H < 2 || W < 2) {
    for (int64_t x = 0; x < ow; ++x) general(x);
    return;
  }
  const T ub = N[1] * yy + N[2], vb = N[4] * yy + N[5], wb = N[7] * yy + N[8];
  const T umax = static_cast<T>(W - 1), vmax = static_cast<T>(H - 1);
  int32_t* off = rs.off.data();
  T* fxs = rs.fx.data();
  T* fys = rs.fy.data();
  uint8_t* fast = rs.fast.data();
  const int32_t Wi = static_cast<int32_t>(W);
  bool any_slow = false;
  for (int64_t x = 0; x < ow; ++x) {
    const T xx = static_cast<T>(x);
    const T w = N[6] * xx + wb;
    const bool wok = w > T(kMinW);
    const T invw = T(1) / (wok ? w : T(1));
    const T u = (N[0] * xx + ub) * invw, v = (N[3] * xx + vb) * invw;
    const bool ok = wok && u > T(0) && v > T(0) && u < umax && v < vmax;
    const T uc = ok ? u : T(0), vc = ok ? v : T(0);
    const int32_t xi = static_cast<int32_t>(uc), yi = static_cast<int32_t>(vc);
    fxs[x] = ok ? uc - static_cast<T>(xi) : T(0);
    fys[x] = ok ? vc - static_cast<T>(yi) : T(0);
    off[x] = yi * Wi + xi;
    fast[x] = ok;
    any_slow |= !ok;
  }
  for (int64_t c = 0; c < C; ++c) {
    const T* q = src + c * plane;
    T* o = orow + c * out_plane;
    for (int64_t x = 0; x < ow; ++x) {
      const T* p = q + off[x];
      const T fx = fxs[x], fy = fys[x];
      const T top = p[0] + fx * (p[1] - p[0]);
      const T bot = p[W] + fx * (p[W + 1] - p[W]);
      o[x] = top + fy * (bot - top);
    }
  }
  if (any_slow)
    for (int64_t x = 0; x < ow; ++x)
      if (!fast[x]) general(x);
}

// The row body compiled twice: for the baseline ISA and, picked at run time, for x86-64-v3
// (AVX2/FMA) so that the coordinate pass vectorises.
template <typename T, int INTERP, int PAD>
void forward_row_baseline(const T* N, const T* src, int64_t C, int64_t H, int64_t W, int64_t y,
                          int64_t ow, T* orow, int64_t out_plane, RowScratch<T>& rs) {
  forward_row_body<T, INTERP, PAD>(N, src, C, H, W, y, ow, orow, out_plane, rs);
}

#ifdef DGP_HAVE_V3
template <typename T, int INTERP, int PAD>
DGP_TARGET_V3 void forward_row_v3(const T* N, const T* src, int64_t C, int64_t H, int64_t W,
                                  int64_t y, int64_t ow, T* orow, int64_t out_plane,
                                  RowScratch<T>& rs) {
  forward_row_body<T, INTERP, PAD>(N, src, C, H, W, y, ow, orow, out_plane, rs);
}

// The branch-free coordinate pass of one float32 output row, 8 pixels at a time: for pixels
// whose four taps lie strictly inside the image, the top-left tap offset, the bilinear
// fractions and fast = 1; the others get fast = 0 (the caller takes its general path). With
// invw/us/vs given, also 1/w and the clamped source coordinates (the H backward needs them).
// Same operation order as footprint(): N6 x + wb, then (N0 x + ub) / w. Returns whether any
// pixel is not fast.
DGP_TARGET_V3 bool coords_row_v3_f32(const float* N, int64_t H, int64_t W, int64_t y,
                                     int64_t ow8, RowScratch<float>& rs, float* invws = nullptr,
                                     float* us = nullptr, float* vs = nullptr) {
  const float yy = static_cast<float>(y);
  const float ub = N[1] * yy + N[2], vb = N[4] * yy + N[5], wb = N[7] * yy + N[8];
  int32_t* off = rs.off.data();
  float* fxs = rs.fx.data();
  float* fys = rs.fy.data();
  uint8_t* fast = rs.fast.data();
  const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 n0 = _mm256_set1_ps(N[0]), n3 = _mm256_set1_ps(N[3]), n6 = _mm256_set1_ps(N[6]);
  const __m256 vub = _mm256_set1_ps(ub), vvb = _mm256_set1_ps(vb), vwb = _mm256_set1_ps(wb);
  const __m256 one = _mm256_set1_ps(1.f), zero = _mm256_setzero_ps();
  const __m256 eps = _mm256_set1_ps(static_cast<float>(kMinW));
  const __m256 umax = _mm256_set1_ps(static_cast<float>(W - 1));
  const __m256 vmax = _mm256_set1_ps(static_cast<float>(H - 1));
  const __m256i vW = _mm256_set1_epi32(static_cast<int32_t>(W));
  bool any_slow = false;
  for (int64_t x = 0; x < ow8; x += 8) {
    const __m256 xx = _mm256_add_ps(_mm256_set1_ps(static_cast<float>(x)), iota);
    const __m256 w = _mm256_add_ps(_mm256_mul_ps(n6, xx), vwb);
    const __m256 wok = _mm256_cmp_ps(w, eps, _CMP_GT_OQ);
    const __m256 invw = _mm256_div_ps(one, _mm256_blendv_ps(one, w, wok));
    const __m256 u = _mm256_mul_ps(_mm256_add_ps(_mm256_mul_ps(n0, xx), vub), invw);
    const __m256 v = _mm256_mul_ps(_mm256_add_ps(_mm256_mul_ps(n3, xx), vvb), invw);
    __m256 ok = _mm256_and_ps(wok, _mm256_cmp_ps(u, zero, _CMP_GT_OQ));
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(u, umax, _CMP_LT_OQ));
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(v, vmax, _CMP_LT_OQ));
    const __m256 uc = _mm256_and_ps(u, ok), vc = _mm256_and_ps(v, ok);
    const __m256i xi = _mm256_cvttps_epi32(uc), yi = _mm256_cvttps_epi32(vc);
    _mm256_storeu_ps(fxs + x, _mm256_sub_ps(uc, _mm256_cvtepi32_ps(xi)));
    _mm256_storeu_ps(fys + x, _mm256_sub_ps(vc, _mm256_cvtepi32_ps(yi)));
    if (invws != nullptr) {
      _mm256_storeu_ps(invws + x, invw);
      _mm256_storeu_ps(us + x, uc);
      _mm256_storeu_ps(vs + x, vc);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(off + x),
                        _mm256_add_epi32(_mm256_mullo_epi32(yi, vW), xi));
    const int m = _mm256_movemask_ps(ok);
    for (int k = 0; k < 8; ++k) fast[x + k] = (m >> k) & 1;
    any_slow |= m != 0xFF;
  }
  return any_slow;
}

// float32 bilinear rows with explicit AVX2: 8 pixels per step for the coordinates, then the
// four-tap blend; the general path handles the leftovers exactly as the scalar
// row does.
template <int PAD>
DGP_TARGET_V3 void forward_row_v3_f32(
    const float* N, const float* src, int64_t C, int64_t H, int64_t W, int64_t y, int64_t ow,
    float* orow, int64_t out_plane, RowScratch<float>& rs) {
  const int64_t plane = H * W;
  const float yy = static_cast<float>(y);
  const int32_t* off = rs.off.data();
  const float* fxs = rs.fx.data();
  const float* fys = rs.fy.data();
  const uint8_t* fast = rs.fast.data();
  // The blend reads the taps of non-interior pixels at offset 0: with fewer than two rows or
  // columns (no interior pixel) it is skipped.
  const int64_t ow8 = (H < 2 || W < 2) ? 0 : ow - ow % 8;
  const bool any_slow = coords_row_v3_f32(N, H, W, y, ow8, rs);
  Footprint<float> f;
  auto general = [&](int64_t x) {
    if (footprint<float, kBilinear, PAD>(N, static_cast<float>(x), yy, H, W, f)) {
      sample_pixel<float, kBilinear, PAD>(f, src, C, W, plane, orow + x, out_plane);
    } else {
      for (int64_t c = 0; c < C; ++c) orow[x + c * out_plane] = 0.f;
    }
  };
  // Pixel-major, all channels per pixel: the planes' rows stream in together.
  for (int64_t x = 0; x < ow8; ++x) {
    const float* p = src + off[x];
    if (x + 16 < ow8) {
      const float* pf = src + off[x + 16];
      for (int64_t c = 0; c < C; ++c, pf += plane) {
        _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pf + W), _MM_HINT_T0);
      }
    }
    const float fx = fxs[x], fy = fys[x];
    float* o = orow + x;
    for (int64_t c = 0; c < C; ++c, p += plane, o += out_plane) {
      const float top = p[0] + fx * (p[1] - p[0]);
      const float bot = p[W] + fx * (p[W + 1] - p[W]);
      *o = top + fy * (bot - top);
    }
  }
  if (any_slow)
    for (int64_t x = 0; x < ow8; ++x)
      if (!fast[x]) general(x);
  for (int64_t x = ow8; x < ow; ++x) general(x);
}

#endif

template <typename T, int INTERP, int PAD>
void forward_row(const T* N, const T* src, int64_t C, int64_t H, int64_t W, int64_t y,
                 int64_t ow, T* orow, int64_t out_plane, RowScratch<T>& rs) {
#ifdef DGP_HAVE_V3
  if constexpr (std::is_same_v<T, float> && INTERP == kBilinear) {
    if (cpu_has_v3())
      return forward_row_v3_f32<PAD>(N, src, C, H, W, y, ow, orow, out_plane, rs);
  }
  if (cpu_has_v3())
    return forward_row_v3<T, INTERP, PAD>(N, src, C, H, W, y, ow, orow, out_plane, rs);
#endif
  forward_row_baseline<T, INTERP, PAD>(N, src, C, H, W, y, ow, orow, out_plane, rs);
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
    RowScratch<T> rs(ow);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / oh, y = r % oh;
      T* orow = op + b * C * out_plane + y * ow;
      if (!params[b].valid) {
        for (int64_t c = 0; c < C; ++c) std::fill_n(orow + c * out_plane, ow, T(0));
        continue;
      }
      const T* N = Ns.data() + b * 9;
      const T* src = ip + b * C * plane;
      forward_row<T, INTERP, PAD>(N, src, C, H, W, y, ow, orow, out_plane, rs);
    }
  });
}

// Backward over output rows [y0, y1) of item b: scatters into gimg (unless NEED_IMG is
// false) and adds dL/dN into dN (when NEED_H). gout: the item's incoming gradient with
// strides gs = (channel, row, column) strides, which may be 0 (expanded gradients).
template <typename T, int INTERP, int PAD, bool NEED_IMG, bool NEED_H>
DGP_ALWAYS_INLINE void backward_rows_body(const T* gout_b, const int64_t gs[3], const T* img_b,
                                          T* gimg, const T* N,
                   int64_t C, int64_t H, int64_t W, int64_t ow, int64_t y0, int64_t y1,
                   double dN[9]) {
  const int64_t plane = H * W;
  const T umax = static_cast<T>(W - 1), vmax = static_cast<T>(H - 1);
  auto add = [](T* p, T v) { *p += v; };
  Footprint<T> f;
  for (int64_t y = y0; y < y1; ++y) {
    T acc[9] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    const T yy = static_cast<T>(y);
    const T ub = N[1] * yy + N[2], vb = N[4] * yy + N[5], wb = N[7] * yy + N[8];
    const T* grow = gout_b + y * gs[1];
    for (int64_t x = 0; x < ow; ++x) {
      const T xx = static_cast<T>(x);
      const T* gp = grow + x * gs[2];
      if (INTERP == kBilinear) {
        const T w = N[6] * xx + wb;
        if (!(w > T(kMinW))) continue;
        const T invw = T(1) / w;
        const T u = (N[0] * xx + ub) * invw, v = (N[3] * xx + vb) * invw;
        if (u > T(0) && v > T(0) && u < umax && v < vmax) {
          const int64_t xi = static_cast<int64_t>(u), yi = static_cast<int64_t>(v);
          const T fx = u - static_cast<T>(xi), fy = v - static_cast<T>(yi);
          const int64_t off = yi * W + xi;
          T gx = T(0), gy = T(0);
          for (int64_t c = 0; c < C; ++c) {
            const T g = gp[c * gs[0]];
            if (NEED_IMG) {
              T* p = gimg + c * plane + off;
              const T gfy = g * fy, g1fy = g - gfy;
              p[0] += g1fy - g1fy * fx;
              p[1] += g1fy * fx;
              p[W] += gfy - gfy * fx;
              p[W + 1] += gfy * fx;
            }
            if (NEED_H) {
              const T* q = img_b + c * plane + off;
              const T d0 = q[1] - q[0], d1 = q[W + 1] - q[W];
              gx += g * (d0 + fy * (d1 - d0));
              gy += g * ((q[W] - q[0]) + fx * (d1 - d0));
            }
          }
          if (NEED_H) {
            const T gu = gx * invw, gv = gy * invw;
            const T gw = -(gu * u + gv * v);
            acc[0] += gu * xx;
            acc[1] += gu * yy;
            acc[2] += gu;
            acc[3] += gv * xx;
            acc[4] += gv * yy;
            acc[5] += gv;
            acc[6] += gw * xx;
            acc[7] += gw * yy;
            acc[8] += gw;
          }
          continue;
        }
      }
      if (!footprint<T, INTERP, PAD>(N, xx, yy, H, W, f)) continue;
      backward_pixel<T, INTERP, PAD>(f, xx, yy, img_b, NEED_IMG ? gimg : nullptr, gp, C, W,
                                     plane, gs[0], NEED_H, acc, add);
    }
    if (NEED_H)
      for (int k = 0; k < 9; ++k) dN[k] += static_cast<double>(acc[k]);
  }
}

template <typename T, int INTERP, int PAD, bool NEED_IMG, bool NEED_H>
void backward_rows_baseline(const T* gout_b, const int64_t gs[3], const T* img_b, T* gimg,
                            const T* N, int64_t C, int64_t H, int64_t W, int64_t ow, int64_t y0,
                            int64_t y1, double dN[9]) {
  backward_rows_body<T, INTERP, PAD, NEED_IMG, NEED_H>(gout_b, gs, img_b, gimg, N, C, H, W, ow,
                                                       y0, y1, dN);
}

#ifdef DGP_HAVE_V3
template <typename T, int INTERP, int PAD, bool NEED_IMG, bool NEED_H>
DGP_TARGET_V3 void backward_rows_v3(const T* gout_b, const int64_t gs[3], const T* img_b,
                                    T* gimg, const T* N, int64_t C, int64_t H, int64_t W,
                                    int64_t ow, int64_t y0, int64_t y1, double dN[9]) {
  backward_rows_body<T, INTERP, PAD, NEED_IMG, NEED_H>(gout_b, gs, img_b, gimg, N, C, H, W, ow,
                                                       y0, y1, dN);
}

// float32 bilinear backward for dL/dN alone (the image needs no gradient), AVX2: per row, the
// coordinates of 8 pixels per step, then each interior pixel's taps (prefetched ahead, as in
// the forward) give its coordinate gradient; the other pixels go through the general path.
template <int PAD>
DGP_TARGET_V3 void backward_rows_h_f32_v3(const float* gout_b, const int64_t gs[3],
                                          const float* img_b, const float* N, int64_t C,
                                          int64_t H, int64_t W, int64_t ow, int64_t y0,
                                          int64_t y1, double dN[9]) {
  const int64_t plane = H * W;
  const int64_t ow8 = ow - ow % 8;
  RowScratch<float> rs(ow);
  std::vector<float> invws(ow), us(ow), vs(ow);
  const int32_t* off = rs.off.data();
  const float* fxs = rs.fx.data();
  const float* fys = rs.fy.data();
  const uint8_t* fast = rs.fast.data();
  Footprint<float> f;
  auto add = [](float* p, float v) { *p += v; };
  for (int64_t y = y0; y < y1; ++y) {
    const float yy = static_cast<float>(y);
    coords_row_v3_f32(N, H, W, y, ow8, rs, invws.data(), us.data(), vs.data());
    const float* grow = gout_b + y * gs[1];
    float acc[9] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    for (int64_t x = 0; x < ow8; ++x) {
      if (x + 16 < ow8) {
        const float* pf = img_b + off[x + 16];
        for (int64_t c = 0; c < C; ++c, pf += plane) {
          _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(pf + W), _MM_HINT_T0);
        }
      }
      if (!fast[x]) continue;
      const float fx = fxs[x], fy = fys[x];
      const float* q = img_b + off[x];
      const float* gp = grow + x * gs[2];
      float gx = 0.f, gy = 0.f;
      for (int64_t c = 0; c < C; ++c, q += plane) {
        const float g = gp[c * gs[0]];
        const float d0 = q[1] - q[0], d1 = q[W + 1] - q[W];
        gx += g * (d0 + fy * (d1 - d0));
        gy += g * ((q[W] - q[0]) + fx * (d1 - d0));
      }
      const float xx = static_cast<float>(x);
      const float gu = gx * invws[x], gv = gy * invws[x];
      const float gw = -(gu * us[x] + gv * vs[x]);
      acc[0] += gu * xx;
      acc[1] += gu * yy;
      acc[2] += gu;
      acc[3] += gv * xx;
      acc[4] += gv * yy;
      acc[5] += gv;
      acc[6] += gw * xx;
      acc[7] += gw * yy;
      acc[8] += gw;
    }
    for (int64_t x = 0; x < ow; ++x) {
      if (x < ow8 && fast[x]) continue;
      const float xx = static_cast<float>(x);
      if (!footprint<float, kBilinear, PAD>(N, xx, yy, H, W, f)) continue;
      backward_pixel<float, kBilinear, PAD>(f, xx, yy, img_b, nullptr, grow + x * gs[2], C, W,
                                            plane, gs[0], true, acc, add);
    }
    for (int k = 0; k < 9; ++k) dN[k] += static_cast<double>(acc[k]);
  }
}
#endif

// Rows [y0, y1) of one item's backward, in the wrapper for this CPU.
template <typename T, int INTERP, int PAD, bool NEED_IMG, bool NEED_H>
void backward_rows(const T* gout_b, const int64_t gs[3], const T* img_b, T* gimg, const T* N,
                   int64_t C, int64_t H, int64_t W, int64_t ow, int64_t y0, int64_t y1,
                   double dN[9]) {
#ifdef DGP_HAVE_V3
  if (cpu_has_v3()) {
    if constexpr (std::is_same_v<T, float> && INTERP == kBilinear && !NEED_IMG && NEED_H)
      return backward_rows_h_f32_v3<PAD>(gout_b, gs, img_b, N, C, H, W, ow, y0, y1, dN);
    return backward_rows_v3<T, INTERP, PAD, NEED_IMG, NEED_H>(gout_b, gs, img_b, gimg, N, C, H,
                                                              W, ow, y0, y1, dN);
  }
#endif
  backward_rows_baseline<T, INTERP, PAD, NEED_IMG, NEED_H>(gout_b, gs, img_b, gimg, N, C, H, W,
                                                           ow, y0, y1, dN);
}

template <typename T, int INTERP, int PAD, bool NEED_IMG, bool NEED_H>
void backward_impl(const at::Tensor& gout, const at::Tensor& img,
                   const std::vector<ItemParams>& params, at::Tensor& gimg_t, at::Tensor& gH_t,
                   bool gimg_zeroed) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  const int64_t oh = gout.size(2), ow = gout.size(3);
  const int64_t item = C * H * W;
  const int64_t gs[3] = {gout.stride(1), gout.stride(2), gout.stride(3)};
  const int64_t gsb = gout.stride(0);
  const T* gp = gout.data_ptr<T>();
  const T* ip = img.data_ptr<T>();
  T* gimg = NEED_IMG ? gimg_t.data_ptr<T>() : nullptr;
  T* gH = NEED_H ? gH_t.data_ptr<T>() : nullptr;
  std::vector<T> Ns(static_cast<size_t>(B) * 9);
  for (int64_t b = 0; b < B; ++b)
    for (int k = 0; k < 9; ++k) Ns[b * 9 + k] = static_cast<T>(params[b].N[k]);
  auto store_h = [&](int64_t b, const double dN[9]) {
    if (!NEED_H) return;
    double dH[9];
    finish_h_grad(params[b], dN, dH);
    for (int k = 0; k < 9; ++k) gH[b * 9 + k] = static_cast<T>(dH[k]);
  };
  const int64_t nthreads = at::get_num_threads();
  if (B >= nthreads || oh < 2) {
    // Each thread owns whole items: it zeroes and fills their image gradient itself.
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        double dN[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
        T* gi = NEED_IMG ? gimg + b * item : nullptr;
        if (NEED_IMG && !gimg_zeroed) std::fill_n(gi, item, T(0));
        if (params[b].valid)
          backward_rows<T, INTERP, PAD, NEED_IMG, NEED_H>(gp + b * gsb, gs, ip + b * item, gi,
                                                          Ns.data() + b * 9, C, H, W, ow, 0, oh,
                                                          dN);
        store_h(b, dN);
      }
    });
    return;
  }
  // Few items: split each item's rows into chunks. Chunk 0 writes the real gradient, the
  // others private buffers that are summed in afterwards.
  const int64_t chunks = std::min(nthreads, oh);
  std::vector<T> partial(NEED_IMG ? static_cast<size_t>((chunks - 1) * item) : 0);
  std::vector<double> dNs(static_cast<size_t>(chunks) * 9);
  for (int64_t b = 0; b < B; ++b) {
    std::fill(dNs.begin(), dNs.end(), 0.0);
    if (NEED_IMG && !gimg_zeroed) std::fill_n(gimg + b * item, item, T(0));
    if (!params[b].valid) {
      store_h(b, dNs.data());
      continue;
    }
    std::fill(partial.begin(), partial.end(), T(0));
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t y0 = oh * k / chunks, y1 = oh * (k + 1) / chunks;
        T* dst = nullptr;
        if (NEED_IMG) dst = k == 0 ? gimg + b * item : partial.data() + (k - 1) * item;
        backward_rows<T, INTERP, PAD, NEED_IMG, NEED_H>(gp + b * gsb, gs, ip + b * item, dst,
                                                        Ns.data() + b * 9, C, H, W, ow, y0, y1,
                                                        dNs.data() + k * 9);
      }
    });
    if (NEED_IMG && chunks > 1) {
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

}  // namespace

at::Tensor warp_perspective_cpu(const at::Tensor& image, const at::Tensor& H, int64_t out_h,
                                int64_t out_w, c10::string_view mode,
                                c10::string_view padding_mode) {
  int interp, pad;
  std::tie(interp, pad) = check_forward_args(image, H, out_h, out_w, mode, padding_mode);
  if (is_reduced(H))  // a half image has a half H; a uint8 image may have one
    return in_float32(H.scalar_type(), warp_perspective_cpu, image, H, out_h, out_w, mode,
                      padding_mode);
  if (image.scalar_type() == at::kByte) return warp_u8_cpu(image, H, out_h, out_w, interp, pad);
  const at::Tensor img = image.contiguous(), Hc = H.contiguous();
  const std::array<int64_t, 4> out_sizes = {img.size(0), img.size(1), out_h, out_w};
  at::Tensor out = at::empty(out_sizes, img.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_cpu", [&] {
    const auto params = prepare_all<scalar_t>(Hc, out_h, out_w);
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
  int interp, pad;
  std::tie(interp, pad) = check_backward_args(grad_output, image, H, mode, padding_mode);
  if (is_reduced(H))  // a half image has a half H; a uint8 image may have one
    return in_float32(H.scalar_type(), warp_perspective_backward_cpu, grad_output, image, H,
                      mode, padding_mode, image_requires_grad, H_requires_grad);
  const at::Tensor img = image.contiguous(), Hc = H.contiguous();
  const bool need_h = H_requires_grad && interp == kBilinear;
  // A gradient that is not requested comes back as an empty tensor. The image gradient is
  // zeroed inside the kernel, by the thread that fills it.
  at::Tensor gimg = at::empty({0}, img.options());
  bool gimg_zeroed = false;
  if (image_requires_grad) {
    gimg = try_zeroed_pages(img.sizes(), img.options());
    gimg_zeroed = gimg.defined();
    if (!gimg_zeroed) gimg = at::empty_like(img);
  }
  at::Tensor gH = H_requires_grad ? at::zeros_like(Hc) : at::empty({0}, Hc.options());
  if (img.numel() == 0 || (!image_requires_grad && !need_h)) {
    if (image_requires_grad && !gimg_zeroed) gimg.zero_();
    return {gimg, gH};
  }
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_backward_cpu", [&] {
    const auto params = prepare_all<scalar_t>(Hc, grad_output.size(2), grad_output.size(3));
    dispatch_modes(interp, pad, [&](auto I, auto P) {
      constexpr int kI = decltype(I)::value, kP = decltype(P)::value;
      if (image_requires_grad && need_h)
        backward_impl<scalar_t, kI, kP, true, true>(grad_output, img, params, gimg, gH,
                                                    gimg_zeroed);
      else if (image_requires_grad)
        backward_impl<scalar_t, kI, kP, true, false>(grad_output, img, params, gimg, gH,
                                                     gimg_zeroed);
      else
        backward_impl<scalar_t, kI, kP, false, true>(grad_output, img, params, gimg, gH,
                                                     true);
    });
  });
  return {gimg, gH};
}

TORCH_LIBRARY_IMPL(dgp_ops, CPU, m) {
  m.impl("warp_perspective", &warp_perspective_cpu);
  m.impl("warp_perspective_backward", &warp_perspective_backward_cpu);
}

}  // namespace warp
}  // namespace dgp_ops
