// CUDA kernels of dgp_ops::warp_perspective and its backward (warp_cuda.cuh), registered for the
// CUDA key.
#include <torch/library.h>

#include "warp/warp_cuda.cuh"

namespace dgp_ops {
namespace warp {

TORCH_LIBRARY_IMPL(dgp_ops, CUDA, m) {
  m.impl("warp_perspective", &cuda::forward);
  m.impl("warp_perspective_backward", &cuda::backward);
}

}  // namespace warp
}  // namespace dgp_ops
