// Per-item and per-pixel math of the fused perspective warp, shared by the CPU and CUDA
// kernels. Conventions: H maps source pixels to output pixels (cv2.warpPerspective without
// WARP_INVERSE_MAP), pixel centres at integer coordinates, images (B, C, H, W) contiguous.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

#include "common/host_device.h"

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

// |det| of H scaled to unit max-abs entry below which H counts as singular.
constexpr double kMinRelDet = 1e-12;
// Homogeneous w of a source point (with the normalised inverse N) at or below which the
// output pixel has no valid source: behind the camera or at infinity.
constexpr double kMinW = 1e-6;

// Per-item parameters, in double: N = adj(H) / max|adj(H)| (a scaled inverse, invariant to
// the scale and sign of H), Hinv = H^-1 = c * N, valid = H finite and non-singular.
struct ItemParams {
  double N[9];
  double Hinv[9];
  double c;
  bool valid;
};

HOST_DEVICE inline double abs_d(double x) { return x < 0 ? -x : x; }

template <typename T>
HOST_DEVICE inline ItemParams prepare_item(const T* Hp) {
  ItemParams p;
  p.valid = false;
  p.c = 0.0;
  double m = 0.0;
  bool finite = true;
  double h[9];
  for (int k = 0; k < 9; ++k) {
    h[k] = static_cast<double>(Hp[k]);
    // x - x != 0 catches NaN and +-Inf without <cmath> on the device.
    if (!(h[k] - h[k] == 0.0)) finite = false;
    m = abs_d(h[k]) > m ? abs_d(h[k]) : m;
  }
  for (int k = 0; k < 9; ++k) {
    p.N[k] = 0.0;
    p.Hinv[k] = 0.0;
  }
  if (!finite || !(m > 0.0)) return p;
  for (int k = 0; k < 9; ++k) h[k] /= m;
  // Adjugate (transposed cofactors) of the normalised H.
  double a[9];
  a[0] = h[4] * h[8] - h[5] * h[7];
  a[1] = h[2] * h[7] - h[1] * h[8];
  a[2] = h[1] * h[5] - h[2] * h[4];
  a[3] = h[5] * h[6] - h[3] * h[8];
  a[4] = h[0] * h[8] - h[2] * h[6];
  a[5] = h[2] * h[3] - h[0] * h[5];
  a[6] = h[3] * h[7] - h[4] * h[6];
  a[7] = h[1] * h[6] - h[0] * h[7];
  a[8] = h[0] * h[4] - h[1] * h[3];
  const double det = h[0] * a[0] + h[1] * a[3] + h[2] * a[6];
  if (!(abs_d(det) > kMinRelDet)) return p;
  double am = 0.0;
  for (int k = 0; k < 9; ++k) am = abs_d(a[k]) > am ? abs_d(a[k]) : am;
  for (int k = 0; k < 9; ++k) {
    p.N[k] = a[k] / am;
    p.Hinv[k] = a[k] / (det * m);
  }
  p.c = am / (det * m);
  p.valid = true;
  return p;
}

// Gradient of H from the gradient of N. The output depends on N only through the ratios
// N.p / w, which are invariant to scaling, so dL/dHinv = dL/dN / c; then
// dL/dH = -H^-T (dL/dHinv) H^-T.
HOST_DEVICE inline void finish_h_grad(const ItemParams& p, const double dN[9], double dH[9]) {
  double g[9], t[9];
  for (int k = 0; k < 9; ++k) g[k] = p.valid ? dN[k] / p.c : 0.0;
  const double* A = p.Hinv;
  // t = A^T g
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      t[i * 3 + j] = A[0 * 3 + i] * g[0 * 3 + j] + A[1 * 3 + i] * g[1 * 3 + j] +
                     A[2 * 3 + i] * g[2 * 3 + j];
  // dH = -t A^T
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      dH[i * 3 + j] = -(t[i * 3 + 0] * A[j * 3 + 0] + t[i * 3 + 1] * A[j * 3 + 1] +
                        t[i * 3 + 2] * A[j * 3 + 2]);
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
  f.u = u;
  f.v = v;
  f.invw = invw;
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

// Backward of one output pixel. gout: its first channel's incoming gradient (channels
// out_plane apart). Scatters into gimg (the item's image gradient, nullptr to skip) with
// add(ptr, value) and accumulates dL/dN into dN (skipped when need_h is false).
template <typename T, int INTERP, int PAD, typename Add>
HOST_DEVICE inline void backward_pixel(const Footprint<T>& f, T x, T y, const T* img, T* gimg,
                                       const T* gout, int64_t C, int64_t W, int64_t plane,
                                       int64_t out_plane, bool need_h, T dN[9], Add add) {
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
  T gx = T(0), gy = T(0);
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
  if (!need_h) return;
  // u = (N0 . p) / w, v = (N1 . p) / w, w = N2 . p with p = (x, y, 1).
  const T gu = gx * f.du * f.invw, gv = gy * f.dv * f.invw;
  const T gw = -(gu * f.u + gv * f.v);
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
