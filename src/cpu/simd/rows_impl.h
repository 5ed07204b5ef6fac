// The row-product kernels written once over a vector type V, instantiated by each ISA's
// translation unit (rows_avx512.cpp, rows_avx2.cpp) with its own V. V provides:
//   F (vector of W floats), zero(), load(const float*) (unaligned), store(float*, F),
//   fma(a, b, acc), add(a, b), mul(a, b), set1(float), reduce(F) (the sum of the lanes by
//   halving: lane l + lane l + W/2, then l + W/4, ...), decoders of W weights: fp8(codes)
//   (e4m3 · 2^-8), bf16(bits), f16(bits), the register tile of the multi-token product:
//   kTileRows × kTileTokens accumulators, and the column product's: kColumnTokens ×
//   kColumnVectors (a multiple of 4).
// Everything here has internal linkage (anonymous namespace) so that no copy compiled with one
// ISA's flags is shared with another translation unit.
#pragma once

#include <algorithm>

#include "cpu/simd/kernels.h"

namespace r1::simd {
namespace {

// Bytes of one stored weight.
constexpr int weight_bytes(WeightType t) {
  return t == WeightType::f32 ? 4 : t == WeightType::fp8 ? 1 : 2;
}

// FP8 weights decode to e4m3 · 2^-8 (exact, see the ISA files); block scales carry the 2^8:
// (e4m3 · 2^-8) · (scale · 2^8) rounds the same real number as e4m3 · scale.
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

// Row `row` of the view: its column 0 in memory.
template <WeightType T>
const uint8_t* row_data(const Rows& w, int row) {
  return static_cast<const uint8_t*>(w.data) + int64_t(row) * (w.stride ? w.stride : w.in) * weight_bytes(T);
}

// W weights of a row (`row`: its column 0) from column i, FP8 unscaled; lanes past `in` read as 0.
template <class V, WeightType T>
typename V::F load_weights(const uint8_t* row, int i, int in) {
  constexpr int W = V::W, bytes = weight_bytes(T);
  const uint8_t* p = row + int64_t(i) * bytes;
  if (in - i >= W) return decode<V, T>(p);
  alignas(64) uint8_t pad[W * 4] = {};  // the last partial chunk, zero padded
  for (int k = 0; k < (in - i) * bytes; ++k) pad[k] = p[k];
  return decode<V, T>(pad);
}

// FP8: the scales of the block row holding the view's row `row`, from the block of its column 0.
inline const float* row_scales(const Rows& w, int row) {
  return w.scales + int64_t((w.row0 + row) / w.block) * w.scale_cols + w.col0 / w.block;
}

// The rows from `row` on that share its FP8 scale block row, up to `end`.
inline int block_row_end(const Rows& w, int row, int end) {
  const int next = ((w.row0 + row) / w.block + 1) * w.block - w.row0;
  return next < end ? next : end;
}

// dst[i - lo] = x[i - lo] · scale(column i) · kFp8Unit for view columns i in [lo, hi), scales
// from row_scales: the FP8 products are taken as (e4m3 · 2^-8) · fl(x · scale · 2^8), the block
// scale folded into the activations once for a whole block row of weights.
inline void scale_columns(const Rows& w, const float* scales, const float* x, int lo, int hi, float* dst) {
  const int phase = w.col0 % w.block;
  for (int a = lo; a < hi;) {
    const int b_index = (a + phase) / w.block, b_end = (b_index + 1) * w.block - phase;
    const int b = b_end < hi ? b_end : hi;
    const float s = scales[b_index] * kFp8Unit;
    for (int i = a; i < b; ++i) dst[i - lo] = x[i - lo] * s;
    a = b;
  }
}

// Row `row` of W as float32 into out[0, w.in), FP8 scaled: fl(e4m3 · scale) as the reference.
template <class V, WeightType T>
void decode_row_typed(const Rows& w, int row, float* out) {
  const uint8_t* data = row_data<T>(w, row);
  int i = 0;
  for (; i + V::W <= w.in; i += V::W) V::store(out + i, load_weights<V, T>(data, i, w.in));
  if (i < w.in) {
    alignas(64) float tail[V::W];
    V::store(tail, load_weights<V, T>(data, i, w.in));
    for (int k = 0; i + k < w.in; ++k) out[i + k] = tail[k];
  }
  if constexpr (T == WeightType::fp8) scale_columns(w, row_scales(w, row), out, 0, w.in, out);
}

// NT tokens (x: the first's activations, FP8 already scaled (see scale_columns), x_stride
// floats apart), N rows from `o`: the weights go from memory straight to the FMAs, in the kChunk
// order (one chain per row, token and chunk; N · NT independent chains). y: [token][w.out].
// One token decodes 4 vectors of a row at once (decode4); more keep one vector per row in
// registers beside the N · NT accumulators. `ahead` > 0: the same columns `ahead` bytes further
// (the next tile's rows) are asked for as these are read, a line per row at a time: a row of FP8
// is 112 cache lines at R1's width, and the chains leave too few loads in flight for the
// hardware prefetcher alone to keep up (asked for all at once, the requests stall the core).
template <class V, WeightType T, int N, int NT>
void dot_rows_tokens(const Rows& w, const float* x, int64_t x_stride, int o, float* y, int64_t ahead) {
  constexpr int W = V::W, bytes = weight_bytes(T);
  using F = typename V::F;
  const uint8_t* row[N];
#pragma GCC unroll 8
  for (int r = 0; r < N; ++r) row[r] = row_data<T>(w, o + r);
  float sum[NT][N] = {};
  for (int c0 = 0; c0 < w.in; c0 += kChunk) {
    const int cend = w.in - c0 < kChunk ? w.in : c0 + kChunk;
    F acc[N][NT];
#pragma GCC unroll 8
    for (int r = 0; r < N; ++r)
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) acc[r][t] = V::zero();
    int i = c0;
    if constexpr (NT == 1)
      for (; i + 4 * W <= cend; i += 4 * W) {
        F wv[N][4];
#pragma GCC unroll 8
        for (int r = 0; r < N; ++r) {
          if (ahead)
            for (int line = 0; line < 4 * W * bytes; line += 64) __builtin_prefetch(row[r] + int64_t(i) * bytes + ahead + line, 0, 3);
          decode4<V, T>(row[r] + int64_t(i) * bytes, wv[r]);
        }
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
          const F xv = V::load(x + i + k * W);
#pragma GCC unroll 8
          for (int r = 0; r < N; ++r) acc[r][0] = V::fma(wv[r][k], xv, acc[r][0]);
        }
      }
    for (; i + W <= cend; i += W) {
      F wv[N];
      if (ahead && (i * bytes) % 64 < W * bytes)
        for (int r = 0; r < N; ++r) __builtin_prefetch(row[r] + int64_t(i) * bytes + ahead, 0, 3);
#pragma GCC unroll 8
      for (int r = 0; r < N; ++r) wv[r] = decode<V, T>(row[r] + int64_t(i) * bytes);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const F xv = V::load(x + t * x_stride + i);
#pragma GCC unroll 8
        for (int r = 0; r < N; ++r) acc[r][t] = V::fma(wv[r], xv, acc[r][t]);
      }
    }
    if (i < cend) {  // the last partial vector: x and the weights padded with zeros
      F wv[N];
      for (int r = 0; r < N; ++r) wv[r] = load_weights<V, T>(row[r], i, w.in);
      for (int t = 0; t < NT; ++t) {
        alignas(64) float xs[W] = {};
        for (int k = 0; k < cend - i; ++k) xs[k] = x[t * x_stride + i + k];
        const F xv = V::load(xs);
        for (int r = 0; r < N; ++r) acc[r][t] = V::fma(wv[r], xv, acc[r][t]);
      }
    }
    if constexpr (N == 4 && NT >= 2 && requires(const F* v, float* out) { V::reduce16(v, out, 4); }) {
#pragma GCC unroll 2
      for (int t0 = 0; t0 < NT; t0 += 4) {  // 16 reductions at once (same sums as reduce)
        F flat[16];
        alignas(64) float part[16];  // [token t0 + g][row r]
#pragma GCC unroll 16
        for (int k = 0; k < 16; ++k) flat[k] = t0 + k / 4 < NT ? acc[k % 4][t0 + k / 4] : V::zero();
        V::reduce16(flat, part, 4);
        for (int g = 0; g < 4 && t0 + g < NT; ++g)
          for (int r = 0; r < 4; ++r) sum[t0 + g][r] = c0 == 0 ? part[g * 4 + r] : sum[t0 + g][r] + part[g * 4 + r];
      }
    } else {
#pragma GCC unroll 8
      for (int r = 0; r < N; ++r)
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          const float v = V::reduce(acc[r][t]);
          sum[t][r] = c0 == 0 ? v : sum[t][r] + v;
        }
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < N; ++r) y[int64_t(t) * w.out + o + r] = sum[t][r];
}

// N rows against `tokens` ≤ NT tokens: dot_rows_tokens with exactly that many.
template <class V, WeightType T, int N, int NT = V::kTileTokens>
void dot_rows_group(const Rows& w, const float* x, int64_t x_stride, int tokens, int o, float* y, int64_t ahead) {
  if constexpr (NT > 1)
    if (tokens < NT) return dot_rows_group<V, T, N, NT - 1>(w, x, x_stride, tokens, o, y, ahead);
  dot_rows_tokens<V, T, N, NT>(w, x, x_stride, o, y, ahead);
}

// A few tokens (direct_product: decode, small batches, an expert's share of a prefill): each tile
// of kTileRows rows streams from memory once, for the first group of kTileTokens tokens; the
// other groups find it in L1/L2. scratch: tokens · padded(w.in) floats, FP8's scaled activations.
template <class V, WeightType T>
void rows_typed_direct(const Rows& w, const float* x, int tokens, int begin, int end, float* y, float* scratch) {
  constexpr int R = V::kTileRows, NT = V::kTileTokens;
  const int64_t x_stride = T == WeightType::fp8 ? padded(w.in) : w.in;
  for (int o = begin; o < end;) {
    const int run_end = T == WeightType::fp8 ? block_row_end(w, o, end) : end;
    if constexpr (T == WeightType::fp8)
      for (int t = 0; t < tokens; ++t)
        scale_columns(w, row_scales(w, o), x + int64_t(t) * w.in, 0, w.in, scratch + t * x_stride);
    const float* xs = T == WeightType::fp8 ? scratch : x;
    // The first group streams the tile from memory and asks for the rows ahead (kernels.h).
    const int64_t row_bytes = (w.stride ? w.stride : w.in) * weight_bytes(T), ahead = prefetch_ahead(R * row_bytes);
    for (; o + R <= run_end; o += R)
      for (int t0 = 0; t0 < tokens; t0 += NT)
        dot_rows_group<V, T, R>(w, xs + t0 * x_stride, x_stride, tokens - t0, o, y + int64_t(t0) * w.out,
                                t0 == 0 && (o + R) * row_bytes + ahead <= end * row_bytes ? ahead : 0);
    for (; o < run_end; ++o)
      for (int t0 = 0; t0 < tokens; t0 += NT)
        dot_rows_group<V, T, 1>(w, xs + t0 * x_stride, x_stride, tokens - t0, o, y + int64_t(t0) * w.out, 0);
  }
}

// The register tile: R rows × NT tokens over `steps` vectors of one chunk, a: [steps][R][W]
// decoded weights, b: [steps][NT][W] activations; out[t · ld + r] = the chunk's sum, one chain
// each (the same FMAs in the same order as dot_rows_tokens). With a batched reduce16 (R = 4),
// out may get rows up to NT rounded up to 4 (zeros past NT).
constexpr int kPrefetchSteps = 8;
template <class V, int R, int NT>
void tile_product(const float* a, const float* b, int steps, float* out, int64_t ld) {
  constexpr int W = V::W;
  using F = typename V::F;
  F acc[R][NT];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[r][t] = V::zero();
  for (int s = 0; s < steps; ++s, a += R * W, b += NT * W) {
    F wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      __builtin_prefetch(a + kPrefetchSteps * R * W + r * W, 0, 3);
      wv[r] = V::load(a + r * W);
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const F xv = V::load(b + t * W);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][t] = V::fma(wv[r], xv, acc[r][t]);
    }
  }
  if constexpr (R == 4 && requires(const F* v, float* o) { V::reduce16(v, o, ld); }) {
#pragma GCC unroll 2
    for (int t0 = 0; t0 < NT; t0 += 4) {
      F flat[16];
#pragma GCC unroll 16
      for (int k = 0; k < 16; ++k) flat[k] = t0 + k / 4 < NT ? acc[k % 4][t0 + k / 4] : V::zero();
      V::reduce16(flat, out + t0 * ld, ld);
    }
  } else {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) out[t * ld + r] = V::reduce(acc[r][t]);
  }
}

// Asks for n of the cache lines of `count` bytes from p, from line `first` on (p need not be
// aligned: count + 63 bytes span at most count / 64 + 2 lines).
inline void prefetch_lines(const void* p, int64_t count, int first, int n) {
  const char* c = static_cast<const char*>(p);
  for (int64_t k = first, lines = (count + 63) / 64 + 1; k < first + n && k < lines; ++k) __builtin_prefetch(c + 64 * k, 0, 3);
}

// The activations of nt ≤ NT tokens (x: the first's, at column c0; stride: between tokens) over
// `len` columns into the tile layout [step][NT][W], zero padded (FP8: times the column scales).
// A full group goes step by step, NT loads then NT stores: the loads of the next step do not
// wait behind stores to the same 4 KiB offset (the tile and x rows alias at some alignments).
template <class V, WeightType T, int NT>
void pack_tokens(const float* x, int64_t stride, int nt, int len, const float* column_scales, float* tile) {
  constexpr int W = V::W;
  using F = typename V::F;
  const int full_steps = len / W, tail = len - full_steps * W;
  auto scaled = [&](F v, int s) { return T == WeightType::fp8 ? V::mul(v, V::load(column_scales + s * W)) : v; };
  if (nt == NT) {
    for (int s = 0; s < full_steps; ++s) {
      F v[NT];
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) v[t] = V::load(x + t * stride + s * W);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) V::store(tile + (s * NT + t) * W, scaled(v[t], s));
    }
  } else {
    for (int t = 0; t < NT; ++t)
      for (int s = 0; s < full_steps; ++s) V::store(tile + (s * NT + t) * W, t < nt ? scaled(V::load(x + t * stride + s * W), s) : V::zero());
  }
  if (tail)
    for (int t = 0; t < NT; ++t) {
      alignas(64) float xs[W] = {};
      for (int k = 0; k < tail && t < nt; ++k) xs[k] = x[t * stride + full_steps * W + k];
      V::store(tile + (full_steps * NT + t) * W, scaled(V::load(xs), full_steps));
    }
}

// Several tokens: a GEMM blocked for the caches. For each chunk of columns (outermost, so the
// activations of a chunk, tokens × kChunk, are read from L2/L3 by every row panel), panels of up
// to kPanelRows rows (within one FP8 block row) are decoded once into scratch (L2), then for each
// group of NT tokens, packed into scratch (L1; FP8: scaled as in scale_columns), every tile of R
// rows runs in registers. Chunk sums are added into y in chunk order.
// The weights of the next panel and the activations of the next group come from memory or L3, in
// short rows at a long stride that the hardware prefetchers do not follow: they are asked for a
// few lines at a time, spread over the current panel's tiles.
template <class V, WeightType T>
void rows_typed_tokens(const Rows& w, const float* x, int tokens, int begin, int end, float* y, float* scratch) {
  constexpr int W = V::W, R = V::kTileRows, NT = V::kTileTokens, kPanel = kPanelRows / R * R;
  constexpr int bytes = weight_bytes(T);
  static_assert(NT <= kMaxTileTokens && kPanel > 0 && kChunk % W == 0);
  const int chunk_floats = padded(w.in) < kChunk ? padded(w.in) : kChunk;
  float* panel = scratch;                                        // [tile][step][R][W]
  float* xtile = panel + int64_t(kPanelRows) * chunk_floats;     // [step][NT][W]
  float* column_scales = xtile + int64_t(kMaxTileTokens) * chunk_floats;  // FP8: [chunk_floats]
  float* ysum = column_scales + chunk_floats;                              // [kMaxTileTokens][kPanel]
  auto panel_rows = [&](int o0) {
    const int panel_end = T == WeightType::fp8 ? block_row_end(w, o0, end) : end;
    return panel_end - o0 < kPanel ? panel_end - o0 : kPanel;
  };
  auto chunk_end = [&](int c0) { return w.in - c0 < kChunk ? w.in : c0 + kChunk; };
  const int groups = (tokens + NT - 1) / NT;
  for (int c0 = 0; c0 < w.in; c0 += kChunk) {
    const int cend = chunk_end(c0), steps = (cend - c0 + W - 1) / W;
    for (int o0 = begin; o0 < end;) {
      const int rows = panel_rows(o0), tiles = (rows + R - 1) / R;
      // The panel after this one: the next rows, else the first rows of the next chunk.
      const bool last_panel = o0 + rows >= end;
      const int next_o0 = last_panel ? begin : o0 + rows, next_c0 = last_panel ? c0 + kChunk : c0;
      const bool has_next = next_c0 < w.in;
      const int next_rows = has_next ? panel_rows(next_o0) : 0;
      const int64_t next_bytes = has_next ? int64_t(chunk_end(next_c0) - next_c0) * bytes : 0;
      const int lines_per_row = int(next_bytes / 64 + 2);
      const int weight_lines_per_group = (next_rows * lines_per_row + groups - 1) / groups;

      for (int g = 0; g < tiles * R; ++g) {
        float* dst = panel + (int64_t(g / R) * steps * R + g % R) * W;
        if (g >= rows) {
          for (int s = 0; s < steps; ++s) V::store(dst + s * R * W, V::zero());
          continue;
        }
        const uint8_t* data = row_data<T>(w, o0 + g);
        for (int s = 0; s < steps; ++s) V::store(dst + s * R * W, load_weights<V, T>(data, c0 + s * W, w.in));
      }
      if constexpr (T == WeightType::fp8) {
        std::fill_n(column_scales, steps * W, 1.0f);  // 1 past the chunk: the padding lanes of the last step  // 1 past the chunk: the padding lanes of the last step
        scale_columns(w, row_scales(w, o0), column_scales, c0, cend, column_scales);
      }
      for (int t0 = 0, group = 0; t0 < tokens; t0 += NT, ++group) {
        const int nt = tokens - t0 < NT ? tokens - t0 : NT;
        pack_tokens<V, T, NT>(x + int64_t(t0) * w.in + c0, w.in, nt, cend - c0, column_scales, xtile);
        // The next group's activations: the next tokens of this panel, else the first of the next.
        const bool last_group = t0 + NT >= tokens;
        const int x_t0 = last_group ? 0 : t0 + NT, x_c0 = last_group ? next_c0 : c0;
        const int x_rows = last_group ? (has_next ? (tokens < NT ? tokens : NT) : 0) : (tokens - x_t0 < NT ? tokens - x_t0 : NT);
        const int64_t x_bytes = x_rows ? int64_t(chunk_end(x_c0) - x_c0) * 4 : 0;
        const int x_lines = int(x_bytes / 64 + 2), x_per_tile = (x_rows * x_lines + tiles - 1) / tiles;
        const int w_first = group * weight_lines_per_group, w_per_tile = (weight_lines_per_group + tiles - 1) / tiles;
        // The tiles' sums go to ysum [token][row] (L1), then to y a token's row at a time.
        for (int tile = 0; tile < tiles; ++tile) {
          for (int p = tile * x_per_tile, stop = (tile + 1) * x_per_tile; p < stop && p < x_rows * x_lines;) {
            const int row = p / x_lines, first = p % x_lines;
            const int n = stop - p < x_lines - first ? stop - p : x_lines - first;
            prefetch_lines(x + int64_t(x_t0 + row) * w.in + x_c0, x_bytes, first, n);
            p += n;
          }
          for (int p = w_first + tile * w_per_tile, stop = w_first + (tile + 1) * w_per_tile;
               p < stop && p < next_rows * lines_per_row;) {
            const int row = p / lines_per_row, first = p % lines_per_row;
            const int n = stop - p < lines_per_row - first ? stop - p : lines_per_row - first;
            prefetch_lines(row_data<T>(w, next_o0 + row) + int64_t(next_c0) * bytes, next_bytes, first, n);
            p += n;
          }
          tile_product<V, R, NT>(panel + int64_t(tile) * steps * R * W, xtile, steps, ysum + tile * R, kPanel);
        }
        for (int t = 0; t < nt; ++t) {
          float* out = y + int64_t(t0 + t) * w.out + o0;
          const float* sums = ysum + t * kPanel;
          if (c0 == 0)
            for (int r = 0; r < rows; ++r) out[r] = sums[r];
          else
            for (int r = 0; r < rows; ++r) out[r] += sums[r];
          if (!last_group && t0 + NT + t < tokens)  // the next group's
            for (int r = 0; r < rows; r += 16) __builtin_prefetch(out + int64_t(NT) * w.out + r, 1, 3);
        }
      }
      o0 += rows;
    }
  }
}

template <class V, WeightType T>
void rows_typed(const Rows& w, const float* x, int tokens, int begin, int end, float* y, float* scratch) {
  if (direct_product(tokens, w.in))
    rows_typed_direct<V, T>(w, x, tokens, begin, end, y, scratch);
  else
    rows_typed_tokens<V, T>(w, x, tokens, begin, end, y, scratch);
}

// The column product (Kernels::columns) over columns [c0, c0 + ncols) for NT tokens (xs: the
// first's activations, FP8 already scaled, xs_stride apart): NV vectors of columns × NT tokens of
// accumulators, a row of weights decoded once per group of tokens and broadcast against each
// token's value for that row. `ahead`: bytes further down the rows to ask for (0: none).
template <class V, WeightType T, int NT, int NV>
void column_tile(const Rows& w, const float* xs, int64_t xs_stride, int c0, int ncols, float* y, int64_t ahead) {
  constexpr int W = V::W, bytes = weight_bytes(T);
  using F = typename V::F;
  F acc[NT][NV];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
    for (int k = 0; k < NV; ++k) acc[t][k] = V::zero();
  const bool whole = ncols == NV * W;
  for (int r = 0; r < w.out; ++r) {
    const uint8_t* row = row_data<T>(w, r);
    if (ahead)  // every line of this block of columns, `ahead` bytes on
      for (int line = 0; line < ncols * bytes; line += 64) __builtin_prefetch(row + int64_t(c0) * bytes + ahead + line, 0, 3);
    F wv[NV];
    if (whole) {
#pragma GCC unroll 2
      for (int k = 0; k < NV; k += 4) decode4<V, T>(row + int64_t(c0 + k * W) * bytes, wv + k);
    } else {
      for (int k = 0; k < NV; ++k) wv[k] = k * W < ncols ? load_weights<V, T>(row, c0 + k * W, c0 + ncols) : V::zero();
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const F xv = V::set1(xs[t * xs_stride + r]);
#pragma GCC unroll 8
      for (int k = 0; k < NV; ++k) acc[t][k] = V::fma(wv[k], xv, acc[t][k]);
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int k = 0; k < NV && k * W < ncols; ++k) {
      float* out = y + int64_t(t) * w.in + c0 + k * W;
      if ((k + 1) * W <= ncols) {
        V::store(out, acc[t][k]);
      } else {
        alignas(64) float part[W];
        V::store(part, acc[t][k]);
        for (int l = 0; l < ncols - k * W; ++l) out[l] = part[l];
      }
    }
}

// column_tile with exactly `tokens` ≤ NT tokens.
template <class V, WeightType T, int NT, int NV>
void column_group(const Rows& w, const float* xs, int64_t xs_stride, int tokens, int c0, int ncols, float* y, int64_t ahead) {
  if constexpr (NT > 1)
    if (tokens < NT) return column_group<V, T, NT - 1, NV>(w, xs, xs_stride, tokens, c0, ncols, y, ahead);
  column_tile<V, T, NT, NV>(w, xs, xs_stride, c0, ncols, y, ahead);
}

// One token (decode): R rows from r stream front to back, their products added to acc in row
// order (the same chains as column_tile, so the same bits), acc waiting in L1 between groups.
template <class V, WeightType T, int R>
void columns_rows(const Rows& w, const float* x, int r, float* acc, int64_t ahead) {
  constexpr int W = V::W, bytes = weight_bytes(T);
  using F = typename V::F;
  const uint8_t* row[R];
  const float* scales[R];  // FP8: each row's scales, from the view's first block column
  for (int j = 0; j < R; ++j) {
    row[j] = row_data<T>(w, r + j);
    for (int64_t line = 0; line < int64_t(w.in) * bytes; line += 64) __builtin_prefetch(row[j] + ahead + line, 0, 3);
    if constexpr (T == WeightType::fp8) scales[j] = w.scales + int64_t((w.row0 + r + j) / w.block) * w.scale_cols + w.col0 / w.block;
  }
  // FP8: the view's first block column ends at first_end, the others are w.block wide (no
  // division per block: with a run-time divisor they cost more than the products).
  const int first_end = T == WeightType::fp8 ? w.block - w.col0 % w.block : w.in;
  for (int c0 = 0, block = 0; c0 < w.in; ++block) {  // FP8: a block of columns (one scale) at a time
    const int c1 = std::min(w.in, block == 0 ? first_end : c0 + (T == WeightType::fp8 ? w.block : w.in));
    F xv[R];
    for (int j = 0; j < R; ++j) xv[j] = V::set1(T == WeightType::fp8 ? x[r + j] * (scales[j][block] * kFp8Unit) : x[r + j]);
    int c = c0;
    for (; c + 4 * W <= c1; c += 4 * W) {
      F wv[R][4];
#pragma GCC unroll 4
      for (int j = 0; j < R; ++j) decode4<V, T>(row[j] + int64_t(c) * bytes, wv[j]);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        F sum = V::load(acc + c + k * W);
#pragma GCC unroll 4
        for (int j = 0; j < R; ++j) sum = V::fma(wv[j][k], xv[j], sum);
        V::store(acc + c + k * W, sum);
      }
    }
    for (; c < c1; c += W) {  // lanes past c1 (the next block's columns) keep their sums
      F sum = V::load(acc + c);
      for (int j = 0; j < R; ++j) sum = V::fma(load_weights<V, T>(row[j], c, c1), xv[j], sum);
      alignas(64) float lanes[W];
      V::store(lanes, sum);
      for (int l = 0; l < W && c + l < c1; ++l) acc[c + l] = lanes[l];
    }
    c0 = c1;
  }
}

// One token: a pass over the matrix in row order, four rows at a time (acc: padded(w.in) +
// kMaxLanes floats), instead of one pass per block of columns (strided reads: R1's W_UK in
// decode 0.59 ms a layer against 0.42).
template <class V, WeightType T>
void columns_one_token(const Rows& w, const float* x, float* y, float* acc) {
  std::fill_n(acc, padded(w.in), 0.0f);
  const int64_t ahead = prefetch_ahead((w.stride ? w.stride : w.in) * weight_bytes(T));
  int r = 0;
  for (; r + 4 <= w.out; r += 4) columns_rows<V, T, 4>(w, x, r, acc, ahead);
  for (; r < w.out; ++r) columns_rows<V, T, 1>(w, x, r, acc, ahead);
  std::copy_n(acc, w.in, y);
}

// Column blocks of V::kColumnVectors vectors within one FP8 block column at a time, groups of
// V::kColumnTokens tokens; one token streams instead (columns_one_token).
template <class V, WeightType T>
void columns_typed(const Rows& w, const float* x, int tokens, float* y, float* scratch) {
  constexpr int W = V::W, NT = V::kColumnTokens, NV = V::kColumnVectors;
  if (tokens == 1) return columns_one_token<V, T>(w, x, y, scratch);
  for (int c0 = 0; c0 < w.in;) {
    int c1 = w.in;
    const float* xs = x;
    if constexpr (T == WeightType::fp8) {
      c1 = std::min(w.in, ((w.col0 + c0) / w.block + 1) * w.block - w.col0);
      const float* scales = w.scales + (w.col0 + c0) / w.block;
      for (int r0 = 0; r0 < w.out;) {  // a block row of rows at a time: one scale
        const int r1 = std::min(w.out, ((w.row0 + r0) / w.block + 1) * w.block - w.row0);
        const float s = scales[int64_t((w.row0 + r0) / w.block) * w.scale_cols] * kFp8Unit;
        for (int t = 0; t < tokens; ++t)
          for (int r = r0; r < r1; ++r) scratch[int64_t(t) * w.out + r] = x[int64_t(t) * w.out + r] * s;
        r0 = r1;
      }
      xs = scratch;
    }
    const int64_t ahead = 8 * (w.stride ? w.stride : w.in) * weight_bytes(T);  // 8 rows on
    for (int c = c0; c < c1;) {
      const int ncols = std::min(c1 - c, NV * W);
      for (int t0 = 0; t0 < tokens; t0 += NT)
        column_group<V, T, NT, NV>(w, xs + int64_t(t0) * w.out, w.out, tokens - t0, c, ncols, y + int64_t(t0) * w.in,
                                   t0 == 0 ? ahead : 0);
      c += ncols;
    }
    c0 = c1;
  }
}

template <class V>
void columns(const Rows& w, const float* x, int tokens, float* y, float* scratch) {
  switch (w.type) {
    case WeightType::f32: return columns_typed<V, WeightType::f32>(w, x, tokens, y, scratch);
    case WeightType::bf16: return columns_typed<V, WeightType::bf16>(w, x, tokens, y, scratch);
    case WeightType::f16: return columns_typed<V, WeightType::f16>(w, x, tokens, y, scratch);
    case WeightType::fp8: return columns_typed<V, WeightType::fp8>(w, x, tokens, y, scratch);
  }
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

// The FMA peak: `iterations` rounds of kFmaChainsPerRound vector FMAs (kernels.h), registers
// only: 24 independent chains with AVX-512, 12 twice with AVX2 (16 registers). Returns a value
// that depends on every FMA so that none is optimized away. kFmaFlopsPerRound · W FLOP a round.
template <class V>
float fma_loop(int64_t iterations) {
  using F = typename V::F;
  constexpr int kChains = V::W >= 16 ? kFmaChainsPerRound : kFmaChainsPerRound / 2;
  F acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = V::set1(1.0f + 1e-3f * k);
  const F m = V::set1(0.999999f), a = V::set1(1e-7f);
  for (int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 2
    for (int pass = 0; pass < kFmaChainsPerRound / kChains; ++pass)
#pragma GCC unroll 24
      for (int k = 0; k < kChains; ++k) acc[k] = V::fma(acc[k], m, a);
  F sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = V::add(sum, acc[k]);
  return V::reduce(sum);
}

// Eight accumulators: enough loads in flight to measure memory, not the add latency; the lines
// kReadAhead bytes ahead asked for as the kernels ask for theirs, so that the probe is not
// weaker than the kernels it is the yardstick for.
constexpr size_t kReadAhead = 2048;
template <class V>
float read_sum(const float* p, size_t n, int streams) {
  using F = typename V::F;
  constexpr size_t W = V::W;
  F a[8];
  for (F& v : a) v = V::zero();
  const size_t run = n / size_t(streams), per_stream = 8 / size_t(streams);  // vectors a step
  for (size_t i = 0; i + per_stream * W <= run; i += per_stream * W)
    for (size_t s = 0; s < size_t(streams); ++s) {
      const float* q = p + s * run + i;
      for (size_t line = 0; line < per_stream * W * sizeof(float); line += 64)
        __builtin_prefetch(reinterpret_cast<const char*>(q) + kReadAhead + line, 0, 3);
      for (size_t k = 0; k < per_stream; ++k) a[s * per_stream + k] = V::add(a[s * per_stream + k], V::load(q + k * W));
    }
  for (size_t k = 1; k < 8; ++k) a[0] = V::add(a[0], a[k]);
  return V::reduce(a[0]);
}

}  // namespace
}  // namespace r1::simd
