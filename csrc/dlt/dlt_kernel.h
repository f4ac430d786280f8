// Per-item math of the weighted DLT translation solve, shared by the CPU and CUDA kernels.
//
// For correspondence i with normalised coordinates (u', v') = rows 0 and 1 of K^-1 [u, v, 1]
// the two rows are a1 = [-1, 0, u'], b1 = x - z u' and a2 = [0, -1, v'], b2 = y - z v'.
// The kernel accumulates M = sum w_i (a1 a1^T + a2 a2^T) and r = sum w_i (a1 b1 + a2 b2) in
// double, adds damping * trace(M) / 3 * I and solves M t = r by Cholesky.
#pragma once

#include <cstdint>

#include "common/host_device.h"
#include "common/small_matrix.h"

namespace dgp_ops {
namespace dlt {

// Smallest Cholesky pivot, relative to the trace, for an item to count as solvable.
constexpr double kPivotRelTol = 1e-10;

template <typename T>
HOST_DEVICE inline bool load_kinv(const T* K, double kinv[9]) {
  double k[9];
  for (int i = 0; i < 9; ++i) k[i] = static_cast<double>(K[i]);
  return inv3(k, kinv);
}

// One correspondence's DLT rows: normalised coordinates (up, vp) = rows 0, 1 of K^-1 [u, v, 1],
// right-hand sides b1 = x - z up, b2 = y - z vp, and its weight, in double.
struct PointRows {
  double u, v, up, vp, z, w, b1, b2;
};

template <typename T>
HOST_DEVICE inline PointRows point_rows(const T* p3, const T* p2, const double kinv[9],
                                        const T* w, int64_t i) {
  PointRows r;
  r.u = p2[2 * i];
  r.v = p2[2 * i + 1];
  r.up = kinv[0] * r.u + kinv[1] * r.v + kinv[2];
  r.vp = kinv[3] * r.u + kinv[4] * r.v + kinv[5];
  r.z = p3[3 * i + 2];
  r.w = w[i];
  r.b1 = static_cast<double>(p3[3 * i]) - r.z * r.up;
  r.b2 = static_cast<double>(p3[3 * i + 1]) - r.z * r.vp;
  return r;
}

// Accumulates the upper triangle of M (s) and optionally r. Returns false on non-finite sums.
template <typename T>
HOST_DEVICE inline bool accumulate(const T* p3, const T* p2, const double kinv[9], const T* w,
                                   int64_t n, double damping, double s[6], double r[3]) {
  double sw = 0, su = 0, sv = 0, suu = 0, r0 = 0, r1 = 0, r2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const PointRows pr = point_rows(p3, p2, kinv, w, i);
    const double up = pr.up, vp = pr.vp, wi = pr.w;
    const double b1 = pr.b1, b2 = pr.b2;
    sw += wi;
    su += wi * up;
    sv += wi * vp;
    suu += wi * (up * up + vp * vp);
    r0 -= wi * b1;
    r1 -= wi * b2;
    r2 += wi * (up * b1 + vp * b2);
  }
  const double lam = damping * (2.0 * sw + suu) / 3.0;
  s[0] = sw + lam;
  s[1] = 0.0;
  s[2] = -su;
  s[3] = sw + lam;
  s[4] = -sv;
  s[5] = suu + lam;
  r[0] = r0;
  r[1] = r1;
  r[2] = r2;
  bool ok = true;
  for (int i = 0; i < 6; ++i) ok = ok && is_finite_d(s[i]);
  for (int i = 0; i < 3; ++i) ok = ok && is_finite_d(r[i]);
  return ok;
}

// Number of doubles the forward saves per item for the backward: the Cholesky factor of the
// damped normal matrix as chol3 writes it (6, diagonal inverted) and the solution in double
// (3); all zero for an invalid item.
constexpr int kSaved = 9;

// Solves one item. Writes t (zeros when invalid) and the saved factor and solution, and
// returns whether the item is valid.
// kinv: K^-1 of the item, kinv_ok: whether K was invertible (see load_kinv).
template <typename T>
HOST_DEVICE inline bool forward_item(const T* p3, const T* p2, const double kinv[9],
                                     bool kinv_ok, const T* w, int64_t n, double damping, T* t,
                                     double* saved) {
  double s[6], r[3], L[6], x[3] = {0.0, 0.0, 0.0};
  bool ok = kinv_ok && accumulate(p3, p2, kinv, w, n, damping, s, r) &&
            chol3(s, kPivotRelTol, L);
  if (ok) {
    chol3_solve(L, r, x);
    ok = is_finite_d(x[0]) && is_finite_d(x[1]) && is_finite_d(x[2]);
  }
  for (int i = 0; i < 3; ++i) t[i] = ok ? static_cast<T>(x[i]) : T(0);
  for (int i = 0; i < 6; ++i) saved[i] = ok ? L[i] : 0.0;
  for (int i = 0; i < 3; ++i) saved[6 + i] = ok ? x[i] : 0.0;
  return ok;
}

// Per-point arithmetic type of the backward: the factor and the solve stay in double, but the
// per-point chain rule of a float32 item runs in float so the CPU can vectorise it 8-wide.
template <typename T>
struct PointMath {
  using type = double;
};
template <>
struct PointMath<float> {
  using type = float;
};

// The per-point part of the backward: given lam = M^-1 gt, the symmetric dL/dM (S, 3x3) and
// K^-1, writes the gradients of every point's inputs and returns rows 0 and 1 of dL/dKinv
// (gkinv, accumulated in C).
template <typename T, typename C>
HOST_DEVICE inline void backward_points(const T* __restrict__ p3, const T* __restrict__ p2,
                                        const T* __restrict__ w, int64_t n, const C kinv[9],
                                        const C lam[3], const C S[9], T* __restrict__ g3,
                                        T* __restrict__ g2, T* __restrict__ gw, C gkinv[6]) {
  C k0 = 0, k1 = 0, k2 = 0, k3 = 0, k4 = 0, k5 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const C u = p2[2 * i], v = p2[2 * i + 1];
    const C x = p3[3 * i], y = p3[3 * i + 1], z = p3[3 * i + 2], wi = w[i];
    const C up = kinv[0] * u + kinv[1] * v + kinv[2];
    const C vp = kinv[3] * u + kinv[4] * v + kinv[5];
    const C b1 = x - z * up, b2 = y - z * vp;
    // a1 = [-1, 0, up], a2 = [0, -1, vp]
    const C la1 = -lam[0] + lam[2] * up;  // lam . a1
    const C la2 = -lam[1] + lam[2] * vp;  // lam . a2
    // (S a1)[2] and (S a2)[2]; only the third component of a1/a2 varies.
    const C sa1_2 = -S[6] + S[8] * up;
    const C sa2_2 = -S[7] + S[8] * vp;
    const C a1Sa1 = S[0] - C(2) * S[2] * up + S[8] * up * up;
    const C a2Sa2 = S[4] - C(2) * S[5] * vp + S[8] * vp * vp;
    gw[i] = static_cast<T>(a1Sa1 + a2Sa2 + b1 * la1 + b2 * la2);
    const C gb1 = wi * la1, gb2 = wi * la2;
    const C gup = wi * (C(2) * sa1_2 + lam[2] * b1) - z * gb1;
    const C gvp = wi * (C(2) * sa2_2 + lam[2] * b2) - z * gb2;
    g3[3 * i] = static_cast<T>(gb1);
    g3[3 * i + 1] = static_cast<T>(gb2);
    g3[3 * i + 2] = static_cast<T>(-up * gb1 - vp * gb2);
    g2[2 * i] = static_cast<T>(gup * kinv[0] + gvp * kinv[3]);
    g2[2 * i + 1] = static_cast<T>(gup * kinv[1] + gvp * kinv[4]);
    k0 += gup * u;
    k1 += gup * v;
    k2 += gup;
    k3 += gvp * u;
    k4 += gvp * v;
    k5 += gvp;
  }
  gkinv[0] = k0;
  gkinv[1] = k1;
  gkinv[2] = k2;
  gkinv[3] = k3;
  gkinv[4] = k4;
  gkinv[5] = k5;
}

// Gradients of one item given grad_t (gt) and what its forward saved. Invalid items (zero
// factor) get all-zero gradients; NaN/Inf in grad_t of a valid item propagate.
// Adjoint: lam = M^-1 gt, dL/dr = lam, dL/dM = -lam t^T (then through the damping term),
// followed by per-point chain rules through (a, b, w) to the inputs and to K^-1, and finally
// dK = -K^-T dKinv K^-T.
template <typename T>
HOST_DEVICE inline void backward_item(const T* gt, const T* p3, const T* p2,
                                      const double kinv[9], bool kinv_ok, const T* w,
                                      const double* saved, int64_t n, double damping, T* g3,
                                      T* g2, T* gK, T* gw) {
  using C = typename PointMath<T>::type;
  const double* L = saved;
  const double* t = saved + 6;
  // An invalid item (zero factor) does not depend on its inputs. A valid item's gradients
  // follow grad_t, non-finite values included.
  if (!(L[0] > 0.0) || !kinv_ok) {
    for (int64_t i = 0; i < n; ++i) {
      g3[3 * i] = g3[3 * i + 1] = g3[3 * i + 2] = T(0);
      g2[2 * i] = g2[2 * i + 1] = T(0);
      gw[i] = T(0);
    }
    for (int i = 0; i < 9; ++i) gK[i] = T(0);
    return;
  }
  double lam[3];
  const double g[3] = {static_cast<double>(gt[0]), static_cast<double>(gt[1]),
                       static_cast<double>(gt[2])};
  chol3_solve(L, g, lam);
  // Symmetric part of dL/dM: S = -(lam t^T + t lam^T) / 2, plus the damping term's
  // contribution c * I where c = damping / 3 * trace(dL/dM_damped).
  double S[9];
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) S[3 * a + b] = -0.5 * (lam[a] * t[b] + t[a] * lam[b]);
  const double c = damping / 3.0 * (S[0] + S[4] + S[8]);
  S[0] += c;
  S[4] += c;
  S[8] += c;
  C kinv_c[9], lam_c[3], S_c[9], gkinv_c[6];
  for (int i = 0; i < 9; ++i) kinv_c[i] = static_cast<C>(kinv[i]);
  for (int i = 0; i < 9; ++i) S_c[i] = static_cast<C>(S[i]);
  for (int i = 0; i < 3; ++i) lam_c[i] = static_cast<C>(lam[i]);
  backward_points<T, C>(p3, p2, w, n, kinv_c, lam_c, S_c, g3, g2, gw, gkinv_c);
  double gkinv[6];  // rows 0 and 1 of dL/dKinv
  for (int i = 0; i < 6; ++i) gkinv[i] = static_cast<double>(gkinv_c[i]);
  // dK = -Kinv^T G Kinv^T with G = [gkinv rows 0, 1; 0 0 0].
  const double G[9] = {gkinv[0], gkinv[1], gkinv[2], gkinv[3], gkinv[4], gkinv[5], 0.0, 0.0, 0.0};
  double dK[9];
  inverse_grad(kinv, G, dK);
  for (int i = 0; i < 9; ++i) gK[i] = static_cast<T>(dK[i]);
}

}  // namespace dlt
}  // namespace dgp_ops
