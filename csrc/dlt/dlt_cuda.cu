// CUDA kernels of the weighted DLT translation ops (dlt_cuda.cuh), registered for the CUDA key.
#include <torch/library.h>

#include "dlt/dlt_cuda.cuh"

namespace dgp_ops {
namespace dlt {

TORCH_LIBRARY_IMPL(dgp_ops, CUDA, m) {
  m.impl("weighted_dlt_translation", &cuda::forward);
  m.impl("weighted_dlt_translation_backward", &cuda::backward);
}

}  // namespace dlt
}  // namespace dgp_ops
