// The row kernels with AVX2 + FMA + F16C: 8 floats a vector. Compiled with -mavx2 -mfma
// -mf16c; only called after dispatch.cpp has checked the CPU.
#include <immintrin.h>

#include "cpu/simd/rows_impl.h"

namespace r1::simd {
namespace {

struct Avx2 {
  static constexpr int W = 8;
  // 12 accumulators, 3 weight vectors and an activation vector: the 16 registers.
  static constexpr int kTileRows = 3, kTileTokens = 4;
  // 8 accumulators, 4 weight vectors and a broadcast.
  static constexpr int kColumnTokens = 2, kColumnVectors = 4;
  using F = __m256;
  static F zero() { return _mm256_setzero_ps(); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F fma(F a, F b, F acc) { return _mm256_fmadd_ps(a, b, acc); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static float reduce(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static F bf16(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static F f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  // e4m3 → e4m3 · 2^-8 exactly through binary16; see rows_avx512.cpp.
  static F fp8(const uint8_t* p) {
    const __m128i wide = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    const __m128i half = _mm_and_si128(_mm_slli_epi16(wide, 7), _mm_set1_epi16(int16_t(0xBFFF)));
    return _mm256_cvtph_ps(half);
  }
  // 32 codes at once: each integer step on 16 lanes, half the instructions.
  static void fp8x4(const uint8_t* p, F* out) {
    for (int pair = 0; pair < 2; ++pair) {
      const __m256i wide = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * pair)));
      const __m256i half = _mm256_and_si256(_mm256_slli_epi16(wide, 7), _mm256_set1_epi16(int16_t(0xBFFF)));
      out[2 * pair] = _mm256_cvtph_ps(_mm256_castsi256_si128(half));
      out[2 * pair + 1] = _mm256_cvtph_ps(_mm256_extracti128_si256(half, 1));
    }
  }
};

}  // namespace

extern const Kernels kAvx2Kernels = {Isa::avx2, "avx2", rows<Avx2>, columns<Avx2>, decode_row<Avx2>, read_sum<Avx2>, fma_loop<Avx2>,
                                 Avx2::W};

}  // namespace r1::simd
