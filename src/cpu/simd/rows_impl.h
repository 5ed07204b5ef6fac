// The row-product kernels written once over a vector type V, instantiated by each ISA's
// translation unit (rows_avx512.cpp, rows_avx2.cpp) with its own V. V provides:
//   F (vector of W floats), zero(), load(const float*) (unaligned), store(float*, F),
//   fma(a, b, acc), add(a, b), mul(a, b), set1(float), reduce(F), and decoders of W weights:
//   fp8(codes) (e4m3 · 2^-8), bf16(bits), f16(bits).
// Everything here has internal linkage (anonymous namespace) so that no copy compiled with one
// ISA's flags is shared with another translation unit.
#pragma once

#include "cpu/simd/kernels.h"

namespace r1::simd {
namespace {

// Bytes of one stored weight.
constexpr int weight_bytes(WeightType t) {
  return t == WeightType::f32 ? 4 : t == WeightType::fp8 ? 1 : 2;
}

// FP8 weights decode to e4m3 · 2^-8 (exact, see the ISA files); block scales carry the 2^8.
constexpr float kFp8Unit = 256.0f;

// W weights decoded from p; FP8 without its block scale.
template <class V, WeightType T>
typename V::F decode(const uint8_t* p) {
  if constexpr (T == WeightType::f32) return V::load(reinterpret_cast<const float*>(p));
  if constexpr (T == WeightType::bf16) return V::bf16(reinterpret_cast<const uint16_t*>(p));
  if constexpr (T == WeightType::f16) return V::f16(reinterpret_cast<const uint16_t*>(p));
  if constexpr (T == WeightType::fp8) return V::fp8(p);
}

// 4·W consecutive weights from p into out[0..3]; an ISA may decode FP8 in wider steps (fp8x4).
template <class V, WeightType T>
void decode4(const uint8_t* p, typename V::F* out) {
  if constexpr (T == WeightType::fp8 && requires { V::fp8x4(p, out); }) {
    V::fp8x4(p, out);
  } else {
    for (int k = 0; k < 4; ++k) out[k] = decode<V, T>(p + k * V::W * weight_bytes(T));
  }
}

// W weights of `row` from column i, FP8 unscaled; lanes past w.in read as 0.
template <class V, WeightType T>
typename V::F load_weights(const Rows& w, int row, int i) {
  constexpr int W = V::W, bytes = weight_bytes(T);
  const int64_t stride = w.stride ? w.stride : w.in;
  const uint8_t* p = static_cast<const uint8_t*>(w.data) + (int64_t(row) * stride + i) * bytes;
  if (w.in - i >= W) return decode<V, T>(p);
  alignas(64) uint8_t pad[W * 4] = {};  // the last partial chunk, zero padded
  for (int k = 0; k < (w.in - i) * bytes; ++k) pad[k] = p[k];
  return decode<V, T>(pad);
}

// Σ_i load(i) · x[i] · scale(i) over [0, in): sums of each block (FP8 scale block, or all of
// `in`) in four accumulators of W lanes, scaled once per block (scales[b] · kFp8Unit; nullptr:
// no scales). A view starting `phase` columns into a block (a column shard) has a shorter
// first block. The order depends only on `in`, the block and the phase, never on where the
// weights come from, so the fused and the decoded-row paths agree bit for bit (batch invariance).
// load4(i, out) fills out[0..3] with load(i), load(i + W), load(i + 2W), load(i + 3W).
template <class V, class Load, class Load4>
float dot_row(Load load, Load4 load4, const float* scales, int block, int phase, const float* x, int in) {
  constexpr int W = V::W;
  using F = typename V::F;
  F a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  for (int b = 0, block_index = 0; b < in; b = (block_index + 1) * block - phase, ++block_index) {
    const int end = in < (block_index + 1) * block - phase ? in : (block_index + 1) * block - phase;
    F b0 = V::zero(), b1 = V::zero(), b2 = V::zero(), b3 = V::zero();
    int i = b;
    for (; i + 4 * W <= end; i += 4 * W) {
      F w[4];
      load4(i, w);
      b0 = V::fma(w[0], V::load(x + i), b0);
      b1 = V::fma(w[1], V::load(x + i + W), b1);
      b2 = V::fma(w[2], V::load(x + i + 2 * W), b2);
      b3 = V::fma(w[3], V::load(x + i + 3 * W), b3);
    }
    for (; i + W <= end; i += W) b0 = V::fma(load(i), V::load(x + i), b0);
    if (i < end) {  // the last partial chunk: x padded with zeros
      alignas(64) float xs[W] = {};
      for (int k = 0; k < end - i; ++k) xs[k] = x[i + k];
      b1 = V::fma(load(i), V::load(xs), b1);
    }
    if (!scales) {
      a0 = V::add(a0, b0), a1 = V::add(a1, b1), a2 = V::add(a2, b2), a3 = V::add(a3, b3);
      continue;
    }
    const F s = V::set1(scales[block_index] * kFp8Unit);
    a0 = V::fma(b0, s, a0), a1 = V::fma(b1, s, a1), a2 = V::fma(b2, s, a2), a3 = V::fma(b3, s, a3);
  }
  return V::reduce(V::add(V::add(a0, a1), V::add(a2, a3)));
}

// The scales of the block holding the view's row `row`, column 0 (FP8; else nullptr).
template <class V, WeightType T>
const float* row_scales(const Rows& w, int row) {
  return T == WeightType::fp8 ? w.scales + int64_t((w.row0 + row) / w.block) * w.scale_cols + w.col0 / w.block
                              : nullptr;
}

// Row `row` of W as float32 into out[0, w.in); FP8 scaled unless `unscaled`.
template <class V, WeightType T>
void decode_row_typed(const Rows& w, int row, float* out, bool unscaled = false) {
  const float* scales = unscaled ? nullptr : row_scales<V, T>(w, row);
  const int phase = scales ? w.col0 % w.block : 0;
  // A chunk of W lanes straddles two scale blocks when the view starts off a lane boundary:
  // then decode unscaled and scale value by value (the products are the same, exactly).
  const bool per_value = phase % V::W != 0;
  auto chunk = [&](int i) {
    const typename V::F v = load_weights<V, T>(w, row, i);
    return scales && !per_value ? V::mul(v, V::set1(scales[(i + phase) / w.block] * kFp8Unit)) : v;
  };
  int i = 0;
  for (; i + V::W <= w.in; i += V::W) V::store(out + i, chunk(i));
  if (i < w.in) {
    alignas(64) float tail[V::W];
    V::store(tail, chunk(i));
    for (int k = 0; i + k < w.in; ++k) out[i + k] = tail[k];
  }
  if (scales && per_value)
    for (int j = 0; j < w.in; ++j) out[j] *= scales[(j + phase) / w.block] * kFp8Unit;
}

// Asks for row `row` ahead of its use: one row of FP8 is 112 cache lines at R1's width, and the
// decode chain leaves too few loads in flight for the hardware prefetcher alone to keep up.
template <WeightType T>
void prefetch_row(const Rows& w, int row) {
  const int64_t stride = w.stride ? w.stride : w.in, bytes = int64_t(w.in) * weight_bytes(T);
  const char* p = static_cast<const char*>(w.data) + int64_t(row) * stride * weight_bytes(T);
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 3);
}

// One token (decode): each row decoded on the fly, the weights going from memory straight to
// the FMAs.
template <class V, WeightType T>
void rows_typed_one_token(const Rows& w, const float* x, int begin, int end, float* y) {
  const int block = T == WeightType::fp8 ? w.block : w.in;
  const int phase = T == WeightType::fp8 ? w.col0 % w.block : 0;
  for (int o = begin; o < end; ++o) {
    if (o + 1 < end) prefetch_row<T>(w, o + 1);
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + int64_t(o) * (w.stride ? w.stride : w.in) * weight_bytes(T);
    y[o] = dot_row<V>([&](int i) { return load_weights<V, T>(w, o, i); },
                      [&](int i, typename V::F* out) { decode4<V, T>(row + int64_t(i) * weight_bytes(T), out); },
                      row_scales<V, T>(w, o), block, phase, x, w.in);
  }
}

// dot_row of one decoded row against kTokens tokens' activations at once (x_t = x + t·x_stride):
// each token keeps dot_row's own four chains and block scaling, so every sum is the same bits,
// while each row vector loaded serves all the tokens.
constexpr int kTokensPerPass = 4;
template <class V>
void dot_row_tokens(const float* row, const float* scales, int block, int phase, const float* x, int64_t x_stride,
                    int in, float* out, int64_t out_stride) {
  constexpr int W = V::W, NT = kTokensPerPass;
  using F = typename V::F;
  F a[NT][4];
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) a[t][0] = a[t][1] = a[t][2] = a[t][3] = V::zero();
  for (int b = 0, block_index = 0; b < in; b = (block_index + 1) * block - phase, ++block_index) {
    const int end = in < (block_index + 1) * block - phase ? in : (block_index + 1) * block - phase;
    F s[NT][4];
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) s[t][0] = s[t][1] = s[t][2] = s[t][3] = V::zero();
    int i = b;
    for (; i + 4 * W <= end; i += 4 * W) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const F w = V::load(row + i + k * W);
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) s[t][k] = V::fma(w, V::load(x + t * x_stride + i + k * W), s[t][k]);
      }
    }
    for (; i + W <= end; i += W) {
      const F w = V::load(row + i);
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) s[t][0] = V::fma(w, V::load(x + t * x_stride + i), s[t][0]);
    }
    if (i < end) {  // the last partial chunk: x padded with zeros
      const F w = V::load(row + i);
      for (int t = 0; t < NT; ++t) {
        alignas(64) float xs[W] = {};
        for (int k = 0; k < end - i; ++k) xs[k] = x[t * x_stride + i + k];
        s[t][1] = V::fma(w, V::load(xs), s[t][1]);
      }
    }
    const F scale = V::set1(scales ? scales[block_index] * kFp8Unit : 1.0f);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) a[t][k] = scales ? V::fma(s[t][k], scale, a[t][k]) : V::add(a[t][k], s[t][k]);
  }
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) out[t * out_stride] = V::reduce(V::add(V::add(a[t][0], a[t][1]), V::add(a[t][2], a[t][3])));
}

// Several tokens: kScratchRows rows decoded once into scratch (kept in L2), then every token's
// activations read once for the whole group (from L1 for all but the first row). Each output
// is the same dot_row as for one token: the same sums, bit for bit.
template <class V, WeightType T>
void rows_typed_tokens(const Rows& w, const float* x, int tokens, int begin, int end, float* y, float* scratch) {
  const int block = T == WeightType::fp8 ? w.block : w.in;
  const int phase = T == WeightType::fp8 ? w.col0 % w.block : 0;
  const int stride = padded(w.in);
  for (int o0 = begin; o0 < end; o0 += kScratchRows) {
    const int group = end - o0 < kScratchRows ? end - o0 : kScratchRows;
    for (int g = 0; g < group; ++g) {
      float* row = scratch + int64_t(g) * stride;
      decode_row_typed<V, T>(w, o0 + g, row, /*unscaled=*/true);
      for (int i = w.in; i < stride; ++i) row[i] = 0;
    }
    int t = 0;
    for (; t + kTokensPerPass <= tokens; t += kTokensPerPass)
      for (int g = 0; g < group; ++g)
        dot_row_tokens<V>(scratch + int64_t(g) * stride, row_scales<V, T>(w, o0 + g), block, phase,
                          x + int64_t(t) * w.in, w.in, w.in, y + int64_t(t) * w.out + o0 + g, w.out);
    for (; t < tokens; ++t)
      for (int g = 0; g < group; ++g) {
        const float* row = scratch + int64_t(g) * stride;
        y[int64_t(t) * w.out + o0 + g] = dot_row<V>(
            [&](int i) { return V::load(row + i); },
            [&](int i, typename V::F* out) {
              for (int k = 0; k < 4; ++k) out[k] = V::load(row + i + k * V::W);
            },
            row_scales<V, T>(w, o0 + g), block, phase, x + int64_t(t) * w.in, w.in);
      }
  }
}

template <class V, WeightType T>
void rows_typed(const Rows& w, const float* x, int tokens, int begin, int end, float* y, float* scratch) {
  if (tokens == 1)
    rows_typed_one_token<V, T>(w, x, begin, end, y);
  else
    rows_typed_tokens<V, T>(w, x, tokens, begin, end, y, scratch);
}

template <class V>
void decode_row(const Rows& w, int row, float* out) {
  switch (w.type) {
    case WeightType::f32: return decode_row_typed<V, WeightType::f32>(w, row, out);
    case WeightType::bf16: return decode_row_typed<V, WeightType::bf16>(w, row, out);
    case WeightType::f16: return decode_row_typed<V, WeightType::f16>(w, row, out);
    case WeightType::fp8: return decode_row_typed<V, WeightType::fp8>(w, row, out);
  }
}

template <class V>
void rows(const Rows& w, const float* x, int tokens, int begin, int end, float* y, float* scratch) {
  switch (w.type) {
    case WeightType::f32: return rows_typed<V, WeightType::f32>(w, x, tokens, begin, end, y, scratch);
    case WeightType::bf16: return rows_typed<V, WeightType::bf16>(w, x, tokens, begin, end, y, scratch);
    case WeightType::f16: return rows_typed<V, WeightType::f16>(w, x, tokens, begin, end, y, scratch);
    case WeightType::fp8: return rows_typed<V, WeightType::fp8>(w, x, tokens, begin, end, y, scratch);
  }
}

// The FMA peak: `iterations` rounds of 12 independent vector FMAs (more chains than the FMA
// latency × issue width of any x86 core), registers only. Returns a value that depends on every
// FMA so that none is optimized away. 2 · 12 · W FLOP per round.
template <class V>
float fma_loop(int64_t iterations) {
  using F = typename V::F;
  constexpr int kChains = 12;
  F acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = V::set1(1.0f + 1e-3f * k);
  const F m = V::set1(0.999999f), a = V::set1(1e-7f);
  for (int64_t i = 0; i < iterations; ++i)
    for (int k = 0; k < kChains; ++k) acc[k] = V::fma(acc[k], m, a);
  F sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = V::add(sum, acc[k]);
  return V::reduce(sum);
}

// Eight accumulators: enough loads in flight to measure memory, not the add latency.
template <class V>
float read_sum(const float* p, size_t n) {
  using F = typename V::F;
  constexpr size_t W = V::W;
  F a[8];
  for (F& v : a) v = V::zero();
  for (size_t i = 0; i + 8 * W <= n; i += 8 * W)
    for (size_t k = 0; k < 8; ++k) a[k] = V::add(a[k], V::load(p + i + k * W));
  for (size_t k = 1; k < 8; ++k) a[0] = V::add(a[0], a[k]);
  return V::reduce(a[0]);
}

}  // namespace
}  // namespace r1::simd
