// Decoding of the storage formats found in DeepSeek checkpoints to float32 (exact: every code
// maps to one float), and the two encoders the engine needs: float32 -> e4m3 for the FP8 GEMM's
// activations, float32 -> bf16 for the fast path's latent cache. Shared by the CPU backend, the
// CPU references of the tests and the CUDA kernels.
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

R1_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
#endif
}

R1_HD float bf16_to_float(uint16_t bits) { return bits_to_float(uint32_t(bits) << 16); }

// The other way, for the bf16 cache's tests and benchmarks: round to nearest even, as
// __float2bfloat16_rn does; NaN stays a (quiet) NaN.
R1_HD uint16_t float_to_bf16(float f) {
  if (f != f) return 0x7FC0;
  const uint32_t bits = float_to_bits(f);
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

// float32 -> e4m3fn, rounding to nearest, ties to even; saturating: magnitudes from 448 up
// (infinities too) become ±448, NaN becomes 0x7F. This is what the GPU's conversion instruction
// (cvt.rn.satfinite.e4m3x2.f32) and CUDA's own host emulation (__nv_cvt_float_to_fp8 with
// __NV_SATFINITE) do, so a CPU reference built on it matches the quantize kernel byte for byte.
R1_HD uint8_t float_to_e4m3(float f) {
  const uint32_t bits = float_to_bits(f);
  const uint8_t sign = uint8_t((bits >> 24) & 0x80);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return 0x7F;                // NaN
  if (magnitude >= 0x43E00000u) return uint8_t(sign | 0x7E);  // >= 448 (past it would round to 480, not a value)
  const int exponent = int(magnitude >> 23) - 127;
  if (exponent >= -6) {
    // Normal e4m3: keep 3 of the 23 mantissa bits, rounding the dropped 20 to nearest even. A carry
    // out of the mantissa moves into the exponent, which is the right next value.
    const uint32_t rounded = (magnitude + 0x7FFFFu + ((magnitude >> 20) & 1u)) >> 20;
    return uint8_t(sign | (rounded - (120u << 3)));  // exponent bias 127 -> 7
  }
  // Subnormal e4m3 (steps of 2^-9): the significand 1.m × 2^exponent in units of 2^-9 is
  // significand >> (14 - exponent), rounded to nearest even; a result of 8 is the smallest normal.
  const int shift = 14 - exponent;  // > 20 here
  if (magnitude < 0x00800000u || shift > 24) return sign;  // below 2^-10: rounds to zero
  const uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
  const uint32_t half = 1u << (shift - 1);
  const uint32_t m = (significand + half - 1u + ((significand >> shift) & 1u)) >> shift;
  return uint8_t(sign | m);
}

}  // namespace r1
