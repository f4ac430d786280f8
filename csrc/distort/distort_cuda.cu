// CUDA kernels of dgp_ops::warp_perspective_distorted and its backward (distort_cuda.cuh),
// registered for the CUDA key.
#include <torch/library.h>

#include "distort/distort_cuda.cuh"

namespace dgp_ops {
namespace distort {

TORCH_LIBRARY_IMPL(dgp_ops, CUDA, m) {
  m.impl("warp_perspective_distorted", &cuda::forward);
  m.impl("warp_perspective_distorted_backward", &cuda::backward);
}

}  // namespace distort
}  // namespace dgp_ops
