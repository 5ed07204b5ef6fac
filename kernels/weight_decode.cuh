// Reading one element of a checkpoint weight as float32 inside a kernel.
#pragma once

#include <cuda_fp8.h>

#include <type_traits>

#include "kernels/launch.h"
#include "r1/number_formats.h"

namespace r1::cuda {

__device__ __forceinline__ float load_weight(const WeightView& w, int64_t row, int64_t col) {
  const int64_t index = row * w.in + col;
  switch (w.type) {
    case WeightType::f32: return static_cast<const float*>(w.data)[index];
    case WeightType::bf16: return bf16_to_float(static_cast<const uint16_t*>(w.data)[index]);
    case WeightType::f16: return f16_to_float(static_cast<const uint16_t*>(w.data)[index]);
    case WeightType::e4m3: {
      const int scale_cols = (w.in + w.block - 1) / w.block;
      const float scale = w.scale_inv[(row / w.block) * scale_cols + col / w.block];
      return e4m3_to_float(static_cast<const uint8_t*>(w.data)[index]) * scale;
    }
  }
  return 0.0f;
}

// A 16-byte load of weights holds `count` values; piece p (0 <= p < count/4) decodes values
// 4p .. 4p+3 to float32.
template <WeightType T>
struct Packed;
template <>
struct Packed<WeightType::f32> {
  static constexpr int count = 4;
  __device__ static void piece(const uint4& raw, int, float* out) {
    out[0] = __uint_as_float(raw.x), out[1] = __uint_as_float(raw.y);
    out[2] = __uint_as_float(raw.z), out[3] = __uint_as_float(raw.w);
  }
};
template <>
struct Packed<WeightType::bf16> {
  static constexpr int count = 8;
  __device__ static void piece(const uint4& raw, int p, float* out) {
    const uint32_t a = p == 0 ? raw.x : raw.z, b = p == 0 ? raw.y : raw.w;
    out[0] = __uint_as_float(a << 16), out[1] = __uint_as_float(a & 0xFFFF0000u);
    out[2] = __uint_as_float(b << 16), out[3] = __uint_as_float(b & 0xFFFF0000u);
  }
};
template <>
struct Packed<WeightType::f16> {
  static constexpr int count = 8;
  __device__ static void piece(const uint4& raw, int p, float* out) {
    const uint32_t a = p == 0 ? raw.x : raw.z, b = p == 0 ? raw.y : raw.w;
    out[0] = f16_to_float(uint16_t(a & 0xFFFF)), out[1] = f16_to_float(uint16_t(a >> 16));
    out[2] = f16_to_float(uint16_t(b & 0xFFFF)), out[3] = f16_to_float(uint16_t(b >> 16));
  }
};
template <>
struct Packed<WeightType::e4m3> {
  static constexpr int count = 16;
  __device__ static void piece(const uint4& raw, int p, float* out) {
    const uint32_t word = p == 0 ? raw.x : p == 1 ? raw.y : p == 2 ? raw.z : raw.w;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      // e4m3 -> f16 is exact (hardware conversion on sm_89+), and so is f16 -> f32.
      const __half2_raw pair =
          __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t((word >> (16 * half)) & 0xFFFF), __NV_E4M3);
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&pair));
      out[2 * half] = f.x;
      out[2 * half + 1] = f.y;
    }
  }
};

// Whether rows of `row_length` values of w can be read in whole 16-byte chunks: every row then
// starts 16-byte aligned, and an FP8 chunk never straddles two scale blocks.
inline bool rows_load_in_chunks(const WeightView& w, int row_length) {
  const int per_load = w.type == WeightType::e4m3  ? Packed<WeightType::e4m3>::count
                       : w.type == WeightType::f32 ? Packed<WeightType::f32>::count
                                                   : Packed<WeightType::bf16>::count;
  return row_length % per_load == 0 && (w.type != WeightType::e4m3 || w.block % 16 == 0);
}

// Calls fn(std::integral_constant<WeightType, T>{}) for the run-time `type`, so that a launcher
// can pick the kernel instantiated for it.
template <typename Fn>
void with_weight_type(WeightType type, Fn&& fn) {
  switch (type) {
    case WeightType::f32: fn(std::integral_constant<WeightType, WeightType::f32>{}); break;
    case WeightType::f16: fn(std::integral_constant<WeightType, WeightType::f16>{}); break;
    case WeightType::bf16: fn(std::integral_constant<WeightType, WeightType::bf16>{}); break;
    case WeightType::e4m3: fn(std::integral_constant<WeightType, WeightType::e4m3>{}); break;
  }
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

}  // namespace r1::cuda
