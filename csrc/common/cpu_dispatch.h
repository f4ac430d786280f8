// The one CPU-feature dispatch of the CPU kernels. A hot loop is written once as an
// always-inline body and wrapped twice, under one pair of names: `<loop>_v3`, compiled with
// DGP_TARGET_V3 for the x86-64-v3 ISA level (AVX2, FMA, BMI2; explicit AVX2 intrinsics are
// allowed there), and `<loop>_baseline` for the baseline ISA; cpu_has_v3() picks one at run
// time (by CPU feature, not CPU model). DGP_FLATTEN inlines the per-item functions into each
// wrapper so that they are vectorised for its ISA.
#pragma once

#include <atomic>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define DGP_HAVE_V3 1
#define DGP_TARGET_V3 __attribute__((target("arch=x86-64-v3")))
#else
#define DGP_TARGET_V3
#endif

#if defined(__GNUC__)
#define DGP_FLATTEN __attribute__((flatten))
#define DGP_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define DGP_FLATTEN
#define DGP_ALWAYS_INLINE inline
#endif

namespace dgp_ops {

// Whether the x86-64-v3 wrappers may run where the CPU has the features (default true). Switched
// off, every hot loop runs its baseline wrapper: the tests compare the two this way.
inline std::atomic<bool>& cpu_v3_enabled() {
  static std::atomic<bool> enabled{true};
  return enabled;
}

// Whether this CPU runs x86-64-v3 code and it is enabled (false on other architectures).
inline bool cpu_has_v3() {
#ifdef DGP_HAVE_V3
  static const bool has = __builtin_cpu_supports("x86-64-v3");
  return has && cpu_v3_enabled().load(std::memory_order_relaxed);
#else
  return false;
#endif
}

}  // namespace dgp_ops
