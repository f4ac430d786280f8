// Per-item math of the weighted DLT translation solve, shared by the CPU and CUDA kernels: the
// CPU runs an item in one thread (forward_item, backward_item), the GPU in one warp whose
// lanes share its points (add_points, backward_points with STEP = 32) and finish in lane 0.
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

// The sums over one item's points that make up its normal equations, in double. Points may be
// split among threads whose sums are then added field by field; solve_item finishes.
struct NormalSums {
  double sw = 0, su = 0, sv = 0, suu = 0, r0 = 0, r1 = 0, r2 = 0;
  double negative = 0;  // number of negative weights: such an item is invalid

  HOST_DEVICE void add(const PointRows& p) {
    sw += p.w;
    su += p.w * p.up;
    sv += p.w * p.vp;
    suu += p.w * (p.up * p.up + p.vp * p.vp);
    r0 -= p.w * p.b1;
    r1 -= p.w * p.b2;
    r2 += p.w * (p.up * p.b1 + p.vp * p.b2);
    negative += p.w < 0.0 ? 1.0 : 0.0;
  }
};

// Adds points first, first + STEP, ... < n of an item (STEP = 1 on the CPU, the warp size on
// the GPU, where lane l takes points l, l + 32, ...).
template <int STEP, typename T>
HOST_DEVICE inline void add_points(const T* p3, const T* p2, const double kinv[9], const T* w,
                                   int64_t first, int64_t n, NormalSums& s) {
  for (int64_t i = first; i < n; i += STEP) s.add(point_rows(p3, p2, kinv, w, i));
}

// Number of doubles the forward saves per item for the backward: the Cholesky factor of the
// damped normal matrix as chol3 writes it (6, diagonal inverted) and the solution in double
// (3); all zero for an invalid item.
constexpr int kSaved = 9;

// Solves one item from its sums. Writes t (zeros when invalid) and the saved factor and
// solution, and returns whether the item is valid: K invertible (kinv_ok), no negative weight,
// finite sums and every Cholesky pivot above kPivotRelTol * trace.
template <typename T>
HOST_DEVICE inline bool solve_item(const NormalSums& q, bool kinv_ok, double damping, T* t,
                                   double* saved) {
  const double lam = damping * (2.0 * q.sw + q.suu) / 3.0;
  const double s[6] = {q.sw + lam, 0.0, -q.su, q.sw + lam, -q.sv, q.suu + lam};
  const double r[3] = {q.r0, q.r1, q.r2};
  bool ok = kinv_ok && q.negative == 0.0;
  for (int i = 0; i < 6; ++i) ok = ok && is_finite_d(s[i]);
  for (int i = 0; i < 3; ++i) ok = ok && is_finite_d(r[i]);
  double L[6], x[3] = {0.0, 0.0, 0.0};
  ok = ok && chol3(s, kPivotRelTol, L);
  if (ok) {
    chol3_solve(L, r, x);
    ok = is_finite_d(x[0]) && is_finite_d(x[1]) && is_finite_d(x[2]);
  }
  for (int i = 0; i < 3; ++i) t[i] = ok ? static_cast<T>(x[i]) : T(0);
  for (int i = 0; i < 6; ++i) saved[i] = ok ? L[i] : 0.0;
  for (int i = 0; i < 3; ++i) saved[6 + i] = ok ? x[i] : 0.0;
  return ok;
}

// The whole forward of one item in one thread (the CPU kernel).
// kinv: K^-1 of the item, kinv_ok: whether K was invertible (see load_kinv).
template <typename T>
HOST_DEVICE inline bool forward_item(const T* p3, const T* p2, const double kinv[9],
                                     bool kinv_ok, const T* w, int64_t n, double damping, T* t,
                                     double* saved) {
  NormalSums q;
  if (kinv_ok) add_points<1>(p3, p2, kinv, w, 0, n, q);
  return solve_item(q, kinv_ok, damping, t, saved);
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

// The per-point part of the backward over points first, first + STEP, ... < n: given
// lam = M^-1 gt, the symmetric dL/dM (S, 3x3) and K^-1, writes the gradients of those points'
// inputs and returns their part of rows 0 and 1 of dL/dKinv (gkinv, accumulated in C).
template <int STEP, typename T, typename C>
HOST_DEVICE inline void backward_points(const T* __restrict__ p3, const T* __restrict__ p2,
                                        const T* __restrict__ w, int64_t first, int64_t n,
                                        const C kinv[9], const C lam[3], const C S[9],
                                        T* __restrict__ g3, T* __restrict__ g2,
                                        T* __restrict__ gw, C gkinv[6]) {
  C k0 = 0, k1 = 0, k2 = 0, k3 = 0, k4 = 0, k5 = 0;
  for (int64_t i = first; i < n; i += STEP) {
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

// Zero gradients for points first, first + STEP, ... < n (an invalid item).
template <int STEP, typename T>
HOST_DEVICE inline void zero_point_grads(int64_t first, int64_t n, T* g3, T* g2, T* gw) {
  for (int64_t i = first; i < n; i += STEP) {
    g3[3 * i] = g3[3 * i + 1] = g3[3 * i + 2] = T(0);
    g2[2 * i] = g2[2 * i + 1] = T(0);
    gw[i] = T(0);
  }
}

// What the per-point backward of a valid item needs, in its arithmetic type C: K^-1,
// lam = M^-1 gt and the symmetric dL/dM (S).
template <typename C>
struct BackwardTerms {
  C kinv[9], lam[3], S[9];
};

// Whether an item's gradients depend on its inputs: it was valid (non-zero factor) and K is
// invertible. Invalid items get all-zero gradients.
HOST_DEVICE inline bool has_gradient(const double* saved, bool kinv_ok) {
  return saved[0] > 0.0 && kinv_ok;
}

// Adjoint of the solve: lam = M^-1 gt, dL/dr = lam, dL/dM = -lam t^T (then through the damping
// term); non-finite values of gt propagate.
template <typename T, typename C>
HOST_DEVICE inline BackwardTerms<C> backward_terms(const T* gt, const double kinv[9],
                                                   const double* saved, double damping) {
  const double* L = saved;
  const double* t = saved + 6;
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
  BackwardTerms<C> bt;
  for (int i = 0; i < 9; ++i) bt.kinv[i] = static_cast<C>(kinv[i]);
  for (int i = 0; i < 9; ++i) bt.S[i] = static_cast<C>(S[i]);
  for (int i = 0; i < 3; ++i) bt.lam[i] = static_cast<C>(lam[i]);
  return bt;
}

// dK = -K^-T dKinv K^-T from rows 0 and 1 of dL/dKinv (gkinv).
template <typename T, typename C>
HOST_DEVICE inline void k_grad(const C gkinv_c[6], const double kinv[9], T* gK) {
  const double G[9] = {static_cast<double>(gkinv_c[0]), static_cast<double>(gkinv_c[1]),
                       static_cast<double>(gkinv_c[2]), static_cast<double>(gkinv_c[3]),
                       static_cast<double>(gkinv_c[4]), static_cast<double>(gkinv_c[5]),
                       0.0, 0.0, 0.0};
  double dK[9];
  inverse_grad(kinv, G, dK);
  for (int i = 0; i < 9; ++i) gK[i] = static_cast<T>(dK[i]);
}

// The whole backward of one item in one thread (the CPU kernel), given grad_t (gt) and what
// its forward saved: backward_terms, backward_points over every point, k_grad.
template <typename T>
HOST_DEVICE inline void backward_item(const T* gt, const T* p3, const T* p2,
                                      const double kinv[9], bool kinv_ok, const T* w,
                                      const double* saved, int64_t n, double damping, T* g3,
                                      T* g2, T* gK, T* gw) {
  using C = typename PointMath<T>::type;
  if (!has_gradient(saved, kinv_ok)) {
    zero_point_grads<1>(0, n, g3, g2, gw);
    for (int i = 0; i < 9; ++i) gK[i] = T(0);
    return;
  }
  const BackwardTerms<C> bt = backward_terms<T, C>(gt, kinv, saved, damping);
  C gkinv[6];
  backward_points<1>(p3, p2, w, 0, n, bt.kinv, bt.lam, bt.S, g3, g2, gw, gkinv);
  k_grad<T>(gkinv, kinv, gK);
}

}  // namespace dlt
}  // namespace dgp_ops
