// Argument checks shared by the CPU and CUDA launchers of the DLT ops.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "dlt/dlt_kernel.h"

namespace dgp_ops {
namespace dlt {

// `saved` must be the (B, kSaved) float64 tensor the forward op returned for this batch.
inline void check_saved(const at::Tensor& saved, int64_t B) {
  TORCH_CHECK_VALUE(saved.scalar_type() == at::kDouble && saved.dim() == 2 &&
                        saved.size(0) == B && saved.size(1) == kSaved,
                    "saved must be the (B, ", kSaved,
                    ") float64 tensor returned by weighted_dlt_translation");
}

}  // namespace dlt
}  // namespace dgp_ops
