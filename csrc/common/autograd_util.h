// Helpers of the C++ autograd kernels (TORCH_LIBRARY_IMPL(dgp_ops, Autograd, ...)): each op's
// forward is a torch::autograd::Function that calls the op again below the autograd key, and
// its backward calls the op's backward op through a Function that refuses to be
// differentiated (double backward raises instead of silently returning zeros).
#pragma once

#include <c10/util/Exception.h>

namespace dgp_ops {

[[noreturn]] inline void double_backward_not_supported(const char* op) {
  TORCH_CHECK_NOT_IMPLEMENTED(false, op,
                              ": double backward (differentiating its gradient, e.g. for a "
                              "Hessian or create_graph=True) is not supported");
  __builtin_unreachable();
}

}  // namespace dgp_ops
