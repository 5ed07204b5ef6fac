// MLA's attention core in fast numerics (Bf16Kernels::mla_attend, mla_core.h's shapes) with
// AVX512-BF16: twice the float32 core's arithmetic a cycle, and half its cache bytes. Compiled
// with the flags of bf16_rows_avx512.cpp; only called after dispatch.cpp has checked the CPU.
//
// Scores: heads along the lanes against a broadcast pair of cached values, the queries stored as
// [k / 2][lanes][2] so that one dot product takes two columns k of 16 heads. Weighted sums:
// latent columns along the lanes against a broadcast pair of softmax weights (rows j, j + 1 of
// one head), the two rows' columns interleaved by unpacks; the unpacks leave each 128-bit lane's
// columns in a fixed order, undone once at the end.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/simd/bf16_kernels.h"
#include "cpu/vector_math.h"
#include "r1/number_formats.h"

namespace r1::simd {
namespace {

constexpr int kLanes = 16;

// Two adjacent BF16 values as one 32-bit lane.
int32_t pair_at(const uint16_t* p) {
  int32_t pair;
  std::memcpy(&pair, p, sizeof(pair));
  return pair;
}

// Scores of R rows against V vectors of 16 heads over the column pairs [0, pairs), times scale:
// s[row][lanes]. One chain of dot products per score, over the pairs in order.
template <int R, int V>
void score_tile(const uint16_t* qt, int lanes, int pairs, const uint16_t* const* rows, float scale, float* s) {
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int k = 0; k < pairs; ++k) {
    __m512bh q[V];
    for (int v = 0; v < V; ++v) q[v] = (__m512bh)_mm512_loadu_si512(qt + (int64_t(k) * lanes + v * kLanes) * 2);
    for (int r = 0; r < R; ++r) {
      const __m512bh c = (__m512bh)_mm512_set1_epi32(pair_at(rows[r] + 2 * k));
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], q[v], c);
    }
  }
  const __m512 scale_v = _mm512_set1_ps(scale);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(s + int64_t(r) * lanes + v * kLanes, _mm512_mul_ps(acc[r][v], scale_v));
}

// score_tile<R, V> for the run-time rows <= R.
template <int V, int R>
void score_rows(int rows, const uint16_t* qt, int lanes, int pairs, const uint16_t* const* row, float scale, float* s) {
  if constexpr (R > 1)
    if (rows < R) return score_rows<V, R - 1>(rows, qt, lanes, pairs, row, scale, s);
  score_tile<R, V>(qt, lanes, pairs, row, scale, s);
}

// Weighted sums for H heads over rows [j0, j1) (even) and 64 latent columns from c0: o (float,
// [head][latent_dim], the unpacks' column order) continued from its values unless `first`.
// p: [row pair][lanes] pairs of BF16 weights, the tile's first head at p[0]. One chain of dot
// products per output, over the row pairs.
template <int H>
void value_tile(const uint32_t* p, int lanes, const uint16_t* const* rows, int j0, int j1, int c0, float* o,
                int latent_dim, bool first) {
  __m512 acc[H][4];
  for (int h = 0; h < H; ++h)
    for (int v = 0; v < 4; ++v)
      acc[h][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(o + int64_t(h) * latent_dim + c0 + v * kLanes);
  for (int j = j0; j < j1; j += 2) {
    __m512bh c[4];
    for (int half = 0; half < 2; ++half) {
      const __m512i a = _mm512_loadu_si512(rows[j] + c0 + 32 * half), b = _mm512_loadu_si512(rows[j + 1] + c0 + 32 * half);
      c[2 * half] = (__m512bh)_mm512_unpacklo_epi16(a, b);
      c[2 * half + 1] = (__m512bh)_mm512_unpackhi_epi16(a, b);
    }
    for (int h = 0; h < H; ++h) {
      const __m512bh w = (__m512bh)_mm512_set1_epi32(int32_t(p[int64_t(j / 2) * lanes + h]));
      for (int v = 0; v < 4; ++v) acc[h][v] = _mm512_dpbf16_ps(acc[h][v], c[v], w);
    }
  }
  for (int h = 0; h < H; ++h)
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(o + int64_t(h) * latent_dim + c0 + v * kLanes, acc[h][v]);
}

template <int H>
void value_heads(int heads, const uint32_t* p, int lanes, const uint16_t* const* rows, int j0, int j1, int c0, float* o,
                 int latent_dim, bool first) {
  if constexpr (H > 1)
    if (heads < H) return value_heads<H - 1>(heads, p, lanes, rows, j0, j1, c0, o, latent_dim, first);
  value_tile<H>(p, lanes, rows, j0, j1, c0, o, latent_dim, first);
}

// Column i of a 64-column block sits at position unpacked_position(i) of a value tile's four
// vectors: unpacklo takes columns 0-3 of each 128-bit lane of 8, unpackhi 4-7, for each 32-column
// half. So output vector n (columns 16n ...) comes from vectors 2 (n / 2) and 2 (n / 2) + 1.
constexpr int unpacked_position(int i) {
  const int half = i / 32, col = i % 32, lane = col / 8, within = col % 8;
  return 32 * half + 16 * (within / 4) + 4 * lane + within % 4;
}
// Even and odd output vectors: the same indices into their pair of tile vectors.
struct UnpackedIndex {
  alignas(64) int32_t index[2][16] = {};
};
constexpr UnpackedIndex unpacked_index() {
  UnpackedIndex u;
  for (int n = 0; n < 2; ++n)
    for (int m = 0; m < 16; ++m) u.index[n][m] = unpacked_position(16 * n + m);
  return u;
}
// 64 sums in the unpacks' order to column order.
void unpermute64(const float* from, float* to) {
  static constexpr UnpackedIndex kIndex = unpacked_index();
  const int32_t(&index)[2][16] = kIndex.index;
  for (int half = 0; half < 2; ++half) {
    const __m512 a = _mm512_loadu_ps(from + 32 * half), b = _mm512_loadu_ps(from + 32 * half + 16);
    for (int n = 0; n < 2; ++n)
      _mm512_storeu_ps(to + 32 * half + 16 * n, _mm512_permutex2var_ps(a, _mm512_load_si512(index[n]), b));
  }
}

// Softmax over rows of each lane (head) of s [len][lanes], in place, then the weights rounded to
// BF16 in pairs of rows: p[j / 2][lane] = (p_j, p_j+1) (a stand-in row `len` weighted zero when
// len is odd). One chain per sum.
void softmax_to_bf16_pairs(float* s, int len, int lanes, uint32_t* p) {
  for (int v = 0; v < lanes; v += kLanes) {
    __m512 high = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps();
    for (int j = 0; j < len; ++j) high = _mm512_max_ps(high, _mm512_loadu_ps(s + int64_t(j) * lanes + v));
    alignas(64) float h[kLanes], e[kLanes];
    _mm512_store_ps(h, high);
    for (int j = 0; j < len; ++j) {
      float* row = s + int64_t(j) * lanes + v;
      for (int l = 0; l < kLanes; ++l) e[l] = exp_approx(row[l] - h[l]);
      const __m512 x = _mm512_load_ps(e);
      _mm512_storeu_ps(row, x);
      sum = _mm512_add_ps(sum, x);
    }
    for (int j = 0; j < len; j += 2) {
      const __m512 a = _mm512_div_ps(_mm512_loadu_ps(s + int64_t(j) * lanes + v), sum);
      const __m512 b = j + 1 < len ? _mm512_div_ps(_mm512_loadu_ps(s + int64_t(j + 1) * lanes + v), sum) : _mm512_setzero_ps();
      const __m512i low = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(a));
      const __m512i high_half = _mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(b)), 16);
      _mm512_storeu_si512(p + int64_t(j / 2) * lanes + v, _mm512_or_si512(low, high_half));
    }
  }
}

// The queries rounded to BF16 into qt [pairs][lanes] (lane h of row k: head h's columns 2k and
// 2k + 1 as one 32-bit pair; padding lanes and a missing last column zero). Blocks of 16 heads
// and 32 columns are rounded a vector at a time and transposed through a small table: converting
// and storing one scalar at a time, with stores a row of qt apart, cost ~26 us a call, the time
// of 60 cached rows' scores and sums.
void transpose_queries(const float* q, int heads, int cache_dim, int pairs, int lanes, uint32_t* qt) {
  const int whole_pairs = cache_dim / 32 * 16;  // pairs in whole 32-column blocks
  const __m512i row_starts = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                _mm512_set1_epi32(kLanes));
  alignas(64) uint32_t block[kLanes][kLanes];  // [head][pair]
  for (int h0 = 0; h0 < lanes; h0 += kLanes) {
    const bool full = h0 + kLanes <= heads;
    for (int k0 = 0; full && k0 < whole_pairs; k0 += kLanes) {
      for (int i = 0; i < kLanes; ++i) {
        const float* from = q + int64_t(h0 + i) * cache_dim + 2 * k0;
        _mm512_store_si512(block[i], (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(from + 16), _mm512_loadu_ps(from)));
      }
      for (int k = 0; k < kLanes; ++k)
        _mm512_storeu_si512(qt + int64_t(k0 + k) * lanes + h0,
                            _mm512_i32gather_epi32(_mm512_add_epi32(row_starts, _mm512_set1_epi32(k)), block, 4));
    }
    for (int h = h0; h < h0 + kLanes; ++h)
      for (int k = full ? whole_pairs : 0; k < pairs; ++k) {
        uint32_t pair = 0;
        if (h < heads) {
          const float* qh = q + int64_t(h) * cache_dim;
          const uint32_t second = 2 * k + 1 < cache_dim ? float_to_bf16(qh[2 * k + 1]) : 0;
          pair = uint32_t(float_to_bf16(qh[2 * k])) | second << 16;
        }
        qt[int64_t(k) * lanes + h] = pair;
      }
  }
}

constexpr int kTileHeads = 6;
constexpr int kValueBlockRows = 128;  // 128 rows of 1 KB (R1) stay in L2 while every tile passes

}  // namespace

void mla_attend_bf16_avx512(const MlaCoreShape& shape, const float* q, const uint16_t* const* rows, float* o) {
  // An odd cache_dim's last pair holds a stand-in column (the next value in memory) whose query
  // is zero.
  const int heads = shape.heads, len = shape.len, latent_dim = shape.latent_dim, pairs = (shape.cache_dim + 1) / 2;
  const int lanes = (heads + kLanes - 1) / kLanes * kLanes, padded_len = len + len % 2;
  thread_local std::vector<uint32_t> transposed, weights;
  thread_local std::vector<float> scores, sums;
  thread_local std::vector<const uint16_t*> padded_rows;
  transposed.resize(size_t(pairs) * lanes);
  scores.resize(size_t(len) * lanes);
  weights.resize(size_t(padded_len / 2) * lanes);
  sums.resize(size_t(heads) * latent_dim);
  uint32_t* qt = transposed.data();
  transpose_queries(q, heads, shape.cache_dim, pairs, lanes, qt);

  float* s = scores.data();
  const uint16_t* q16 = reinterpret_cast<const uint16_t*>(qt);
  for (int v = 0; v < lanes;) {
    const int vectors = lanes - v >= 4 * kLanes ? 4 : lanes - v >= 2 * kLanes ? 2 : 1;
    const int tile_rows = vectors == 4 ? 6 : 12;
    for (int j = 0; j < len; j += tile_rows) {
      const int n = std::min(tile_rows, len - j);
      float* sj = s + int64_t(j) * lanes + v;
      const uint16_t* qv = q16 + v * 2;
      if (vectors == 4)
        score_rows<4, 6>(n, qv, lanes, pairs, rows + j, shape.scale, sj);
      else if (vectors == 2)
        score_rows<2, 12>(n, qv, lanes, pairs, rows + j, shape.scale, sj);
      else
        score_rows<1, 12>(n, qv, lanes, pairs, rows + j, shape.scale, sj);
    }
    v += vectors * kLanes;
  }
  uint32_t* p = weights.data();
  softmax_to_bf16_pairs(s, len, lanes, p);

  // Rows in pairs: an odd prefix's last row pairs with a stand-in (itself) of weight zero.
  padded_rows.assign(rows, rows + len);
  if (len % 2) padded_rows.push_back(rows[len - 1]);
  const int whole = latent_dim / 64 * 64;
  float* sum = sums.data();
  for (int j0 = 0; j0 < padded_len; j0 += kValueBlockRows) {
    const int j1 = std::min(padded_len, j0 + kValueBlockRows);
    for (int h = 0; h < heads; h += kTileHeads)
      for (int c = 0; c < whole; c += 64)
        value_heads<kTileHeads>(std::min(kTileHeads, heads - h), p + h, lanes, padded_rows.data(), j0, j1, c,
                                sum + int64_t(h) * latent_dim, latent_dim, j0 == 0);
  }
  for (int h = 0; h < heads; ++h) {
    for (int c = 0; c < whole; c += 64) unpermute64(sum + int64_t(h) * latent_dim + c, o + int64_t(h) * latent_dim + c);
    for (int c = whole; c < latent_dim; ++c) {  // columns past the last 64, one chain over the rows
      float total = 0;
      for (int j = 0; j < len; ++j)
        total += bf16_to_float(uint16_t(p[int64_t(j / 2) * lanes + h] >> (16 * (j % 2)))) * bf16_to_float(rows[j][c]);
      o[int64_t(h) * latent_dim + c] = total;
    }
  }
}

}  // namespace r1::simd
