// Outer-product tiles in GCC vector types, compiled twice (target_clones): for x86-64-v4 a
// vector is a zmm register and `acc += a * b` one FMA; elsewhere the same code in narrower
// registers. At R1's shapes the tiles keep 24 sums in registers against 4 loads and 6
// broadcasts a step.
#include "cpu/mla_core.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/vector_math.h"
#include "r1/number_formats.h"

#define R1_INLINE inline __attribute__((always_inline))
// Vectors are passed only between these always-inlined helpers, never across a call: the ABI
// note GCC gives for 64-byte vectors in the baseline clone does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace r1 {
namespace {

constexpr int kLanes = 16;
typedef float Vec __attribute__((vector_size(4 * kLanes)));
typedef int Lanes __attribute__((vector_size(4 * kLanes)));
typedef float UnalignedVec __attribute__((vector_size(4 * kLanes), aligned(4), may_alias));

R1_INLINE Vec load(const float* p) { return *reinterpret_cast<const UnalignedVec*>(p); }
R1_INLINE void store(float* p, Vec v) { *reinterpret_cast<UnalignedVec*>(p) = v; }
// Lane 0 shuffled to all: one broadcast (a braced list of 16 x became 16 masked broadcasts).
R1_INLINE Vec splat(float x) { return __builtin_shuffle(Vec{x}, Lanes{}); }

// Scores of R cached rows against V vectors of heads (lanes: heads; qt: the queries transposed,
// [cache_dim][lanes]); s: [row][lanes], times `scale`. One chain of FMAs per score, over k.
template <int R, int V>
R1_INLINE void score_tile(const float* qt, int lanes, int cache_dim, const float* const* rows, float scale, float* s) {
  Vec acc[R][V] = {};
  for (int k = 0; k < cache_dim; ++k) {
    Vec q[V];
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) q[v] = load(qt + int64_t(k) * lanes + v * kLanes);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const Vec c = splat(rows[r][k]);
      #pragma GCC unroll 16
      for (int v = 0; v < V; ++v) acc[r][v] += c * q[v];
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) store(s + int64_t(r) * lanes + v * kLanes, acc[r][v] * scale);
}

// Weighted sums of rows [j0, j1) for H heads and V vectors of latent columns from c0 (lanes:
// columns; p: [row][lanes], the tile's first head at p[0]); o: [head][latent_dim], continued
// from its values unless `first`. One chain of FMAs per output, over j.
template <int H, int V>
R1_INLINE void value_tile(const float* p, int lanes, const float* const* rows, int j0, int j1, int c0, float* o,
                          int latent_dim, bool first) {
  Vec acc[H][V];
  #pragma GCC unroll 16
  for (int h = 0; h < H; ++h)
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[h][v] = first ? Vec{} : load(o + int64_t(h) * latent_dim + c0 + v * kLanes);
  for (int j = j0; j < j1; ++j) {
    Vec c[V];
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) c[v] = load(rows[j] + c0 + v * kLanes);
    #pragma GCC unroll 16
    for (int h = 0; h < H; ++h) {
      const Vec w = splat(p[int64_t(j) * lanes + h]);
      #pragma GCC unroll 16
      for (int v = 0; v < V; ++v) acc[h][v] += w * c[v];
    }
  }
  #pragma GCC unroll 16
  for (int h = 0; h < H; ++h)
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) store(o + int64_t(h) * latent_dim + c0 + v * kLanes, acc[h][v]);
}

// A score tile: 4 vectors of heads (R1's block of 64) against 6 rows, else up to 2 against 12:
// 24 sums either way. 6 rows leave the row pointers in registers (12 were reloaded every step).
// A tile of weighted sums: 6 heads against 4 vectors of latent columns (12 heads against 2 read
// twice the broadcasts: 159 -> 178 GFLOP/s on one thread with the rows coming from memory).
constexpr int kTileHeads = 6, kTileVectors = 4;
constexpr int score_rows_for(int vectors) { return vectors == 4 ? 6 : 12; }
// Rows a block of the weighted sums: their 64 · 2 KB (R1) stay in L2 while every tile passes.
constexpr int kValueBlockRows = 64;

// score_tile<R, V> for the run-time rows <= R (the last rows of a prefix).
template <int V, int R = score_rows_for(V)>
R1_INLINE void score_rows(int rows, const float* qt, int lanes, int cache_dim, const float* const* row, float scale,
                          float* s) {
  if constexpr (R > 1)
    if (rows < R) return score_rows<V, R - 1>(rows, qt, lanes, cache_dim, row, scale, s);
  score_tile<R, V>(qt, lanes, cache_dim, row, scale, s);
}

// value_tile<H, V> for the run-time heads <= H.
template <int V, int H = kTileHeads>
R1_INLINE void value_heads(int heads, const float* p, int lanes, const float* const* rows, int j0, int j1, int c0,
                           float* o, int latent_dim, bool first) {
  if constexpr (H > 1)
    if (heads < H) return value_heads<V, H - 1>(heads, p, lanes, rows, j0, j1, c0, o, latent_dim, first);
  value_tile<H, V>(p, lanes, rows, j0, j1, c0, o, latent_dim, first);
}

// Softmax over rows j of each lane (head) of s [len][lanes], in place: one chain per sum.
R1_INLINE void softmax_lanes(float* s, int len, int lanes) {
  for (int v = 0; v < lanes; v += kLanes) {
    float high[kLanes], sum[kLanes] = {};
    std::fill_n(high, kLanes, -INFINITY);
    for (int j = 0; j < len; ++j)
      for (int l = 0; l < kLanes; ++l) high[l] = std::max(high[l], s[int64_t(j) * lanes + v + l]);
    for (int j = 0; j < len; ++j)
      for (int l = 0; l < kLanes; ++l) {
        float& x = s[int64_t(j) * lanes + v + l];
        x = exp_approx(x - high[l]);
        sum[l] += x;
      }
    for (int j = 0; j < len; ++j)
      for (int l = 0; l < kLanes; ++l) s[int64_t(j) * lanes + v + l] /= sum[l];
  }
}

}  // namespace

R1_VECTOR_CLONES
void mla_attend(const MlaCoreShape& shape, const float* q, const float* const* rows, float* o) {
  const int heads = shape.heads, len = shape.len, cache_dim = shape.cache_dim, latent_dim = shape.latent_dim;
  const int lanes = (heads + kLanes - 1) / kLanes * kLanes;
  thread_local std::vector<float> transposed, scores;
  transposed.resize(size_t(cache_dim) * lanes);
  scores.resize(size_t(len) * lanes);
  // The queries with heads along the lanes (padding lanes zero), 16 columns at a time so that
  // the 16 lines written stay in L1.
  float* qt = transposed.data();
  if (heads < lanes)
    for (int k = 0; k < cache_dim; ++k) std::fill(qt + int64_t(k) * lanes + heads, qt + int64_t(k + 1) * lanes, 0.0f);
  for (int k0 = 0; k0 < cache_dim; k0 += kLanes)
    for (int h = 0; h < heads; ++h)
      for (int k = k0; k < std::min(k0 + kLanes, cache_dim); ++k) qt[int64_t(k) * lanes + h] = q[int64_t(h) * cache_dim + k];

  float* s = scores.data();
  for (int v = 0; v < lanes;) {
    const int vectors = lanes - v >= 4 * kLanes ? 4 : lanes - v >= 2 * kLanes ? 2 : 1, tile_rows = score_rows_for(vectors);
    for (int j = 0; j < len; j += tile_rows) {
      const int rows_in_tile = std::min(tile_rows, len - j);
      float* sj = s + int64_t(j) * lanes + v;
      if (vectors == 4)
        score_rows<4>(rows_in_tile, qt + v, lanes, cache_dim, rows + j, shape.scale, sj);
      else if (vectors == 2)
        score_rows<2>(rows_in_tile, qt + v, lanes, cache_dim, rows + j, shape.scale, sj);
      else
        score_rows<1>(rows_in_tile, qt + v, lanes, cache_dim, rows + j, shape.scale, sj);
    }
    v += vectors * kLanes;
  }
  softmax_lanes(s, len, lanes);

  const int whole = latent_dim / kLanes * kLanes;
  for (int j0 = 0; j0 < len; j0 += kValueBlockRows) {
    const int j1 = std::min(len, j0 + kValueBlockRows);
    for (int h = 0; h < heads; h += kTileHeads) {
      const int group = std::min(kTileHeads, heads - h);
      float* oh = o + int64_t(h) * latent_dim;
      int c = 0;
      for (; c + kTileVectors * kLanes <= whole; c += kTileVectors * kLanes)
        value_heads<kTileVectors>(group, s + h, lanes, rows, j0, j1, c, oh, latent_dim, j0 == 0);
      for (; c < whole; c += kLanes) value_heads<1>(group, s + h, lanes, rows, j0, j1, c, oh, latent_dim, j0 == 0);
      for (int g = 0; g < group; ++g)  // columns past the last whole vector, in the same j order
        for (int cc = whole; cc < latent_dim; ++cc) {
          float sum = j0 == 0 ? 0.0f : oh[int64_t(g) * latent_dim + cc];
          for (int j = j0; j < j1; ++j) sum += s[int64_t(j) * lanes + h + g] * rows[j][cc];
          oh[int64_t(g) * latent_dim + cc] = sum;
        }
    }
  }
}

namespace {

// The references' loops in double, with the values as each numerics sees them: query(h, k),
// cached(j, c), and weight(p) of a normalized softmax weight.
template <class Query, class Cached, class Weight>
void reference_loops(const MlaCoreShape& shape, Query query, Cached cached, Weight weight, float* o) {
  std::vector<double> p(size_t(shape.len));
  for (int h = 0; h < shape.heads; ++h) {
    double high = -INFINITY, sum = 0;
    for (int j = 0; j < shape.len; ++j) {
      double dot = 0;
      for (int k = 0; k < shape.cache_dim; ++k) dot += query(h, k) * cached(j, k);
      p[size_t(j)] = dot * shape.scale;
      high = std::max(high, p[size_t(j)]);
    }
    for (double& x : p) sum += x = std::exp(x - high);
    for (int c = 0; c < shape.latent_dim; ++c) {
      double value = 0;
      for (int j = 0; j < shape.len; ++j) value += weight(p[size_t(j)] / sum) * cached(j, c);
      o[int64_t(h) * shape.latent_dim + c] = float(value);
    }
  }
}

double bf16_rounded(double x) { return bf16_to_float(float_to_bf16(float(x))); }

}  // namespace

void mla_attend_reference(const MlaCoreShape& shape, const float* q, const float* const* rows, float* o) {
  reference_loops(
      shape, [&](int h, int k) { return double(q[int64_t(h) * shape.cache_dim + k]); },
      [&](int j, int c) { return double(rows[j][c]); }, [](double p) { return p; }, o);
}

void mla_attend_bf16_reference(const MlaCoreShape& shape, const float* q, const uint16_t* const* rows, float* o) {
  reference_loops(
      shape, [&](int h, int k) { return bf16_rounded(q[int64_t(h) * shape.cache_dim + k]); },
      [&](int j, int c) { return double(bf16_to_float(rows[j][c])); }, bf16_rounded, o);
}

}  // namespace r1
