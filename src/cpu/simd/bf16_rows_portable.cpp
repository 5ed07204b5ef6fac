// The reference for the fast kernels (bf16_kernels.h): the same rounding of the activations and
// the same exact BF16 weights, summed plainly in double.
#include <cstring>
#include <vector>

#include "cpu/simd/bf16_kernels.h"
#include "r1/number_formats.h"

namespace r1::simd {
namespace {

float weight(const Rows& w, int row, int i) {
  const int64_t at = w.panels ? panel_index(row, i, w.in) : int64_t(row) * (w.stride ? w.stride : w.in) + i;
  if (w.type == WeightType::bf16) return bf16_to_float(static_cast<const uint16_t*>(w.data)[at]);
  return e4m3_to_float(static_cast<const uint8_t*>(w.data)[at]);
}

// Each activation (scale folded in) as the kernels round it: to BF16 alone, or split as hi + lo
// (hi the value rounded, lo what that left, rounded).
template <bool kSplit>
void product(const Rows& w, const float* x, int tokens, int begin, int end, float* y) {
  for (int t = 0; t < tokens; ++t)
    for (int o = begin; o < end; ++o) {
      double sum = 0;
      for (int i = 0; i < w.in; ++i) {
        float xi = x[int64_t(t) * w.in + i];
        if (w.type == WeightType::fp8)
          xi *= w.scales[int64_t((w.row0 + o) / w.block) * w.scale_cols + (w.col0 + i) / w.block];
        const float hi = bf16_to_float(float_to_bf16(xi));
        const double rounded = kSplit ? double(hi) + bf16_to_float(float_to_bf16(xi - hi)) : double(hi);
        sum += rounded * weight(w, o, i);
      }
      y[int64_t(t) * w.out + o] = float(sum);
    }
}

void rows(const Rows& w, const float* x, int tokens, int begin, int end, float* y, uint16_t*) {
  product<false>(w, x, tokens, begin, end, y);
}

void split_rows(const Rows& w, const float* x, int tokens, int begin, int end, float* y, uint16_t*) {
  product<true>(w, x, tokens, begin, end, y);
}

float dot_loop(int64_t iterations) {
  float acc[kDotChains * kBf16Step / 2] = {};
  for (int64_t i = 0; i < iterations; ++i)
    for (float& a : acc) a += 2e-24f;
  float sum = 0;
  for (float a : acc) sum += a;
  return sum;
}

}  // namespace

void pack_panels(const Rows& w, int begin, int end) {
  const size_t element = w.type == WeightType::fp8 ? 1 : 2, panel_bytes = size_t(kPanelWidth) * w.in * element;
  std::vector<uint8_t> rows(panel_bytes);
  for (int p = begin; p < end; ++p) {
    uint8_t* panel = static_cast<uint8_t*>(const_cast<void*>(w.data)) + p * panel_bytes;
    std::memcpy(rows.data(), panel, panel_bytes);
    // A column pair (2 elements) of each row at a time.
    for (int r = 0; r < kPanelWidth; ++r)
      for (int i = 0; i < w.in; i += 2)
        std::memcpy(panel + panel_index(r, i, w.in) * element, rows.data() + (size_t(r) * w.in + i) * element, 2 * element);
  }
}

extern const Bf16Kernels kPortableBf16Kernels = {"portable-bf16", rows, split_rows, dot_loop, pack_panels, mla_attend_bf16_reference};

}  // namespace r1::simd
