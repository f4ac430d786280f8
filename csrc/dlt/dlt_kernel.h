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

// Solves one item. Writes t (zeros when invalid) and returns whether the item is valid.
template <typename T>
HOST_DEVICE inline bool forward_item(const T* p3, const T* p2, const T* K, const T* w, int64_t n,
                                     double damping, T* t) {
  double kinv[9], s[6], r[3], L[6], x[3] = {0.0, 0.0, 0.0};
  bool ok = load_kinv(K, kinv) && accumulate(p3, p2, kinv, w, n, damping, s, r) &&
            chol3(s, kPivotRelTol, L);
  if (ok) {
    chol3_solve(L, r, x);
    ok = is_finite_d(x[0]) && is_finite_d(x[1]) && is_finite_d(x[2]);
  }
  for (int i = 0; i < 3; ++i) t[i] = ok ? static_cast<T>(x[i]) : T(0);
  return ok;
}

// Gradients of one item given grad_t (gt). Invalid items get all-zero gradients.
// Adjoint: lam = M^-1 gt, dL/dr = lam, dL/dM = -lam t^T (then through the damping term),
// followed by per-point chain rules through (a, b, w) to the inputs and to K^-1, and finally
// dK = -K^-T dKinv K^-T.
template <typename T>
HOST_DEVICE inline void backward_item(const T* gt, const T* p3, const T* p2, const T* K,
                                      const T* w, int64_t n, double damping, T* g3, T* g2, T* gK,
                                      T* gw) {
  double kinv[9], s[6], r[3], L[6], lam[3], t[3];
  bool ok = load_kinv(K, kinv) && accumulate(p3, p2, kinv, w, n, damping, s, r) &&
            chol3(s, kPivotRelTol, L);
  if (ok) {
    chol3_solve(L, r, t);
    const double g[3] = {static_cast<double>(gt[0]), static_cast<double>(gt[1]),
                         static_cast<double>(gt[2])};
    chol3_solve(L, g, lam);
    for (int i = 0; i < 3; ++i) ok = ok && is_finite_d(t[i]) && is_finite_d(lam[i]);
  }
  if (!ok) {
    for (int64_t i = 0; i < n; ++i) {
      g3[3 * i] = g3[3 * i + 1] = g3[3 * i + 2] = T(0);
      g2[2 * i] = g2[2 * i + 1] = T(0);
      gw[i] = T(0);
    }
    for (int i = 0; i < 9; ++i) gK[i] = T(0);
    return;
  }
  // Symmetric part of dL/dM: S = -(lam t^T + t lam^T) / 2, plus the damping term's
  // contribution c * I where c = damping / 3 * trace(dL/dM_damped).
  double S[9];
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) S[3 * a + b] = -0.5 * (lam[a] * t[b] + t[a] * lam[b]);
  const double c = damping / 3.0 * (S[0] + S[4] + S[8]);
  S[0] += c;
  S[4] += c;
  S[8] += c;
  double gkinv[6] = {0, 0, 0, 0, 0, 0};  // rows 0 and 1 of dL/dKinv
  for (int64_t i = 0; i < n; ++i) {
    const PointRows pr = point_rows(p3, p2, kinv, w, i);
    const double u = pr.u, v = pr.v, up = pr.up, vp = pr.vp, z = pr.z, wi = pr.w;
    const double b1 = pr.b1, b2 = pr.b2;
    // a1 = [-1, 0, up], a2 = [0, -1, vp]
    const double la1 = -lam[0] + lam[2] * up;  // lam . a1
    const double la2 = -lam[1] + lam[2] * vp;  // lam . a2
    // (S a1)[2] and (S a2)[2]; only the third component of a1/a2 varies.
    const double sa1_2 = -S[6] + S[8] * up;
    const double sa2_2 = -S[7] + S[8] * vp;
    const double a1Sa1 = S[0] - 2.0 * S[2] * up + S[8] * up * up;
    const double a2Sa2 = S[4] - 2.0 * S[5] * vp + S[8] * vp * vp;
    gw[i] = static_cast<T>(a1Sa1 + a2Sa2 + b1 * la1 + b2 * la2);
    const double gb1 = wi * la1, gb2 = wi * la2;
    const double gup = wi * (2.0 * sa1_2 + lam[2] * b1) - z * gb1;
    const double gvp = wi * (2.0 * sa2_2 + lam[2] * b2) - z * gb2;
    g3[3 * i] = static_cast<T>(gb1);
    g3[3 * i + 1] = static_cast<T>(gb2);
    g3[3 * i + 2] = static_cast<T>(-up * gb1 - vp * gb2);
    g2[2 * i] = static_cast<T>(gup * kinv[0] + gvp * kinv[3]);
    g2[2 * i + 1] = static_cast<T>(gup * kinv[1] + gvp * kinv[4]);
    gkinv[0] += gup * u;
    gkinv[1] += gup * v;
    gkinv[2] += gup;
    gkinv[3] += gvp * u;
    gkinv[4] += gvp * v;
    gkinv[5] += gvp;
  }
  // dK = -Kinv^T G Kinv^T with G = [gkinv rows 0, 1; 0 0 0].
  double tmp[9];  // G Kinv^T: tmp[a][b] = sum_c G[a][c] Kinv[b][c]
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      double acc = 0.0;
      if (a < 2)
        for (int c2 = 0; c2 < 3; ++c2) acc += gkinv[3 * a + c2] * kinv[3 * b + c2];
      tmp[3 * a + b] = acc;
    }
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      double acc = 0.0;
      for (int c2 = 0; c2 < 3; ++c2) acc += kinv[3 * c2 + a] * tmp[3 * c2 + b];
      gK[3 * a + b] = static_cast<T>(-acc);
    }
}

}  // namespace dlt
}  // namespace dgp_ops
