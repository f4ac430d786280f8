// Allocation policy for large tensors that a kernel fills by scattering into zeros (the
// warp's image gradient): fresh zero-filled anonymous memory from the kernel, with
// transparent huge pages requested. That replaces a separate zeroing pass and one page fault
// per 4 KiB page by a few faults per 2 MiB, which pays for gradients of many MiB.
//
// The policy is on by default on Linux for tensors of at least 4 MiB, off with the
// environment variable DGP_OPS_HUGE_PAGES=0 (read once), and compiled out under
// AddressSanitizer (memory that bypasses the allocator has no red zones). When it does not
// apply, try_zeroed_pages returns an undefined tensor and the caller zeroes ordinary memory
// itself (in parallel, by the threads that fill it).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define DGP_NO_HUGE_PAGES 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DGP_NO_HUGE_PAGES 1
#endif
#endif

namespace dgp_ops {

constexpr size_t kHugePageBytes = size_t(2) << 20;
constexpr size_t kHugePageMinBytes = 2 * kHugePageBytes;

inline bool huge_pages_enabled() {
#if defined(__linux__) && !defined(DGP_NO_HUGE_PAGES)
  static const bool on = [] {
    const char* v = std::getenv("DGP_OPS_HUGE_PAGES");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
#else
  return false;
#endif
}

// A zero-filled contiguous CPU tensor in huge-page memory, or undefined (see above).
inline at::Tensor try_zeroed_pages(at::IntArrayRef sizes, const at::TensorOptions& opts) {
#if defined(__linux__) && !defined(DGP_NO_HUGE_PAGES)
  int64_t numel = 1;
  for (const int64_t s : sizes) numel *= s;
  const size_t nbytes = static_cast<size_t>(numel) * opts.dtype().itemsize();
  if (huge_pages_enabled() && nbytes >= kHugePageMinBytes) {
    const size_t len = nbytes + kHugePageBytes;
    void* base = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base != MAP_FAILED) {
      const uintptr_t addr = reinterpret_cast<uintptr_t>(base);
      void* aligned =
          reinterpret_cast<void*>((addr + kHugePageBytes - 1) & ~(kHugePageBytes - 1));
#ifdef MADV_HUGEPAGE
      madvise(aligned, nbytes, MADV_HUGEPAGE);
#endif
      return at::from_blob(
          aligned, sizes, [base, len](void*) { munmap(base, len); }, opts);
    }
  }
#endif
  (void)sizes;
  (void)opts;
  return at::Tensor();
}

}  // namespace dgp_ops
