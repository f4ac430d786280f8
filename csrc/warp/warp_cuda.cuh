// CUDA kernels of dgp_ops::warp_perspective and its backward, and their launchers, written
// against common/gpu.h so that nvcc compiles them into the extension (warp_cuda.cu) and a host
// compiler runs them under the emulation of the tests (tests/cuda_emu).
//
// One thread per output pixel around the per-pixel functions of warp_kernel.h; the item is
// blockIdx.y, in launches of at most 65,535 items each. The per-item parameters (ItemParams)
// are computed once per item by prepare_kernel into a device buffer that the pixel kernels
// read. Backward: the image gradient is scattered with atomic adds (not deterministic; with
// torch.use_deterministic_algorithms(True) asking for it raises); dL/dH is deterministic: each
// block reduces its pixels' 9 sums in a fixed order (warp shuffles, then shared memory) into
// its own slot, and finish_h_kernel adds an item's blocks in order before turning dL/dN into
// dL/dH. Values are never read on the host.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Dispatch.h>

#include <tuple>

#include "common/gpu.h"
#include "common/reduced_precision.h"
#include "warp/warp_checks.h"
#include "warp/warp_kernel.h"

namespace dgp_ops {
namespace warp {
namespace cuda {

constexpr int kThreads = 256;  // pixels per block
constexpr int kWarps = kThreads / gpu::kWarpSize;
static_assert(kThreads % gpu::kWarpSize == 0 && kThreads <= gpu::kMaxBlockThreads,
              "a pixel block is a whole number of warps");
static_assert(kWarps <= gpu::kWarpSize, "warp 0 reduces one partial sum per warp of the block");
constexpr int kItemThreads = 128;  // items per block of the per-item kernels
static_assert(kItemThreads % gpu::kWarpSize == 0 && kItemThreads <= gpu::kMaxBlockThreads,
              "an item block is a whole number of warps");

template <typename T>
__global__ void prepare_kernel(const T* __restrict__ H, ItemParams* __restrict__ params,
                               int64_t first, int64_t end, double ref_x, double ref_y) {
  const int64_t b = first + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= end) return;
  params[b] = prepare_item<T>(H + b * 9, ref_x, ref_y);
}

template <typename T>
__device__ __forceinline__ void load_n(const ItemParams& p, T N[9]) {
  for (int k = 0; k < 9; ++k) N[k] = static_cast<T>(p.N[k]);
}

template <typename T, int INTERP, int PAD>
__global__ void forward_kernel(const T* __restrict__ img, const ItemParams* __restrict__ params,
                               T* __restrict__ out, int64_t first, int64_t C, int64_t H,
                               int64_t W, int64_t oh, int64_t ow) {
  const int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t b = first + blockIdx.y;
  const int64_t out_plane = oh * ow;
  if (pix >= out_plane) return;
  const ItemParams& p = params[b];
  const int64_t y = pix / ow, x = pix % ow;
  T* o = out + b * C * out_plane + pix;
  T N[9];
  load_n(p, N);
  Footprint<T> f;
  if (p.valid &&
      footprint<T, INTERP, PAD>(N, static_cast<T>(x), static_cast<T>(y), H, W, f)) {
    sample_pixel<T, INTERP, PAD>(f, img + b * C * H * W, C, W, H * W, o, out_plane);
  } else {
    for (int64_t c = 0; c < C; ++c) o[c * out_plane] = T(0);
  }
}

// uint8 images with strides sb (item), sc, sy, sx (NCHW or channels-last memory read in place).
template <int INTERP, int PAD>
__global__ void forward_kernel_u8(const uint8_t* __restrict__ img,
                                  const ItemParams* __restrict__ params,
                                  uint8_t* __restrict__ out, int64_t first, int64_t C, int64_t H,
                                  int64_t W, int64_t sb, int64_t sc, int64_t sy, int64_t sx,
                                  int64_t oh, int64_t ow) {
  const int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t b = first + blockIdx.y;
  const int64_t out_plane = oh * ow;
  if (pix >= out_plane) return;
  const ItemParams& p = params[b];
  uint8_t* o = out + b * C * out_plane + pix;
  if (!p.valid) {
    for (int64_t c = 0; c < C; ++c) o[c * out_plane] = 0;
    return;
  }
  float Nf[9];
  load_n(p, Nf);
  const int64_t y = pix / ow, x = pix % ow;
  warp_pixel_u8<INTERP, PAD>(p.N, Nf, u8_row_terms(Nf, y), x, y, img + b * sb, C, H, W, sc, sy,
                             sx, o, out_plane);
}

struct AtomicAdd {
  template <typename T>
  __device__ void operator()(T* p, T v) const {
    gpuAtomicAdd(p, v);
  }
};

// gimg: the image gradient (nullptr: not asked for); partial: (B, gridDim.x, 9) per-block sums
// of dL/dN (nullptr: dL/dH not asked for). gout has strides gs = (item, channel, row, column),
// any of which may be 0 (an expanded gradient).
template <typename T, int INTERP, int PAD>
__global__ void backward_kernel(const T* __restrict__ gout, int64_t gsb, int64_t gsc,
                                int64_t gsy, int64_t gsx, const T* __restrict__ img,
                                const ItemParams* __restrict__ params, T* __restrict__ gimg,
                                double* __restrict__ partial, int64_t first, int64_t C,
                                int64_t H, int64_t W, int64_t oh, int64_t ow) {
  const int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t b = first + blockIdx.y;
  const int64_t out_plane = oh * ow, plane = H * W;
  const bool need_h = partial != nullptr;
  T dN[9] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  // Threads past the last pixel take part in the reduction below with zero sums.
  if (pix < out_plane) {
    const ItemParams& p = params[b];
    const int64_t y = pix / ow, x = pix % ow;
    const T xx = static_cast<T>(x), yy = static_cast<T>(y);
    T N[9];
    load_n(p, N);
    Footprint<T> f;
    if (p.valid && footprint<T, INTERP, PAD>(N, xx, yy, H, W, f)) {
      backward_pixel<T, INTERP, PAD>(f, xx, yy, img + b * C * plane,
                                     gimg != nullptr ? gimg + b * C * plane : nullptr,
                                     gout + b * gsb + y * gsy + x * gsx, C, W, plane, gsc,
                                     need_h, dN, AtomicAdd{});
    }
  }
  if (!need_h) return;  // the same for every thread of the launch
  gpu::block_sum<kWarps>(dN, partial + (b * gridDim.x + blockIdx.x) * 9);
}

// dL/dH of items [first, end) from their blocks' partial sums, added in block order.
template <typename T>
__global__ void finish_h_kernel(const ItemParams* __restrict__ params,
                                const double* __restrict__ partial, int64_t blocks,
                                T* __restrict__ gH, int64_t first, int64_t end) {
  const int64_t b = first + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= end) return;
  double dN[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  const double* q = partial + b * blocks * 9;
  for (int64_t j = 0; j < blocks; ++j, q += 9)
    for (int k = 0; k < 9; ++k) dN[k] += q[k];
  double dH[9];
  finish_h_grad(params[b], dN, dH);
  for (int k = 0; k < 9; ++k) gH[b * 9 + k] = static_cast<T>(dH[k]);
}

inline const ItemParams* params_of(const at::Tensor& t) {
  return reinterpret_cast<const ItemParams*>(t.const_data_ptr<uint8_t>());
}

// The (B, sizeof(ItemParams)) byte buffer of the items' parameters for an oh x ow output,
// filled on the device.
inline at::Tensor prepare_params(const at::Tensor& Hc, int64_t oh, int64_t ow,
                                 gpu::Stream stream) {
  const int64_t B = Hc.size(0);
  at::Tensor params = at::empty({B, static_cast<int64_t>(sizeof(ItemParams))},
                                Hc.options().dtype(at::kByte));
  auto* out = reinterpret_cast<ItemParams*>(params.mutable_data_ptr<uint8_t>());
  AT_DISPATCH_FLOATING_TYPES(Hc.scalar_type(), "warp_prepare_cuda", [&] {
    gpu::for_each_launch_x(B, kItemThreads, [&](int64_t first, int64_t end, dim3 grid) {
      gpu::launch(prepare_kernel<scalar_t>, grid, dim3(kItemThreads), stream,
                  Hc.const_data_ptr<scalar_t>(), out, first, end,
                  0.5 * static_cast<double>(ow - 1), 0.5 * static_cast<double>(oh - 1));
    });
  });
  return params;
}

inline int64_t pixel_blocks(int64_t oh, int64_t ow) { return (oh * ow + kThreads - 1) / kThreads; }

inline at::Tensor forward(const at::Tensor& image, const at::Tensor& H, int64_t out_h,
                          int64_t out_w, c10::string_view mode, c10::string_view padding_mode) {
  int interp, pad;
  std::tie(interp, pad) = check_forward_args(image, H, out_h, out_w, mode, padding_mode);
  if (is_reduced(H))  // a half image has a half H; a uint8 image may have one
    return in_float32(H.scalar_type(), forward, image, H, out_h, out_w, mode, padding_mode);
  const gpu::DeviceGuard guard(image.device());
  const bool u8 = image.scalar_type() == at::kByte;
  // uint8 images are read in place in NCHW or channels-last memory, as on the CPU.
  const at::Tensor img =
      u8 && image.is_contiguous(at::MemoryFormat::ChannelsLast) ? image : image.contiguous();
  const at::Tensor Hc = H.contiguous();
  const int64_t B = img.size(0), C = img.size(1);
  at::Tensor out = at::empty({B, C, out_h, out_w}, img.options());
  if (out.numel() == 0) return out;
  const auto stream = gpu::current_stream();
  const at::Tensor params = prepare_params(Hc, out_h, out_w, stream);
  const ItemParams* pp = params_of(params);
  const int64_t blocks_x = pixel_blocks(out_h, out_w);
  if (u8) {
    dispatch_modes(interp, pad, [&](auto I, auto P) {
      gpu::for_each_launch_y(B, blocks_x, [&](int64_t first, dim3 grid) {
        gpu::launch(forward_kernel_u8<decltype(I)::value, decltype(P)::value>, grid,
                    dim3(kThreads), stream, img.const_data_ptr<uint8_t>(), pp,
                    out.mutable_data_ptr<uint8_t>(), first, C, img.size(2), img.size(3),
                    img.stride(0), img.stride(1), img.stride(2), img.stride(3), out_h, out_w);
      });
    });
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_cuda", [&] {
    dispatch_modes(interp, pad, [&](auto I, auto P) {
      gpu::for_each_launch_y(B, blocks_x, [&](int64_t first, dim3 grid) {
        gpu::launch(forward_kernel<scalar_t, decltype(I)::value, decltype(P)::value>, grid,
                    dim3(kThreads), stream, img.const_data_ptr<scalar_t>(), pp,
                    out.mutable_data_ptr<scalar_t>(), first, C, img.size(2), img.size(3), out_h,
                    out_w);
      });
    });
  });
  return out;
}

inline std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad_output,
                                                   const at::Tensor& image, const at::Tensor& H,
                                                   c10::string_view mode,
                                                   c10::string_view padding_mode,
                                                   bool image_requires_grad,
                                                   bool H_requires_grad) {
  int interp, pad;
  std::tie(interp, pad) = check_backward_args(grad_output, image, H, mode, padding_mode);
  if (is_reduced(H))  // a half image has a half H; a uint8 image may have one
    return in_float32(H.scalar_type(), backward, grad_output, image, H, mode, padding_mode,
                      image_requires_grad, H_requires_grad);
  if (image_requires_grad)
    at::globalContext().alertNotDeterministic(
        "warp_perspective_backward: the image gradient on CUDA (scattered with atomic adds)");
  const gpu::DeviceGuard guard(image.device());
  const at::Tensor img = image.contiguous(), Hc = H.contiguous();
  const bool need_h = H_requires_grad && interp == kBilinear;
  at::Tensor gimg = image_requires_grad ? at::zeros_like(img) : at::empty({0}, img.options());
  at::Tensor gH = !H_requires_grad ? at::empty({0}, Hc.options())
                                   : (need_h ? at::empty_like(Hc) : at::zeros_like(Hc));
  const int64_t B = img.size(0), C = img.size(1);
  const int64_t oh = grad_output.size(2), ow = grad_output.size(3);
  if (grad_output.numel() == 0 || (!image_requires_grad && !need_h)) {
    if (need_h) gH.zero_();
    return {gimg, gH};
  }
  const auto stream = gpu::current_stream();
  const at::Tensor params = prepare_params(Hc, oh, ow, stream);
  const ItemParams* pp = params_of(params);
  const int64_t blocks_x = pixel_blocks(oh, ow);
  at::Tensor partial;
  if (need_h) partial = at::empty({B, blocks_x, 9}, img.options().dtype(at::kDouble));
  const at::Tensor& g = grad_output;
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_backward_cuda", [&] {
    dispatch_modes(interp, pad, [&](auto I, auto P) {
      gpu::for_each_launch_y(B, blocks_x, [&](int64_t first, dim3 grid) {
        gpu::launch(backward_kernel<scalar_t, decltype(I)::value, decltype(P)::value>, grid,
                    dim3(kThreads), stream, g.const_data_ptr<scalar_t>(), g.stride(0),
                    g.stride(1), g.stride(2), g.stride(3), img.const_data_ptr<scalar_t>(), pp,
                    image_requires_grad ? gimg.mutable_data_ptr<scalar_t>() : nullptr,
                    need_h ? partial.mutable_data_ptr<double>() : nullptr, first, C,
                    img.size(2), img.size(3), oh, ow);
      });
    });
    if (need_h) {
      gpu::for_each_launch_x(B, kItemThreads, [&](int64_t first, int64_t end, dim3 grid) {
        gpu::launch(finish_h_kernel<scalar_t>, grid, dim3(kItemThreads), stream, pp,
                    partial.const_data_ptr<double>(), blocks_x,
                    gH.mutable_data_ptr<scalar_t>(), first, end);
      });
    }
  });
  return {gimg, gH};
}

}  // namespace cuda
}  // namespace warp
}  // namespace dgp_ops
