// Argument checks shared by the launchers of every op. Each raises the Python exception a
// caller expects (ValueError for shapes, devices and values, TypeError for dtypes) with a
// message that names the op and the argument, before any kernel touches memory.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

namespace dgp_ops {
namespace checks {

// A named tensor argument of an op: the op's name, the argument's name, the tensor.
struct Arg {
  const char* op;
  const char* name;
  const at::Tensor& t;
};

// A dtype as Python spells it ("torch.float32"), so that these messages and the fake kernels'
// are the same text.
inline std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "torch.float32";
    case at::kDouble: return "torch.float64";
    case at::kHalf: return "torch.float16";
    case at::kBFloat16: return "torch.bfloat16";
    case at::kByte: return "torch.uint8";
    case at::kChar: return "torch.int8";
    case at::kShort: return "torch.int16";
    case at::kInt: return "torch.int32";
    case at::kLong: return "torch.int64";
    case at::kBool: return "torch.bool";
    default: return std::string("torch.") + c10::toString(t);
  }
}

inline void defined(const Arg& a) {
  TORCH_CHECK_VALUE(a.t.defined(), a.op, ": ", a.name, " must be a tensor, got None");
}

// Rank `dim` and, where `sizes[i] >= 0`, size i equal to sizes[i]; `shape` is the expected
// shape spelled out for the message, e.g. "(B, N, 3)".
inline void shape(const Arg& a, std::initializer_list<int64_t> sizes, const char* shape) {
  defined(a);
  bool ok = a.t.dim() == static_cast<int64_t>(sizes.size());
  int64_t i = 0;
  for (const int64_t s : sizes) {
    if (!ok) break;
    ok = s < 0 || a.t.size(i) == s;
    ++i;
  }
  std::string expected;
  i = 0;
  for (const int64_t s : sizes) {
    expected += (i++ == 0 ? "" : ", ");
    expected += s < 0 ? std::string("?") : std::to_string(s);
  }
  TORCH_CHECK_VALUE(ok, a.op, ": ", a.name, " must have shape ", shape, " = (", expected,
                    "), got ", a.t.sizes());
}

// float32 or float64, or float16/bfloat16 (computed in float32, common/reduced_precision.h).
inline void floating(const Arg& a) {
  const at::ScalarType t = a.t.scalar_type();
  TORCH_CHECK_TYPE(t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16,
                   a.op, ": ", a.name, " must be float16, bfloat16, float32 or float64, got ",
                   dtype_name(t));
}

// Same dtype and device as the reference argument.
inline void like(const Arg& a, const Arg& ref) {
  TORCH_CHECK_TYPE(a.t.scalar_type() == ref.t.scalar_type(), a.op, ": ", a.name,
                   " has dtype ", dtype_name(a.t.scalar_type()), " but ", ref.name, " has ",
                   dtype_name(ref.t.scalar_type()));
  TORCH_CHECK_VALUE(a.t.device() == ref.t.device(), a.op, ": ", a.name, " is on ",
                    a.t.device(), " but ", ref.name, " is on ", ref.t.device());
}

inline void same_device(const Arg& a, const Arg& ref) {
  TORCH_CHECK_VALUE(a.t.device() == ref.t.device(), a.op, ": ", a.name, " is on ",
                    a.t.device(), " but ", ref.name, " is on ", ref.t.device());
}

// Elements that one item's int32 offsets may address.
constexpr int64_t kMaxInt32Elements = (int64_t(1) << 31) - 1;

}  // namespace checks
}  // namespace dgp_ops
