// Small fixed-size matrix helpers (row-major, double) shared by CPU and CUDA kernels.
#pragma once

#include "common/host_device.h"

namespace dgp_ops {

HOST_DEVICE inline bool is_finite_d(double x) { return x - x == 0.0; }

// Adjugate (transposed cofactor matrix) of a 3x3 matrix; returns det(a). a^-1 = adj / det.
HOST_DEVICE inline double adj3(const double a[9], double out[9]) {
  out[0] = a[4] * a[8] - a[5] * a[7];
  out[1] = a[2] * a[7] - a[1] * a[8];
  out[2] = a[1] * a[5] - a[2] * a[4];
  out[3] = a[5] * a[6] - a[3] * a[8];
  out[4] = a[0] * a[8] - a[2] * a[6];
  out[5] = a[2] * a[3] - a[0] * a[5];
  out[6] = a[3] * a[7] - a[4] * a[6];
  out[7] = a[1] * a[6] - a[0] * a[7];
  out[8] = a[0] * a[4] - a[1] * a[3];
  return a[0] * out[0] + a[1] * out[3] + a[2] * out[6];
}

HOST_DEVICE inline double abs_d(double x) { return x < 0 ? -x : x; }

// The one definition of "invertible" for every 3x3 matrix the ops take (K of the DLT, H of the
// warp) and for the Python checks (exported by _C as MIN_REL_DET): all entries finite and
// |det(A / max|A_ij|)| > kMinRelDet, a test that does not depend on the scale of A.
constexpr double kMinRelDet = 1e-12;

// Whether a is invertible (see kMinRelDet). Writes m = max|a_ij| and adj = adj(a / m), whose
// determinant is returned in det.
HOST_DEVICE inline bool invertible3(const double a[9], double& m, double adj[9], double& det) {
  m = 0.0;
  bool finite = true;
  for (int k = 0; k < 9; ++k) {
    finite = finite && is_finite_d(a[k]);
    m = abs_d(a[k]) > m ? abs_d(a[k]) : m;
  }
  det = 0.0;
  if (!finite || !(m > 0.0)) return false;
  double s[9];
  for (int k = 0; k < 9; ++k) s[k] = a[k] / m;
  det = adj3(s, adj);
  return abs_d(det) > kMinRelDet;
}

// Inverse of an invertible 3x3 matrix (see kMinRelDet) via the adjugate; false otherwise.
HOST_DEVICE inline bool inv3(const double a[9], double out[9]) {
  double m, adj_scaled[9], det_scaled;
  if (!invertible3(a, m, adj_scaled, det_scaled)) return false;
  const double det = adj3(a, out);
  const double id = 1.0 / det;
  bool ok = true;
  for (int i = 0; i < 9; ++i) {
    out[i] *= id;
    ok = ok && is_finite_d(out[i]);
  }
  return ok;
}

// Gradient through a matrix inverse: given Ainv = A^-1 and G = dL/dAinv, writes
// dL/dA = -Ainv^T G Ainv^T.
HOST_DEVICE inline void inverse_grad(const double Ainv[9], const double G[9], double dA[9]) {
  double t[9];  // t = Ainv^T G
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      t[3 * i + j] = Ainv[i] * G[j] + Ainv[3 + i] * G[3 + j] + Ainv[6 + i] * G[6 + j];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      dA[3 * i + j] = -(t[3 * i] * Ainv[3 * j] + t[3 * i + 1] * Ainv[3 * j + 1] +
                        t[3 * i + 2] * Ainv[3 * j + 2]);
}

// Cholesky factor of a symmetric 3x3 matrix given as its upper triangle
// s = {m00, m01, m02, m11, m12, m22}; L = {1/l00, l10, 1/l11, l20, l21, 1/l22}: the diagonal is
// stored inverted so that chol3_solve needs no division (a chain of divisions would dominate
// the latency of a 3x3 solve).
// Returns false unless every pivot exceeds rel_tol * trace (and everything is finite).
HOST_DEVICE inline bool chol3(const double s[6], double rel_tol, double L[6]) {
  const double tr = s[0] + s[3] + s[5];
  if (!is_finite_d(tr) || !(tr > 0.0)) return false;
  const double tol = rel_tol * tr;
  const double d0 = s[0];
  if (!(d0 > tol)) return false;
  L[0] = 1.0 / sqrt(d0);
  L[1] = s[1] * L[0];
  L[3] = s[2] * L[0];
  const double d1 = s[3] - L[1] * L[1];
  if (!(d1 > tol)) return false;
  L[2] = 1.0 / sqrt(d1);
  L[4] = (s[4] - L[3] * L[1]) * L[2];
  const double d2 = s[5] - L[3] * L[3] - L[4] * L[4];
  if (!(d2 > tol)) return false;
  L[5] = 1.0 / sqrt(d2);
  return true;
}

// Solves (L L^T) x = b for the factor returned by chol3 (inverted diagonal).
HOST_DEVICE inline void chol3_solve(const double L[6], const double b[3], double x[3]) {
  const double y0 = b[0] * L[0];
  const double y1 = (b[1] - L[1] * y0) * L[2];
  const double y2 = (b[2] - L[3] * y0 - L[4] * y1) * L[5];
  x[2] = y2 * L[5];
  x[1] = (y1 - L[4] * x[2]) * L[2];
  x[0] = (y0 - L[1] * x[1] - L[3] * x[2]) * L[0];
}

}  // namespace dgp_ops
