// Every dgp_ops op schema, declared once, and the constants Python shares with the kernels.
// Backends register kernels with TORCH_LIBRARY_IMPL in csrc/<family>/<family>_{cpu.cpp,cuda.cu},
// autograd in csrc/<family>/<family>_autograd.cpp; fake kernels are registered from Python
// (dgp_ops/<family>.py).
#include <Python.h>
#include <torch/library.h>

#include "common/cpu_dispatch.h"
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
    PyTuple_SET_ITEM(t, i, s);
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
      add(m, "WARP_MIN_REL_DET", PyFloat_FromDouble(warp::kMinRelDet)) &&
      add(m, "WARP_MIN_W", PyFloat_FromDouble(warp::kMinW)) &&
      add(m, "WARP_MODES", names_tuple(warp::kModeNames, warp::kNumModes)) &&
      add(m, "WARP_PADDING_MODES", names_tuple(warp::kPaddingNames, warp::kNumPaddings));
  if (!ok) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}

TORCH_LIBRARY(dgp_ops, m) {
  // ---- weighted DLT (csrc/dlt) ----
  m.def(
      "weighted_dlt_translation(Tensor points3d, Tensor points2d, Tensor K, Tensor weights, "
      "float damping=0.0) -> (Tensor, Tensor, Tensor)");
  m.def(
      "weighted_dlt_translation_backward(Tensor grad_t, Tensor points3d, Tensor points2d, "
      "Tensor K, Tensor weights, Tensor saved, float damping=0.0) -> (Tensor, Tensor, Tensor, "
      "Tensor)");

  // ---- perspective warp (csrc/warp) ----
  m.def(
      "warp_perspective(Tensor image, Tensor H, int out_h, int out_w, str mode='bilinear', "
      "str padding_mode='zeros') -> Tensor");
  m.def(
      "warp_perspective_backward(Tensor grad_output, Tensor image, Tensor H, str mode, "
      "str padding_mode, bool image_requires_grad, bool H_requires_grad) -> (Tensor, Tensor)");
}
