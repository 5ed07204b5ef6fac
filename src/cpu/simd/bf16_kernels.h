// Fast numerics on the CPU (--numerics fast): BF16 products summed in float32. FP8 e4m3 and
// BF16 weights become BF16 exactly (every e4m3 code, subnormals included, is a BF16 number);
// activations are rounded to BF16 once per 128-row scale block, with the FP8 block scales
// folded in (x · scale, then rounded), so the kernels multiply raw codes and never rescale.
// AVX512-BF16 dot products (vdpbf16ps) take 32 weights an instruction: half the decode work of
// the float32 path and twice its arithmetic rate.
// Plain data only, like kernels.h (included by translation units compiled with ISA flags).
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/mla_core.h"
#include "cpu/simd/kernels.h"

namespace r1::simd {

// BF16 values one step of the kernels takes: rows of activations are padded with zeros to it.
constexpr int kBf16Step = 32;
constexpr int bf16_padded(int n) { return (n + kBf16Step - 1) / kBf16Step * kBf16Step; }
// Rows and tokens of one tile of a multi-token call: each row is widened to BF16 once per
// tile, each token's activations are rounded once per 128-row scale block and tile.
constexpr int kBf16TileRows = 4, kBf16TileTokens = 48;
// Per thread: a tile's activations, a group of rows' chunk widened, the tiles' partial sums (on
// panels: a chunk's activations and a span's sums).
constexpr size_t bf16_scratch_values(int in) { return size_t(kBf16TileTokens) * bf16_padded(in) + (size_t(1) << 19); }

struct Bf16Kernels {
  const char* name;
  // y[t · w.out + o] = Σ_i x[t · w.in + i] · W[o][i] for o in [begin, end), t < tokens, in the
  // numerics above. scratch: bf16_scratch_values(w.in) values. Each output is one chain of dot
  // products over i, whatever `tokens` and the row split are (batch invariance, bit for bit).
  // Runs FP8 views whose block and column phase are multiples of kBf16Step, BF16 weights, and
  // weights in panels (below).
  void (*rows)(const Rows& w, const float* x, int tokens, int begin, int end, float* y, uint16_t* scratch);
  // The same product with float32 activations kept to about 16 significant bits: each as the sum
  // of two BF16 values (hi, the value rounded; lo, what that left, rounded), both multiplied
  // with the weights; twice the arithmetic of `rows`, the same bytes read. For products whose
  // activations BF16 alone rounds too coarsely (kv_a, whose output the cache keeps; W_UV).
  // Weights in panels only. |y - exact| <= (2^-16 + float32 sums) · Σ|w·x|; batch invariant.
  void (*split_rows)(const Rows& w, const float* x, int tokens, int begin, int end, float* y, uint16_t* scratch);
  // The arithmetic probe: `iterations` rounds of independent BF16 dot products in registers,
  // kDotFlopsPerRound FLOP each; the result only defeats the optimizer.
  float (*dot_loop)(int64_t iterations);
  // pack_panels (below), in place; the AVX-512 one by 32-bit gathers (the portable one moves
  // 2 bytes at a time: 1.7-1.9 GB/s on both threads, minutes of load for R1).
  void (*pack)(const Rows& w, int begin, int end);
  // MLA's attention core (mla_core.h: scores, softmax, weighted latent sums of one token and a
  // block of heads) on BF16 cached rows: the queries and the softmax weights rounded to BF16,
  // BF16 dot products summed in float32, the softmax in float32 (DeepSeek's reference keeps its
  // latent cache and these products in BF16). Each output is one chain in order, whatever the
  // heads beside it and the batch. An odd cache_dim reads one value past each row (a finite
  // value: the allocation must extend that far).
  void (*mla_attend)(const MlaCoreShape& shape, const float* q, const uint16_t* const* rows, float* o);
};
constexpr int kDotChains = kFmaChainsPerRound;  // kernels.h: why 24
constexpr int64_t kDotFlopsPerRound = int64_t(kDotChains) * kBf16Step * 2;

// Weights packed for the fast kernels' outer products: rows in panels of kPanelWidth, panel p
// holding rows [16p, 16p + 16) as [in / 2][16][2], so that one vector (32 BF16 values, or 32 FP8
// codes widened) is a column pair of 16 rows, the pair each lane of a BF16 dot product takes.
// A token's activation pair is broadcast against it: 16 outputs a dot product, with no sums
// across lanes, and the panel's bytes read as one stream. Every output is one chain of dot
// products over the column pairs in order, whatever the number of tokens and the row split.
// Whole matrices only (no views), rows a multiple of 16, columns of 32; FP8 scale blocks that
// divide the kernels' column chunk (their activations are rounded a chunk and a block at a time).
constexpr int kPanelWidth = 16, kPanelChunkColumns = 512;
constexpr int64_t panel_index(int64_t row, int64_t col, int64_t in) {
  return row / kPanelWidth * kPanelWidth * in + col / 2 * (2 * kPanelWidth) + row % kPanelWidth * 2 + col % 2;
}
constexpr bool can_pack(const Rows& w) {
  const bool blocks = w.type == WeightType::fp8 && w.block % kBf16Step == 0 && kPanelChunkColumns % w.block == 0;
  return (w.type == WeightType::bf16 || blocks) && w.row0 == 0 && w.col0 == 0 && (w.stride == 0 || w.stride == w.in) &&
         w.out % kPanelWidth == 0 && w.in % kBf16Step == 0;
}
// Rearranges panels [begin, end) of w's bytes (a row-major matrix that can_pack takes) in place;
// once all are, w.panels = true describes them. Plain C++, any CPU: the reference for
// Bf16Kernels::pack.
void pack_panels(const Rows& w, int begin, int end);

// Whether the fast kernels take this weight (else the caller uses the exact ones).
constexpr bool bf16_can_run(const Rows& w) {
  return w.panels || w.type == WeightType::bf16 ||
         (w.type == WeightType::fp8 && w.block % kBf16Step == 0 && (w.col0 % w.block) % kBf16Step == 0);
}

// The portable reference (any CPU, scalar), or the AVX512-BF16 kernels (nullptr where this CPU
// or this build lacks them).
const Bf16Kernels* bf16_kernels_for(Isa isa);

}  // namespace r1::simd
