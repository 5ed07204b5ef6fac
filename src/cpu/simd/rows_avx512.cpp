// The row kernels with AVX-512 (F, BW, VL): 16 floats a vector. Compiled with -mavx512f
// -mavx512bw -mavx512vl; only called after dispatch.cpp has checked the CPU.
#include <immintrin.h>

#include "cpu/simd/rows_impl.h"

namespace r1::simd {
namespace {

struct Avx512 {
  static constexpr int W = 16;
  using F = __m512;
  static F zero() { return _mm512_setzero_ps(); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F fma(F a, F b, F acc) { return _mm512_fmadd_ps(a, b, acc); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static float reduce(F v) { return _mm512_reduce_add_ps(v); }
  static F bf16(const uint16_t* p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  static F f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  // e4m3 → float32 exactly, by bit placement: the sign-extended code shifted left by 20 puts
  // the sign at bit 31 (after masking) and exponent+mantissa where float32 keeps them, which
  // reads as the e4m3 value times 2^-120 (subnormals included); the block scale times 2^120
  // restores it in the same single rounding as decode-then-scale. Codes 0x7F/0xFF (NaN in
  // e4m3) decode to ±480; checkpoints hold none.
  static F fp8(const uint8_t* p, float scale) {
    const __m512i wide = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m512i bits = _mm512_and_si512(_mm512_slli_epi32(wide, 20), _mm512_set1_epi32(int(0x87F00000u)));
    return _mm512_mul_ps(_mm512_castsi512_ps(bits), _mm512_set1_ps(scale * 0x1p120f));
  }
};

}  // namespace

extern const Kernels kAvx512Kernels = {Isa::avx512, "avx512", rows<Avx512>, decode_row<Avx512>, read_sum<Avx512>};

}  // namespace r1::simd
