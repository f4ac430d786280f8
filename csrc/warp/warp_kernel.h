// Per-item and per-pixel math of the fused perspective warp, shared by the CPU and CUDA
// kernels. Conventions: H maps source pixels to output pixels (cv2.warpPerspective without
// WARP_INVERSE_MAP), pixel centres at integer coordinates, images (B, C, H, W) contiguous.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "common/host_device.h"
#include "common/small_matrix.h"

namespace dgp_ops {
namespace warp {

using std::floor;
using std::fmod;
using std::nearbyint;

constexpr int kBilinear = 0;
constexpr int kNearest = 1;

constexpr int kZeros = 0;
constexpr int kBorder = 1;
constexpr int kReflection = 2;

// Homogeneous w of a source point (with the normalised inverse N) at or below which the
// output pixel has no valid source: behind the camera or at infinity.
constexpr double kMinW = 1e-6;

// Per-item parameters, in double: N = +-adj(H) / max|adj(H)| (a scaled inverse, invariant to
// the scale and sign of H), Hinv = H^-1 = c * N, valid = H invertible (common/small_matrix.h).
// The sign of N is the one under which the output image's centre has a source in front
// (w > 0): H and -H are one homography, and a mirroring H (det < 0) is as valid as any other.
// The CPU kernels keep one per item in a vector; the CUDA kernels in a device buffer that
// prepare_kernel fills and every other kernel reads, as this struct.
struct ItemParams {
  double N[9];
  double Hinv[9];
  double c;
  bool valid;
};
static_assert(std::is_trivially_copyable_v<ItemParams> &&
                  std::is_standard_layout_v<ItemParams>,
              "ItemParams is copied to and from device memory as bytes");
static_assert(sizeof(ItemParams) == 20 * sizeof(double) &&
                  alignof(ItemParams) == alignof(double),
              "ItemParams packs into 20 doubles, so an array of them keeps every double aligned");

// ref_x, ref_y: the output image's centre, ((out_w - 1) / 2, (out_h - 1) / 2).
template <typename T>
HOST_DEVICE inline ItemParams prepare_item(const T* Hp, double ref_x, double ref_y) {
  ItemParams p;
  p.valid = false;
  p.c = 0.0;
  for (int k = 0; k < 9; ++k) {
    p.N[k] = 0.0;
    p.Hinv[k] = 0.0;
  }
  double h[9], a[9], m, det;
  for (int k = 0; k < 9; ++k) h[k] = static_cast<double>(Hp[k]);
  if (!invertible3(h, m, a, det)) return p;
  double am = 0.0;
  for (int k = 0; k < 9; ++k) am = abs_d(a[k]) > am ? abs_d(a[k]) : am;
  const double s = a[6] * ref_x + a[7] * ref_y + a[8] < 0.0 ? -am : am;
  for (int k = 0; k < 9; ++k) {
    p.N[k] = a[k] / s;
    p.Hinv[k] = a[k] / (det * m);
  }
  p.c = s / (det * m);
  p.valid = true;
  return p;
}

// Gradient of H from the gradient of N. The output depends on N only through the ratios
// N.p / w, which are invariant to scaling, so dL/dHinv = dL/dN / c; then
// dL/dH = -H^-T (dL/dHinv) H^-T.
HOST_DEVICE inline void finish_h_grad(const ItemParams& p, const double dN[9], double dH[9]) {
  double g[9];
  for (int k = 0; k < 9; ++k) g[k] = p.valid ? dN[k] / p.c : 0.0;
  inverse_grad(p.Hinv, g, dH);
}

// Border padding: clamp to [0, hi]; d is d(out)/d(in) (0 where clamped).
template <typename T>
HOST_DEVICE inline T clip_coord(T x, T hi, T& d) {
  if (x <= T(0)) {
    d = T(0);
    return T(0);
  }
  if (x >= hi) {
    d = T(0);
    return hi;
  }
  d = T(1);
  return x;
}

// Reflection about the edge pixel centres 0 and hi (grid_sample's align_corners=True
// convention, OpenCV's BORDER_REFLECT_101 at integer positions), then clamped.
template <typename T>
HOST_DEVICE inline T reflect_coord(T x, T hi, T& d) {
  if (hi <= T(0)) {
    d = T(0);
    return T(0);
  }
  T sign = T(1);
  if (x < T(0)) {
    x = -x;
    sign = T(-1);
  }
  const T flips = floor(x / hi);
  const T extra = x - flips * hi;
  T out;
  if (fmod(flips, T(2)) == T(0)) {
    out = extra;
    d = sign;
  } else {
    out = hi - extra;
    d = -sign;
  }
  T dc;
  out = clip_coord(out, hi, dc);
  d *= dc;
  return out;
}

// Where one output pixel samples the source image.
template <typename T>
struct Footprint {
  int64_t x0, y0;    // top-left tap (bilinear) or the nearest pixel
  T fx, fy;          // fractional offsets of the bilinear taps
  bool inx0, inx1;   // columns x0, x0 + 1 inside the image
  bool iny0, iny1;   // rows y0, y0 + 1 inside the image
  T u, v;            // source coordinate before padding
  T invw;            // 1 / w
  T du, dv;          // d(padded coordinate) / d(source coordinate)
};

// Fills f's taps for the source coordinate (u, v) (before padding); returns false when the
// pixel reads nothing (zero padding with every tap outside), i.e. output 0 and zero gradient.
template <typename T, int INTERP, int PAD>
HOST_DEVICE inline bool place_taps(T u, T v, int64_t H, int64_t W, Footprint<T>& f) {
  f.u = u;
  f.v = v;
  const T Wm1 = T(W - 1), Hm1 = T(H - 1);
  T pu = u, pv = v;
  f.du = T(1);
  f.dv = T(1);
  if (PAD == kBorder) {
    pu = clip_coord(u, Wm1, f.du);
    pv = clip_coord(v, Hm1, f.dv);
  } else if (PAD == kReflection) {
    pu = reflect_coord(u, Wm1, f.du);
    pv = reflect_coord(v, Hm1, f.dv);
  } else {
    // Also keeps the integer conversions below in range.
    if (!(u > T(-1) && u < T(W) && v > T(-1) && v < T(H))) return false;
  }
  if (INTERP == kNearest) {
    f.x0 = static_cast<int64_t>(nearbyint(pu));
    f.y0 = static_cast<int64_t>(nearbyint(pv));
    f.fx = f.fy = T(0);
    f.inx0 = f.x0 >= 0 && f.x0 < W;
    f.iny0 = f.y0 >= 0 && f.y0 < H;
    f.inx1 = f.iny1 = false;
    return f.inx0 && f.iny0;
  }
  // pu, pv > -1 here, so truncation of (p + 1) is floor(p) + 1.
  f.x0 = static_cast<int64_t>(pu + T(1)) - 1;
  f.y0 = static_cast<int64_t>(pv + T(1)) - 1;
  f.fx = pu - T(f.x0);
  f.fy = pv - T(f.y0);
  f.inx0 = f.x0 >= 0;
  f.inx1 = f.x0 + 1 < W;
  f.iny0 = f.y0 >= 0;
  f.iny1 = f.y0 + 1 < H;
  return true;
}

// Fills f for output pixel (x, y); returns false when the pixel reads nothing (no valid
// source, or zero padding with every tap outside), i.e. output 0 and zero gradient.
template <typename T, int INTERP, int PAD>
HOST_DEVICE inline bool footprint(const T* N, T x, T y, int64_t H, int64_t W, Footprint<T>& f) {
  // Grouped as N[0] x + (N[1] y + N[2]) so that row-wise loops that hoist the y terms
  // compute bit-identical coordinates.
  const T w = N[6] * x + (N[7] * y + N[8]);
  if (!(w > T(kMinW))) return false;
  const T invw = T(1) / w;
  const T u = (N[0] * x + (N[1] * y + N[2])) * invw;
  const T v = (N[3] * x + (N[4] * y + N[5])) * invw;
  f.invw = invw;
  return place_taps<T, INTERP, PAD>(u, v, H, W, f);
}

// Forward of one output pixel over all C channels. img: the item's (C, H, W) planes;
// out: its first channel's output element, channels out_plane apart.
template <typename T, int INTERP, int PAD>
HOST_DEVICE inline void sample_pixel(const Footprint<T>& f, const T* img, int64_t C, int64_t W,
                                     int64_t plane, T* out, int64_t out_plane) {
  if (INTERP == kNearest) {
    const T* p = img + f.y0 * W + f.x0;
    for (int64_t c = 0; c < C; ++c) out[c * out_plane] = p[c * plane];
    return;
  }
  const T w00 = (T(1) - f.fx) * (T(1) - f.fy), w01 = f.fx * (T(1) - f.fy);
  const T w10 = (T(1) - f.fx) * f.fy, w11 = f.fx * f.fy;
  const T* p = img + f.y0 * W + f.x0;
  if (f.inx0 && f.inx1 && f.iny0 && f.iny1) {
    for (int64_t c = 0; c < C; ++c) {
      const T* q = p + c * plane;
      out[c * out_plane] = w00 * q[0] + w01 * q[1] + w10 * q[W] + w11 * q[W + 1];
    }
    return;
  }
  const bool b00 = f.inx0 && f.iny0, b01 = f.inx1 && f.iny0;
  const bool b10 = f.inx0 && f.iny1, b11 = f.inx1 && f.iny1;
  for (int64_t c = 0; c < C; ++c) {
    const T* q = p + c * plane;
    T s = T(0);
    if (b00) s += w00 * q[0];
    if (b01) s += w01 * q[1];
    if (b10) s += w10 * q[W];
    if (b11) s += w11 * q[W + 1];
    out[c * out_plane] = s;
  }
}

// Backward of one output pixel's taps. gout: its first channel's incoming gradient (channels
// out_plane apart). Scatters into gimg (the item's image gradient, nullptr to skip) with
// add(ptr, value) and, when need_h, writes the gradient of the source coordinate before padding
// (gx, gy) = dL/d(padded u, padded v); 'nearest' leaves it zero.
template <typename T, int INTERP, int PAD, typename Add>
HOST_DEVICE inline void backward_taps(const Footprint<T>& f, const T* img, T* gimg,
                                      const T* gout, int64_t C, int64_t W, int64_t plane,
                                      int64_t out_plane, bool need_h, T& gx, T& gy, Add add) {
  gx = T(0);
  gy = T(0);
  if (INTERP == kNearest) {
    // Piecewise-constant in the coordinates: only the image gets a gradient.
    if (gimg != nullptr) {
      T* p = gimg + f.y0 * W + f.x0;
      for (int64_t c = 0; c < C; ++c) add(p + c * plane, gout[c * out_plane]);
    }
    return;
  }
  const T w00 = (T(1) - f.fx) * (T(1) - f.fy), w01 = f.fx * (T(1) - f.fy);
  const T w10 = (T(1) - f.fx) * f.fy, w11 = f.fx * f.fy;
  const bool b00 = f.inx0 && f.iny0, b01 = f.inx1 && f.iny0;
  const bool b10 = f.inx0 && f.iny1, b11 = f.inx1 && f.iny1;
  const int64_t off = f.y0 * W + f.x0;
  for (int64_t c = 0; c < C; ++c) {
    const T g = gout[c * out_plane];
    if (gimg != nullptr) {
      T* p = gimg + c * plane + off;
      if (b00) add(p, w00 * g);
      if (b01) add(p + 1, w01 * g);
      if (b10) add(p + W, w10 * g);
      if (b11) add(p + W + 1, w11 * g);
    }
    if (need_h) {
      const T* q = img + c * plane + off;
      const T i00 = b00 ? q[0] : T(0), i01 = b01 ? q[1] : T(0);
      const T i10 = b10 ? q[W] : T(0), i11 = b11 ? q[W + 1] : T(0);
      gx += g * ((T(1) - f.fy) * (i01 - i00) + f.fy * (i11 - i10));
      gy += g * ((T(1) - f.fx) * (i10 - i00) + f.fx * (i11 - i01));
    }
  }
}

// Adds to dN the gradient of N from the gradient (gu0, gv0) of the point (u, v) = (N0 . p,
// N1 . p) / w, w = N2 . p, p = (x, y, 1), with invw = 1 / w.
template <typename T>
HOST_DEVICE inline void add_n_grad(T gu0, T gv0, T invw, T u, T v, T x, T y, T dN[9]) {
  const T gu = gu0 * invw, gv = gv0 * invw;
  const T gw = -(gu * u + gv * v);
  dN[0] += gu * x;
  dN[1] += gu * y;
  dN[2] += gu;
  dN[3] += gv * x;
  dN[4] += gv * y;
  dN[5] += gv;
  dN[6] += gw * x;
  dN[7] += gw * y;
  dN[8] += gw;
}

// Backward of one output pixel: backward_taps, then dL/dN accumulated into dN (skipped when
// need_h is false or for 'nearest').
template <typename T, int INTERP, int PAD, typename Add>
HOST_DEVICE inline void backward_pixel(const Footprint<T>& f, T x, T y, const T* img, T* gimg,
                                       const T* gout, int64_t C, int64_t W, int64_t plane,
                                       int64_t out_plane, bool need_h, T dN[9], Add add) {
  T gx, gy;
  backward_taps<T, INTERP, PAD>(f, img, gimg, gout, C, W, plane, out_plane, need_h, gx, gy, add);
  if (INTERP == kNearest || !need_h) return;
  add_n_grad(gx * f.du, gy * f.dv, f.invw, f.u, f.v, x, y, dN);
}

// ---- uint8 images ------------------------------------------------------------------------
// As cv2.warpPerspective (OpenCV 5) computes them: bilinear weights from the fraction of the
// source coordinate, the blend in float, rounded to nearest and saturated; nearest rounds the
// coordinate half to even. Every operation is rounded once (common/host_device.h), so the CPU
// and CUDA kernels give the same bytes.
// Source coordinates are clamped to this range (pixels) before integer conversion.
constexpr double kU8CoordLimit = 1073741824.0;  // 2^30

HOST_DEVICE inline double clamp_coord(double v) {
  return v < -kU8CoordLimit ? -kU8CoordLimit : (v > kU8CoordLimit ? kU8CoordLimit : v);
}

HOST_DEVICE inline uint8_t saturate_u8(float v) {
  if (v <= 0.f) return 0;
  return v >= 255.f ? uint8_t(255) : static_cast<uint8_t>(add_rn(v, 0.5f));
}

// The bilinear blend of four uint8 taps with fractions fx (columns), fy (rows), in float, as
// OpenCV blends them; the vectorised CPU rows compute the same operations in the same order.
HOST_DEVICE inline uint8_t blend_u8(float p00, float p01, float p10, float p11, float fx,
                                    float fy) {
  const float top = add_rn(p00, mul_rn(fx, sub_rn(p01, p00)));
  const float bot = add_rn(p10, mul_rn(fx, sub_rn(p11, p10)));
  return saturate_u8(add_rn(top, mul_rn(fy, sub_rn(bot, top))));
}

// Index i of a row or column of n pixels under the padding mode; -1 for zero padding outside.
template <int PAD>
HOST_DEVICE inline int64_t border_index(int64_t i, int64_t n) {
  if (i >= 0 && i < n) return i;
  if (PAD == kZeros) return -1;
  if (PAD == kBorder) return i < 0 ? 0 : n - 1;
  if (n == 1) return 0;  // reflection about the edge pixel centres (BORDER_REFLECT_101)
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// One output pixel of a uint8 image, all C channels, sampled at the source coordinate (X, Y)
// (double, already clamped by clamp_coord). img: the item's first element with strides sc
// (channel), sy (row), sx (column) in elements; out: the pixel's first channel, channels osc
// apart.
template <int INTERP, int PAD>
HOST_DEVICE inline void sample_at_u8(double X, double Y, const uint8_t* img, int64_t C,
                                     int64_t H, int64_t W, int64_t sc, int64_t sy, int64_t sx,
                                     uint8_t* out, int64_t osc) {
  if (INTERP == kNearest) {
    const int64_t xi = border_index<PAD>(static_cast<int64_t>(nearbyint(X)), W);
    const int64_t yi = border_index<PAD>(static_cast<int64_t>(nearbyint(Y)), H);
    if (xi >= 0 && yi >= 0) {
      const uint8_t* p = img + yi * sy + xi * sx;
      for (int64_t c = 0; c < C; ++c) out[c * osc] = p[c * sc];
    } else {
      for (int64_t c = 0; c < C; ++c) out[c * osc] = 0;
    }
    return;
  }
  const double fX = floor(X), fY = floor(Y);
  const int64_t x0 = static_cast<int64_t>(fX), y0 = static_cast<int64_t>(fY);
  const float fx = static_cast<float>(sub_rn(X, fX)), fy = static_cast<float>(sub_rn(Y, fY));
  const int64_t xa = border_index<PAD>(x0, W), xb = border_index<PAD>(x0 + 1, W);
  const int64_t ya = border_index<PAD>(y0, H), yb = border_index<PAD>(y0 + 1, H);
  for (int64_t c = 0; c < C; ++c) {
    const uint8_t* p = img + c * sc;
    const float p00 = ya >= 0 && xa >= 0 ? p[ya * sy + xa * sx] : 0.f;
    const float p01 = ya >= 0 && xb >= 0 ? p[ya * sy + xb * sx] : 0.f;
    const float p10 = yb >= 0 && xa >= 0 ? p[yb * sy + xa * sx] : 0.f;
    const float p11 = yb >= 0 && xb >= 0 ? p[yb * sy + xb * sx] : 0.f;
    out[c * osc] = blend_u8(p00, p01, p10, p11, fx, fy);
  }
}

// One output pixel (x, y) of a uint8 image, all C channels, with the source coordinate in
// double (arguments as in sample_at_u8).
template <int INTERP, int PAD>
HOST_DEVICE inline void sample_pixel_u8(const double N[9], double x, double y,
                                        const uint8_t* img, int64_t C, int64_t H, int64_t W,
                                        int64_t sc, int64_t sy, int64_t sx, uint8_t* out,
                                        int64_t osc) {
  const double w = add_rn(mul_rn(N[6], x), add_rn(mul_rn(N[7], y), N[8]));
  if (w > kMinW) {
    const double X =
        clamp_coord(div_rn(add_rn(mul_rn(N[0], x), add_rn(mul_rn(N[1], y), N[2])), w));
    const double Y =
        clamp_coord(div_rn(add_rn(mul_rn(N[3], x), add_rn(mul_rn(N[4], y), N[5])), w));
    sample_at_u8<INTERP, PAD>(X, Y, img, C, H, W, sc, sy, sx, out, osc);
    return;
  }
  for (int64_t c = 0; c < C; ++c) out[c * osc] = 0;
}

// The interior of a bilinear uint8 warp, where the source coordinate is computed in float32:
// pixels whose source (u, v) has 0 <= u < u8_ulim(W) and 0 <= v < H - 1 blend their four taps
// directly (no padding mode changes anything there). The limit stops 2 columns before the
// row's last tap because the CPU's planar gathers read 4 bytes from the top-left tap; the same
// limit for every layout and device keeps the bytes independent of both.
HOST_DEVICE inline float u8_ulim(int64_t W) { return static_cast<float>(W - 3); }

// The y terms of a row's float32 coordinates: (N1 y + N2, N4 y + N5, N7 y + N8).
struct U8RowTerms {
  float ub, vb, wb;
};

HOST_DEVICE inline U8RowTerms u8_row_terms(const float N[9], int64_t y) {
  const float yy = static_cast<float>(y);
  return {add_rn(mul_rn(N[1], yy), N[2]), add_rn(mul_rn(N[4], yy), N[5]),
          add_rn(mul_rn(N[7], yy), N[8])};
}

// Source coordinate of output pixel xx of a row, in float32; returns whether the interior
// blend takes the pixel. The CPU's AVX2 rows repeat these operations lane by lane.
HOST_DEVICE inline bool u8_interior_coord(const float N[9], float xx, const U8RowTerms& t,
                                          float ulim, float vlim, float& u, float& v) {
  const float w = add_rn(mul_rn(N[6], xx), t.wb);
  const bool wok = w > static_cast<float>(kMinW);
  const float invw = div_rn(1.f, wok ? w : 1.f);
  u = mul_rn(add_rn(mul_rn(N[0], xx), t.ub), invw);
  v = mul_rn(add_rn(mul_rn(N[3], xx), t.vb), invw);
  return wok && u >= 0.f && v >= 0.f && u < ulim && v < vlim;
}

// One output pixel (x, y) of a uint8 warp as every kernel computes it (the same bytes on the
// CPU, with or without AVX2, and on the GPU): the float32 interior blend where it applies,
// else sample_pixel_u8. Nd, Nf: the item's N in double and in float; t: u8_row_terms(Nf, y).
template <int INTERP, int PAD>
HOST_DEVICE inline void warp_pixel_u8(const double Nd[9], const float Nf[9], const U8RowTerms& t,
                                      int64_t x, int64_t y, const uint8_t* img, int64_t C,
                                      int64_t H, int64_t W, int64_t sc, int64_t sy, int64_t sx,
                                      uint8_t* out, int64_t osc) {
  if (INTERP == kBilinear) {
    float u, v;
    if (u8_interior_coord(Nf, static_cast<float>(x), t, u8_ulim(W), static_cast<float>(H - 1),
                          u, v)) {
      const int64_t xi = static_cast<int32_t>(u), yi = static_cast<int32_t>(v);
      const float fx = sub_rn(u, static_cast<float>(xi)), fy = sub_rn(v, static_cast<float>(yi));
      const uint8_t* p = img + yi * sy + xi * sx;
      for (int64_t c = 0; c < C; ++c, p += sc)
        out[c * osc] = blend_u8(p[0], p[sx], p[sy], p[sy + sx], fx, fy);
      return;
    }
  }
  sample_pixel_u8<INTERP, PAD>(Nd, static_cast<double>(x), static_cast<double>(y), img, C, H, W,
                               sc, sy, sx, out, osc);
}

// Calls f with the modes as integral constants (host code).
template <typename F>
void dispatch_modes(int interp, int pad, F&& f) {
  using Bilinear = std::integral_constant<int, kBilinear>;
  using Nearest = std::integral_constant<int, kNearest>;
  using Zeros = std::integral_constant<int, kZeros>;
  using Border = std::integral_constant<int, kBorder>;
  using Reflection = std::integral_constant<int, kReflection>;
  if (interp == kBilinear) {
    if (pad == kZeros) return f(Bilinear{}, Zeros{});
    if (pad == kBorder) return f(Bilinear{}, Border{});
    return f(Bilinear{}, Reflection{});
  }
  if (pad == kZeros) return f(Nearest{}, Zeros{});
  if (pad == kBorder) return f(Nearest{}, Border{});
  return f(Nearest{}, Reflection{});
}

// Mode names of the op schema, indexed by their codes (exported to Python by _C).
constexpr const char* kModeNames[] = {"bilinear", "nearest"};
constexpr const char* kPaddingNames[] = {"zeros", "border", "reflection"};
constexpr int kNumModes = 2;
constexpr int kNumPaddings = 3;

// Mode strings to codes; -1 when unknown.
inline int interp_code(std::string_view s) {
  for (int i = 0; i < kNumModes; ++i)
    if (s == kModeNames[i]) return i;
  return -1;
}

inline int padding_code(std::string_view s) {
  for (int i = 0; i < kNumPaddings; ++i)
    if (s == kPaddingNames[i]) return i;
  return -1;
}

}  // namespace warp
}  // namespace dgp_ops
