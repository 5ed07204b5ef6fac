// The AVX-512 (F, BW, VL) vector of the row kernels (rows_impl.h's V): 16 floats. Included only
// by translation units compiled with those instruction sets (rows_avx512*.cpp); internal
// linkage, like rows_impl.h.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace r1::simd {
namespace {

struct Avx512 {
  static constexpr int W = 16;
  // 24 accumulators, 4 weight vectors and an activation vector of the 32 registers: 10 loads for 24 FMAs.
  static constexpr int kTileRows = 4, kTileTokens = 6;
  // 24 accumulators, 4 weight vectors and a broadcast.
  static constexpr int kColumnTokens = 6, kColumnVectors = 4;
  using F = __m512;
  static F zero() { return _mm512_setzero_ps(); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F fma(F a, F b, F acc) { return _mm512_fmadd_ps(a, b, acc); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static float reduce(F v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));             // lanes 0, 1: q0 + q2, q1 + q3
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));  // (q0 + q2) + (q1 + q3)
  }
  // reduce(v[i]) for 16 vectors at once, as 4 groups of 4 sums, group g at out + g · ld: the
  // same halving sums in transposed form, each step adding two vectors' halves (shuffled
  // together), halving the lanes per sum and doubling the sums per vector; 45 instructions
  // instead of 16 × 8.
  static void reduce16(const F* v, float* out, int64_t ld) {
    // Step 1, lane l + lane l + 8: pairs (v[i], v[i + 4]) into 8 vectors of two sums each,
    // ordered so that the last step's lanes come out in v's order.
    F h[8];
    for (int k = 0; k < 8; ++k) {
      const F a = v[k % 2 * 8 + k / 2], b = v[k % 2 * 8 + k / 2 + 4];
      h[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    }
    // Step 2, l + l + 4 (128-bit quarters 0 + 1, 2 + 3 of each 8-lane half).
    F q[4];
    for (int k = 0; k < 4; ++k)
      q[k] = _mm512_add_ps(_mm512_shuffle_f32x4(h[2 * k], h[2 * k + 1], 0x88),
                           _mm512_shuffle_f32x4(h[2 * k], h[2 * k + 1], 0xDD));
    // Step 3, l + l + 2 within each quarter; step 4, l + l + 1.
    const F e0 = _mm512_add_ps(_mm512_shuffle_ps(q[0], q[1], 0x44), _mm512_shuffle_ps(q[0], q[1], 0xEE));
    const F e1 = _mm512_add_ps(_mm512_shuffle_ps(q[2], q[3], 0x44), _mm512_shuffle_ps(q[2], q[3], 0xEE));
    const F sums = _mm512_add_ps(_mm512_shuffle_ps(e0, e1, 0x88), _mm512_shuffle_ps(e0, e1, 0xDD));
    _mm_storeu_ps(out, _mm512_castps512_ps128(sums));
    _mm_storeu_ps(out + ld, _mm512_extractf32x4_ps(sums, 1));
    _mm_storeu_ps(out + 2 * ld, _mm512_extractf32x4_ps(sums, 2));
    _mm_storeu_ps(out + 3 * ld, _mm512_extractf32x4_ps(sums, 3));
  }
  static F bf16(const uint16_t* p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  static F f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  // e4m3 → e4m3 · 2^-8 exactly, in float32 lanes: a code sign-extended to 32 bits and shifted
  // left by 20 has its exponent and mantissa where float32 keeps them, its sign in bit 31 (bits
  // 27-30, copies of the sign, are cleared): the value · 2^-120, subnormals included (as float32
  // subnormals), which one exact multiplication by 2^112 brings to e4m3 · 2^-8. Integer and
  // multiply steps only: the half-precision conversion of the binary16 route issues at half the
  // rate and bound the kernel (27 GB/s from L2 on one Zen 5 core). Codes 0x7F/0xFF (NaN in
  // e4m3) decode to ±480 · 2^-8; checkpoints hold none.
  static F fp8(const uint8_t* p) {
    const __m512i wide = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m512i bits = _mm512_and_si512(_mm512_slli_epi32(wide, 20), _mm512_set1_epi32(int32_t(0x87F00000u)));
    return _mm512_mul_ps(_mm512_castsi512_ps(bits), _mm512_set1_ps(0x1p112f));
  }
};

}  // namespace
}  // namespace r1::simd
