// FP8 e4m3 codes → BF16 by table lookup (AVX512-VBMI): 64 codes take two byte permutes over
// 128-entry tables (the high and the low byte of each BF16 value) and one logic step for the
// sign, where widening by integer steps takes several instructions per 16 or 32 codes and bound
// batch-1 decode on the conversion rather than on memory. Every e4m3 value, subnormals included,
// is a BF16 number, so the tables are exact; 2^scale_exponent rides along for free. Included only
// by translation units compiled with -mavx512vbmi; internal linkage.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace r1::simd {
namespace {

// BF16 bits of e4m3(code) · 2^scale_exponent for a code's magnitude (0-127). Codes 0x7F (NaN in
// e4m3, absent from checkpoints) read as 480, as the integer decoders read them.
constexpr uint16_t e4m3_as_bf16(int code, int scale_exponent) {
  const int exponent = code >> 3, mantissa = code & 7;
  if (code == 0) return 0;
  int significand = exponent ? 8 + mantissa : mantissa;  // value = significand · 2^power
  int power = exponent ? exponent - 10 : -9;
  while (significand < 8) significand *= 2, --power;
  return uint16_t((power + 3 + scale_exponent + 127) << 7 | (significand - 8) << 4);
}

struct Fp8Table {
  alignas(64) uint8_t high[128] = {}, low[128] = {};
};
constexpr Fp8Table fp8_table(int scale_exponent) {
  Fp8Table t;
  for (int code = 0; code < 128; ++code) {
    t.high[code] = uint8_t(e4m3_as_bf16(code, scale_exponent) >> 8);
    t.low[code] = uint8_t(e4m3_as_bf16(code, scale_exponent) & 0xFF);
  }
  return t;
}

struct Bf16Bytes {
  __m512i high, low;  // byte k: the high / low byte of code k's BF16 value
};
inline Bf16Bytes lookup_bf16(__m512i codes, const Fp8Table& t) {
  // The permutes index with each code's low 7 bits; its bit 7 is the sign, BF16's bit 15.
  const __m512i high = _mm512_permutex2var_epi8(_mm512_load_si512(t.high), codes, _mm512_load_si512(t.high + 64));
  const __m512i low = _mm512_permutex2var_epi8(_mm512_load_si512(t.low), codes, _mm512_load_si512(t.low + 64));
  return {_mm512_ternarylogic_epi32(high, codes, _mm512_set1_epi8(int8_t(0x80)), 0xF8), low};  // high | (codes & sign)
}

// The byte order that makes the in-lane unpacks below come out in column order: codes[k] is
// moved to the position whose unpacked lane holds column k.
struct ByteOrder {
  alignas(64) uint8_t index[64] = {};
};
// Two unpacks (bytes → 16-bit lanes) of 64 codes into two vectors of 32 BF16 values.
constexpr ByteOrder bf16_pair_order() {
  ByteOrder o;
  for (int lane = 0; lane < 4; ++lane)
    for (int k = 0; k < 8; ++k) o.index[16 * lane + k] = uint8_t(8 * lane + k), o.index[16 * lane + 8 + k] = uint8_t(32 + 8 * lane + k);
  return o;
}
// Then two more (16-bit → 32-bit lanes, BF16 in the high half: float32) into four vectors of 16.
constexpr ByteOrder float_quad_order() {
  ByteOrder o;
  for (int lane = 0; lane < 4; ++lane)
    for (int quarter = 0; quarter < 4; ++quarter)
      for (int k = 0; k < 4; ++k) o.index[16 * lane + 4 * quarter + k] = uint8_t(16 * quarter + 4 * lane + k);
  return o;
}

inline __m512i ordered_codes(__m512i codes, const ByteOrder& order) {
  return _mm512_permutexvar_epi8(_mm512_load_si512(order.index), codes);
}

// 64 codes → out[0] (columns 0-31), out[1] (32-63) as BF16 of e4m3 · 2^kScaleExponent.
template <int kScaleExponent>
inline void fp8_to_bf16x2(__m512i codes, __m512i* out) {
  static constexpr Fp8Table kTable = fp8_table(kScaleExponent);
  static constexpr ByteOrder kOrder = bf16_pair_order();
  const Bf16Bytes b = lookup_bf16(ordered_codes(codes, kOrder), kTable);
  out[0] = _mm512_unpacklo_epi8(b.low, b.high);
  out[1] = _mm512_unpackhi_epi8(b.low, b.high);
}

// 64 codes from p → out[0..3] (16 columns each) as float32 of e4m3 · 2^kScaleExponent.
template <int kScaleExponent>
inline void fp8_to_floatx4(const uint8_t* p, __m512* out) {
  static constexpr Fp8Table kTable = fp8_table(kScaleExponent);
  static constexpr ByteOrder kOrder = float_quad_order();
  const Bf16Bytes b = lookup_bf16(ordered_codes(_mm512_loadu_si512(p), kOrder), kTable);
  const __m512i pairs_low = _mm512_unpacklo_epi8(b.low, b.high), pairs_high = _mm512_unpackhi_epi8(b.low, b.high);
  const __m512i zero = _mm512_setzero_si512();
  out[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, pairs_low));
  out[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, pairs_low));
  out[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, pairs_high));
  out[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, pairs_high));
}

}  // namespace
}  // namespace r1::simd
