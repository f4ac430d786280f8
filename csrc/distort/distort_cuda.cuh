// CUDA kernels of dgp_ops::warp_perspective_distorted and its backward, and their launchers,
// written against common/gpu.h (compiled by nvcc in distort_cuda.cu, and by a host compiler
// under the emulation of the tests). The same shape as the warp's (warp/warp_cuda.cuh): one
// thread per output pixel around distort_kernel.h's per-pixel functions, the item in
// blockIdx.y; per-item parameters computed once into a device buffer; image gradient scattered
// with atomic adds; dL/dH reduced per block in a fixed order, then per item in block order.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Dispatch.h>

#include <tuple>

#include "common/gpu.h"
#include "common/reduced_precision.h"
#include "distort/distort_checks.h"
#include "distort/distort_kernel.h"

namespace dgp_ops {
namespace distort {
namespace cuda {

constexpr int kThreads = 256;  // pixels per block
constexpr int kWarps = kThreads / gpu::kWarpSize;
static_assert(kThreads % gpu::kWarpSize == 0 && kWarps <= gpu::kWarpSize,
              "a pixel block is a whole number of warps, reduced by warp 0");
constexpr int kItemThreads = 128;

template <typename T>
__global__ void prepare_kernel(const T* __restrict__ H, const T* __restrict__ K,
                               const T* __restrict__ dist, int ncoef, int model,
                               DistortParams* __restrict__ params, int64_t first, int64_t end,
                               double ref_x, double ref_y) {
  const int64_t b = first + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= end) return;
  params[b] = prepare_item<T>(H + b * 9, K + b * 9, dist + b * ncoef, ncoef, model, ref_x,
                               ref_y);
}

template <typename T>
__device__ __forceinline__ void load_n(const DistortParams& p, T N[9]) {
  for (int k = 0; k < 9; ++k) N[k] = static_cast<T>(p.warp.N[k]);
}

template <typename T, int MODEL, int INTERP, int PAD>
__global__ void forward_kernel(const T* __restrict__ img,
                               const DistortParams* __restrict__ params, T* __restrict__ out,
                               int64_t first, int64_t C, int64_t H, int64_t W, int64_t oh,
                               int64_t ow) {
  const int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t b = first + blockIdx.y;
  const int64_t out_plane = oh * ow;
  if (pix >= out_plane) return;
  const DistortParams& p = params[b];
  T N[9];
  load_n(p, N);
  forward_pixel<T, MODEL, INTERP, PAD>(p, N, static_cast<T>(pix % ow), static_cast<T>(pix / ow),
                                       img + b * C * H * W, C, H, W,
                                       out + b * C * out_plane + pix, out_plane);
}

template <int MODEL, int INTERP, int PAD>
__global__ void forward_kernel_u8(const uint8_t* __restrict__ img,
                                  const DistortParams* __restrict__ params,
                                  uint8_t* __restrict__ out, int64_t first, int64_t C,
                                  int64_t H, int64_t W, int64_t sb, int64_t sc, int64_t sy,
                                  int64_t sx, int64_t oh, int64_t ow) {
  const int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t b = first + blockIdx.y;
  const int64_t out_plane = oh * ow;
  if (pix >= out_plane) return;
  const DistortParams& p = params[b];
  float Nf[9];
  load_n(p, Nf);
  forward_pixel_u8<MODEL, INTERP, PAD>(p, Nf, pix % ow, pix / ow, img + b * sb, C, H, W, sc, sy,
                                       sx, out + b * C * out_plane + pix, out_plane);
}

struct AtomicAdd {
  template <typename T>
  __device__ void operator()(T* q, T v) const {
    gpuAtomicAdd(q, v);
  }
};

// gimg: nullptr when not asked for; partial: (B, gridDim.x, 9) per-block sums of dL/dN, nullptr
// when dL/dH is not asked for. gout strides (item, channel, row, column), any may be 0.
template <typename T, int MODEL, int INTERP, int PAD>
__global__ void backward_kernel(const T* __restrict__ gout, int64_t gsb, int64_t gsc,
                                int64_t gsy, int64_t gsx, const T* __restrict__ img,
                                const DistortParams* __restrict__ params, T* __restrict__ gimg,
                                double* __restrict__ partial, int64_t first, int64_t C,
                                int64_t H, int64_t W, int64_t oh, int64_t ow) {
  const int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t b = first + blockIdx.y;
  const int64_t out_plane = oh * ow, plane = H * W;
  const bool need_h = partial != nullptr;
  T dN[9] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  // Threads past the last pixel take part in the reduction below with zero sums.
  if (pix < out_plane) {
    const DistortParams& p = params[b];
    const int64_t y = pix / ow, x = pix % ow;
    T N[9];
    load_n(p, N);
    backward_pixel<T, MODEL, INTERP, PAD>(
        p, N, static_cast<T>(x), static_cast<T>(y), img + b * C * plane,
        gimg != nullptr ? gimg + b * C * plane : nullptr, gout + b * gsb + y * gsy + x * gsx, C,
        H, W, gsc, need_h, dN, AtomicAdd{});
  }
  if (!need_h) return;  // the same for every thread of the launch
  gpu::block_sum<kWarps>(dN, partial + (b * gridDim.x + blockIdx.x) * 9);
}

template <typename T>
__global__ void finish_h_kernel(const DistortParams* __restrict__ params,
                                const double* __restrict__ partial, int64_t blocks,
                                T* __restrict__ gH, int64_t first, int64_t end) {
  const int64_t b = first + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= end) return;
  double dN[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  const double* q = partial + b * blocks * 9;
  for (int64_t j = 0; j < blocks; ++j, q += 9)
    for (int k = 0; k < 9; ++k) dN[k] += q[k];
  double dH[9];
  warp::finish_h_grad(params[b].warp, dN, dH);
  for (int k = 0; k < 9; ++k) gH[b * 9 + k] = static_cast<T>(dH[k]);
}

inline const DistortParams* params_of(const at::Tensor& t) {
  return reinterpret_cast<const DistortParams*>(t.const_data_ptr<uint8_t>());
}

inline at::Tensor prepare_params(const at::Tensor& Hc, const at::Tensor& Kc,
                                 const at::Tensor& dc, int model, int64_t oh, int64_t ow,
                                 gpu::Stream stream) {
  const int64_t B = Hc.size(0);
  at::Tensor params = at::empty({B, static_cast<int64_t>(sizeof(DistortParams))},
                                Hc.options().dtype(at::kByte));
  auto* out = reinterpret_cast<DistortParams*>(params.mutable_data_ptr<uint8_t>());
  AT_DISPATCH_FLOATING_TYPES(Hc.scalar_type(), "distort_prepare_cuda", [&] {
    gpu::for_each_launch_x(B, kItemThreads, [&](int64_t first, int64_t end, dim3 grid) {
      gpu::launch(prepare_kernel<scalar_t>, grid, dim3(kItemThreads), stream,
                  Hc.const_data_ptr<scalar_t>(), Kc.const_data_ptr<scalar_t>(),
                  dc.const_data_ptr<scalar_t>(), static_cast<int>(dc.size(1)), model, out, first,
                  end,
                  0.5 * static_cast<double>(ow - 1), 0.5 * static_cast<double>(oh - 1));
    });
  });
  return params;
}

inline int64_t pixel_blocks(int64_t oh, int64_t ow) { return (oh * ow + kThreads - 1) / kThreads; }

inline at::Tensor forward(const at::Tensor& image, const at::Tensor& H, const at::Tensor& K,
                          const at::Tensor& dist, int64_t out_h, int64_t out_w,
                          c10::string_view model, c10::string_view mode,
                          c10::string_view padding_mode) {
  const auto [m, interp, pad] =
      check_forward_args(image, H, K, dist, out_h, out_w, model, mode, padding_mode);
  if (is_reduced(H))
    return in_float32(H.scalar_type(), forward, image, H, K, dist, out_h, out_w, model, mode,
                      padding_mode);
  const gpu::DeviceGuard guard(image.device());
  const bool u8 = image.scalar_type() == at::kByte;
  const at::Tensor img =
      u8 && image.is_contiguous(at::MemoryFormat::ChannelsLast) ? image : image.contiguous();
  const at::Tensor Hc = H.contiguous(), Kc = K.contiguous(), dc = dist.contiguous();
  const int64_t B = img.size(0), C = img.size(1);
  at::Tensor out = at::empty({B, C, out_h, out_w}, img.options());
  if (out.numel() == 0) return out;
  const auto stream = gpu::current_stream();
  const at::Tensor params = prepare_params(Hc, Kc, dc, m, out_h, out_w, stream);
  const DistortParams* pp = params_of(params);
  const int64_t blocks_x = pixel_blocks(out_h, out_w);
  if (u8) {
    dispatch(m, interp, pad, [&](auto M, auto I, auto P) {
      gpu::for_each_launch_y(B, blocks_x, [&](int64_t first, dim3 grid) {
        gpu::launch(forward_kernel_u8<decltype(M)::value, decltype(I)::value, decltype(P)::value>,
                    grid, dim3(kThreads), stream, img.const_data_ptr<uint8_t>(), pp,
                    out.mutable_data_ptr<uint8_t>(), first, C, img.size(2), img.size(3),
                    img.stride(0), img.stride(1), img.stride(2), img.stride(3), out_h, out_w);
      });
    });
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_distorted_cuda", [&] {
    dispatch(m, interp, pad, [&](auto M, auto I, auto P) {
      gpu::for_each_launch_y(B, blocks_x, [&](int64_t first, dim3 grid) {
        gpu::launch(forward_kernel<scalar_t, decltype(M)::value, decltype(I)::value,
                                   decltype(P)::value>,
                    grid, dim3(kThreads), stream, img.const_data_ptr<scalar_t>(), pp,
                    out.mutable_data_ptr<scalar_t>(), first, C, img.size(2), img.size(3), out_h,
                    out_w);
      });
    });
  });
  return out;
}

inline std::tuple<at::Tensor, at::Tensor> backward(
    const at::Tensor& grad_output, const at::Tensor& image, const at::Tensor& H,
    const at::Tensor& K, const at::Tensor& dist, c10::string_view model, c10::string_view mode,
    c10::string_view padding_mode, bool image_requires_grad, bool H_requires_grad) {
  const auto [m, interp, pad] =
      check_backward_args(grad_output, image, H, K, dist, model, mode, padding_mode);
  if (is_reduced(H))
    return in_float32(H.scalar_type(), backward, grad_output, image, H, K, dist, model, mode,
                      padding_mode, image_requires_grad, H_requires_grad);
  if (image_requires_grad)
    at::globalContext().alertNotDeterministic(
        "warp_perspective_distorted_backward: the image gradient on CUDA (scattered with atomic "
        "adds)");
  const gpu::DeviceGuard guard(image.device());
  const at::Tensor img = image.contiguous(), Hc = H.contiguous(), Kc = K.contiguous(),
                   dc = dist.contiguous();
  const bool need_h = H_requires_grad && interp == warp::kBilinear;
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
  const at::Tensor params = prepare_params(Hc, Kc, dc, m, oh, ow, stream);
  const DistortParams* pp = params_of(params);
  const int64_t blocks_x = pixel_blocks(oh, ow);
  at::Tensor partial;
  if (need_h) partial = at::empty({B, blocks_x, 9}, img.options().dtype(at::kDouble));
  const at::Tensor& g = grad_output;
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_distorted_backward_cuda", [&] {
    dispatch(m, interp, pad, [&](auto M, auto I, auto P) {
      gpu::for_each_launch_y(B, blocks_x, [&](int64_t first, dim3 grid) {
        gpu::launch(backward_kernel<scalar_t, decltype(M)::value, decltype(I)::value,
                                    decltype(P)::value>,
                    grid, dim3(kThreads), stream, g.const_data_ptr<scalar_t>(), g.stride(0),
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
}  // namespace distort
}  // namespace dgp_ops
