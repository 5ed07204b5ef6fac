// The fast row kernels with AVX512-BF16 (bf16_kernels.h): on row-major weights (inner products,
// 16 lanes an output) and on weights packed in panels (outer products, an output a lane), and
// the packing. Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vbmi -mavx512bf16; only
// called after dispatch.cpp has checked the CPU.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/simd/bf16_kernels.h"
#include "cpu/simd/fp8_vbmi.h"

namespace r1::simd {
namespace {

__mmask32 first_lanes(int n) { return n >= 32 ? ~__mmask32(0) : (__mmask32(1) << n) - 1; }

// Where a tile's weight rows come from: FP8 or BF16 rows of the checkpoint, straight from
// memory (ChunkRows below: rows already widened into scratch).
struct Fp8Rows {
  using Element = uint8_t;
  const uint8_t* row[kBf16TileRows];
  // e4m3 → BF16 exactly, by table (fp8_vbmi.h): 64 codes in 6 instructions where widening by
  // integer steps took 7 per 32, and bound batch-1 decode on them rather than on memory.
  static __m512i widen(__m512i codes) {
    __m512i pair[2];
    fp8_to_bf16x2<0>(codes, pair);
    return pair[0];
  }
  __m512i load(int r, int i) const {
    return widen(_mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[r] + i))));
  }
  __m512i load_tail(int r, int i, int n) const { return widen(_mm512_maskz_loadu_epi8(first_lanes(n), row[r] + i)); }
  void load64(int r, int i, __m512i* out) const { fp8_to_bf16x2<0>(_mm512_loadu_si512(row[r] + i), out); }
  void prefetch(int r, int64_t i) const { _mm_prefetch(reinterpret_cast<const char*>(row[r] + i), _MM_HINT_T0); }
  static constexpr int kBytes = 1;
};
struct Bf16Rows {
  using Element = uint16_t;
  const uint16_t* row[kBf16TileRows];
  __m512i load(int r, int i) const { return _mm512_loadu_si512(row[r] + i); }
  __m512i load_tail(int r, int i, int n) const { return _mm512_maskz_loadu_epi16(first_lanes(n), row[r] + i); }
  void prefetch(int r, int64_t i) const { _mm_prefetch(reinterpret_cast<const char*>(row[r] + i), _MM_HINT_T0); }
  static constexpr int kBytes = 2;
};

// Up to kGroupRows consecutive rows of the checkpoint (row r at first + r · stride), read
// through the loaders of Weights (Fp8Rows or Bf16Rows).
template <class Weights>
struct GroupWeights {
  const typename Weights::Element* first;
  int64_t stride;
  Weights at(int r) const {
    Weights w;
    for (auto& p : w.row) p = first + r * stride;
    return w;
  }
  __m512i load(int r, int i) const { return at(r).load(0, i); }
  __m512i load_tail(int r, int i, int n) const { return at(r).load_tail(0, i, n); }
  // Into L2: element i of row r (any row past the group too: the next group's).
  void prefetch(int r, int64_t i) const {
    _mm_prefetch(reinterpret_cast<const char*>(first + r * stride + i), _MM_HINT_T1);
  }
};

// y[t · y_stride + r] = Σ_i x_t[i] · row_r[i] for R rows and T tokens (x_t = x + t · x_stride,
// BF16, zero padded): one accumulator per output, one dot product per 32 columns, in column
// order. A call may cover columns [begin, end) only (multiples of 32 short of `in`): the
// accumulators then continue from and go back to `partial` ([R][T][16] floats), and only the
// call that reaches `in` writes y, so chunked and whole rows give the same bits.
// `ahead`: elements past each weight in use to prefetch (0: the rows are in the caches).
template <int R, int T, class Weights>
void tile(const Weights& w, const uint16_t* x, int64_t x_stride, int begin, int end, int in, float* partial, float* y,
          int64_t y_stride, int64_t ahead) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = begin == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(partial + (r * T + t) * 16);
  // Inlined by force: called as a function (GCC's choice at two call sites), the accumulators
  // went through memory, a load and a store around every dot product (0.4 of the peak).
  auto step = [&](const __m512i* wv, int i) __attribute__((always_inline)) {
    for (int t = 0; t < T; ++t) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + t * x_stride + i);
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], (__m512bh)wv[r], xv);
    }
  };
  const int whole_end = end < in ? end : in / kBf16Step * kBf16Step;
  int i = begin;
  if constexpr (requires(__m512i* out) { w.load64(0, 0, out); })
    for (; i + 2 * kBf16Step <= whole_end; i += 2 * kBf16Step) {
      if (ahead)
        for (int r = 0; r < R; ++r) w.prefetch(r, i + ahead);
      __m512i pair[R][2], first[R], second[R];
      for (int r = 0; r < R; ++r) w.load64(r, i, pair[r]), first[r] = pair[r][0], second[r] = pair[r][1];
      step(first, i);
      step(second, i + kBf16Step);
    }
  for (; i < whole_end; i += kBf16Step) {
    if (ahead && (i * Weights::kBytes) % 64 == 0)
      for (int r = 0; r < R; ++r) w.prefetch(r, i + ahead);
    __m512i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = w.load(r, i);
    step(wv, i);
  }
  if (end < in) {
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) _mm512_storeu_ps(partial + (r * T + t) * 16, acc[r][t]);
    return;
  }
  if (i < in) {
    __m512i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = w.load_tail(r, i, in - i);
    step(wv, i);
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
}

// tile<R, T> for run-time R in [1, kBf16TileRows] and T in [1, kTileTokensMax] (more: T = 6).
constexpr int kTileTokensMax = 6;
struct TileArgs {
  const uint16_t* x;
  int64_t x_stride;
  int begin, end, in;
  float* partial;
  float* y;
  int64_t y_stride;
  int64_t ahead;
};
template <int R, class Weights>
void tile_tokens(int tokens, const Weights& w, const TileArgs& a) {
  switch (tokens) {
    case 1: return tile<R, 1>(w, a.x, a.x_stride, a.begin, a.end, a.in, a.partial, a.y, a.y_stride, a.ahead);
    case 2: return tile<R, 2>(w, a.x, a.x_stride, a.begin, a.end, a.in, a.partial, a.y, a.y_stride, a.ahead);
    case 3: return tile<R, 3>(w, a.x, a.x_stride, a.begin, a.end, a.in, a.partial, a.y, a.y_stride, a.ahead);
    case 4: return tile<R, 4>(w, a.x, a.x_stride, a.begin, a.end, a.in, a.partial, a.y, a.y_stride, a.ahead);
    case 5: return tile<R, 5>(w, a.x, a.x_stride, a.begin, a.end, a.in, a.partial, a.y, a.y_stride, a.ahead);
    default: return tile<R, 6>(w, a.x, a.x_stride, a.begin, a.end, a.in, a.partial, a.y, a.y_stride, a.ahead);
  }
}
template <class Weights>
void tile_rows_tokens(int rows, int tokens, const Weights& w, const TileArgs& a) {
  static_assert(kBf16TileRows == 4);
  switch (rows) {
    case 1: return tile_tokens<1>(tokens, w, a);
    case 2: return tile_tokens<2>(tokens, w, a);
    case 3: return tile_tokens<3>(tokens, w, a);
    default: return tile_tokens<4>(tokens, w, a);
  }
}

// x rounded to BF16 into out (padded with zeros to bf16_padded(in)), FP8: multiplied by the
// block scales of the 128-row block `scales` points at first (nullptr: BF16 weights).
void round_activations(const float* x, int in, const float* scales, int block, int phase, uint16_t* out) {
  const int padded = bf16_padded(in);
  // One scale at a time: the view's first block is `phase` columns short.
  for (int b = 0, b_end = 0, scale_index = 0; b < padded; b = b_end, ++scale_index) {
    b_end = scales ? b + block - (b == 0 ? phase : 0) : padded;
    if (b_end > padded) b_end = padded;
    const __m512 s = _mm512_set1_ps(scales ? scales[scale_index] : 1.0f);
    for (int i = b; i < b_end; i += kBf16Step) {
      __m512 a, c;
      if (i + kBf16Step <= in) {
        a = _mm512_loadu_ps(x + i), c = _mm512_loadu_ps(x + i + 16);
      } else {
        const __mmask16 lo = _cvtu32_mask16(i + 16 <= in ? 0xFFFF : i >= in ? 0 : (1u << (in - i)) - 1);
        const __mmask16 hi = _cvtu32_mask16(i + 32 <= in ? 0xFFFF : i + 16 >= in ? 0 : (1u << (in - i - 16)) - 1);
        a = _mm512_maskz_loadu_ps(lo, x + i), c = _mm512_maskz_loadu_ps(hi, x + i + 16);
      }
      if (scales) a = _mm512_mul_ps(a, s), c = _mm512_mul_ps(c, s);
      _mm512_storeu_si512(out + i, (__m512i)_mm512_cvtne2ps_pbh(c, a));
    }
  }
}

// round_activations of n values (a multiple of kBf16Step) for `blocks` consecutive 128-row
// blocks of FP8 at once, block k's scales at scales + k · scale_rows and its result at
// out + k · out_stride: x is read once for all of them (the same values as one call a block).
void round_for_blocks(const float* x, int n, const float* scales, int64_t scale_rows, int blocks, int block,
                      uint16_t* out, int64_t out_stride) {
  for (int i = 0; i < n; i += kBf16Step) {
    const __m512 a = _mm512_loadu_ps(x + i), c = _mm512_loadu_ps(x + i + 16);
    for (int k = 0; k < blocks; ++k) {
      const __m512 s = _mm512_set1_ps(scales[k * scale_rows + i / block]);
      _mm512_storeu_si512(out + k * out_stride + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_mul_ps(c, s), _mm512_mul_ps(a, s)));
    }
  }
}

// x · scale (one scale a `block` columns; none for BF16 weights) as hi + lo, both BF16: hi the
// value rounded, lo what that rounding left, rounded (exact in float32: hi has the value's
// leading bits). Together about 16 significant bits where hi alone has 8. in: a multiple of
// kBf16Step (panels).
void round_split(const float* x, int in, const float* scales, int block, uint16_t* hi, uint16_t* lo) {
  for (int i = 0; i < in; i += kBf16Step) {
    const __m512 s = _mm512_set1_ps(scales ? scales[i / block] : 1.0f);
    const __m512 a = _mm512_mul_ps(_mm512_loadu_ps(x + i), s), c = _mm512_mul_ps(_mm512_loadu_ps(x + i + 16), s);
    const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(c, a);
    const __m512 a_hi = _mm512_cvtpbh_ps((__m256bh)_mm512_castsi512_si256(h));
    const __m512 c_hi = _mm512_cvtpbh_ps((__m256bh)_mm512_extracti64x4_epi64(h, 1));
    _mm512_storeu_si512(hi + i, h);
    _mm512_storeu_si512(lo + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(c, c_hi), _mm512_sub_ps(a, a_hi)));
  }
}

// Rows of a chunk of the checkpoint's rows widened to BF16 (row r: base + r · kColumnChunk),
// holding columns [first, first + kColumnChunk).
struct ChunkRows {
  const uint16_t* row[kBf16TileRows];
  int first;
  __m512i load(int r, int i) const { return _mm512_loadu_si512(row[r] + (i - first)); }
  __m512i load_tail(int r, int i, int) const { return load(r, i); }  // zero padded
  void prefetch(int, int64_t) const {}
  static constexpr int kBytes = 2;
};

// The multi-token loop nest: rows in groups of kGroupRows, columns in chunks of kColumnChunk.
// A group's chunk is widened once (64 KB, L2), then each 6 tokens' chunk (12 KB) stays in L1
// while every row of the group passes by (token groups outside: 20-25% faster than rows
// outside, which read the whole tile's activations from L2 for each 4 rows); each tile's sums
// wait in `partial` between chunks.
constexpr int kColumnChunk = 1024, kGroupRows = 16;
constexpr int kTokenGroups = kBf16TileTokens / kTileTokensMax;
constexpr int kPartialFloats = kGroupRows / kBf16TileRows * kTokenGroups * kBf16TileRows * kTileTokensMax * 16;
static_assert(kBf16TileTokens % kTileTokensMax == 0 && kColumnChunk % kBf16Step == 0 && kGroupRows % kBf16TileRows == 0);
static_assert(bf16_scratch_values(kBf16Step) >= kGroupRows * kColumnChunk + kBf16TileTokens * kBf16Step + 2 * kPartialFloats,
              "bf16_kernels.h: scratch too small for this loop nest");

template <class Weights>
void group_rows(const GroupWeights<Weights>& direct, int rows, const uint16_t* xs, int tile_tokens, int in, float* y, int y_stride,
                uint16_t* widened, float* partial) {
  const int padded = bf16_padded(in);
  constexpr int kLine = 64 / int(sizeof(typename Weights::Element));
  for (int c = 0; c < in; c += kColumnChunk) {
    const int c_end = c + kColumnChunk < in ? c + kColumnChunk : in;
    // While this chunk is worked on, the rows' next chunk (after the last one: the next group's
    // first) comes into L2: a row's 1 KB piece alone is too short for the hardware prefetcher.
    const int64_t ahead = c_end < in ? kColumnChunk : int64_t(rows) * direct.stride - c;
    for (int r = 0; r < rows; ++r) {
      uint16_t* out = widened + r * kColumnChunk;
      int i = c;
      for (; i + kBf16Step <= c_end; i += kBf16Step) {
        if ((i - c) % kLine == 0) direct.prefetch(r, i + ahead);
        _mm512_storeu_si512(out + (i - c), direct.load(r, i));
      }
      if (i < c_end) _mm512_storeu_si512(out + (i - c), direct.load_tail(r, i, c_end - i));
    }
    for (int t = 0; t < tile_tokens; t += kTileTokensMax)
      for (int q = 0; q < rows; q += kBf16TileRows) {
        const int quad = rows - q < kBf16TileRows ? rows - q : kBf16TileRows;
        ChunkRows chunk;
        chunk.first = c;
        for (int r = 0; r < kBf16TileRows; ++r) chunk.row[r] = widened + (q + (r < quad ? r : 0)) * kColumnChunk;
        float* sums = partial + ((q / kBf16TileRows) * kTokenGroups + t / kTileTokensMax) * kBf16TileRows * kTileTokensMax * 16;
        tile_rows_tokens(quad, tile_tokens - t, chunk,
                         {xs + int64_t(t) * padded, padded, c, c_end, in, sums, y + int64_t(t) * y_stride + q, y_stride, 0});
      }
  }
}

// Rows [begin, end) of one scale block (FP8; BF16: any rows) against `tokens` tokens.
template <class Weights, class Element>
void block_rows(const Rows& w, const Element* data, const float* scales, const float* x, int tokens, int begin,
                int end, float* y, uint16_t* scratch) {
  const int in = w.in, padded = bf16_padded(in);
  const int block = w.type == WeightType::fp8 ? w.block : in, phase = w.type == WeightType::fp8 ? w.col0 % w.block : 0;
  const int64_t stride = w.stride ? w.stride : w.in;
  uint16_t* xs = scratch;
  uint16_t* widened = xs + int64_t(kBf16TileTokens) * padded;
  float* partial = reinterpret_cast<float*>(widened + kGroupRows * kColumnChunk);
  for (int t0 = 0; t0 < tokens; t0 += kBf16TileTokens) {
    const int tile_tokens = tokens - t0 < kBf16TileTokens ? tokens - t0 : kBf16TileTokens;
    for (int t = 0; t < tile_tokens; ++t)
      round_activations(x + int64_t(t0 + t) * in, in, scales, block, phase, xs + int64_t(t) * padded);
    // Up to kDirectTokens (kernels.h; decode, batches, an expert's share of a prefill) take the rows
    // straight from memory, a tile of 4 at a time, and run every group of 6 tokens against it:
    // the first group streams it (and asks for the next tile), the others find it in L1/L2 and
    // widen it again in registers. That costs less than widening once into scratch and reloading
    // (bench_cpu_rows, 2048 x 7168 FP8, one thread: 16 tokens 0.42 -> 0.59 of the BF16 peak,
    // 48 tokens 0.50 -> 0.57; even at 96).
    const bool direct_tiles = tile_tokens <= kDirectTokens;
    const int64_t ahead = prefetch_ahead(kBf16TileRows * stride * int64_t(sizeof(Element))) / int64_t(sizeof(Element));
    const int group = direct_tiles ? kBf16TileRows : kGroupRows;
    for (int o = begin; o < end; o += group) {
      const int rows = end - o < group ? end - o : group;
      float* out = y + int64_t(t0) * w.out + o;
      if (direct_tiles) {
        Weights direct;
        for (int r = 0; r < kBf16TileRows; ++r) direct.row[r] = data + int64_t(o + (r < rows ? r : 0)) * stride;
        // The same columns of the next tile's rows (or further: kernels.h's prefetch_ahead) are
        // asked for while these stream: the tile's four streams alone leave too few loads in
        // flight, and a tile would start cold.
        // (bench_cpu_rows, one thread, FP8 from memory: 2 KB ahead in the same rows 21-25 GB/s,
        // the next tile's rows 28-37 GB/s).
        for (int g = 0; g < tile_tokens; g += kTileTokensMax)
          tile_rows_tokens(rows, tile_tokens - g < kTileTokensMax ? tile_tokens - g : kTileTokensMax, direct,
                           {xs + int64_t(g) * padded, padded, 0, in, in, nullptr, out + int64_t(g) * w.out, w.out,
                            g == 0 ? ahead : 0});
        continue;
      }
      GroupWeights<Weights> rows_of_group{data + int64_t(o) * stride, stride};
      group_rows(rows_of_group, rows, xs, tile_tokens, in, out, w.out, widened, partial);
    }
  }
}

// ---- Weights in panels (bf16_kernels.h): outer products, 16 rows a vector ----

// T tokens against P panels over `pairs` column pairs (panel[p] and x at the first): lane l of
// acc[p][t] is row l of panel p for token t, one chain of dot products over the pairs in order.
// The sums start at zero (`first`) or from `partial` ([p · partial_stride + t · 16]); they go
// to y (lanes masked by `keep[p]`, rows outside the call's range) when y is given, else back to
// `partial`. A panel with nothing kept is a stand-in filling the tile: its sums are neither read
// nor kept.
// `ahead`: bytes past each pair in use to prefetch in its panel (0: in the caches). `next`
// (if given): bytes to bring in at the pace of one panel, the next block's (below).
// kSplit: the T rows of activations are T / 2 tokens' hi and lo (round_split), each pair's two
// chains added at the end into one output.
template <int P, int T, bool kFp8, bool kSplit = false>
void panel_tile(const uint8_t* const* panel, const uint16_t* x, int64_t x_stride, int pairs, bool first, float* partial,
                int64_t partial_stride, float* y, int64_t y_stride, const __mmask16* keep, int64_t ahead,
                int64_t next_tile, const uint8_t* next) {
  constexpr int kPairBytes = kPanelWidth * 2 * (kFp8 ? 1 : 2);
  const int64_t row_bytes = int64_t(pairs) * kPairBytes;
  const auto ahead_of = [&](int k) __attribute__((always_inline)) {
    return next_tile && k * kPairBytes + ahead >= row_bytes ? ahead + next_tile - row_bytes : ahead;
  };
  __m512 acc[P][T];
  for (int p = 0; p < P; ++p)
    for (int t = 0; t < T; ++t)
      acc[p][t] = first || !keep[p] ? _mm512_setzero_ps() : _mm512_loadu_ps(partial + p * partial_stride + t * 16);
  auto step = [&](const __m512i* wv, int k) __attribute__((always_inline)) {
    for (int t = 0; t < T; ++t) {
      const __m512bh xv = (__m512bh)_mm512_set1_epi32(*reinterpret_cast<const int32_t*>(x + t * x_stride + 2 * k));
      for (int p = 0; p < P; ++p) acc[p][t] = _mm512_dpbf16_ps(acc[p][t], (__m512bh)wv[p], xv);
    }
  };
  if constexpr (kFp8) {
    for (int k = 0; k < pairs; k += 2) {  // 64 codes: two pairs of a panel
      if (next) _mm_prefetch(reinterpret_cast<const char*>(next + k * kPairBytes), _MM_HINT_T0);
      __m512i two[P][2], even[P], odd[P];
      const int64_t to = ahead_of(k);
      for (int p = 0; p < P; ++p) {
        if (ahead) _mm_prefetch(reinterpret_cast<const char*>(panel[p] + k * kPairBytes + to), _MM_HINT_T0);
        fp8_to_bf16x2<0>(_mm512_loadu_si512(panel[p] + k * kPairBytes), two[p]);
        even[p] = two[p][0], odd[p] = two[p][1];
      }
      step(even, k);
      step(odd, k + 1);
    }
  } else {
    for (int k = 0; k < pairs; ++k) {
      if (next) _mm_prefetch(reinterpret_cast<const char*>(next + k * kPairBytes), _MM_HINT_T0);
      __m512i wv[P];
      const int64_t to = ahead_of(k);
      for (int p = 0; p < P; ++p) {
        if (ahead) _mm_prefetch(reinterpret_cast<const char*>(panel[p] + k * kPairBytes + to), _MM_HINT_T0);
        wv[p] = _mm512_loadu_si512(panel[p] + k * kPairBytes);
      }
      step(wv, k);
    }
  }
  if constexpr (kSplit) {
    for (int p = 0; p < P; ++p)
      for (int t = 0; t < T / 2; ++t)
        _mm512_mask_storeu_ps(y + t * y_stride + p * kPanelWidth, keep[p], _mm512_add_ps(acc[p][2 * t], acc[p][2 * t + 1]));
  } else {
    for (int p = 0; p < P; ++p)
      for (int t = 0; t < T; ++t)
        if (y)
          _mm512_mask_storeu_ps(y + t * y_stride + p * kPanelWidth, keep[p], acc[p][t]);
        else if (keep[p])  // a stand-in panel (nothing kept) must not touch the next one's sums
          _mm512_storeu_ps(partial + p * partial_stride + t * 16, acc[p][t]);
  }
}

// The shapes panel_tile runs: one token against 4 panels (4 chains of dot products, 4 streams
// from memory), else up to 12 tokens against 2 panels (24 accumulators, each widened pair used
// 12 times). Not 8 panels for one token: R1's o_proj panels (16 x 16384 FP8) lie 256 KB apart,
// 8 streams in the same L2 sets (8 ways), and one thread read 23 GB/s where 4 panels read 40
// (bench_cpu_rows --tokens 1 --rows 7168 --in 16384; 7168-wide rows 31 -> 38).
constexpr int kPanelTokens = 12, kPanelChunkPairs = kPanelChunkColumns / 2;
// A scale block's panels (can_pack: FP8 blocks divide the chunk).
constexpr int kMaxBlockPanels = kPanelChunkColumns / kPanelWidth;
struct PanelCall {
  const uint16_t* x;
  int64_t x_stride;
  int pairs;
  bool first;
  float* partial;
  int64_t partial_stride;
  float* y;
  int64_t y_stride;
  int64_t ahead;
  // Bytes from a panel to the one that takes its place in the next tile: the prefetch `ahead`
  // runs on into it past the panel's end (0: it runs into whatever follows).
  int64_t next_tile = 0;
  // The next block's panels (their chunk), one a tile from tile next_first of this call on.
  const uint8_t* const* next = nullptr;
  int next_count = 0, next_first = 0;
};
template <bool kFp8, int P, bool kSplit>
void panel_tokens(int tokens, const uint8_t* const* panel, const __mmask16* keep, const PanelCall& c, const uint8_t* next) {
#define R1_PANEL_TILE(T)                                                                                              \
  return panel_tile<P, T, kFp8, kSplit>(panel, c.x, c.x_stride, c.pairs, c.first, c.partial, c.partial_stride, \
                                        c.y, c.y_stride, keep, c.ahead, c.next_tile, next)
  if constexpr (P > 2) {
    if constexpr (kSplit) R1_PANEL_TILE(2);
    else R1_PANEL_TILE(1);
  } else if constexpr (kSplit) {  // rows of activations: two a token
    switch (tokens) {
      case 2: R1_PANEL_TILE(2);
      case 4: R1_PANEL_TILE(4);
      case 6: R1_PANEL_TILE(6);
      case 8: R1_PANEL_TILE(8);
      case 10: R1_PANEL_TILE(10);
      default: R1_PANEL_TILE(12);
    }
  } else {
    switch (tokens) {
      case 1: R1_PANEL_TILE(1);
      case 2: R1_PANEL_TILE(2);
      case 3: R1_PANEL_TILE(3);
      case 4: R1_PANEL_TILE(4);
      case 5: R1_PANEL_TILE(5);
      case 6: R1_PANEL_TILE(6);
      case 7: R1_PANEL_TILE(7);
      case 8: R1_PANEL_TILE(8);
      case 9: R1_PANEL_TILE(9);
      case 10: R1_PANEL_TILE(10);
      case 11: R1_PANEL_TILE(11);
      default: R1_PANEL_TILE(12);
    }
  }
#undef R1_PANEL_TILE
}

// Panel p's rows in [begin, end), as a mask of its lanes.
__mmask16 rows_kept(int p, int begin, int end) {
  const int lo = std::max(begin - p * kPanelWidth, 0), hi = std::min(end - p * kPanelWidth, kPanelWidth);
  return lo >= hi ? __mmask16(0) : __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// Panels [first, last) of w for rows [begin, end); p_base[p - first]: where panel p's pairs (of
// the chunk at hand) start. `width` panels a tile, a panel past the last taking panel p's place
// with nothing kept.
struct PanelSpan {
  const uint8_t* const* p_base;
  int first, last, begin, end;
};
template <bool kFp8, bool kSplit = false>
void panel_tiles(const PanelSpan& span, int tokens, int width, PanelCall call) {
  float* partial = call.partial;
  float* y = call.y;
  for (int p = span.first, tile = call.next_first; p < span.last; p += width, ++tile) {
    const uint8_t* panel[4];
    __mmask16 keep[4];
    for (int q = 0; q < width; ++q) {
      const bool real = p + q < span.last;
      panel[q] = span.p_base[(real ? p + q : p) - span.first];
      keep[q] = real ? rows_kept(p + q, span.begin, span.end) : __mmask16(0);
    }
    call.partial = partial + (p - span.first) * call.partial_stride;
    call.y = y ? y + int64_t(p) * kPanelWidth : nullptr;
    const uint8_t* next = tile < call.next_count ? call.next[tile] : nullptr;
    if (width == 4)
      panel_tokens<kFp8, 4, kSplit>(kSplit ? 2 : 1, panel, keep, call, next);
    else
      panel_tokens<kFp8, 2, kSplit>(tokens, panel, keep, call, next);
  }
}

// The size of ceil(n / most) near-equal parts of n: 49 tokens as 25 + 24, not 48 + 1.
int even_split(int n, int most) {
  const int parts = (n + most - 1) / most;
  return (n + parts - 1) / parts;
}

// Up to kFewPanelTokens tokens (decode, batches, an expert's share of a prompt): per block of rows
// (FP8: one row of scales) the tokens' activations rounded with its scales, then its panels
// streamed from memory once, whole rows a tile: up to kPanelTokens tokens stream the tile and ask
// for what follows `ahead` bytes on; the next group finds it in L2. At one token, near an FP8
// panel's end the prefetch runs on into the panel that takes its place in the next tile:
// otherwise each tile's streams but the first start cold (alternating in one process: R1's
// expert down, 2048 columns, +5-10%; q_b, 1536 columns, +18%; 7168-18432 columns +2-5%; but BF16
// lm_head -1-3%, and 16-512 tokens 0-4% slower, where the tiles are compute-bound).
// (bench: an expert's share from memory, 13-32 tokens, 4-8% faster than panel_rows_many's chunks;
// prefetching 2048 bytes ahead rather than 1024, 5-10% faster at 8-20 tokens and, with the run
// into the next tile, at one token on FP8 too; BF16 at one token keeps 1024, which streams faster.)
constexpr int kFewPanelTokens = 32;
static_assert(kFewPanelTokens <= kBf16TileTokens, "bf16_kernels.h: scratch holds kBf16TileTokens rows of activations");
// split: each token's activations as hi and lo rows (round_split), tokens <= kFewPanelTokens / 2.
void panel_rows_few(const Rows& w, const float* x, int tokens, int begin, int end, float* y, uint16_t* xs,
                    bool split = false) {
  const bool fp8 = w.type == WeightType::fp8;
  const int in = w.in, block = fp8 ? w.block : end - begin, per_token = split ? 2 : 1;
  // Rows of activations: a token's one, or its hi and lo side by side in a group.
  const int rows = tokens * per_token, group_size = per_token * even_split(tokens, kPanelTokens / per_token);
  const int64_t panel_bytes = int64_t(kPanelWidth) * in * (fp8 ? 1 : 2), ahead = tokens == 1 && !fp8 ? 1024 : 2048;
  // Whole rows: no sums kept between calls (`partial`, never touched, points into scratch only
  // because GCC cannot see that and warns of a null pointer's stores).
  float* unused = reinterpret_cast<float*>(xs);
  for (int b0 = fp8 ? begin / block * block : begin; b0 < end; b0 += block) {
    const int first = std::max(b0, begin) / kPanelWidth, last = (std::min(b0 + block, end) + kPanelWidth - 1) / kPanelWidth;
    const float* scales = fp8 ? w.scales + int64_t(b0 / w.block) * w.scale_cols : nullptr;
    for (int t = 0; t < tokens; ++t)
      if (split)
        round_split(x + int64_t(t) * in, in, scales, block, xs + int64_t(2 * t) * in, xs + int64_t(2 * t + 1) * in);
      else
        round_activations(x + int64_t(t) * in, in, scales, block, 0, xs + int64_t(t) * in);
    const int width = tokens == 1 && last - first > 2 ? 4 : 2;
    for (int p0 = first; p0 < last; p0 += width) {
      const uint8_t* p_base[4];
      const int p1 = std::min(last, p0 + width);
      for (int p = p0; p < p1; ++p) p_base[p - p0] = static_cast<const uint8_t*>(w.data) + p * panel_bytes;
      const PanelSpan tile{p_base, p0, p1, begin, end};
      for (int g = 0; g < rows; g += group_size) {
        const PanelCall call{xs + int64_t(g) * in, in, in / 2, true, unused, 0, y + int64_t(g / per_token) * w.out, w.out,
                             g == 0 ? ahead : 0, fp8 && tokens == 1 ? width * panel_bytes : 0};
        const int group = std::min(group_size, rows - g);
        if (fp8 && split)
          panel_tiles<true, true>(tile, group, width, call);
        else if (fp8)
          panel_tiles<true>(tile, group, width, call);
        else if (split)
          panel_tiles<false, true>(tile, group, width, call);
        else
          panel_tiles<false>(tile, group, width, call);
      }
    }
  }
}

// More tokens: rows in spans of kSpanRows, each against tiles of up to kBf16TileTokens tokens,
// column chunk by chunk. A chunk's activations (48 tokens x 512 columns, L2) are rounded with
// each block's scales, then run against the block's panels (their chunk in L1/L2 after the first
// group) 12 tokens at a time; the span's sums wait in `partial` between chunks. Rounding a chunk
// rather than a tile's whole rows keeps the activations in L2 whatever the width (o_proj's 16384
// columns: 48 tokens are 3 MB of float32). FP8 is widened in registers by every group: widened
// once a tile into scratch instead, the stores cost more (bench_cpu_rows, one thread, FP8,
// alternating builds: 512 x 2048 x 7168 0.66-0.69 -> 0.69-0.79 of the peak, 512 x 7168 x 16384
// 0.59-0.62 -> 0.71-0.75, 48 x 2048 x 7168 0.63-0.67 -> 0.67-0.74).
constexpr int kSpanRows = 1024, kRoundBlocks = 8;
template <bool kFp8>
void panel_rows_many(const Rows& w, const float* x, int tokens, int begin, int end, float* y, uint16_t* scratch) {
  const int in = w.in, pairs = in / 2, block = kFp8 ? w.block : 128;
  constexpr int kPairBytes = 2 * kPanelWidth * (kFp8 ? 1 : 2);
  const int64_t panel_bytes = int64_t(pairs) * kPairBytes;
  // A tile's chunk of activations, [kRoundBlocks][kBf16TileTokens][2 · kPanelChunkPairs]: FP8
  // rounded for up to kRoundBlocks blocks of rows at once.
  constexpr int64_t kTileValues = kBf16TileTokens * 2 * kPanelChunkPairs;
  uint16_t* rounded = scratch;
  float* partial = reinterpret_cast<float*>(rounded + kRoundBlocks * kTileValues);
  const int64_t partial_stride = int64_t(kBf16TileTokens) * 16;  // a panel's sums: [token][16]
  const int tile_size = even_split(tokens, kBf16TileTokens);
  // The panels of the block of rows from b0 (in its span of rows from s0) and where their chunk
  // from pair c starts: the range in *first, *last.
  auto block_panels = [&](int s0, int b0, int c, const uint8_t** base, int* first, int* last) {
    *first = std::max(b0, begin) / kPanelWidth;
    *last = (std::min({b0 + block, s0 + kSpanRows, end}) + kPanelWidth - 1) / kPanelWidth;
    for (int p = *first; p < *last; ++p)
      base[p - *first] = static_cast<const uint8_t*>(w.data) + p * panel_bytes + int64_t(c) * kPairBytes;
  };
  for (int s0 = begin / block * block; s0 < end; s0 += kSpanRows) {
    const int s_begin = std::max(s0, begin), s_end = std::min(s0 + kSpanRows, end), s_first = s_begin / kPanelWidth;
    for (int t0 = 0; t0 < tokens; t0 += tile_size) {
      const int tile_tokens = std::min(tile_size, tokens - t0), group_size = even_split(tile_tokens, kPanelTokens);
      for (int c = 0; c < pairs; c += kPanelChunkPairs) {
        const int c_pairs = std::min(kPanelChunkPairs, pairs - c);
        for (int b0 = s0; b0 < s_end; b0 += block) {
          const uint8_t* p_base[kMaxBlockPanels];
          int first, last;
          block_panels(s0, b0, c, p_base, &first, &last);
          if (first >= last) continue;
          // The block after this one (the next rows, else the span's first at the next chunk,
          // token tile or span) comes from memory while this one's groups run from L2: its
          // first group would otherwise wait on two streams the hardware prefetcher only ramps up.
          const uint8_t* next[kMaxBlockPanels];
          int next_first = 0, next_last = 0;
          if (b0 + block < s_end)
            block_panels(s0, b0 + block, c, next, &next_first, &next_last);
          else if (c + kPanelChunkPairs < pairs)
            block_panels(s0, s0, c + kPanelChunkPairs, next, &next_first, &next_last);
          else if (t0 + tile_size < tokens)
            block_panels(s0, s0, 0, next, &next_first, &next_last);
          else if (s0 + kSpanRows < end)
            block_panels(s0 + kSpanRows, s0 + kSpanRows, 0, next, &next_first, &next_last);
          const float* scales = kFp8 ? w.scales + int64_t(b0 / w.block) * w.scale_cols + 2 * c / w.block : nullptr;
          const int block_index = (b0 - s0) / block;
          uint16_t* xs = rounded + (kFp8 ? block_index % kRoundBlocks : 0) * kTileValues;
          if (kFp8 && block_index % kRoundBlocks == 0) {
            const int blocks = std::min(kRoundBlocks, (s_end - b0 + block - 1) / block);
            for (int t = 0; t < tile_tokens; ++t)
              round_for_blocks(x + int64_t(t0 + t) * in + 2 * c, 2 * c_pairs, scales, w.scale_cols,
                               blocks, w.block, xs + t * 2 * kPanelChunkPairs, kTileValues);
          } else if (!kFp8 && b0 == s0) {  // BF16: the same rounding for every block
            for (int t = 0; t < tile_tokens; ++t)
              round_activations(x + int64_t(t0 + t) * in + 2 * c, 2 * c_pairs, nullptr, block, 0, xs + t * 2 * kPanelChunkPairs);
          }
          const PanelSpan span{p_base, first, last, begin, end};
          const int tiles = (last - first + 1) / 2;
          for (int t = 0, group = 0; t < tile_tokens; t += group_size, ++group) {
            PanelCall call{xs + t * 2 * kPanelChunkPairs, 2 * kPanelChunkPairs, c_pairs, c == 0,
                           partial + (int64_t(first - s_first)) * partial_stride + t * 16, partial_stride,
                           c + c_pairs == pairs ? y + int64_t(t0 + t) * w.out : nullptr, w.out, 0};
            call.next = next, call.next_count = next_last - next_first, call.next_first = group * tiles;
            panel_tiles<kFp8>(span, std::min(group_size, tile_tokens - t), 2, call);
          }
        }
      }
    }
  }
}
static_assert(bf16_scratch_values(kBf16Step) >= kRoundBlocks * kBf16TileTokens * 2 * kPanelChunkPairs +
                                                    2 * (kSpanRows / kPanelWidth) * kBf16TileTokens * 16,
              "bf16_kernels.h: scratch too small for the panels' chunk of activations and sums");

// Rows of 4096-8192 columns (R1's hidden width: gate, up, q_a) take many tokens as tiles of
// kFewPanelTokens through panel_rows_few too: a tile's activations (458 KB at 7168) and two
// panels (229 KB) share L2, and whole rows a dot-product chain beat the chunks' partial sums
// (alternating in one process, 512 tokens on both threads: 18432 x 7168 +6%, 2048 x 7168 +4%,
// 1536 x 7168 +3%; but 7168 x 2048 -13%, 7168 x 18432 -35%, where the chunks stay).
constexpr int kStreamedMinIn = 4096, kStreamedMaxIn = 8192;

void panel_rows(const Rows& w, const float* x, int tokens, int begin, int end, float* y, uint16_t* scratch) {
  if (tokens <= kFewPanelTokens) return panel_rows_few(w, x, tokens, begin, end, y, scratch);
  if (w.in >= kStreamedMinIn && w.in <= kStreamedMaxIn) {
    for (int t0 = 0; t0 < tokens; t0 += kFewPanelTokens)
      panel_rows_few(w, x + int64_t(t0) * w.in, std::min(kFewPanelTokens, tokens - t0), begin, end, y + int64_t(t0) * w.out,
                     scratch);
    return;
  }
  if (w.type == WeightType::fp8) return panel_rows_many<true>(w, x, tokens, begin, end, y, scratch);
  panel_rows_many<false>(w, x, tokens, begin, end, y, scratch);
}

void rows(const Rows& w, const float* x, int tokens, int begin, int end, float* y, uint16_t* scratch) {
  if (w.panels) return panel_rows(w, x, tokens, begin, end, y, scratch);
  if (w.type == WeightType::bf16)
    return block_rows<Bf16Rows>(w, static_cast<const uint16_t*>(w.data), nullptr, x, tokens, begin, end, y, scratch);
  for (int o = begin; o < end;) {  // FP8: one 128-row scale block at a time
    const int block_row = (w.row0 + o) / w.block, next = (block_row + 1) * w.block - w.row0;
    const int stop = next < end ? next : end;
    const float* scales = w.scales + int64_t(block_row) * w.scale_cols + w.col0 / w.block;
    block_rows<Fp8Rows>(w, static_cast<const uint8_t*>(w.data), scales, x, tokens, o, stop, y, scratch);
    o = stop;
  }
}

// Panels only (the caller checks); tokens in groups of kFewPanelTokens / 2, each a tile's rows.
void split_rows(const Rows& w, const float* x, int tokens, int begin, int end, float* y, uint16_t* scratch) {
  constexpr int kGroup = kFewPanelTokens / 2;
  for (int t0 = 0; t0 < tokens; t0 += kGroup)
    panel_rows_few(w, x + int64_t(t0) * w.in, std::min(kGroup, tokens - t0), begin, end, y + int64_t(t0) * w.out,
                   scratch, true);
}

// pack_panels by 32-bit gathers: a dword of each of a panel's 16 rows is two FP8 column pairs
// (byte-permuted into two pair vectors) or one BF16 pair (a pair vector as gathered), read from a
// copy of the panel.
void pack(const Rows& w, int begin, int end) {
  const bool fp8 = w.type == WeightType::fp8;
  const int64_t row_bytes = int64_t(w.in) * (fp8 ? 1 : 2), panel_bytes = kPanelWidth * row_bytes;
  thread_local std::vector<uint8_t> rows;
  rows.resize(size_t(panel_bytes));
  const __m512i row_offsets = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                 _mm512_set1_epi32(int32_t(row_bytes)));
  alignas(64) uint8_t order[64];  // FP8: bytes 0,1 of each row's dword, then bytes 2,3
  for (int r = 0; r < kPanelWidth; ++r)
    for (int b = 0; b < 2; ++b) order[2 * r + b] = uint8_t(4 * r + b), order[32 + 2 * r + b] = uint8_t(4 * r + 2 + b);
  const __m512i fp8_order = _mm512_load_si512(order);
  for (int p = begin; p < end; ++p) {
    uint8_t* panel = static_cast<uint8_t*>(const_cast<void*>(w.data)) + p * panel_bytes;
    std::memcpy(rows.data(), panel, size_t(panel_bytes));
    for (int64_t j = 0; j < row_bytes; j += 4) {  // 64 bytes out a step
      const __m512i dwords = _mm512_i32gather_epi32(row_offsets, rows.data() + j, 1);
      _mm512_storeu_si512(panel + j * kPanelWidth, fp8 ? _mm512_permutexvar_epi8(fp8_order, dwords) : dwords);
    }
  }
}

// kDotChains chains of vdpbf16ps: more than its latency × issue width (kernels.h).
float dot_loop(int64_t iterations) {
  __m512 acc[kDotChains];
  for (int k = 0; k < kDotChains; ++k) acc[k] = _mm512_set1_ps(float(k));
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3F80), b = (__m512bh)_mm512_set1_epi16(0x3380);  // 1, 2^-24
  for (int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 24
    for (int k = 0; k < kDotChains; ++k) acc[k] = _mm512_dpbf16_ps(acc[k], a, b);
  for (int k = 1; k < kDotChains; ++k) acc[0] = _mm512_add_ps(acc[0], acc[k]);
  return _mm512_reduce_add_ps(acc[0]);
}

}  // namespace

void mla_attend_bf16_avx512(const MlaCoreShape& shape, const float* q, const uint16_t* const* rows, float* o);  // mla_bf16_avx512.cpp
extern const Bf16Kernels kAvx512Bf16Kernels = {"avx512-bf16", rows, split_rows, dot_loop, pack, mla_attend_bf16_avx512};

}  // namespace r1::simd
