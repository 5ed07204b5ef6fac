// Decoding of the storage formats found in DeepSeek checkpoints to float32 (and bf16 encoding).
// Shared by the CPU backend and the CUDA kernels; exact (every code maps to one float).
#pragma once

#include <cstdint>
#include <cstring>

#include "r1/host_device.h"

namespace r1 {

R1_HD float bits_to_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

R1_HD float bf16_to_float(uint16_t bits) { return bits_to_float(uint32_t(bits) << 16); }

// The other way, for the bf16 cache's tests and benchmarks: round to nearest even, as
// __float2bfloat16_rn does; NaN stays a (quiet) NaN.
R1_HD uint16_t float_to_bf16(float f) {
  if (f != f) return 0x7FC0;
#if defined(__CUDA_ARCH__)
  const uint32_t bits = __float_as_uint(f);
#else
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
#endif
  return uint16_t((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
R1_HD float f16_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1F;
  uint32_t mantissa = h & 0x3FF;
  if (exponent == 0x1F) return bits_to_float(sign | 0x7F800000u | (mantissa << 13));
  if (exponent != 0) return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
  // Subnormal: mantissa * 2^-24, exact in float32.
  float magnitude = float(mantissa) * (1.0f / 16777216.0f);
  return sign ? -magnitude : magnitude;
}

// FP8 e4m3 "fn" variant (what DeepSeek ships): 1 sign, 4 exponent (bias 7), 3 mantissa bits,
// subnormals when the exponent bits are 0, no infinities, 0x7F and 0xFF are NaN.
R1_HD float e4m3_to_float(uint8_t code) {
  uint32_t sign = uint32_t(code & 0x80) << 24;
  uint32_t exponent = (code >> 3) & 0xF;
  uint32_t mantissa = code & 0x7;
  if (exponent == 0xF && mantissa == 0x7) return bits_to_float(0x7FC00000u);
  if (exponent != 0) return bits_to_float(sign | ((exponent + 120) << 23) | (mantissa << 20));
  float magnitude = float(mantissa) * (1.0f / 512.0f);  // mantissa/8 * 2^-6
  return sign ? -magnitude : magnitude;
}

}  // namespace r1
