// HOST_DEVICE marks per-item math shared by the CPU and CUDA kernels.
#pragma once

#if defined(__CUDACC__)
#define HOST_DEVICE __host__ __device__
#else
#define HOST_DEVICE
#endif

namespace dgp_ops {

// Arithmetic rounded once per operation on every device: nvcc contracts a * b + c into one
// fused multiply-add (rounded once) unless the operations are written with these intrinsics,
// and host code compiled for the baseline ISA has no FMA. Code whose results must be the same
// bits on the CPU and on the GPU (the uint8 warp) is written with them.
#if defined(__CUDA_ARCH__)
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
#else
template <typename T>
HOST_DEVICE inline T mul_rn(T a, T b) { return a * b; }
template <typename T>
HOST_DEVICE inline T add_rn(T a, T b) { return a + b; }
template <typename T>
HOST_DEVICE inline T sub_rn(T a, T b) { return a - b; }
template <typename T>
HOST_DEVICE inline T div_rn(T a, T b) { return a / b; }
#endif

}  // namespace dgp_ops
