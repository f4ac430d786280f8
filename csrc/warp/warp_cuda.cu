// CUDA kernels of dgp_ops::warp_perspective and its backward: one thread per output pixel
// around the per-pixel functions of warp_kernel.h. The image gradient is scattered with
// atomicAdd; the H gradient is reduced per block (warp shuffles, then shared memory) and
// added with one atomic per block and entry, then turned into dL/dH per item.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "warp/warp_checks.h"
#include "warp/warp_kernel.h"

namespace dgp_ops {
namespace warp {
namespace {

constexpr int kThreads = 256;
// Items are blockIdx.y.
constexpr int64_t kMaxGridY = 65535;
// Per-item parameters on the device: N (9), Hinv (9), c, valid.
constexpr int kParamStride = 20;

template <typename T>
__global__ void prepare_kernel(const T* __restrict__ H, double* __restrict__ params, int64_t B) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (b >= B) return;
  const ItemParams p = prepare_item<T>(H + b * 9);
  double* o = params + b * kParamStride;
  for (int k = 0; k < 9; ++k) {
    o[k] = p.N[k];
    o[9 + k] = p.Hinv[k];
  }
  o[18] = p.c;
  o[19] = p.valid ? 1.0 : 0.0;
}

template <typename T>
__device__ inline bool load_n(const double* params, int64_t b, T N[9]) {
  const double* p = params + b * kParamStride;
  for (int k = 0; k < 9; ++k) N[k] = static_cast<T>(p[k]);
  return p[19] != 0.0;
}

template <typename T, int INTERP, int PAD>
__global__ void forward_kernel(const T* __restrict__ img, const double* __restrict__ params,
                               T* __restrict__ out, int64_t B, int64_t C, int64_t H, int64_t W,
                               int64_t oh, int64_t ow) {
  const int64_t pix = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t b = blockIdx.y;
  const int64_t out_plane = oh * ow;
  if (pix >= out_plane) return;
  const int64_t y = pix / ow, x = pix % ow;
  T* o = out + b * C * out_plane + pix;
  T N[9];
  Footprint<T> f;
  if (load_n<T>(params, b, N) &&
      footprint<T, INTERP, PAD>(N, static_cast<T>(x), static_cast<T>(y), H, W, f)) {
    sample_pixel<T, INTERP, PAD>(f, img + b * C * H * W, C, W, H * W, o, out_plane);
  } else {
    for (int64_t c = 0; c < C; ++c) o[c * out_plane] = T(0);
  }
}

// uint8 images (NCHW or channels-last strides): OpenCV's fixed-point arithmetic.
template <int INTERP, int PAD>
__global__ void forward_kernel_u8(const uint8_t* __restrict__ img,
                                  const double* __restrict__ params, uint8_t* __restrict__ out,
                                  int64_t C, int64_t H, int64_t W, int64_t sb, int64_t sc,
                                  int64_t sy, int64_t sx, int64_t oh, int64_t ow) {
  const int64_t pix = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t b = blockIdx.y;
  const int64_t out_plane = oh * ow;
  if (pix >= out_plane) return;
  const double* p = params + b * kParamStride;
  uint8_t* o = out + b * C * out_plane + pix;
  if (p[19] == 0.0) {
    for (int64_t c = 0; c < C; ++c) o[c * out_plane] = 0;
    return;
  }
  sample_pixel_u8<INTERP, PAD>(p, static_cast<double>(pix % ow), static_cast<double>(pix / ow),
                               img + b * sb, C, H, W, sc, sy, sx, o, out_plane);
}

struct AtomicAdd {
  template <typename T>
  __device__ void operator()(T* p, T v) const {
    atomicAdd(p, v);
  }
};

template <typename T, int INTERP, int PAD>
__global__ void backward_kernel(const T* __restrict__ gout, const T* __restrict__ img,
                                const double* __restrict__ params, T* __restrict__ gimg,
                                double* __restrict__ dN_out, int64_t B, int64_t C, int64_t H,
                                int64_t W, int64_t oh, int64_t ow, bool need_h) {
  const int64_t pix = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t b = blockIdx.y;
  const int64_t out_plane = oh * ow, plane = H * W;
  T dN[9] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  if (pix < out_plane) {
    const int64_t y = pix / ow, x = pix % ow;
    T N[9];
    Footprint<T> f;
    const T xx = static_cast<T>(x), yy = static_cast<T>(y);
    if (load_n<T>(params, b, N) && footprint<T, INTERP, PAD>(N, xx, yy, H, W, f)) {
      backward_pixel<T, INTERP, PAD>(f, xx, yy, img + b * C * plane,
                                     gimg != nullptr ? gimg + b * C * plane : nullptr,
                                     gout + b * C * out_plane + pix, C, W, plane, out_plane,
                                     need_h, dN, AtomicAdd{});
    }
  }
  if (!need_h) return;
  // Block reduction of the 9 partial sums, in double.
  __shared__ double shared[9][kThreads / 32];
  const int lane = threadIdx.x % 32, warp_id = threadIdx.x / 32;
  for (int k = 0; k < 9; ++k) {
    double v = static_cast<double>(dN[k]);
    for (int s = 16; s > 0; s /= 2) v += __shfl_down_sync(0xffffffffu, v, s);
    if (lane == 0) shared[k][warp_id] = v;
  }
  __syncthreads();
  if (warp_id == 0) {
    for (int k = 0; k < 9; ++k) {
      double v = lane < kThreads / 32 ? shared[k][lane] : 0.0;
      for (int s = 16; s > 0; s /= 2) v += __shfl_down_sync(0xffffffffu, v, s);
      if (lane == 0) atomicAdd(dN_out + b * 9 + k, v);
    }
  }
}

template <typename T>
__global__ void finish_h_kernel(const double* __restrict__ params, const double* __restrict__ dN,
                                T* __restrict__ gH, int64_t B) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (b >= B) return;
  const double* p = params + b * kParamStride;
  ItemParams ip;
  for (int k = 0; k < 9; ++k) {
    ip.N[k] = p[k];
    ip.Hinv[k] = p[9 + k];
  }
  ip.c = p[18];
  ip.valid = p[19] != 0.0;
  double dH[9];
  finish_h_grad(ip, dN + b * 9, dH);
  for (int k = 0; k < 9; ++k) gH[b * 9 + k] = static_cast<T>(dH[k]);
}

at::Tensor prepare_params(const at::Tensor& Hc) {
  const int64_t B = Hc.size(0);
  at::Tensor params = at::empty({B, kParamStride}, Hc.options().dtype(at::kDouble));
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(Hc.scalar_type(), "warp_prepare_cuda", [&] {
    prepare_kernel<scalar_t><<<(B + 127) / 128, 128, 0, stream>>>(
        Hc.data_ptr<scalar_t>(), params.data_ptr<double>(), B);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return params;
}

at::Tensor warp_perspective_cuda(const at::Tensor& image, const at::Tensor& H, int64_t out_h,
                                 int64_t out_w, c10::string_view mode,
                                 c10::string_view padding_mode) {
  int interp, pad;
  std::tie(interp, pad) = check_forward_args(image, H, out_h, out_w, mode, padding_mode);
  TORCH_CHECK_VALUE(image.size(0) <= kMaxGridY, kForwardOp, ": the CUDA kernels take at most ",
                    kMaxGridY, " images per call, got ", image.size(0));
  const c10::cuda::CUDAGuard guard(image.device());
  const bool u8 = image.scalar_type() == at::kByte;
  // uint8 images are read in place in NCHW or channels-last memory.
  const at::Tensor img =
      u8 && image.is_contiguous(at::MemoryFormat::ChannelsLast) ? image : image.contiguous();
  const at::Tensor Hc = H.contiguous();
  const int64_t B = img.size(0), C = img.size(1);
  at::Tensor out = at::empty({B, C, out_h, out_w}, img.options());
  if (out.numel() == 0) return out;
  const at::Tensor params = prepare_params(Hc);
  const dim3 grid(static_cast<unsigned>((out_h * out_w + kThreads - 1) / kThreads),
                  static_cast<unsigned>(B));
  const auto stream = at::cuda::getCurrentCUDAStream();
  if (u8) {
    dispatch_modes(interp, pad, [&](auto I, auto P) {
      forward_kernel_u8<decltype(I)::value, decltype(P)::value><<<grid, kThreads, 0, stream>>>(
          img.const_data_ptr<uint8_t>(), params.const_data_ptr<double>(),
          out.mutable_data_ptr<uint8_t>(), C, img.size(2), img.size(3), img.stride(0),
          img.stride(1), img.stride(2), img.stride(3), out_h, out_w);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_cuda", [&] {
    dispatch_modes(interp, pad, [&](auto I, auto P) {
      forward_kernel<scalar_t, decltype(I)::value, decltype(P)::value>
          <<<grid, kThreads, 0, stream>>>(img.data_ptr<scalar_t>(), params.data_ptr<double>(),
                                          out.data_ptr<scalar_t>(), B, C, img.size(2),
                                          img.size(3), out_h, out_w);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> warp_perspective_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& image, const at::Tensor& H,
    c10::string_view mode, c10::string_view padding_mode, bool image_requires_grad,
    bool H_requires_grad) {
  int interp, pad;
  std::tie(interp, pad) = check_backward_args(grad_output, image, H, mode, padding_mode);
  TORCH_CHECK_VALUE(image.size(0) <= kMaxGridY, kBackwardOp,
                    ": the CUDA kernels take at most ", kMaxGridY, " images per call, got ",
                    image.size(0));
  const c10::cuda::CUDAGuard guard(image.device());
  const at::Tensor img = image.contiguous(), Hc = H.contiguous();
  const at::Tensor g = grad_output.contiguous();
  const bool need_h = H_requires_grad && interp == kBilinear;
  at::Tensor gimg = image_requires_grad ? at::zeros_like(img) : at::empty({0}, img.options());
  at::Tensor gH = H_requires_grad ? at::zeros_like(Hc) : at::empty({0}, Hc.options());
  if (g.numel() == 0 || (!image_requires_grad && !need_h)) return {gimg, gH};
  const int64_t B = img.size(0), C = img.size(1), oh = g.size(2), ow = g.size(3);
  const at::Tensor params = prepare_params(Hc);
  at::Tensor dN = at::zeros({B, 9}, img.options().dtype(at::kDouble));
  const dim3 grid(static_cast<unsigned>((oh * ow + kThreads - 1) / kThreads),
                  static_cast<unsigned>(B));
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(img.scalar_type(), "warp_perspective_backward_cuda", [&] {
    dispatch_modes(interp, pad, [&](auto I, auto P) {
      backward_kernel<scalar_t, decltype(I)::value, decltype(P)::value>
          <<<grid, kThreads, 0, stream>>>(
              g.data_ptr<scalar_t>(), img.data_ptr<scalar_t>(), params.data_ptr<double>(),
              image_requires_grad ? gimg.data_ptr<scalar_t>() : nullptr, dN.data_ptr<double>(),
              B, C, img.size(2), img.size(3), oh, ow, need_h);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (need_h) {
      finish_h_kernel<scalar_t><<<(B + 127) / 128, 128, 0, stream>>>(
          params.data_ptr<double>(), dN.data_ptr<double>(), gH.data_ptr<scalar_t>(), B);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {gimg, gH};
}

}  // namespace

TORCH_LIBRARY_IMPL(dgp_ops, CUDA, m) {
  m.impl("warp_perspective", &warp_perspective_cuda);
  m.impl("warp_perspective_backward", &warp_perspective_backward_cuda);
}

}  // namespace warp
}  // namespace dgp_ops
