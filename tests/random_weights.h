// Random weight matrices in every stored type, for the CPU kernel tests (exact and fast).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/simd/kernels.h"

namespace r1::simd {

// A random [out, in] matrix of one weight type, owning its bytes.
struct Matrix {
  std::vector<uint8_t> data;
  std::vector<float> scales;
  Rows rows;
};

// FP8: scales in blocks of `block` x `block` (DeepSeek's checkpoints: 128).
inline Matrix random_matrix(WeightType type, int out, int in, std::mt19937& rng, int block = 128) {
  Matrix m;
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const int bytes = type == WeightType::f32 ? 4 : type == WeightType::fp8 ? 1 : 2;
  m.data.resize(size_t(out) * in * bytes);
  for (size_t i = 0; i < size_t(out) * in; ++i) {
    const float v = value(rng);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    switch (type) {
      case WeightType::f32: std::memcpy(&m.data[i * 4], &v, 4); break;
      case WeightType::bf16: { const uint16_t h = uint16_t(bits >> 16); std::memcpy(&m.data[i * 2], &h, 2); break; }
      case WeightType::f16: {  // any code but Inf/NaN (exponent 31)
        uint16_t h = uint16_t(rng() & 0xFFFF);
        if (((h >> 10) & 0x1F) == 0x1F) h &= 0xBFFF;
        std::memcpy(&m.data[i * 2], &h, 2);
        break;
      }
      case WeightType::fp8: {  // every code but the two NaNs, subnormals included
        uint8_t c = uint8_t(rng() & 0xFF);
        if ((c & 0x7F) == 0x7F) c ^= 1;
        m.data[i] = c;
        break;
      }
    }
  }
  m.rows = {type, m.data.data(), nullptr, out, in, 0, 0};
  if (type == WeightType::fp8) {
    m.rows.block = block;
    m.rows.scale_cols = (in + block - 1) / block;
    m.scales.resize(size_t((out + block - 1) / block) * m.rows.scale_cols);
    for (float& s : m.scales) s = std::ldexp(0.5f + value(rng) * 0.25f, -8);
    m.rows.scales = m.scales.data();
  }
  return m;
}

}  // namespace r1::simd
