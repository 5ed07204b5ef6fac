// Reading one element of a checkpoint weight as float32 inside a kernel.
#pragma once

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

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

}  // namespace r1::cuda
