// Elementwise math written so that the compiler vectorizes the loops that call it (no library
// call per element): the softmax of the attention and the SiLU of the MLPs.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

// A function compiled twice, for x86-64-v4 (AVX-512: 16 floats a vector) and the baseline,
// the better one picked at load time.
#if defined(__x86_64__) && defined(__GNUC__)
#define R1_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define R1_VECTOR_CLONES
#endif

namespace r1 {

// e^x within 2 ulp for x in [-87, 88] (clamped there: below, e^x is under float32's smallest
// normal; above, it overflows): x = n · ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor series to
// r^7 (truncation error below 6e-9 relative), times 2^n assembled in the exponent bits.
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  constexpr float kRound = 0x1.8p23f;  // adding and subtracting it rounds to an integer
  const float n = (x * 1.44269504f + kRound) - kRound;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // ln 2 in two parts: n · hi is exact
  float p = 1.0f / 5040;
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = p * r + c;
  return p * std::bit_cast<float>((int32_t(n) + 127) << 23);
}

}  // namespace r1
