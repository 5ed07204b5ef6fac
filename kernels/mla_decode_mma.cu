// MLA decode attention on the tensor cores over the bfloat16 latent cache (the `fast` path; the
// exact float32 path is mla_decode.cu, the same maths).
//
// Why this shape: every head of a token reads the same cache rows, so the heads are the M rows
// of two matrix products per tile of positions: S = Q·Kᵀ (K = the 576-wide rows [c | k_pe]) and
// O += P·V (V = the first kv_lora_rank values of the same rows). One block takes one token ×
// 16·M heads × a range of positions (split-K across blocks, merged by mla_merge_splits).
// The pipeline is a compile-time configuration (Pipeline<M, tile, stages, blocks per SM>, one
// kernel body; kConfigs lists the instantiated ones, selectable at run time).
// Per tile:
//   1. cp.async brings the next stages − 1 tiles' rows (page-table addressed) while this one is
//      used; the first ones are requested before the queries are staged.
//   2. Scores: the 8 warps are 4 k-groups × 2 position halves. A warp's query fragments (its
//      k-steps, all the block's heads) were loaded into registers once, so the cache tile is
//      read from shared memory exactly once; the 4 k-groups add up in shared memory.
//   3. Softmax, float32, online in base 2: each head row is held by 256/(16·M) threads.
//      P is rounded to bf16 (its sum is taken over the rounded values, so the normalization
//      matches the weights actually used).
//   4. P·V: warp w owns the 16-column chunks w, w+8, ... of the latent for all the heads, with
//      its float32 accumulators in registers; V fragments come from the same tile (ldmatrix.trans).
// Fragment layouts are those of mma.sync.m16n8k16.row.col (PTX ISA, "Matrix Fragments for
// mma.m16n8k16"): lane = 4·g + q; A regs {row g, row g+8} × {cols 2q.., cols 2q+8..};
// B regs {k 2q.., k 2q+8..} at column g; C {c0,c1} row g cols 2q,2q+1, {c2,c3} row g+8.
#include <cuda_bf16.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>

#include "kernels/cuda_check.h"
#include "kernels/paged_cache.cuh"

namespace r1::cuda {

namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32;
constexpr int kMaxLatent = 512, kMaxWidth = 576;
// Shared rows are padded by 16 bytes: ldmatrix reads 8 rows × 16 bytes at once, and with the pad
// those rows start in 8 different groups of 4 banks (for every width that is a multiple of 16).
constexpr int kRowStride = kMaxWidth + 8;  // bf16 per shared row (cache or query)
constexpr int kKGroups = 4, kPositionGroups = kWarps / kKGroups;
constexpr int kMaxKSteps = kMaxWidth / 16 / kKGroups;  // k-steps per warp: 9 for 576
constexpr int kMaxChunks = kMaxLatent / 16 / kWarps;   // 16-column chunks of O per warp
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
constexpr int kMaxSplits = 64;
// A Hopper multiprocessor has 228 KB of shared memory, a block may opt into 227 KB, and each
// resident block costs 1 KB of it besides.
constexpr int kSmemPerSm = 228 * 1024, kSmemPerBlock = 227 * 1024, kSmemReserved = 1024;

// The compile-time pipeline of one kernel instantiation: 16·M heads per block, `Tile` cache
// positions per shared-memory tile, `Stages` tiles in shared memory (Stages − 1 in flight while
// one is used), and the blocks per multiprocessor it is built for (__launch_bounds__: 2 caps the
// registers at 128 per thread).
template <int M_, int Tile_, int Stages_, int BlocksPerSm_>
struct Pipeline {
  static constexpr int M = M_, kTile = Tile_, kStages = Stages_, kBlocksPerSm = BlocksPerSm_;
  static constexpr int kHeads = 16 * M;
  static constexpr int kWarpPositions = kTile / kPositionGroups;  // positions per warp in Q·Kᵀ
  static constexpr int kScoreStride = kTile + 8;                  // floats: float2 stores free of conflicts
  static constexpr int kProbStride = kTile + 8;                   // bf16: ldmatrix free of conflicts
  static_assert(M == 1 || M == 2, "register budget: query fragments 36·M, accumulators 32·M per thread");
  static_assert(kTile == 32 || kTile == 64);
  static_assert(kStages >= 2 && kStages <= 6);
  static_assert(kWarpPositions % 16 == 0, "a warp's positions are ldmatrix.x4 pairs of n8 tiles");
};

// Shared memory of one configuration; uint16_t holds bf16 bits (union members must be trivially
// constructible).
template <class P>
struct Shared {
  uint16_t rows[P::kStages][P::kTile][kRowStride];  // cache tiles [position][c | k_pe], a ring
  union {
    uint16_t query[P::kHeads][kRowStride];                      // staged once, then kept in registers
    float scores[kKGroups][P::kHeads][P::kScoreStride];         // each k-group's partial Q·Kᵀ
  };
  uint16_t probs[P::kHeads][P::kProbStride];  // P of the current tile
  float rescale[P::kHeads];                   // 2^(old max − new max) for the current tile
  float row_sum[P::kHeads];                   // softmax denominators, gathered for the output
};
template <class P>
constexpr bool fits_shared_memory() {
  return sizeof(Shared<P>) <= size_t(kSmemPerBlock) &&
         P::kBlocksPerSm * (sizeof(Shared<P>) + kSmemReserved) <= size_t(kSmemPerSm);
}

__device__ inline uint32_t shared_address(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

// Four 8×8 b16 matrices: lanes 8i..8i+7 address the rows of matrix i, register i receives it
// (lane l gets row l/4, columns 2(l%4), 2(l%4)+1; with .trans, rows 2(l%4), 2(l%4)+1 of column l/4).
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(p))
               : "memory");
}
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(p))
               : "memory");
}

// d += a·b for one m16n8k16 tile, bf16 inputs, float32 accumulators.
__device__ inline void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ inline void cp_async_16(void* shared, const void* global) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(shared_address(shared)), "l"(global) : "memory");
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most `Pending` of this thread's committed groups are still in flight.
template <int Pending>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
}

// Two floats as bf16 (round to nearest even), `lo` in the low half: the lower column/k index.
__device__ inline uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// The positions [first, last) of this block's split; splits are whole tiles so that only the
// sequence's last tile is partial. A split past the end gets no tiles.
struct Work {
  int sequence, first, last, tiles;
};
template <int kTile>
__device__ inline Work block_work(const int* positions, const int* sequences, int t, int split, int splits) {
  const int len = positions[t] + 1, tiles_per_split = ((len + kTile - 1) / kTile + splits - 1) / splits;
  const int first = min(len, split * tiles_per_split * kTile), last = min(len, first + tiles_per_split * kTile);
  return {sequences[t], first, last, (last - first + kTile - 1) / kTile};
}

// The block's queries [q_latent | q_pe] as bf16 rows; rows of heads past s.heads are zero. The
// reads are issued kBatch pairs per thread at a time before any is converted, so a block waits
// for about kHeads · width / (2 · kThreads · kBatch) round trips to memory rather than one per pair.
template <class P>
__device__ void stage_query(Shared<P>& sm, const MlaShape& s, const float* q_latent, const float* q, int t,
                            int head0) {
  constexpr int kBatch = 6;
  const int latent = s.kv_lora_rank, pairs = (latent + s.qk_rope) / 2, total = P::kHeads * pairs;
  for (int base = threadIdx.x; base < total; base += kThreads * kBatch) {
    float lo[kBatch], hi[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = base + u * kThreads, r = i / pairs, c = 2 * (i % pairs), head = head0 + r;
      lo[u] = 0, hi[u] = 0;
      if (i < total && head < s.heads) {  // latent is even, so a pair never straddles q_latent and q_pe
        const int64_t index = int64_t(t) * s.heads + head;
        const float* src = c < latent ? q_latent + index * latent + c
                                      : q + index * (s.qk_nope + s.qk_rope) + s.qk_nope + (c - latent);
        lo[u] = src[0];
        hi[u] = src[1];
      }
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = base + u * kThreads;
      if (i < total) *reinterpret_cast<uint32_t*>(&sm.query[i / pairs][2 * (i % pairs)]) = pack_bf16x2(lo[u], hi[u]);
    }
  }
}

// Cache rows of positions [start, start + kTile) into `dst`, 16 bytes per cp.async, 8 threads per
// row (a warp reads 4 rows' consecutive 128-byte pieces). Rows at or past `last` are zeroed
// instead of read: their probability is 0, but 0 × a stale NaN would still poison P·V.
template <int kTile>
__device__ void load_tile(uint16_t (*dst)[kRowStride], const PagedCacheBf16& cache, int sequence, int start,
                          int last, int width) {
  constexpr int kRowThreads = 8, kRowsPerPass = kThreads / kRowThreads;
  static_assert(kTile % kRowsPerPass == 0);
  const int chunks = width / 8, sub = threadIdx.x % kRowThreads;
#pragma unroll
  for (int pass = 0; pass < kTile / kRowsPerPass; ++pass) {
    const int row = pass * kRowsPerPass + threadIdx.x / kRowThreads, position = start + row;
    if (position < last) {
      const __nv_bfloat16* src = paged_cache_row(cache, sequence, position, width);
      for (int c = sub; c < chunks; c += kRowThreads) cp_async_16(&dst[row][c * 8], src + c * 8);
    } else {
      for (int c = sub; c < chunks; c += kRowThreads) *reinterpret_cast<uint4*>(&dst[row][c * 8]) = make_uint4(0, 0, 0, 0);
    }
  }
}

// A-fragments of this warp's k-steps (k-group kg owns k-steps kg, kg + 4, ...) for every head.
// A row-major 16×16 tile: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15),
// (rows 8-15, k 8-15) are registers a0..a3, so lane l addresses row l%16, column 8·(l/16).
template <class P>
__device__ void load_query_fragments(uint32_t (&query)[P::M][kMaxKSteps][4], const Shared<P>& sm, int ksteps) {
  const int lane = threadIdx.x % 32, kgroup = threadIdx.x / 32 % kKGroups;
#pragma unroll
  for (int m = 0; m < P::M; ++m)
#pragma unroll
    for (int i = 0; i < kMaxKSteps; ++i) {
      const int ks = kgroup + kKGroups * i;
      if (ks < ksteps) ldmatrix_x4(query[m][i], &sm.query[m * 16 + lane % 16][ks * 16 + lane / 16 * 8]);
    }
}

// This warp's share of S = Q·Kᵀ: its k-steps, its kWarpPositions positions, all heads, into
// scores[kgroup]. B = Kᵀ is "col" (each position's k values contiguous = a cache row), so plain
// ldmatrix of (positions n..n+7, k 0-7) and (n..n+7, k 8-15) gives b0, b1; x4 covers positions
// n..n+15: lane l addresses position l%8 + 8·(l/16), column 8·((l/8)%2).
template <class P>
__device__ void score_partials(const uint32_t (&query)[P::M][kMaxKSteps][4], const uint16_t (*rows)[kRowStride],
                               Shared<P>& sm, int ksteps) {
  constexpr int M = P::M, kTiles = P::kWarpPositions / 8;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int kgroup = warp % kKGroups, n_base = warp / kKGroups * P::kWarpPositions;
  float acc[M][kTiles][4] = {};
#pragma unroll
  for (int i = 0; i < kMaxKSteps; ++i) {
    const int ks = kgroup + kKGroups * i;
    if (ks >= ksteps) continue;
#pragma unroll
    for (int pair = 0; pair < kTiles / 2; ++pair) {
      uint32_t k[4];
      ldmatrix_x4(k, &rows[n_base + pair * 16 + lane % 8 + lane / 16 * 8][ks * 16 + lane / 8 % 2 * 8]);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        mma_bf16(acc[m][2 * pair], query[m][i], k[0], k[1]);
        mma_bf16(acc[m][2 * pair + 1], query[m][i], k[2], k[3]);
      }
    }
  }
  const int g = lane / 4, q = lane % 4;
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int n = 0; n < kTiles; ++n) {
      const int col = n_base + n * 8 + 2 * q;
      *reinterpret_cast<float2*>(&sm.scores[kgroup][m * 16 + g][col]) = make_float2(acc[m][n][0], acc[m][n][1]);
      *reinterpret_cast<float2*>(&sm.scores[kgroup][m * 16 + g + 8][col]) = make_float2(acc[m][n][2], acc[m][n][3]);
    }
}

// Online softmax over the tile for one head row per group of kRowThreads threads (base 2, the
// scale prescaled by log2 e): P into shared memory as bf16, the rescale of older accumulators
// into sm.rescale. A thread takes runs of kRun (4, or 2 when a row's threads have only 2 columns
// each) columns kRowThreads·kRun apart, so that a row's threads read consecutive vectors.
// Positions at or past `last` score -inf; every tile holds at least one position before `last`,
// so the new maximum is finite.
template <class P>
__device__ void softmax_update(Shared<P>& sm, int start, int last, float scale_log2, float& run_max,
                               float& run_sum) {
  constexpr int kRowThreads = kThreads / P::kHeads, kPer = P::kTile / kRowThreads;
  constexpr int kRun = kPer >= 4 ? 4 : kPer;
  static_assert(kPer % kRun == 0 && kRun % 2 == 0 && kRowThreads <= 32);
  const int r = threadIdx.x / kRowThreads, sub = threadIdx.x % kRowThreads;
  auto column = [&](int j) { return j / kRun * (kRowThreads * kRun) + sub * kRun + j % kRun; };
  float score[kPer];
#pragma unroll
  for (int j = 0; j < kPer; j += kRun) {
    float sum[kRun];
#pragma unroll
    for (int kg = 0; kg < kKGroups; ++kg) {
      float v[kRun];
      if constexpr (kRun == 4) {
        const float4 x = *reinterpret_cast<const float4*>(&sm.scores[kg][r][column(j)]);
        v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
      } else {
        const float2 x = *reinterpret_cast<const float2*>(&sm.scores[kg][r][column(j)]);
        v[0] = x.x, v[1] = x.y;
      }
#pragma unroll
      for (int e = 0; e < kRun; ++e) sum[e] = kg == 0 ? v[e] : sum[e] + v[e];
    }
#pragma unroll
    for (int e = 0; e < kRun; ++e) score[j + e] = sum[e];
  }
  float tile_max = -INFINITY;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    score[j] = start + column(j) < last ? score[j] * scale_log2 : -INFINITY;
    tile_max = fmaxf(tile_max, score[j]);
  }
  for (int offset = kRowThreads / 2; offset > 0; offset /= 2)
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, offset));
  const float new_max = fmaxf(run_max, tile_max);
  const float rescale = exp2f(run_max - new_max);  // 0 on the first tile (run_max = -inf)
  float tile_sum = 0;
#pragma unroll
  for (int j = 0; j < kPer; j += 2) {  // columns j and j + 1 are adjacent (kRun is even)
    const __nv_bfloat16 a = __float2bfloat16_rn(exp2f(score[j] - new_max));
    const __nv_bfloat16 b = __float2bfloat16_rn(exp2f(score[j + 1] - new_max));
    tile_sum += __bfloat162float(a) + __bfloat162float(b);
    *reinterpret_cast<uint32_t*>(&sm.probs[r][column(j)]) =
        uint32_t(__bfloat16_as_ushort(a)) | uint32_t(__bfloat16_as_ushort(b)) << 16;
  }
  for (int offset = kRowThreads / 2; offset > 0; offset /= 2)
    tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, offset);
  run_sum = run_sum * rescale + tile_sum;
  run_max = new_max;
  if (sub == 0) sm.rescale[r] = rescale;
}

// O = O·rescale + P·V for this warp's column chunks. A = P (row-major [head][position]) loads
// like the queries; B = V is row-major [position][column], so ldmatrix.trans of (positions
// k..k+7, columns n..n+7) gives b0 and (k+8..k+15, n..n+7) gives b1; x4 also covers columns
// n+8..n+15: lane l addresses position l%8 + 8·((l/8)%2), column 8·(l/16).
template <class P>
__device__ void accumulate_values(float (&out)[P::M][kMaxChunks][2][4], const Shared<P>& sm,
                                  const uint16_t (*rows)[kRowStride], int latent) {
  constexpr int M = P::M;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float top = sm.rescale[m * 16 + g], bottom = sm.rescale[m * 16 + g + 8];
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c)
#pragma unroll
      for (int n = 0; n < 2; ++n) {
        out[m][c][n][0] *= top, out[m][c][n][1] *= top;
        out[m][c][n][2] *= bottom, out[m][c][n][3] *= bottom;
      }
  }
#pragma unroll
  for (int k = 0; k < P::kTile / 16; ++k) {
    uint32_t probs[M][4];
#pragma unroll
    for (int m = 0; m < M; ++m) ldmatrix_x4(probs[m], &sm.probs[m * 16 + lane % 16][k * 16 + lane / 16 * 8]);
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c) {
      const int chunk = warp + kWarps * c;
      if (chunk * 16 >= latent) continue;
      uint32_t v[4];
      ldmatrix_x4_trans(v, &rows[k * 16 + lane % 8 + lane / 8 % 2 * 8][chunk * 16 + lane / 16 * 8]);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        mma_bf16(out[m][c][0], probs[m], v[0], v[1]);
        mma_bf16(out[m][c][1], probs[m], v[2], v[3]);
      }
    }
  }
}

// The block's result: normalized into o_latent with one split, else [max, sum, acc] partials
// (max back in natural-log units) for mla_merge_splits. Heads past s.heads are dropped.
template <class P>
__device__ void write_output(const float (&out)[P::M][kMaxChunks][2][4], Shared<P>& sm, const MlaShape& s, int t,
                             int head0, int split, int splits, float run_max, float run_sum, float* partial,
                             float* o_latent) {
  constexpr int kRowThreads = kThreads / P::kHeads;
  const int latent = s.kv_lora_rank;
  auto destination = [&](int head) {
    const int64_t index = int64_t(t) * s.heads + head;
    return splits == 1 ? o_latent + index * latent : partial + (index * splits + split) * (latent + 2);
  };
  if (threadIdx.x % kRowThreads == 0) {
    const int r = threadIdx.x / kRowThreads;
    sm.row_sum[r] = run_sum;
    if (splits > 1 && head0 + r < s.heads) {
      float* dst = destination(head0 + r);
      dst[0] = run_max * kLn2;  // -inf for a split with no positions
      dst[1] = run_sum;
    }
  }
  __syncthreads();
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, q = lane % 4;
#pragma unroll
  for (int m = 0; m < P::M; ++m)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = m * 16 + g + 8 * half;
      if (head0 + r >= s.heads) continue;
      float* dst = destination(head0 + r) + (splits == 1 ? 0 : 2);
      const float factor = splits == 1 ? 1.0f / sm.row_sum[r] : 1.0f;
#pragma unroll
      for (int c = 0; c < kMaxChunks; ++c) {
        const int chunk = warp + kWarps * c;
        if (chunk * 16 >= latent) continue;
#pragma unroll
        for (int n = 0; n < 2; ++n)
          *reinterpret_cast<float2*>(dst + chunk * 16 + n * 8 + 2 * q) =
              make_float2(out[m][c][n][2 * half] * factor, out[m][c][n][2 * half + 1] * factor);
      }
    }
}

// grid (head tiles, tokens, splits): a token's head tiles are neighbours, so they run together
// and share its cache rows in L2.
template <class P>
__global__ void __launch_bounds__(kThreads, P::kBlocksPerSm)
    mla_decode_mma_kernel(MlaShape s, const float* q_latent, const float* q, const int* positions,
                          const int* sequences, PagedCacheBf16 cache, float scale_log2, float* partial,
                          float* o_latent) {
  constexpr int M = P::M, kTile = P::kTile, kStages = P::kStages;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  Shared<P>& sm = *reinterpret_cast<Shared<P>*>(shared_bytes);
  const int head0 = blockIdx.x * P::kHeads, t = blockIdx.y, split = blockIdx.z, splits = gridDim.z;
  const int width = s.kv_lora_rank + s.qk_rope, ksteps = width / 16;
  const Work work = block_work<kTile>(positions, sequences, t, split, splits);

  // Prologue: the first kStages − 1 tiles are requested before the queries are staged, so the
  // cache reads overlap the query loads. One commit group per tile, empty ones included, so that
  // "tile i has landed" is always "at most kStages − 2 groups pending" at iteration i.
#pragma unroll
  for (int stage = 0; stage < kStages - 1; ++stage) {
    if (stage < work.tiles)
      load_tile<kTile>(sm.rows[stage], cache, work.sequence, work.first + stage * kTile, work.last, width);
    cp_async_commit();
  }
  stage_query(sm, s, q_latent, q, t, head0);
  __syncthreads();
  uint32_t query[M][kMaxKSteps][4] = {};
  load_query_fragments(query, sm, ksteps);

  float out[M][kMaxChunks][2][4] = {};
  float run_max = -INFINITY, run_sum = 0;  // of the head row this thread helps with in softmax_update
  for (int i = 0; i < work.tiles; ++i) {
    cp_async_wait<kStages - 2>();
    // Tile i has landed for every thread; every warp is done with tile i-1 (its buffer is
    // refilled next), with P, and with the staged queries (scores overlay them).
    __syncthreads();
    const int start = work.first + i * kTile;
    if (i + kStages - 1 < work.tiles)
      load_tile<kTile>(sm.rows[(i + kStages - 1) % kStages], cache, work.sequence, start + (kStages - 1) * kTile,
                       work.last, width);
    cp_async_commit();
    const uint16_t(*rows)[kRowStride] = sm.rows[i % kStages];
    score_partials(query, rows, sm, ksteps);
    __syncthreads();
    softmax_update(sm, start, work.last, scale_log2, run_max, run_sum);
    __syncthreads();
    accumulate_values(out, sm, rows, s.kv_lora_rank);
  }
  write_output(out, sm, s, t, head0, split, splits, run_max, run_sum, partial, o_latent);
}

// Blocks of this configuration that fit a multiprocessor of the current device (after the opt-in).
template <class P>
int occupancy() {
  int blocks = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, mla_decode_mma_kernel<P>, kThreads,
                                                           sizeof(Shared<P>)));
  return blocks;
}

template <class P>
void launch(const MlaShape& s, const float* q_latent, const float* q, const int* positions, const int* sequences,
            PagedCacheBf16 cache, float scale_log2, int tokens, int splits, float* workspace, float* o_latent,
            cudaStream_t stream) {
  static constexpr int bytes = int(sizeof(Shared<P>));
  // Above 48 KB of dynamic shared memory a kernel must opt in, once per process.
  static const bool opted_in = [] {
    int device = 0, limit = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    if (limit < bytes)
      fail("mla_attention_bf16: needs {} bytes of shared memory per block, the device allows {}", bytes, limit);
    CUDA_CHECK(cudaFuncSetAttribute(mla_decode_mma_kernel<P>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    // All of L1 as shared memory, so that kBlocksPerSm blocks fit (the carveout is otherwise a hint
    // the driver may size for fewer).
    CUDA_CHECK(cudaFuncSetAttribute(mla_decode_mma_kernel<P>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                    int(cudaSharedmemCarveoutMaxShared)));
    return true;
  }();
  (void)opted_in;
  const dim3 grid((s.heads + P::kHeads - 1) / P::kHeads, tokens, splits);
  mla_decode_mma_kernel<P><<<grid, kThreads, bytes, stream>>>(s, q_latent, q, positions, sequences, cache,
                                                               scale_log2, workspace, o_latent);
  CUDA_CHECK_LAUNCH();
}

// The instantiated configurations, in the order of their indices (mla_attention_bf16_config_*).
// 64 heads per block does not fit this design's registers: query fragments (36 per 16 heads)
// and accumulators (32 per 16 heads) are held for the whole block.
using Launcher = void (*)(const MlaShape&, const float*, const float*, const int*, const int*, PagedCacheBf16, float,
                          int, int, float*, float*, cudaStream_t);
struct ConfigEntry {
  MlaBf16Config config;
  Launcher launcher;
  int (*occupancy)();
};
template <int M, int Tile, int Stages, int BlocksPerSm>
constexpr ConfigEntry entry() {
  using P = Pipeline<M, Tile, Stages, BlocksPerSm>;
  static_assert(fits_shared_memory<P>(), "shared memory over the Hopper budget");
  return {{P::kHeads, Tile, Stages, BlocksPerSm, int(sizeof(Shared<P>))}, &launch<P>, &occupancy<P>};
}
constexpr ConfigEntry kConfigs[] = {
    entry<1, 64, 2, 1>(),  // 0: the original 16-head pipeline
    entry<2, 64, 2, 1>(),  // 1: the original 32-head pipeline
    entry<1, 32, 2, 2>(),  // 2: 16 heads, two blocks per multiprocessor (128 registers)
    entry<1, 32, 3, 1>(),  // 3
    entry<1, 32, 4, 1>(),  // 4
    entry<1, 32, 5, 1>(),  // 5
    entry<2, 32, 2, 1>(),  // 6
    entry<2, 32, 3, 1>(),  // 7
    entry<2, 32, 4, 1>(),  // 8
};
constexpr int kConfigCount = int(sizeof(kConfigs) / sizeof(kConfigs[0]));

// The configuration used when the caller names none: R1_MLA_BF16_CONFIG=<index> (read once) for
// sweeps, else per shape. Until a sweep says otherwise, the original pipelines: 16 heads per
// block up to 16 heads, else 32.
// From the H100 sweep of 2026-11-23 (bench_kernels mla_decode_bf16, docs/PERFORMANCE.md): the
// first two configurations won every point; 16-head blocks also win with many heads when there
// are few tokens (128 heads, batch 1, 4K: 41 vs 51 µs), since their splits fill the GPU.
int automatic_config(int tokens, int heads) {
  static const int forced = [] {
    const char* env = std::getenv("R1_MLA_BF16_CONFIG");
    if (env == nullptr || *env == '\0') return -1;
    char* end = nullptr;
    const long index = std::strtol(env, &end, 10);
    if (*end != '\0' || index < 0 || index >= kConfigCount)
      fail("R1_MLA_BF16_CONFIG={}: not a configuration index (0 to {})", env, kConfigCount - 1);
    return int(index);
  }();
  if (forced >= 0) return forced;
  return heads > 16 && tokens >= 8 ? 1 : 0;
}

int resolve_config(int config, int tokens, int heads) {
  if (config < 0) return automatic_config(tokens, heads);
  if (config >= kConfigCount) fail("mla_attention_bf16: configuration {} (there are {})", config, kConfigCount);
  return config;
}

}  // namespace

int mla_attention_bf16_config_count() { return kConfigCount; }

MlaBf16Config mla_attention_bf16_config(int config) {
  if (config < 0 || config >= kConfigCount)
    fail("mla_attention_bf16_config: configuration {} (there are {})", config, kConfigCount);
  return kConfigs[config].config;
}

int mla_attention_bf16_default_config(int tokens, int heads) { return automatic_config(tokens, heads); }

int mla_attention_bf16_occupancy(int config) {
  mla_attention_bf16_config(config);  // range check
  return kConfigs[config].occupancy();
}

bool mla_attention_bf16_supports(const MlaShape& s) {
  return s.heads > 0 && s.kv_lora_rank > 0 && s.qk_rope >= 0 && s.kv_lora_rank % 16 == 0 && s.qk_rope % 16 == 0 &&
         s.kv_lora_rank <= kMaxLatent && s.kv_lora_rank + s.qk_rope <= kMaxWidth;
}

// `blocks_per_sm` blocks run on a multiprocessor at a time, so the time is about (waves of
// blocks) × (tiles per split + a fixed cost per block: its prologue and its share of the merge,
// counted as kOverheadPositions cache positions).
int mla_attention_bf16_splits(int tokens, int heads, int max_len, int multiprocessors, int config) {
  constexpr int64_t kOverheadPositions = 64;
  const MlaBf16Config c = kConfigs[resolve_config(config, tokens, heads)].config;
  const int64_t blocks = int64_t(std::max(1, tokens)) * ((heads + c.heads_per_block - 1) / c.heads_per_block);
  const int tiles = std::max(1, (max_len + c.tile - 1) / c.tile);
  const int64_t slots = int64_t(std::max(1, multiprocessors)) * c.blocks_per_sm;
  int best = 1;
  int64_t best_cost = INT64_MAX;
  for (int splits = 1; splits <= std::min(tiles, kMaxSplits); ++splits) {
    const int64_t waves = (blocks * splits + slots - 1) / slots;
    const int64_t cost = waves * (int64_t((tiles + splits - 1) / splits) * c.tile + kOverheadPositions);
    if (cost < best_cost) best = splits, best_cost = cost;
  }
  return best;
}

void mla_attention_bf16(const MlaShape& s, const float* q_latent, const float* q, const int* positions,
                        const int* sequences, PagedCacheBf16 cache, float softmax_scale, int tokens, int splits,
                        float* workspace, float* o_latent, cudaStream_t stream, int config) {
  if (!mla_attention_bf16_supports(s))
    fail("mla_attention_bf16: kv_lora_rank {} + qk_rope {} not supported (needs multiples of 16, kv_lora_rank <= {}, "
         "sum <= {}); use mla_attention",
         s.kv_lora_rank, s.qk_rope, kMaxLatent, kMaxWidth);
  if (reinterpret_cast<uintptr_t>(cache.layer) % 16 != 0)
    fail("mla_attention_bf16: the cache must be 16-byte aligned (rows are copied in 16-byte pieces)");
  if (tokens > 65535) fail("mla_attention_bf16: {} tokens in one call (at most 65535)", tokens);
  const int index = resolve_config(config, tokens, s.heads);
  if (tokens == 0) return;
  splits = std::max(1, splits);
  if (splits > 65535) fail("mla_attention_bf16: {} splits (at most 65535)", splits);
  if (splits > 1 && workspace == nullptr) fail("mla_attention_bf16: {} splits need a workspace", splits);
  const float scale_log2 = softmax_scale * kLog2e;
  kConfigs[index].launcher(s, q_latent, q, positions, sequences, cache, scale_log2, tokens, splits, workspace,
                           o_latent, stream);
  if (splits > 1) mla_merge_splits(s, tokens, splits, workspace, o_latent, stream);
}

}  // namespace r1::cuda
