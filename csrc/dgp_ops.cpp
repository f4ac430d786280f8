// Every dgp_ops op schema, declared once, and the constants Python shares with the kernels.
// Backends register kernels with TORCH_LIBRARY_IMPL in csrc/<family>/<family>_{cpu.cpp,cuda.cu},
// autograd in csrc/<family>/<family>_autograd.cpp; fake kernels are registered from Python
// (dgp_ops/<family>.py).
// The module uses only Python's limited API (3.10 and later), so one build (a cp310-abi3 wheel)
// serves every supported Python for a given torch.
#define Py_LIMITED_API 0x030A0000
#include <Python.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/cpu_dispatch.h"
#include "common/small_matrix.h"
#include "distort/distort_kernel.h"
#include "dlt/dlt_kernel.h"
#include "warp/warp_kernel.h"

namespace {

PyObject* names_tuple(const char* const* names, int n) {
  PyObject* t = PyTuple_New(n);
  if (t == nullptr) return nullptr;
  for (int i = 0; i < n; ++i) {
    PyObject* s = PyUnicode_FromString(names[i]);
    if (s == nullptr) {
      Py_DECREF(t);
      return nullptr;
    }
    if (PyTuple_SetItem(t, i, s) < 0) {  // steals s
      Py_DECREF(t);
      return nullptr;
    }
  }
  return t;
}

// Adds `value` (a new reference, may be null on error) as module attribute `name`.
bool add(PyObject* m, const char* name, PyObject* value) {
  if (value == nullptr) return false;
  if (PyModule_AddObject(m, name, value) < 0) {
    Py_DECREF(value);
    return false;
  }
  return true;
}

// _set_cpu_v3_enabled(flag: bool) -> bool: allows (True) or forbids (False) the x86-64-v3
// kernels and returns the previous setting. For comparing them with the baseline kernels.
PyObject* set_cpu_v3_enabled(PyObject*, PyObject* arg) {
  const int flag = PyObject_IsTrue(arg);
  if (flag < 0) return nullptr;
  const bool previous = dgp_ops::cpu_v3_enabled().exchange(flag != 0);
  return PyBool_FromLong(previous);
}

PyMethodDef module_methods[] = {
    {"_set_cpu_v3_enabled", set_cpu_v3_enabled, METH_O,
     "Allow (True) or forbid (False) the x86-64-v3 CPU kernels; returns the previous setting."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

// Importing dgp_ops._C runs the static registrations below; the module holds the constants.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1,
                                               module_methods};
  PyObject* m = PyModule_Create(&module_def);
  if (m == nullptr) return nullptr;
  namespace dlt = dgp_ops::dlt;
  namespace warp = dgp_ops::warp;
  const bool ok =
      add(m, "DLT_SAVED_PER_ITEM", PyLong_FromLong(dlt::kSaved)) &&
      add(m, "DLT_PIVOT_REL_TOL", PyFloat_FromDouble(dlt::kPivotRelTol)) &&
      add(m, "MIN_REL_DET", PyFloat_FromDouble(dgp_ops::kMinRelDet)) &&
      add(m, "MAX_INT32_ELEMENTS", PyLong_FromLongLong(dgp_ops::checks::kMaxInt32Elements)) &&
      add(m, "WARP_MIN_W", PyFloat_FromDouble(warp::kMinW)) &&
      add(m, "WARP_MODES", names_tuple(warp::kModeNames, warp::kNumModes)) &&
      add(m, "WARP_PADDING_MODES", names_tuple(warp::kPaddingNames, warp::kNumPaddings)) &&
      add(m, "LENS_MODELS",
          names_tuple(dgp_ops::distort::kModelNames, dgp_ops::distort::kNumModels));
  if (!ok) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}

// Shapes: B items, N points, C channels. Every op checks its arguments before touching memory
// (csrc/<family>/<family>_checks.h, mirrored by the fake kernels in dgp_ops/<family>.py), takes
// any strides, and reads no value on the host; invalid values give defined results (below).
TORCH_LIBRARY(dgp_ops, m) {
  // Every op keeps to the PT2 contract (fake kernels, no data-dependent output shapes, no
  // aliasing), which torch.export and inductor read from this tag.
  const std::vector<at::Tag> kTags = {at::Tag::pt2_compliant_tag};
  // ---- weighted DLT (csrc/dlt) ----
  // points3d (B, N, 3) root-relative points, N >= 2; points2d (B, N, 2) pixels; K (B, 3, 3)
  // (a batch-expanded K is read in place); weights (B, N); all one float dtype and device;
  // damping >= 0 (finite).
  // Returns t (B, 3) in the input dtype; valid (B,) bool: false where K is not invertible, an
  // input of the item is not finite, a weight is negative or the normal matrix is too close to
  // singular (t = 0 and zero gradients there); saved (B, 9) float64, what the backward needs.
  m.def(
      "weighted_dlt_translation(Tensor points3d, Tensor points2d, Tensor K, Tensor weights, "
      "float damping=0.0) -> (Tensor, Tensor, Tensor)",
      kTags);
  // grad_t (B, 3) = dL/dt; the forward's inputs and its `saved` (B, 9) float64.
  // Returns dL/dpoints3d (B, N, 3), dL/dpoints2d (B, N, 2), dL/dK (B, 3, 3), dL/dweights
  // (B, N), contiguous, all zero for invalid items.
  m.def(
      "weighted_dlt_translation_backward(Tensor grad_t, Tensor points3d, Tensor points2d, "
      "Tensor K, Tensor weights, Tensor saved, float damping=0.0) -> (Tensor, Tensor, Tensor, "
      "Tensor)",
      kTags);

  // ---- perspective warp (csrc/warp) ----
  // image (B, C, H, W) float32/float64, or uint8 (NCHW or channels-last memory read in place);
  // H (B, 3, 3) source pixels -> output pixels, float32/float64 (the image's dtype for a float
  // image); out_h, out_w > 0 with out_h * out_w < 2^31; mode 'bilinear' | 'nearest';
  // padding_mode 'zeros' | 'border' | 'reflection'.
  // Returns (B, C, out_h, out_w) contiguous in the image's dtype; an item whose H is not
  // invertible is all zeros.
  m.def(
      "warp_perspective(Tensor image, Tensor H, int out_h, int out_w, str mode='bilinear', "
      "str padding_mode='zeros') -> Tensor",
      kTags);
  // grad_output (B, C, out_h, out_w) any strides; image (B, C, H, W) float, H (B, 3, 3) as in
  // the forward; the two flags say which gradients to compute.
  // Returns dL/dimage (B, C, H, W) and dL/dH (B, 3, 3), each an empty (0,) tensor when not
  // asked for; dL/dH is zero for 'nearest' and for items whose H is not invertible.
  m.def(
      "warp_perspective_backward(Tensor grad_output, Tensor image, Tensor H, str mode, "
      "str padding_mode, bool image_requires_grad, bool H_requires_grad) -> (Tensor, Tensor)",
      kTags);

  // ---- perspective warp of a distorted image (csrc/distort) ----
  // As warp_perspective, with H mapping the source camera's ideal (undistorted) pinhole pixels
  // to output pixels, K (B, 3, 3) the source camera's intrinsics [[fx, s, cx], [0, fy, cy],
  // [0, 0, 1]] and dist (B, D) its lens coefficients in OpenCV's order, both with H's dtype and
  // device; model 'pinhole' (D = 4, 5 or 8: k1, k2, p1, p2[, k3[, k4, k5, k6]]) or 'fisheye'
  // (D = 4: k1, k2, k3, k4). Output pixel p samples the source at K distort(K^-1 H^-1 p).
  // An item whose K is not of that form (or not finite, fx or fy zero), whose coefficients are
  // not finite or whose H is not invertible is all zeros; an item whose coefficients are all
  // zero gives warp_perspective's values.
  m.def(
      "warp_perspective_distorted(Tensor image, Tensor H, Tensor K, Tensor dist, int out_h, "
      "int out_w, str model='pinhole', str mode='bilinear', str padding_mode='zeros') -> Tensor",
      kTags);
  // As warp_perspective_backward; no gradient for K or dist.
  m.def(
      "warp_perspective_distorted_backward(Tensor grad_output, Tensor image, Tensor H, "
      "Tensor K, Tensor dist, str model, str mode, str padding_mode, bool image_requires_grad, "
      "bool H_requires_grad) -> (Tensor, Tensor)",
      kTags);
}
