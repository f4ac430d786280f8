// The warp's forward CUDA kernels and launcher (csrc/warp/warp_cuda.cuh), compiled for the
// host under the emulation (DGP_CUDA_EMU) and registered as dgp_ops_emu::warp_perspective for
// CPU tensors, which stand in for device memory.
#include <torch/library.h>

#include "warp/warp_cuda.cuh"

TORCH_LIBRARY_IMPL(dgp_ops_emu, CPU, m) {
  m.impl("warp_perspective", &dgp_ops::warp::cuda::forward);
}
