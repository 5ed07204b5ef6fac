// Storage-format decoders against formulas written independently of the implementation.
#include <gtest/gtest.h>

#include <cmath>

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
