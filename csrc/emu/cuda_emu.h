// Host emulation of the CUDA constructs that dgp_ops's kernels use, so that the real kernel
// bodies (csrc/*/..._cuda.cuh) compile with a host compiler and run, under sanitizers, against
// the CPU kernels. Included through common/gpu.h when DGP_CUDA_EMU is defined; never part of
// the extension itself.
//
// The model:
// - A launch runs its blocks one after another; each block runs one std::thread per CUDA
//   thread (the threads are created once per launch and reused for every block).
// - __syncthreads() is a barrier of the block. Reaching it after a thread of the block has
//   exited, or exiting while others wait at it, is reported (the programming guide requires
//   the barrier to be reached by every thread of the block).
// - __shfl_down_sync(mask, v, delta) exchanges values between the lanes of a warp named in
//   mask; a mask that names a lane which has exited (or never existed), a calling lane missing
//   from the mask, lanes that disagree on the mask, or a source lane outside the mask is
//   reported.
// - atomicAdd / gpuAtomicAdd are real atomic read-modify-writes.
// - Shared memory (DGP_SHARED in common/gpu.h) is one allocation per block and declaration,
//   filled with 0xFF bytes (NaN for floating types) when the block starts, so a read of a slot
//   no thread wrote shows up in the results; each array is its own heap block, so AddressSanitizer
//   sees accesses past its end.
// - A block in which every thread that has not exited waits for another is a deadlock and is
//   reported instead of hanging.
// - Launch limits (grid and block dimensions, shared memory per block) are checked like the
//   hardware checks them; the grid limits can be lowered (limits()) to test batches across them
//   with small shapes.
// Every report names the construct, the block and the thread; the launch then throws
// dgp_emu::Error once the block has finished (later blocks do not run).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// The built-in index variables, one copy per emulated thread.
inline thread_local dim3 threadIdx{0, 0, 0};
inline thread_local dim3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};

namespace dgp_emu {

constexpr unsigned kWarpSize = 32;

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Launch limits checked by launch(); the defaults are the hardware's.
struct Limits {
  int64_t max_grid_x = 2147483647;
  int64_t max_grid_y = 65535;
  int64_t max_grid_z = 65535;
  int64_t max_block_threads = 1024;
  size_t max_shared_bytes = 48 * 1024;
};

inline Limits& limits() {
  static Limits l;
  return l;
}

struct Stats {
  int64_t launches = 0;
  int64_t blocks = 0;
};

inline Stats& stats() {
  static Stats s;
  return s;
}

struct Stream {};

namespace detail {

struct Warp {
  unsigned lanes = 0;    // lanes that exist (a block whose size is not a multiple of 32)
  unsigned exited = 0;   // lanes whose thread has returned from the kernel
  unsigned mask = 0;     // the mask of the shuffle being collected or read
  unsigned arrived = 0;  // lanes that have delivered their value
  unsigned read = 0;     // lanes that have read theirs
  bool reading = false;
  uint64_t round = 0;         // completed collections
  unsigned entry_waiters = 0;  // lanes waiting for the previous round to be read
  uint64_t values[kWarpSize] = {};
  std::condition_variable cv;
};

struct Block {
  std::mutex m;
  std::condition_variable barrier_cv;
  unsigned threads = 0;
  unsigned live = 0;     // threads that have not exited
  unsigned blocked = 0;  // threads waiting that no one has released yet
  unsigned barrier_arrived = 0;
  uint64_t barrier_round = 0;
  int first_exited = -1;
  std::vector<std::unique_ptr<Warp>> warps;
  std::vector<std::unique_ptr<unsigned char[]>> shared;
  std::vector<size_t> shared_sizes;
  size_t shared_bytes = 0;
  bool failed = false;
  std::vector<std::string> errors;
  dim3 index;
};

inline thread_local Block* tls_block = nullptr;
inline thread_local unsigned tls_thread = 0;  // linear index of the thread in its block
inline thread_local size_t tls_shared = 0;    // next shared declaration of this thread

inline std::string where(const Block& b, unsigned t) {
  std::ostringstream s;
  s << "block (" << b.index.x << ", " << b.index.y << ", " << b.index.z << ") thread " << t
    << " (warp " << t / kWarpSize << ", lane " << t % kWarpSize << ")";
  return s.str();
}

// Records a report and releases every waiting thread (caller holds b.m).
inline void fail(Block& b, const std::string& what) {
  if (b.errors.size() < 8) b.errors.push_back(what);
  b.failed = true;
  b.blocked = 0;
  b.barrier_cv.notify_all();
  for (auto& w : b.warps) w->cv.notify_all();
}

// Waits on cv until done() (or the block failed), counting the thread as blocked; reports a
// deadlock when every live thread would then be waiting.
template <typename Done>
void wait(Block& b, std::unique_lock<std::mutex>& lk, std::condition_variable& cv, Done done,
          const char* construct) {
  if (done() || b.failed) return;
  ++b.blocked;
  if (b.blocked >= b.live) {
    fail(b, std::string("deadlock: every thread of the block that has not exited waits, the "
                        "last at ") +
                construct + " in " + where(b, tls_thread));
    return;
  }
  cv.wait(lk, [&] { return done() || b.failed; });
}

template <typename T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>);
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}

template <typename T>
T from_bits(uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof(T));
  return v;
}

inline std::string hex(unsigned mask) {
  std::ostringstream s;
  s << "0x" << std::hex << mask;
  return s.str();
}

// Called when a thread returns from the kernel.
inline void thread_exit(Block& b, unsigned t) {
  std::unique_lock<std::mutex> lk(b.m);
  Warp& w = *b.warps[t / kWarpSize];
  const unsigned bit = 1u << (t % kWarpSize);
  w.exited |= bit;
  --b.live;
  if (b.first_exited < 0) b.first_exited = static_cast<int>(t);
  if (b.failed) return;
  if (b.barrier_arrived > 0) {
    fail(b, "__syncthreads: " + where(b, t) + " exited while other threads of its block wait "
            "at the barrier");
    return;
  }
  if (!w.reading && (w.arrived != 0) && (w.mask & bit) && !(w.arrived & bit)) {
    fail(b, "__shfl_down_sync: " + where(b, t) + " exited while lanes of its warp wait for it "
            "in a shuffle whose mask " + hex(w.mask) + " names it");
    return;
  }
  if (b.live > 0 && b.blocked >= b.live)
    fail(b, "deadlock: " + where(b, t) + " exited and every other live thread waits");
}

}  // namespace detail

// Shared memory: the k-th DGP_SHARED declaration a thread executes is the block's k-th array.
template <typename T>
T& shared() {
  detail::Block& b = *detail::tls_block;
  std::unique_lock<std::mutex> lk(b.m);
  const size_t k = detail::tls_shared++;
  if (k == b.shared.size()) {
    b.shared.emplace_back(new unsigned char[sizeof(T)]);
    std::memset(b.shared.back().get(), 0xFF, sizeof(T));
    b.shared_sizes.push_back(sizeof(T));
    b.shared_bytes += sizeof(T);
    if (b.shared_bytes > limits().max_shared_bytes)
      detail::fail(b, "shared memory: the block declares " + std::to_string(b.shared_bytes) +
                          " bytes, above the limit of " +
                          std::to_string(limits().max_shared_bytes));
  } else if (k > b.shared.size() || b.shared_sizes[k] != sizeof(T)) {
    detail::fail(b, "shared memory: " + detail::where(b, detail::tls_thread) +
                        " declares its shared arrays in another order than its block");
    // Keep going with a private buffer so that the thread can finish.
    thread_local std::vector<std::unique_ptr<unsigned char[]>> scratch;
    scratch.emplace_back(new unsigned char[sizeof(T)]);
    return *reinterpret_cast<T*>(scratch.back().get());
  }
  return *reinterpret_cast<T*>(b.shared[k].get());
}

// Runs body() as the kernel over grid x block. Throws Error on a bad configuration or on any
// report from a block.
template <typename Body>
void launch(dim3 grid, dim3 block, Body&& body) {
  const Limits& lim = limits();
  const int64_t nthreads = int64_t(block.x) * block.y * block.z;
  std::ostringstream cfg;
  cfg << "grid (" << grid.x << ", " << grid.y << ", " << grid.z << "), block (" << block.x
      << ", " << block.y << ", " << block.z << ")";
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || int64_t(grid.x) > lim.max_grid_x ||
      int64_t(grid.y) > lim.max_grid_y || int64_t(grid.z) > lim.max_grid_z)
    throw Error("[cuda-emu] invalid configuration: " + cfg.str() + " (grid limits " +
                std::to_string(lim.max_grid_x) + ", " + std::to_string(lim.max_grid_y) + ", " +
                std::to_string(lim.max_grid_z) + ")");
  if (nthreads <= 0 || nthreads > lim.max_block_threads)
    throw Error("[cuda-emu] invalid configuration: " + cfg.str() + " (at most " +
                std::to_string(lim.max_block_threads) + " threads per block)");
  ++stats().launches;

  detail::Block b;
  b.threads = static_cast<unsigned>(nthreads);
  const unsigned nwarps = (b.threads + kWarpSize - 1) / kWarpSize;
  for (unsigned i = 0; i < nwarps; ++i) b.warps.emplace_back(new detail::Warp);

  // Coordination of the pool: the main thread starts a block by bumping `generation` and
  // waits until every thread has finished it.
  std::mutex pool_m;
  std::condition_variable pool_cv;
  uint64_t generation = 0;
  unsigned finished = 0;
  bool stop = false;
  std::exception_ptr thrown;

  auto worker = [&](unsigned t) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(pool_m);
        pool_cv.wait(lk, [&] { return stop || generation != seen; });
        if (stop) return;
        seen = generation;
      }
      threadIdx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
      blockIdx = b.index;
      blockDim = block;
      gridDim = grid;
      detail::tls_block = &b;
      detail::tls_thread = t;
      detail::tls_shared = 0;
      try {
        body();
      } catch (...) {
        std::lock_guard<std::mutex> lk(pool_m);
        if (!thrown) thrown = std::current_exception();
      }
      detail::thread_exit(b, t);
      detail::tls_block = nullptr;
      std::lock_guard<std::mutex> lk(pool_m);
      if (++finished == b.threads) pool_cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(b.threads);
  for (unsigned t = 0; t < b.threads; ++t) pool.emplace_back(worker, t);

  std::vector<std::string> errors;
  for (unsigned z = 0; z < grid.z && errors.empty() && !thrown; ++z)
    for (unsigned y = 0; y < grid.y && errors.empty() && !thrown; ++y)
      for (unsigned x = 0; x < grid.x && errors.empty() && !thrown; ++x) {
        b.index = dim3(x, y, z);
        b.live = b.threads;
        b.blocked = 0;
        b.barrier_arrived = 0;
        b.first_exited = -1;
        b.shared.clear();
        b.shared_sizes.clear();
        b.shared_bytes = 0;
        for (unsigned i = 0; i < nwarps; ++i) {
          detail::Warp& w = *b.warps[i];
          const unsigned n = std::min(kWarpSize, b.threads - i * kWarpSize);
          w.lanes = n == kWarpSize ? 0xffffffffu : ((1u << n) - 1);
          w.exited = w.mask = w.arrived = w.read = w.entry_waiters = 0;
          w.reading = false;
        }
        ++stats().blocks;
        std::unique_lock<std::mutex> lk(pool_m);
        finished = 0;
        ++generation;
        pool_cv.notify_all();
        pool_cv.wait(lk, [&] { return finished == b.threads; });
        if (b.failed) errors = b.errors;
      }
  {
    std::lock_guard<std::mutex> lk(pool_m);
    stop = true;
    pool_cv.notify_all();
  }
  for (auto& th : pool) th.join();
  if (thrown) std::rethrow_exception(thrown);
  if (!errors.empty()) {
    std::string msg = "[cuda-emu] " + cfg.str() + ":";
    for (const auto& e : errors) msg += "\n  " + e;
    throw Error(msg);
  }
}

}  // namespace dgp_emu

inline void __syncthreads() {
  using namespace dgp_emu::detail;
  Block& b = *tls_block;
  const unsigned t = tls_thread;
  std::unique_lock<std::mutex> lk(b.m);
  if (b.failed) return;
  if (b.first_exited >= 0) {
    fail(b, "__syncthreads: reached by " + where(b, t) + " after thread " +
                std::to_string(b.first_exited) +
                " of its block exited (every thread of the block must reach the barrier)");
    return;
  }
  const uint64_t round = b.barrier_round;
  if (++b.barrier_arrived == b.live) {
    b.blocked -= b.barrier_arrived - 1;
    b.barrier_arrived = 0;
    ++b.barrier_round;
    b.barrier_cv.notify_all();
    return;
  }
  wait(b, lk, b.barrier_cv, [&] { return b.barrier_round != round; }, "__syncthreads");
}

template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = dgp_emu::kWarpSize) {
  using namespace dgp_emu::detail;
  Block& b = *tls_block;
  const unsigned t = tls_thread;
  const unsigned lane = t % dgp_emu::kWarpSize;
  const unsigned bit = 1u << lane;
  Warp& w = *b.warps[t / dgp_emu::kWarpSize];
  std::unique_lock<std::mutex> lk(b.m);
  if (b.failed) return var;
  const char* name = "__shfl_down_sync";
  if (!(mask & bit)) {
    fail(b, std::string(name) + ": " + where(b, t) + " calls it with mask " + hex(mask) +
                " that does not name its own lane");
    return var;
  }
  if (mask & ~w.lanes) {
    fail(b, std::string(name) + ": " + where(b, t) + ": mask " + hex(mask) +
                " names lanes that do not exist in a block of " + std::to_string(b.threads) +
                " threads");
    return var;
  }
  if (mask & w.exited) {
    const unsigned gone = mask & w.exited;
    fail(b, std::string(name) + ": " + where(b, t) + ": mask " + hex(mask) + " names lane " +
                std::to_string(__builtin_ctz(gone)) + ", which has exited");
    return var;
  }
  // Wait until the previous round has been read by every lane.
  if (w.reading) {
    ++w.entry_waiters;
    wait(b, lk, w.cv, [&] { return !w.reading; }, name);
    if (b.failed) return var;
  }
  if (w.arrived == 0) {
    w.mask = mask;
  } else if (w.mask != mask) {
    fail(b, std::string(name) + ": " + where(b, t) + " passes mask " + hex(mask) +
                " while other lanes of its warp passed " + hex(w.mask));
    return var;
  }
  w.values[lane] = to_bits(var);
  w.arrived |= bit;
  const uint64_t round = w.round;
  if (w.arrived == w.mask) {
    b.blocked -= __builtin_popcount(w.mask) - 1;
    w.reading = true;
    w.read = 0;
    ++w.round;
    w.cv.notify_all();
  } else {
    wait(b, lk, w.cv, [&] { return w.round != round; }, name);
    if (b.failed) return var;
  }
  const unsigned seg = lane - lane % static_cast<unsigned>(width);
  const unsigned src = lane + delta;
  T result = var;
  if (src < seg + static_cast<unsigned>(width)) {
    if (!(w.mask & (1u << src))) {
      fail(b, std::string(name) + ": " + where(b, t) + " reads lane " + std::to_string(src) +
                  ", which mask " + hex(w.mask) + " does not name");
      return var;
    }
    result = from_bits<T>(w.values[src]);
  }
  w.read |= bit;
  if (w.read == w.mask) {
    w.reading = false;
    w.arrived = 0;
    b.blocked -= w.entry_waiters;
    w.entry_waiters = 0;
    w.cv.notify_all();
  }
  return result;
}

template <typename T>
T gpuAtomicAdd(T* address, T val) {
  static_assert(std::is_arithmetic_v<T>);
  std::atomic_ref<T> ref(*address);
  T old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(old, static_cast<T>(old + val), std::memory_order_relaxed)) {
  }
  return old;
}

template <typename T>
T atomicAdd(T* address, T val) {
  return gpuAtomicAdd(address, val);
}
