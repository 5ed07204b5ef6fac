// Storage-format decoders against formulas written independently of the implementation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "r1/number_formats.h"

namespace r1 {
namespace {

// e4m3fn by its definition: bias 7, subnormal at exponent 0, 0x7F/0xFF NaN, no infinities.
double e4m3_by_definition(int code) {
  const int sign = code >> 7, exponent = (code >> 3) & 15, mantissa = code & 7;
  if (exponent == 15 && mantissa == 7) return NAN;
  const double magnitude = exponent == 0 ? std::ldexp(mantissa / 8.0, -6)
                                         : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return sign ? -magnitude : magnitude;
}

TEST(NumberFormats, E4m3AllCodes) {
  for (int code = 0; code < 256; ++code) {
    const double expected = e4m3_by_definition(code);
    const float got = e4m3_to_float(uint8_t(code));
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(got)) << "code " << code;
    } else {
      EXPECT_EQ(double(got), expected) << "code " << code;
      EXPECT_EQ(std::signbit(got), code >= 128) << "code " << code;
    }
  }
  EXPECT_EQ(e4m3_to_float(0x7E), 448.0f);        // largest finite
  EXPECT_EQ(e4m3_to_float(0x01), 0.001953125f);  // smallest subnormal, 2^-9
  EXPECT_EQ(e4m3_to_float(0x08), 0.015625f);     // smallest normal, 2^-6
  EXPECT_EQ(e4m3_to_float(0xB8), -1.0f);
}

// The e4m3 code nearest to v by exhaustive search over the finite codes, ties to the even code
// (the code's lowest bit is the mantissa's), saturating at ±448: a definition of float_to_e4m3.
int e4m3_nearest_by_search(double v) {
  const int sign = std::signbit(v) ? 0x80 : 0;
  const double a = std::fabs(v);
  int best = 0;
  double best_distance = INFINITY;
  for (int code = 0; code <= 0x7E; ++code) {
    const double distance = std::fabs(e4m3_by_definition(code) - a);
    if (distance < best_distance || (distance == best_distance && code % 2 == 0)) {
      best = code;
      best_distance = distance;
    }
  }
  return sign | best;
}

TEST(NumberFormats, E4m3EncodeRoundTripsEveryCode) {
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7F) == 0x7F) continue;  // NaN
    EXPECT_EQ(float_to_e4m3(e4m3_to_float(uint8_t(code))), code) << "code " << code;
  }
}

TEST(NumberFormats, E4m3EncodeRoundsToNearestEven) {
  // Every midpoint between neighbouring codes (exact in float) goes to the even one, and points
  // just beside it go to the nearer one.
  for (int code = 0; code < 0x7E; ++code) {
    const float lo = e4m3_to_float(uint8_t(code)), hi = e4m3_to_float(uint8_t(code + 1));
    const float mid = (lo + hi) / 2;
    EXPECT_EQ(float_to_e4m3(mid), code % 2 == 0 ? code : code + 1) << "midpoint above code " << code;
    EXPECT_EQ(float_to_e4m3(std::nextafter(mid, 0.0f)), code) << "below midpoint above code " << code;
    EXPECT_EQ(float_to_e4m3(std::nextafter(mid, 1e9f)), code + 1) << "above midpoint above code " << code;
    EXPECT_EQ(float_to_e4m3(-mid), 0x80 | (code % 2 == 0 ? code : code + 1)) << "negative midpoint " << code;
  }
  // Random magnitudes from far below the smallest subnormal to past the largest value.
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> exponent(-14.0f, 10.0f);
  for (int i = 0; i < 20000; ++i) {
    const float v = std::exp2(exponent(rng)) * (i % 2 ? -1.0f : 1.0f);
    ASSERT_EQ(float_to_e4m3(v), e4m3_nearest_by_search(v)) << "value " << v;
  }
}

TEST(NumberFormats, E4m3EncodeSaturatesAndKeepsSigns) {
  EXPECT_EQ(float_to_e4m3(448.0f), 0x7E);
  EXPECT_EQ(float_to_e4m3(463.9f), 0x7E);
  EXPECT_EQ(float_to_e4m3(1e30f), 0x7E);
  EXPECT_EQ(float_to_e4m3(-1e30f), 0xFE);
  EXPECT_EQ(float_to_e4m3(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(float_to_e4m3(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_EQ(float_to_e4m3(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(float_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(float_to_e4m3(-0.0f), 0x80);
  EXPECT_EQ(float_to_e4m3(0.0009765625f), 0x00);   // 2^-10, half the smallest subnormal: tie to 0
  EXPECT_EQ(float_to_e4m3(-0.0009765626f), 0x81);  // just past it
  EXPECT_EQ(float_to_e4m3(1e-30f), 0x00);
  EXPECT_EQ(float_to_e4m3(-1e-40f), 0x80);         // float subnormal
  EXPECT_EQ(float_to_e4m3(1.0f), 0x38);
  EXPECT_EQ(float_to_e4m3(-2.0f), 0xC0);
}

TEST(NumberFormats, Bf16) {
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xC000), -2.0f);
  EXPECT_EQ(bf16_to_float(0x3E20), 0.15625f);
  EXPECT_TRUE(std::isinf(bf16_to_float(0x7F80)));
  EXPECT_TRUE(std::isnan(bf16_to_float(0x7FC1)));
}

// Encoding to bf16: every finite code survives the round trip; a float between two codes goes to
// the nearer one, and exactly halfway to the one with an even last bit; NaN stays NaN.
TEST(NumberFormats, FloatToBf16RoundsToNearestEven) {
  for (int code = 0; code < 65536; ++code) {
    const float f = bf16_to_float(uint16_t(code));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(f)))) << "code " << code;
    } else {
      EXPECT_EQ(float_to_bf16(f), code) << "code " << code;
    }
  }
  EXPECT_EQ(float_to_bf16(1.0f + 1.0f / 256), 0x3F80);                   // halfway, 0x3F80 even
  EXPECT_EQ(float_to_bf16(1.0f + 3.0f / 256), 0x3F82);                   // halfway, 0x3F82 even
  EXPECT_EQ(float_to_bf16(std::nextafter(1.0f + 1.0f / 256, 2.0f)), 0x3F81);  // just above halfway
  EXPECT_EQ(float_to_bf16(-(1.0f + 1.0f / 256)), 0xBF80);
}

TEST(NumberFormats, F16AllCodes) {
  for (int code = 0; code < 65536; ++code) {
    const int sign = code >> 15, exponent = (code >> 10) & 31, mantissa = code & 1023;
    const float got = f16_to_float(uint16_t(code));
    if (exponent == 31) {
      EXPECT_TRUE(mantissa ? std::isnan(got) : std::isinf(got)) << code;
      continue;
    }
    double magnitude = exponent == 0 ? std::ldexp(mantissa / 1024.0, -14)
                                     : std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
    ASSERT_EQ(double(got), sign ? -magnitude : magnitude) << "code " << code;
  }
}

}  // namespace
}  // namespace r1
