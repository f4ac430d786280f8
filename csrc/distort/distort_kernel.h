// Per-item and per-pixel math of the perspective warp of a distorted image, shared by the CPU
// and CUDA kernels. Output pixel p samples the distorted source image at
//   q = H^-1 p                     (the ideal, undistorted pinhole pixel of the source camera)
//   n = K^-1 q                     (its normalised image coordinates (a, b) = (x/z, y/z))
//   s = K distort(n)               (the pixel the lens images that ray to)
// with OpenCV's models and coefficient order (docs: conventions): pinhole (k1, k2, p1, p2, k3,
// k4, k5, k6) as in cv2.projectPoints, fisheye (k1, k2, k3, k4) as in cv2.fisheye. K is
// [[fx, s, cx], [0, fy, cy], [0, 0, 1]]. An item whose coefficients are all zero is sampled by
// the plain warp's code path (warp_kernel.h), so it gives the same values as warp_perspective
// (a pinhole lens; a fisheye lens with zero coefficients is the equidistant projection).
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "common/host_device.h"
#include "common/small_matrix.h"
#include "warp/warp_kernel.h"

namespace dgp_ops {
namespace distort {

using std::atan;
using std::sqrt;
using warp::Footprint;
using warp::ItemParams;

constexpr int kPinhole = 0;
constexpr int kFisheye = 1;
constexpr const char* kModelNames[] = {"pinhole", "fisheye"};
constexpr int kNumModels = 2;
// Coefficients the kernels read per item (a shorter vector is zero-padded by the caller).
constexpr int kMaxCoeffs = 8;

// Below this radius (normalised units) the fisheye scale theta_d / r is taken as its limit 1.
constexpr double kFisheyeMinR = 1e-8;
// |denominator| of the rational pinhole model at or below which a ray has no image.
constexpr double kMinDen = 1e-12;

inline int model_code(std::string_view s) {
  for (int i = 0; i < kNumModels; ++i)
    if (s == kModelNames[i]) return i;
  return -1;
}

// Per-item parameters: the warp's (N, Hinv, validity) plus the camera. kinv = (1/fx, -s/(fx
// fy), 1/fy) so that b = (qv - cy) / fy, a = (qu - cx) / fx + kinv[1] (qv - cy).
// distorted: a fisheye lens (its zero coefficients are still the equidistant projection) or a
// pinhole lens with a coefficient that is not zero (otherwise the plain warp path runs).
struct DistortParams {
  ItemParams warp;
  double k[5];  // fx, s, cx, fy, cy
  double kinv[3];
  double coef[kMaxCoeffs];
  bool distorted;
};
static_assert(std::is_trivially_copyable_v<DistortParams> &&
                  std::is_standard_layout_v<DistortParams>,
              "DistortParams is copied to and from device memory as bytes");
static_assert(alignof(DistortParams) == alignof(double),
              "an array of DistortParams keeps every double aligned");

// Kp: the item's K (9 entries, row-major); dp: its ncoef coefficients. The item is invalid
// (all-zero output) when H is not invertible, K is not [[fx, s, cx], [0, fy, cy], [0, 0, 1]]
// with finite entries and fx, fy != 0, or a coefficient is not finite.
template <typename T>
HOST_DEVICE inline DistortParams prepare_item(const T* Hp, const T* Kp, const T* dp, int ncoef,
                                              int model, double ref_x, double ref_y) {
  DistortParams p;
  p.warp = warp::prepare_item<T>(Hp, ref_x, ref_y);
  double K[9];
  bool ok = true;
  for (int i = 0; i < 9; ++i) {
    K[i] = static_cast<double>(Kp[i]);
    ok = ok && is_finite_d(K[i]);
  }
  ok = ok && K[3] == 0.0 && K[6] == 0.0 && K[7] == 0.0 && K[8] == 1.0 && K[0] != 0.0 &&
       K[4] != 0.0;
  p.k[0] = K[0];
  p.k[1] = K[1];
  p.k[2] = K[2];
  p.k[3] = K[4];
  p.k[4] = K[5];
  p.kinv[0] = ok ? 1.0 / K[0] : 0.0;
  p.kinv[1] = ok ? -K[1] / (K[0] * K[4]) : 0.0;
  p.kinv[2] = ok ? 1.0 / K[4] : 0.0;
  p.distorted = model == kFisheye;
  for (int i = 0; i < kMaxCoeffs; ++i) {
    p.coef[i] = i < ncoef ? static_cast<double>(dp[i]) : 0.0;
    ok = ok && is_finite_d(p.coef[i]);
    p.distorted = p.distorted || p.coef[i] != 0.0;
  }
  p.warp.valid = p.warp.valid && ok;
  return p;
}

// The lens map of normalised coordinates (a, b) -> (ad, bd) and its Jacobian
// J = d(ad, bd)/d(a, b) (row-major 2x2). Returns false where the model has no image (a pole of
// the rational pinhole model).
template <typename T, int MODEL>
HOST_DEVICE inline bool distort_normalised(const double* cd, T a, T b, T& ad, T& bd, T J[4]) {
  if (MODEL == kPinhole) {
    const T k1 = T(cd[0]), k2 = T(cd[1]), p1 = T(cd[2]), p2 = T(cd[3]);
    const T k3 = T(cd[4]), k4 = T(cd[5]), k5 = T(cd[6]), k6 = T(cd[7]);
    const T r2 = a * a + b * b;
    const T num = T(1) + r2 * (k1 + r2 * (k2 + r2 * k3));
    const T den = T(1) + r2 * (k4 + r2 * (k5 + r2 * k6));
    if (!(den > T(kMinDen) || den < -T(kMinDen))) return false;
    const T iden = T(1) / den;
    const T radial = num * iden;
    const T dnum = k1 + r2 * (T(2) * k2 + T(3) * k3 * r2);
    const T dden = k4 + r2 * (T(2) * k5 + T(3) * k6 * r2);
    const T drad = (dnum - radial * dden) * iden;  // d radial / d r2
    const T ab = a * b;
    ad = a * radial + T(2) * p1 * ab + p2 * (r2 + T(2) * a * a);
    bd = b * radial + p1 * (r2 + T(2) * b * b) + T(2) * p2 * ab;
    J[0] = radial + T(2) * a * a * drad + T(2) * p1 * b + T(6) * p2 * a;
    J[1] = T(2) * ab * drad + T(2) * p1 * a + T(2) * p2 * b;
    J[2] = T(2) * ab * drad + T(2) * p1 * a + T(2) * p2 * b;
    J[3] = radial + T(2) * b * b * drad + T(6) * p1 * b + T(2) * p2 * a;
    return true;
  }
  const T k1 = T(cd[0]), k2 = T(cd[1]), k3 = T(cd[2]), k4 = T(cd[3]);
  const T r2 = a * a + b * b;
  const T r = sqrt(r2);
  if (!(r > T(kFisheyeMinR))) {
    ad = a;
    bd = b;
    J[0] = J[3] = T(1);
    J[1] = J[2] = T(0);
    return true;
  }
  const T th = atan(r);
  const T t2 = th * th;
  const T poly = T(1) + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)));
  const T thd = th * poly;
  // d theta_d / d theta = 1 + 3 k1 t^2 + 5 k2 t^4 + 7 k3 t^6 + 9 k4 t^8
  const T dthd = T(1) + t2 * (T(3) * k1 + t2 * (T(5) * k2 + t2 * (T(7) * k3 + t2 * T(9) * k4)));
  const T ir = T(1) / r;
  const T scale = thd * ir;
  // d scale / d r = (dthd / (1 + r^2) - scale) / r; J = scale I + (dscale/dr / r) n n^T
  const T c = (dthd / (T(1) + r2) - scale) * ir * ir;
  ad = a * scale;
  bd = b * scale;
  J[0] = scale + c * a * a;
  J[1] = c * a * b;
  J[2] = J[1];
  J[3] = scale + c * b * b;
  return true;
}

// Source pixel (su, sv) of the ideal source pixel (qu, qv) and the Jacobian
// Jq = d(su, sv)/d(qu, qv) = K2 J K2^-1 (K2 the upper 2x2 of K).
template <typename T, int MODEL>
HOST_DEVICE inline bool distort_pixel(const DistortParams& p, T qu, T qv, T& su, T& sv,
                                      T Jq[4]) {
  const T fx = T(p.k[0]), s = T(p.k[1]), cx = T(p.k[2]), fy = T(p.k[3]), cy = T(p.k[4]);
  const T ifx = T(p.kinv[0]), ksk = T(p.kinv[1]), ify = T(p.kinv[2]);
  const T dv = qv - cy;
  const T b = dv * ify;
  const T a = (qu - cx) * ifx + ksk * dv;
  T ad, bd, J[4];
  if (!distort_normalised<T, MODEL>(p.coef, a, b, ad, bd, J)) return false;
  su = fx * ad + s * bd + cx;
  sv = fy * bd + cy;
  // K2 J K2^-1 with K2 = [[fx, s], [0, fy]], K2^-1 = [[ifx, ksk], [0, ify]].
  const T m0 = fx * J[0] + s * J[2], m1 = fx * J[1] + s * J[3];
  const T m2 = fy * J[2], m3 = fy * J[3];
  Jq[0] = m0 * ifx;
  Jq[1] = m0 * ksk + m1 * ify;
  Jq[2] = m2 * ifx;
  Jq[3] = m2 * ksk + m3 * ify;
  return true;
}

// Where output pixel (x, y) of a distorted item samples its source (distorted items only; the
// others use warp::footprint). Fills f (its u, v: the distorted source pixel), the ideal
// source pixel (qu, qv) and Jq; returns false when the pixel reads nothing.
template <typename T, int MODEL, int INTERP, int PAD>
HOST_DEVICE inline bool footprint(const DistortParams& p, const T* N, T x, T y, int64_t H,
                                  int64_t W, Footprint<T>& f, T& qu, T& qv, T Jq[4]) {
  const T w = N[6] * x + (N[7] * y + N[8]);
  if (!(w > T(warp::kMinW))) return false;
  const T invw = T(1) / w;
  qu = (N[0] * x + (N[1] * y + N[2])) * invw;
  qv = (N[3] * x + (N[4] * y + N[5])) * invw;
  T su, sv;
  if (!distort_pixel<T, MODEL>(p, qu, qv, su, sv, Jq)) return false;
  // A non-finite coordinate (a ray far outside the lens model's range) reads nothing.
  if (!(su - su == T(0) && sv - sv == T(0))) return false;
  f.invw = invw;
  return warp::place_taps<T, INTERP, PAD>(su, sv, H, W, f);
}

// Forward of one output pixel over all C channels (img, out as in warp::sample_pixel).
template <typename T, int MODEL, int INTERP, int PAD>
HOST_DEVICE inline void forward_pixel(const DistortParams& p, const T* N, T x, T y,
                                      const T* img, int64_t C, int64_t H, int64_t W, T* out,
                                      int64_t out_plane) {
  Footprint<T> f;
  bool ok;
  if (p.distorted) {
    T qu, qv, Jq[4];
    ok = footprint<T, MODEL, INTERP, PAD>(p, N, x, y, H, W, f, qu, qv, Jq);
  } else {
    ok = warp::footprint<T, INTERP, PAD>(N, x, y, H, W, f);
  }
  if (p.warp.valid && ok) {
    warp::sample_pixel<T, INTERP, PAD>(f, img, C, W, H * W, out, out_plane);
  } else {
    for (int64_t c = 0; c < C; ++c) out[c * out_plane] = T(0);
  }
}

// Backward of one output pixel: scatters into gimg (nullptr to skip) with add and accumulates
// dL/dN into dN when need_h (the gradient of the source pixel goes back through Jq^T to the
// ideal pixel, then as in the plain warp).
template <typename T, int MODEL, int INTERP, int PAD, typename Add>
HOST_DEVICE inline void backward_pixel(const DistortParams& p, const T* N, T x, T y,
                                       const T* img, T* gimg, const T* gout, int64_t C,
                                       int64_t H, int64_t W, int64_t out_plane, bool need_h,
                                       T dN[9], Add add) {
  if (!p.warp.valid) return;
  Footprint<T> f;
  if (!p.distorted) {
    if (warp::footprint<T, INTERP, PAD>(N, x, y, H, W, f))
      warp::backward_pixel<T, INTERP, PAD>(f, x, y, img, gimg, gout, C, W, H * W, out_plane,
                                           need_h, dN, add);
    return;
  }
  T qu, qv, Jq[4];
  if (!footprint<T, MODEL, INTERP, PAD>(p, N, x, y, H, W, f, qu, qv, Jq)) return;
  T gx, gy;
  warp::backward_taps<T, INTERP, PAD>(f, img, gimg, gout, C, W, H * W, out_plane, need_h, gx, gy,
                                      add);
  if (INTERP == warp::kNearest || !need_h) return;
  const T gsu = gx * f.du, gsv = gy * f.dv;
  warp::add_n_grad(Jq[0] * gsu + Jq[2] * gsv, Jq[1] * gsu + Jq[3] * gsv, f.invw, qu, qv, x, y,
                   dN);
}

// One output pixel (x, y) of a uint8 image: the plain warp's bytes for an undistorted item,
// else the distorted source coordinate in float32 (ample for pixel positions: 1e-4 px at 1000
// px), blended from its four taps as the plain warp blends them (blend_u8) where they all lie
// inside the image, and through warp::sample_at_u8 (every padding mode) elsewhere. Nf: the
// item's N in float.
template <int MODEL, int INTERP, int PAD>
HOST_DEVICE inline void forward_pixel_u8(const DistortParams& p, const float Nf[9], int64_t x,
                                         int64_t y, const uint8_t* img, int64_t C, int64_t H,
                                         int64_t W, int64_t sc, int64_t sy, int64_t sx,
                                         uint8_t* out, int64_t osc) {
  if (p.warp.valid && !p.distorted) {
    warp::warp_pixel_u8<INTERP, PAD>(p.warp.N, Nf, warp::u8_row_terms(Nf, y), x, y, img, C, H,
                                     W, sc, sy, sx, out, osc);
    return;
  }
  if (p.warp.valid) {
    const float xx = static_cast<float>(x), yy = static_cast<float>(y);
    const float w = Nf[6] * xx + (Nf[7] * yy + Nf[8]);
    if (w > static_cast<float>(warp::kMinW)) {
      const float iw = 1.f / w;
      const float qu = (Nf[0] * xx + (Nf[1] * yy + Nf[2])) * iw;
      const float qv = (Nf[3] * xx + (Nf[4] * yy + Nf[5])) * iw;
      float su, sv, Jq[4];
      if (distort_pixel<float, MODEL>(p, qu, qv, su, sv, Jq) && su - su == 0.f &&
          sv - sv == 0.f) {
        if (INTERP == warp::kBilinear && su >= 0.f && sv >= 0.f &&
            su < static_cast<float>(W - 1) && sv < static_cast<float>(H - 1)) {
          const int64_t xi = static_cast<int32_t>(su), yi = static_cast<int32_t>(sv);
          const float fx = su - static_cast<float>(xi), fy = sv - static_cast<float>(yi);
          const uint8_t* q = img + yi * sy + xi * sx;
          for (int64_t c = 0; c < C; ++c, q += sc)
            out[c * osc] = warp::blend_u8(q[0], q[sx], q[sy], q[sy + sx], fx, fy);
          return;
        }
        warp::sample_at_u8<INTERP, PAD>(warp::clamp_coord(su), warp::clamp_coord(sv), img, C, H,
                                        W, sc, sy, sx, out, osc);
        return;
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) out[c * osc] = 0;
}

// Calls f with the lens model and the warp modes as integral constants (host code).
template <typename F>
void dispatch(int model, int interp, int pad, F&& f) {
  warp::dispatch_modes(interp, pad, [&](auto I, auto P) {
    if (model == kPinhole) return f(std::integral_constant<int, kPinhole>{}, I, P);
    return f(std::integral_constant<int, kFisheye>{}, I, P);
  });
}

}  // namespace distort
}  // namespace dgp_ops
