// Row-product kernels, one set per instruction set, chosen at run time (dispatch.cpp).
// This header is included by translation units compiled with -mavx512* / -mavx2 flags, so it
// holds only plain data: an inline function compiled there could be the copy the linker keeps
// for the whole program, and then run on a CPU without those instructions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace r1::simd {

// avx512_vbmi: AVX-512 plus VBMI's byte permutes, which decode FP8 by table (fp8_vbmi.h).
enum class Isa { portable, avx2, avx512, avx512_vbmi };

enum class WeightType { f32, bf16, f16, fp8 };

// A [out, in] weight matrix as stored in the checkpoint, or a block of one (a rank's shard):
// row o starts `stride` elements after row o - 1 (stride 0: in), and the view's [0][0] is the
// stored matrix's [row0][col0]. FP8: W[o][i] = e4m3(codes[o][i]) ·
// scales[((row0 + o) / block) · scale_cols + (col0 + i) / block], block a multiple of 16;
// scales and scale_cols are those of the whole stored matrix, so a view may start mid-block.
struct Rows {
  WeightType type = WeightType::f32;
  const void* data = nullptr;
  const float* scales = nullptr;  // FP8 only
  int out = 0, in = 0, block = 0, scale_cols = 0;
  int64_t stride = 0;
  int row0 = 0, col0 = 0;
  // Packed in panels of 16 rows for the fast kernels (bf16_kernels.h), which alone read them.
  bool panels = false;
};

// Lanes a scratch row must be padded to (zeros past `in`) for every kernel set.
constexpr int kMaxLanes = 16;
constexpr int padded(int n) { return (n + kMaxLanes - 1) / kMaxLanes * kMaxLanes; }
// The summation order of every output, whatever the kernel set and the number of tokens: the
// columns go in chunks of kChunk from the view's column 0; each chunk is summed in one vector
// chain (lane l takes the columns ≡ l mod lanes, in order), the chain is reduced by halving,
// and the chunk sums are added in order. FP8 block scales are folded into the activations
// (e4m3 · fl(x · scale)), so blocks do not enter the order. Chunks of 1024 rather than 512
// halve the reductions (bench_cpu_rows, one thread: the GEMM 0.61-0.66 -> 0.70-0.73 of the FMA
// peak, decode from L2 26 -> 35 GB/s); 2048 no longer fits a panel in L2 (0.54-0.60).
constexpr int kChunk = 1024;
// The multi-token product decodes at most kPanelRows rows (FP8: of one 128-row scale block) × one
// chunk of weights into scratch (in L2) and packs at most kMaxTileTokens tokens × one chunk of
// activations (in L1).
constexpr int kPanelRows = 128, kMaxTileTokens = 8;
// A few tokens (up to kDirectTokens, their activations within kDirectFloats: L2) stream the
// weights from memory straight into the register tiles instead: each weight is decoded once per
// group of tile tokens rather than stored once per panel and reloaded, which wins while the groups
// are few (measured with bench_cpu_rows: 1.5-2x at 8-16 tokens, even at 16-36 depending on width).
// The fast kernels (bf16_rows_avx512.cpp) take the same bound for their own direct tiles.
constexpr int kDirectTokens = 48;
constexpr size_t kDirectFloats = size_t(256) << 10;
// A tile streaming from memory asks for the same columns of the rows this many bytes ahead, or
// more: the next tile's (R1's rows are 2-18 KB), else as many tiles on as reach it (short rows,
// like a head's W_UV rows of 512 bytes, would otherwise ask for lines only 2 KB on, too close to
// arrive in time).
constexpr int64_t kMinPrefetchBytes = 4096;
constexpr int64_t prefetch_ahead(int64_t tile_bytes) {
  return (kMinPrefetchBytes + tile_bytes - 1) / tile_bytes * tile_bytes;
}
// One token always (decode has no reuse to gain from a panel).
constexpr bool direct_product(int tokens, int in) {
  return tokens == 1 || (tokens <= kDirectTokens && size_t(tokens) * size_t(padded(in)) <= kDirectFloats);
}
// Plus one chunk of FP8 column scales and the sums of a panel's tiles for a group of tokens; a
// direct product uses padded(in) floats per token (the scaled activations).
constexpr size_t scratch_floats(int in) {
  const size_t multi = size_t(kPanelRows + kMaxTileTokens + 1) * size_t(padded(in) < kChunk ? padded(in) : kChunk) +
                       size_t(kMaxTileTokens) * kPanelRows;
  size_t direct = size_t(kDirectTokens) * size_t(padded(in));
  if (direct > kDirectFloats) direct = kDirectFloats > size_t(padded(in)) ? kDirectFloats : size_t(padded(in));
  return multi > direct ? multi : direct;
}

// The column product's scratch: FP8 each token's activations times one block column of scales;
// one token its sums (any type).
constexpr size_t column_scratch_floats(const Rows& w, int tokens) {
  return tokens == 1 ? size_t(padded(w.in) + kMaxLanes) : w.type == WeightType::fp8 ? size_t(tokens) * size_t(w.out) : 0;
}

struct Kernels {
  Isa isa;
  const char* name;
  // y[t · w.out + o] = Σ_i x[t · w.in + i] · W[o][i] for o in [begin, end), t < tokens.
  // scratch: scratch_floats(w.in) floats. Each weight byte is read once whatever `tokens` is, and each
  // output's summation order (kChunk) depends neither on `tokens` nor on [begin, end): batch invariance.
  void (*rows)(const Rows& w, const float* x, int tokens, int begin, int end, float* y, float* scratch);
  // y[t · w.in + c] = Σ_r x[t · w.out + r] · W[r][c] for c < w.in, t < tokens: the weight's rows
  // as the summed index (W_UK absorbing queries: kv_b's rows are the query's dimensions). Each
  // output is one chain of FMAs over r in order, a vector lane per output column, so every kernel
  // set and every number of tokens gives the same bits. FP8 as in `rows` (e4m3 · fl(x · scale)).
  // scratch: column_scratch_floats(w, tokens) floats.
  void (*columns)(const Rows& w, const float* x, int tokens, float* y, float* scratch);
  // Row `row` of W as float32 into out[0, w.in).
  void (*decode_row)(const Rows& w, int row, float* out);
  // Σ p[0..n) with independent vector accumulators: the bandwidth probe's read (n % 128 == 0),
  // as `streams` (1, 2, 4 or 8) equal runs read side by side (kernels on panels read 4 at once).
  float (*read_sum)(const float* p, size_t n, int streams);
  // The arithmetic probe: `iterations` rounds of independent FMAs in registers, kFmaFlopsPerRound
  // × lanes FLOP each (lanes: 16 AVX-512, 8 AVX2, 1 portable); the result only defeats the optimizer.
  float (*fma_loop)(int64_t iterations);
  int lanes;
};
// FMAs a round of the probe: as many independent chains as AVX-512's registers hold. Zen 5
// issues two 512-bit FMAs a cycle at a latency of 4 and two BF16 dot products at about 6: 12
// chains read 3% (FMA) and 8-10% (dot products) below 24 (measured in a standalone loop), a
// probe that weak inflates every fraction of it. AVX2's 16 registers take 12 chains twice.
constexpr int kFmaChainsPerRound = 24;
constexpr int kFmaFlopsPerRound = 2 * kFmaChainsPerRound;

// The kernels of `isa`, or nullptr when this build or this CPU lacks it.
const Kernels* kernels_for(Isa isa);
// The widest set this CPU runs (AVX-512 with VBMI, else AVX-512, else AVX2, else the portable
// reference).
const Kernels& best_kernels();

}  // namespace r1::simd
