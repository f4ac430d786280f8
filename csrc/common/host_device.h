// HOST_DEVICE marks per-item math shared by the CPU and CUDA kernels.
#pragma once

#if defined(__CUDACC__)
#define HOST_DEVICE __host__ __device__
#else
#define HOST_DEVICE
#endif
