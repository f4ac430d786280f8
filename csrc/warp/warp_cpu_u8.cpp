// CPU forward of dgp_ops::warp_perspective for uint8 images.
//
// at::parallel_for over output rows of the whole batch; a thread's rows are consecutive, so it
// works through whole items one after another and an item's source (about 1 MiB for 3x480x640)
// stays in that core's cache while its rows are sampled.
//
// Bilinear rows: the source coordinate of every pixel in float32 (8 pixels per step with
// AVX2), then the pixels whose four taps lie inside the image (where no padding mode changes
// anything) are blended from their taps (32-bit gathers for the planar and packed-RGB layouts,
// 8 pixels per step), and the other pixels go through sample_pixel_u8 (warp_kernel.h, the
// coordinate in double). The baseline rows call warp_pixel_u8 (warp_kernel.h), which computes
// the same operations in the same order, as the CUDA kernel does: every path gives the same
// bytes. Nearest rows use sample_pixel_u8 throughout.
#include "warp/warp_cpu_u8.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common/cpu_dispatch.h"
#include "warp/warp_kernel.h"

namespace dgp_ops {
namespace warp {
namespace {

// Memory layouts the interior blend reads with 32-bit gathers: one byte per column in each
// channel plane (NCHW, or any layout with a column stride of 1), or three interleaved channels
// (decoded RGB/BGR images, channels-last).
enum class U8Layout { kPlanar, kPacked3, kOther };

// A uint8 image used in place: (B, C, H, W) sizes with the strides of NCHW-contiguous or
// channels-last (B, H, W, C) memory; any other layout is copied to NCHW first.
struct U8Image {
  at::Tensor t;
  const uint8_t* data;
  int64_t C, H, W, sb, sc, sy, sx;
  U8Layout layout;
  // The interior blend takes pixels with 0 <= u < ulim = u8_ulim(W) and 0 <= v < H - 1
  // (warp_kernel.h).
  float ulim;
};

U8Image u8_image(const at::Tensor& image) {
  at::Tensor t = image;
  if (!(t.is_contiguous() || t.is_contiguous(at::MemoryFormat::ChannelsLast))) t = t.contiguous();
  U8Image im{t, t.const_data_ptr<uint8_t>(), t.size(1), t.size(2), t.size(3), t.stride(0),
             t.stride(1), t.stride(2), t.stride(3), U8Layout::kOther, 0.f};
  // Gather offsets are int32: items up to 2^31 - 64 bytes (far above any real image).
  const bool small = im.C * im.H * im.W < (int64_t(1) << 31) - 64;
  if (small && im.sx == 1) im.layout = U8Layout::kPlanar;
  if (small && im.C == 3 && im.sc == 1 && im.sx == 3) im.layout = U8Layout::kPacked3;
  im.ulim = u8_ulim(im.W);
  return im;
}

// The y terms of a row's coordinates, computed once per row outside the ISA wrappers (so that
// both round them alike).
__attribute__((noinline)) U8RowTerms row_terms(const float* N, int64_t y) {
  return u8_row_terms(N, y);
}

// sample_pixel_u8 for one pixel, compiled for the baseline ISA only (not inlined into the AVX2
// row, where the compiler would fuse its multiply-adds): both wrappers give the same bytes.
template <int INTERP, int PAD>
__attribute__((noinline)) void pixel_u8(const double* Nd, int64_t x, int64_t y, const U8Image& im,
                                        const uint8_t* src, uint8_t* out, int64_t osc) {
  sample_pixel_u8<INTERP, PAD>(Nd, static_cast<double>(x), static_cast<double>(y), src, im.C,
                               im.H, im.W, im.sc, im.sy, im.sx, out, osc);
}

// One output row of one item, scalar, baseline ISA: warp_pixel_u8 (the GPU's per-pixel
// function) for every pixel. Nd: the item's N in double, Nf: in float.
template <int INTERP, int PAD>
__attribute__((noinline)) void row_u8_baseline(const double* Nd, const float* Nf,
                                               const U8Image& im, const uint8_t* src, int64_t y,
                                               int64_t ow, uint8_t* orow, int64_t osc) {
  const U8RowTerms t = row_terms(Nf, y);
  for (int64_t x = 0; x < ow; ++x)
    warp_pixel_u8<INTERP, PAD>(Nd, Nf, t, x, y, src, im.C, im.H, im.W, im.sc, im.sy, im.sx,
                               orow + x, osc);
}

#ifdef DGP_HAVE_V3
// An opaque copy of a product: keeps the compiler from fusing it into the following add (an
// FMA rounds once), so that each lane rounds exactly as the baseline code does.
DGP_TARGET_V3 DGP_ALWAYS_INLINE __m256 unfused(__m256 x) {
  asm("" : "+x"(x));
  return x;
}

// Byte `shift / 8` of each 32-bit lane, as float.
DGP_TARGET_V3 DGP_ALWAYS_INLINE __m256 byte_ps(__m256i g, int shift) {
  return _mm256_cvtepi32_ps(
      _mm256_and_si256(_mm256_srlv_epi32(g, _mm256_set1_epi32(shift)), _mm256_set1_epi32(255)));
}

// blend_u8 on 8 lanes, stored as 8 bytes.
DGP_TARGET_V3 DGP_ALWAYS_INLINE void blend_store8(__m256 p00, __m256 p01, __m256 p10, __m256 p11,
                                                  __m256 fx, __m256 fy, uint8_t* dst) {
  const __m256 top = _mm256_add_ps(p00, unfused(_mm256_mul_ps(fx, _mm256_sub_ps(p01, p00))));
  const __m256 bot = _mm256_add_ps(p10, unfused(_mm256_mul_ps(fx, _mm256_sub_ps(p11, p10))));
  const __m256 r = _mm256_add_ps(top, unfused(_mm256_mul_ps(fy, _mm256_sub_ps(bot, top))));
  // saturate_u8: r + 0.5 truncated; r > -0.5 here and packus saturates above 255.
  const __m256i q = _mm256_cvttps_epi32(_mm256_add_ps(r, _mm256_set1_ps(0.5f)));
  const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_packus_epi16(w16, w16));
}

// Bilinear rows of the planar and packed-RGB layouts with AVX2, 8 pixels per step (the last
// step overlaps the one before it when ow is not a multiple of 8). Lanes outside the interior
// gather nothing and are redone by sample_pixel_u8.
template <int PAD>
DGP_TARGET_V3 void row_u8_bilinear_v3(const double* Nd, const float* Nf, const U8Image& im,
                                      const uint8_t* src, int64_t y, int64_t ow, uint8_t* orow,
                                      int64_t osc) {
  const U8RowTerms t = row_terms(Nf, y);
  const __m256 iota = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 n0 = _mm256_set1_ps(Nf[0]), n3 = _mm256_set1_ps(Nf[3]), n6 = _mm256_set1_ps(Nf[6]);
  const __m256 vub = _mm256_set1_ps(t.ub), vvb = _mm256_set1_ps(t.vb), vwb = _mm256_set1_ps(t.wb);
  const __m256 one = _mm256_set1_ps(1.f), zero = _mm256_setzero_ps();
  const __m256 eps = _mm256_set1_ps(static_cast<float>(kMinW));
  const __m256 ulim = _mm256_set1_ps(im.ulim);
  const __m256 vlim = _mm256_set1_ps(static_cast<float>(im.H - 1));
  const __m256i vsy = _mm256_set1_epi32(static_cast<int32_t>(im.sy));
  const __m256i vsx = _mm256_set1_epi32(static_cast<int32_t>(im.sx));
  const int* base = reinterpret_cast<const int*>(src);
  const bool packed = im.layout == U8Layout::kPacked3;
  const int64_t prefetch_planes = packed ? 1 : im.C;
  const int64_t span = (im.H - 2) * im.sy + (im.W - 1) * im.sx;  // last top-left tap offset
  for (int64_t xs = 0; xs < ow; xs += 8) {
    const int64_t x = std::min(xs, ow - 8);
    const __m256 xx = _mm256_add_ps(_mm256_set1_ps(static_cast<float>(x)), iota);
    // u8_interior_coord, lane by lane.
    const __m256 w = _mm256_add_ps(unfused(_mm256_mul_ps(n6, xx)), vwb);
    const __m256 wok = _mm256_cmp_ps(w, eps, _CMP_GT_OQ);
    const __m256 invw = _mm256_div_ps(one, _mm256_blendv_ps(one, w, wok));
    const __m256 u = _mm256_mul_ps(_mm256_add_ps(unfused(_mm256_mul_ps(n0, xx)), vub), invw);
    const __m256 v = _mm256_mul_ps(_mm256_add_ps(unfused(_mm256_mul_ps(n3, xx)), vvb), invw);
    __m256 ok = _mm256_and_ps(wok, _mm256_cmp_ps(u, zero, _CMP_GE_OQ));
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(u, ulim, _CMP_LT_OQ));
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(v, vlim, _CMP_LT_OQ));
    const int m = _mm256_movemask_ps(ok);
    if (m != 0) {
      const __m256i okm = _mm256_castps_si256(ok);
      const __m256 uc = _mm256_and_ps(u, ok), vc = _mm256_and_ps(v, ok);
      const __m256i xi = _mm256_cvttps_epi32(uc), yi = _mm256_cvttps_epi32(vc);
      const __m256 fx = _mm256_sub_ps(uc, _mm256_cvtepi32_ps(xi));
      const __m256 fy = _mm256_sub_ps(vc, _mm256_cvtepi32_ps(yi));
      const __m256i off0 = _mm256_add_epi32(_mm256_mullo_epi32(yi, vsy), _mm256_mullo_epi32(xi, vsx));
      const __m256i off1 = _mm256_add_epi32(off0, vsy);
      const __m256i z = _mm256_setzero_si256();
      // Prefetch the taps about 4 steps ahead along the row (the row's source offsets grow
      // nearly linearly): the source of an item is read once, the first touch of each line
      // would otherwise stall the gathers.
      const int32_t first = _mm256_extract_epi32(off0, 0), last = _mm256_extract_epi32(off0, 7);
      if ((m & 0x81) == 0x81) {
        const int64_t ahead = std::clamp<int64_t>(last + 4 * int64_t(last - first), 0, span);
        const uint8_t* pf = src + ahead;
        for (int64_t c = 0; c < prefetch_planes; ++c, pf += im.sc) {
          _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(pf + im.sy), _MM_HINT_T0);
        }
      }
      uint8_t* o = orow + x;
      if (packed) {
        // Row taps: bytes 0-3 hold (x0: c0 c1 c2, x0+1: c0), bytes 2-5 (x0: c2, x0+1: c0 c1 c2).
        const __m256i two = _mm256_set1_epi32(2);
        const __m256i g00 = _mm256_mask_i32gather_epi32(z, base, off0, okm, 1);
        const __m256i g01 = _mm256_mask_i32gather_epi32(z, base, _mm256_add_epi32(off0, two), okm, 1);
        const __m256i g10 = _mm256_mask_i32gather_epi32(z, base, off1, okm, 1);
        const __m256i g11 = _mm256_mask_i32gather_epi32(z, base, _mm256_add_epi32(off1, two), okm, 1);
        for (int c = 0; c < 3; ++c, o += osc)
          blend_store8(byte_ps(g00, 8 * c), byte_ps(g01, 8 * c + 8), byte_ps(g10, 8 * c),
                       byte_ps(g11, 8 * c + 8), fx, fy, o);
      } else {
        const int* q = base;
        for (int64_t c = 0; c < im.C; ++c, o += osc) {
          const __m256i g0 = _mm256_mask_i32gather_epi32(z, q, off0, okm, 1);
          const __m256i g1 = _mm256_mask_i32gather_epi32(z, q, off1, okm, 1);
          blend_store8(byte_ps(g0, 0), byte_ps(g0, 8), byte_ps(g1, 0), byte_ps(g1, 8), fx, fy, o);
          q = reinterpret_cast<const int*>(reinterpret_cast<const uint8_t*>(q) + im.sc);
        }
      }
    }
    if (m != 0xFF)
      for (int k = 0; k < 8; ++k)
        if (!((m >> k) & 1))
          pixel_u8<kBilinear, PAD>(Nd, x + k, y, im, src, orow + x + k, osc);
  }
}

template <int INTERP, int PAD>
DGP_TARGET_V3 void row_u8_v3(const double* Nd, const float* Nf, const U8Image& im,
                             const uint8_t* src, int64_t y, int64_t ow, uint8_t* orow,
                             int64_t osc) {
  if constexpr (INTERP == kBilinear) {
    if (im.layout != U8Layout::kOther && ow >= 8)
      return row_u8_bilinear_v3<PAD>(Nd, Nf, im, src, y, ow, orow, osc);
  }
  row_u8_baseline<INTERP, PAD>(Nd, Nf, im, src, y, ow, orow, osc);
}
#endif

template <int INTERP, int PAD>
void forward_impl_u8(const U8Image& im, const std::vector<ItemParams>& params, at::Tensor& out) {
  const int64_t B = out.size(0), C = im.C, oh = out.size(2), ow = out.size(3);
  const int64_t osc = oh * ow;
  uint8_t* op = out.mutable_data_ptr<uint8_t>();
  std::vector<float> Nf(static_cast<size_t>(B) * 9);
  for (int64_t b = 0; b < B; ++b)
    for (int k = 0; k < 9; ++k) Nf[b * 9 + k] = static_cast<float>(params[b].N[k]);
  const bool v3 = cpu_has_v3();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, ow * C));
  at::parallel_for(0, B * oh, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / oh, y = r % oh;
      uint8_t* orow = op + b * C * osc + y * ow;
      if (!params[b].valid) {
        for (int64_t c = 0; c < C; ++c) std::fill_n(orow + c * osc, ow, uint8_t(0));
        continue;
      }
      const double* Nd = params[b].N;
      const float* Nfb = Nf.data() + b * 9;
      const uint8_t* src = im.data + b * im.sb;
#ifdef DGP_HAVE_V3
      if (v3) {
        row_u8_v3<INTERP, PAD>(Nd, Nfb, im, src, y, ow, orow, osc);
        continue;
      }
#endif
      row_u8_baseline<INTERP, PAD>(Nd, Nfb, im, src, y, ow, orow, osc);
    }
  });
}

}  // namespace

at::Tensor warp_u8_cpu(const at::Tensor& image, const at::Tensor& H, int64_t out_h,
                       int64_t out_w, int interp, int pad) {
  const U8Image im = u8_image(image);
  at::Tensor out = at::empty({image.size(0), image.size(1), out_h, out_w}, image.options());
  if (out.numel() == 0) return out;
  const at::Tensor Hc = H.contiguous();
  std::vector<ItemParams> params(static_cast<size_t>(Hc.size(0)));
  AT_DISPATCH_FLOATING_TYPES(Hc.scalar_type(), "warp_perspective_cpu_u8", [&] {
    const scalar_t* hp = Hc.const_data_ptr<scalar_t>();
    const double cx = 0.5 * static_cast<double>(out_w - 1);
    const double cy = 0.5 * static_cast<double>(out_h - 1);
    for (size_t b = 0; b < params.size(); ++b)
      params[b] = prepare_item<scalar_t>(hp + b * 9, cx, cy);
  });
  dispatch_modes(interp, pad, [&](auto I, auto P) {
    forward_impl_u8<decltype(I)::value, decltype(P)::value>(im, params, out);
  });
  return out;
}

}  // namespace warp
}  // namespace dgp_ops
