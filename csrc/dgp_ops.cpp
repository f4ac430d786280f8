// Every dgp_ops op schema, declared once. Backends register kernels with
// TORCH_LIBRARY_IMPL in csrc/<family>/<family>_{cpu.cpp,cuda.cu}; fake kernels and autograd
// are registered from Python (dgp_ops/<family>.py).
#include <Python.h>
#include <torch/library.h>

// Importing dgp_ops._C runs the static registrations below; the module itself is empty.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

TORCH_LIBRARY(dgp_ops, m) {
  // ---- weighted DLT (csrc/dlt) ----
  m.def(
      "weighted_dlt_translation(Tensor points3d, Tensor points2d, Tensor K, Tensor weights, "
      "float damping) -> (Tensor, Tensor, Tensor)");
  m.def(
      "weighted_dlt_translation_backward(Tensor grad_t, Tensor points3d, Tensor points2d, "
      "Tensor K, Tensor weights, Tensor saved, float damping) -> (Tensor, Tensor, Tensor, "
      "Tensor)");

  // ---- perspective warp (csrc/warp) ----
  m.def(
      "warp_perspective(Tensor image, Tensor H, int out_h, int out_w, str mode, "
      "str padding_mode) -> Tensor");
  m.def(
      "warp_perspective_backward(Tensor grad_output, Tensor image, Tensor H, str mode, "
      "str padding_mode, bool image_requires_grad, bool H_requires_grad) -> (Tensor, Tensor)");
}
