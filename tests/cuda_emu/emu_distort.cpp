// The distorted warp's CUDA kernels and launchers (csrc/distort/distort_cuda.cuh), compiled for
// the host under the emulation (DGP_CUDA_EMU) and registered as
// dgp_ops_emu::warp_perspective_distorted{,_backward} for CPU tensors.
#include <torch/library.h>

#include "distort/distort_cuda.cuh"

TORCH_LIBRARY_IMPL(dgp_ops_emu, CPU, m) {
  m.impl("warp_perspective_distorted", &dgp_ops::distort::cuda::forward);
  m.impl("warp_perspective_distorted_backward", &dgp_ops::distort::cuda::backward);
}
