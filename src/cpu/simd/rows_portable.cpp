// The portable row kernels, plain C++ for any CPU, and the reference the SIMD kernels are
// tested against: each weight row decoded to float32, then dotted with every token.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/dot.h"
#include "cpu/simd/kernels.h"
#include "r1/number_formats.h"

namespace r1::simd {

namespace {

void decode_row(const Rows& w, int row, float* out) {
  const int64_t first = int64_t(row) * (w.stride ? w.stride : w.in);
  switch (w.type) {
    case WeightType::f32:
      std::memcpy(out, static_cast<const float*>(w.data) + first, size_t(w.in) * 4);
      return;
    case WeightType::bf16:
      for (int i = 0; i < w.in; ++i) out[i] = bf16_to_float(static_cast<const uint16_t*>(w.data)[first + i]);
      return;
    case WeightType::f16:
      for (int i = 0; i < w.in; ++i) out[i] = f16_to_float(static_cast<const uint16_t*>(w.data)[first + i]);
      return;
    case WeightType::fp8: break;
  }
  const uint8_t* codes = static_cast<const uint8_t*>(w.data) + first;
  const float* scales = w.scales + int64_t((w.row0 + row) / w.block) * w.scale_cols;
  for (int j = 0; j < w.in; ++j) out[j] = e4m3_to_float(codes[j]) * scales[(w.col0 + j) / w.block];
}

void rows(const Rows& w, const float* x, int tokens, int begin, int end, float* y, float* scratch) {
  for (int o = begin; o < end; ++o) {
    const float* wrow = scratch;
    if (w.type == WeightType::f32)
      wrow = static_cast<const float*>(w.data) + int64_t(o) * (w.stride ? w.stride : w.in);
    else
      decode_row(w, o, scratch);
    for (int t = 0; t < tokens; ++t) y[int64_t(t) * w.out + o] = dot(x + int64_t(t) * w.in, wrow, w.in);
  }
}

// One FMA chain per output over the rows in order, as the SIMD kernels' lanes run it: the
// same bits. FP8: (e4m3 · 2^-8) · fl(x · scale · 2^8), the kernels' form of e4m3 · x · scale.
void columns(const Rows& w, const float* x, int tokens, float* y, float* scratch) {
  std::vector<float> row(size_t(w.in));
  std::fill(y, y + int64_t(tokens) * w.in, 0.0f);
  for (int r = 0; r < w.out; ++r) {
    const int64_t first = int64_t(r) * (w.stride ? w.stride : w.in);
    if (w.type != WeightType::fp8) {
      decode_row(w, r, row.data());
      for (int t = 0; t < tokens; ++t)
        for (int c = 0; c < w.in; ++c)
          y[int64_t(t) * w.in + c] = std::fma(row[c], x[int64_t(t) * w.out + r], y[int64_t(t) * w.in + c]);
      continue;
    }
    const uint8_t* codes = static_cast<const uint8_t*>(w.data) + first;
    const float* scales = w.scales + int64_t((w.row0 + r) / w.block) * w.scale_cols;
    for (int t = 0; t < tokens; ++t)
      for (int c = 0; c < w.in; ++c) {
        const float scaled = x[int64_t(t) * w.out + r] * (scales[(w.col0 + c) / w.block] * 256.0f);
        y[int64_t(t) * w.in + c] = std::fma(e4m3_to_float(codes[c]) * 0x1p-8f, scaled, y[int64_t(t) * w.in + c]);
      }
  }
  (void)scratch;
}

float read_sum(const float* p, size_t n, int streams) {
  float acc[8] = {};
  const size_t run = n / size_t(streams), per_stream = 8 / size_t(streams);
  for (size_t i = 0; i + per_stream <= run; i += per_stream)
    for (size_t s = 0; s < size_t(streams); ++s)
      for (size_t k = 0; k < per_stream; ++k) acc[s * per_stream + k] += p[s * run + i + k];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

float fma_loop(int64_t iterations) {
  float acc[kFmaChainsPerRound];
  for (int k = 0; k < kFmaChainsPerRound; ++k) acc[k] = 1.0f + 1e-3f * k;
  for (int64_t i = 0; i < iterations; ++i)
    for (float& a : acc) a = std::fma(a, 0.999999f, 1e-7f);
  float sum = 0;
  for (float a : acc) sum += a;
  return sum;
}

}  // namespace

extern const Kernels kPortableKernels = {Isa::portable, "portable", rows, columns, decode_row, read_sum, fma_loop, 1};

}  // namespace r1::simd
