// The DLT's CUDA kernels and launchers (csrc/dlt/dlt_cuda.cuh), compiled for the host under the
// emulation (DGP_CUDA_EMU) and registered as dgp_ops_emu::weighted_dlt_translation{,_backward}
// for CPU tensors, which stand in for device memory.
#include <torch/library.h>

#include "dlt/dlt_cuda.cuh"

TORCH_LIBRARY_IMPL(dgp_ops_emu, CPU, m) {
  m.impl("weighted_dlt_translation", &dgp_ops::dlt::cuda::forward);
  m.impl("weighted_dlt_translation_backward", &dgp_ops::dlt::cuda::backward);
}
