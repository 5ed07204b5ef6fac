// Host-side entry points of the CUDA kernels (one op per kernels/*.cu file). All pointers are
// device pointers; activations are float32 row-major [tokens, dim].
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "r1/host_device.h"
#include "r1/rope.h"
#include "r1/routing.h"

namespace r1::cuda {

enum class WeightType : int { f32, f16, bf16, e4m3 };

// A [out, in] weight as stored in the checkpoint; e4m3 carries its block scales:
// W[o][i] = e4m3(q[o][i]) * scale_inv[o / block][i / block].
struct WeightView {
  const void* data = nullptr;
  const float* scale_inv = nullptr;
  WeightType type = WeightType::f32;
  int out = 0, in = 0, block = 128;
};

// linear.cu — y = x · Wᵀ for `groups` weights of one type and shape (`prototype` gives them on
// the host; `weights` holds each group's view in device memory). Group g owns rows
// [row_offsets[g], row_offsets[g+1]) of x and y; row_offsets == nullptr means one group of
// `rows` rows. `rows` bounds every group's row count: up to kGemvMaxRows rows a weight-streaming
// kernel reads each weight byte once, above it a tiled kernel runs. Empty groups exit at once.
constexpr int kGemvMaxRows = 32;
void grouped_linear(const WeightView* weights, const WeightView& prototype, const int* row_offsets, int groups,
                    int rows, const float* x, float* y, cudaStream_t stream);
// Which kernel grouped_linear picks (exposed for tests): true = weight-streaming GEMV.
bool linear_uses_gemv(const WeightView& prototype, int rows);

// quantize_fp8.cu — activations for the FP8 GEMM (DeepSeek's `fast` numerics, src/cuda/fp8_gemm.h):
// each row's 128-column block b (the last one may be partial) becomes e4m3 codes
// q = e4m3(x / s) with s = amax(|x| over the block) / 448, and s = 1 where that is 0.
// The output is laid out as cuBLASLt's block-scaled GEMM reads it, and cuBLASLt wants the row
// count of every GEMM to be a multiple of kFp8RowAlign, so each group's rows are padded:
//   padded_offsets[g] = Σ_{i<g} fp8_padded_count(n_i), [groups + 1] ints, written by this call;
//   x_q [padded rows][in]: row j of group g at padded_offsets[g] + j; pad rows are zero codes;
//   scales: group g's block starts at scales + padded_offsets[g] * L (L = ceil(in / 128)) and is
//     [L][fp8_padded_count(n_g)], the token index fastest (cuBLASLt's "N-major" VEC128 layout);
//     pad rows get scale 1 (they are rows of zeros).
// row_offsets (device, [groups + 1]) give group g the rows [row_offsets[g], row_offsets[g+1]) of x,
// as grouped_linear takes them, and `rows` is their total; nullptr means one group of `rows` rows.
// Size x_q and scales for fp8_padded_rows_bound(rows, groups) rows.
constexpr int kFp8RowAlign = 4;
R1_HD int fp8_padded_count(int n) { return (n + kFp8RowAlign - 1) / kFp8RowAlign * kFp8RowAlign; }
inline int fp8_padded_rows_bound(int rows, int groups) { return rows + (kFp8RowAlign - 1) * groups; }
void quantize_fp8(const float* x, int rows, int in, const int* row_offsets, int groups, int* padded_offsets,
                  uint8_t* x_q, float* scales, cudaStream_t stream);

// elementwise.cu
void add_inplace(float* h, const float* delta, int64_t n, cudaStream_t stream);          // h += delta
void silu_mul(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream);
void to_bf16(const float* x, __nv_bfloat16* y, int64_t n, cudaStream_t stream);  // round to nearest even
// out[t] = table[tokens[t]] decoded to float32; table [vocab, dim] of `type` (not e4m3).
void embed_rows(const void* table, WeightType type, const int* tokens, int n, int dim, float* out,
                cudaStream_t stream);

// argmax.cu — out[r] = the index of the largest logits[r][i] (the lowest among equal maxima), or
// kArgmaxNan if the row holds a NaN, kArgmaxAllNegativeInfinity if every value is -inf.
constexpr int kArgmaxNan = -1, kArgmaxAllNegativeInfinity = -2;
void argmax_rows(const float* logits, int rows, int vocab, int* out, cudaStream_t stream);

// rmsnorm.cu — out[r] = x[r] · rsqrt(mean(x[r]²) + eps) · weight, rows of `dim`, with a row
// stride so that a slice of a wider row can be normed.
void rmsnorm(const float* x, int x_stride, const float* weight, int rows, int dim, float eps,
             float* out, int out_stride, cudaStream_t stream);
// The residual add fused in: h += delta (both [rows, dim]), then out = rmsnorm(h) · weight.
void add_rmsnorm(float* h, const float* delta, const float* weight, int rows, int dim, float eps, float* out,
                 cudaStream_t stream);

// rope.cu — rotates the rope part of every head of every token in place: x[t][h] at
// x + t*token_stride + h*head_stride + offset, rope_dim values, at positions[t].
void rope_inplace(float* x, int tokens, int heads, int token_stride, int head_stride, int offset,
                  const int* positions, const float* frequencies, int rope_dim, float magnitude,
                  cudaStream_t stream);

// One layer of the paged latent cache: `layer` holds [pages][page_size][kv_lora + rope] values of
// type T; position p of sequence s is row p % page_size of page page_table[s * max_pages + p /
// page_size] (see kernels/paged_cache.cuh). The exact path keeps float32 rows, the `fast` path
// the same rows in bfloat16 (half the bytes, and what the tensor cores read).
template <typename T>
struct PagedCacheOf {
  T* layer = nullptr;
  const int* page_table = nullptr;  // [sequences][max_pages]
  int max_pages = 0, page_size = 0;
};
using PagedCache = PagedCacheOf<float>;
using PagedCacheBf16 = PagedCacheOf<__nv_bfloat16>;

// mla_cache.cu — appends each token's latent to its sequence's cache:
// row(seq, pos) = [rmsnorm(c)·norm_weight | rope(k_pe)], from kv [tokens, kv_lora + rope].
// The bfloat16 cache gets the same float32 values, each rounded to nearest-even once when stored.
void mla_cache_append(const float* kv, int tokens, int kv_lora_rank, int rope_dim,
                      const float* norm_weight, float eps, const float* frequencies, float magnitude,
                      const int* positions, const int* sequences, PagedCache cache, cudaStream_t stream);
void mla_cache_append(const float* kv, int tokens, int kv_lora_rank, int rope_dim,
                      const float* norm_weight, float eps, const float* frequencies, float magnitude,
                      const int* positions, const int* sequences, PagedCacheBf16 cache, cudaStream_t stream);

// mla_absorb.cu — per head, q_latent[t][h] = W_UK[h]ᵀ · q_nope[t][h] (into the latent space), and
// out[t][h] = W_UV[h] · o_latent[t][h]; W_UK/W_UV are the row blocks of kv_b.
struct MlaShape {
  int heads, qk_nope, qk_rope, v_dim, kv_lora_rank;
};
void mla_absorb_q(const WeightView& kv_b, const MlaShape& s, const float* q, int tokens,
                  float* q_latent, cudaStream_t stream);
void mla_v_out(const WeightView& kv_b, const MlaShape& s, const float* o_latent, int tokens,
               float* out, cudaStream_t stream);

// mla_decode.cu — attention of each (token, head) over its sequence's cached positions
// [0, positions[t]]: softmax((q_latent·c + q_pe·k_pe)·scale) weighted sum of c. The context is
// cut into `splits` ranges processed in parallel (mla_attention_splits picks how many from the
// batch shape; splits > 1 needs mla_attention_workspace floats of workspace).
int mla_attention_splits(int tokens, int heads, int max_len, int multiprocessors);
size_t mla_attention_workspace(const MlaShape& s, int tokens, int splits);
void mla_attention(const MlaShape& s, const float* q_latent, const float* q, const int* positions,
                   const int* sequences, PagedCache cache, float softmax_scale, int tokens, int splits,
                   float* workspace, float* o_latent, cudaStream_t stream);
// Merges the splits' partial results, [tokens][heads][splits][max, sum, acc[kv_lora_rank]] (max
// of the scaled scores in natural-log units, acc not yet divided by sum; a split that saw no
// position has max -inf), into o_latent. Both decode paths end with it.
void mla_merge_splits(const MlaShape& s, int tokens, int splits, const float* partial, float* o_latent,
                      cudaStream_t stream);

// mla_decode_mma.cu — the `fast` decode path: the same attention as mla_attention over the
// bfloat16 cache, on the tensor cores (mma.sync m16n8k16 bf16, float32 accumulation; sm_80+).
// A token's heads are the rows of the matrix products (they all read the same latent rows), so
// one block takes a token × a tile of 16 or 32 heads × a range of positions, streams 32- or
// 64-position tiles of cache rows through shared memory, and computes scores (q·[c | k_pe]) then P·c.
// Queries are rounded to bfloat16, the softmax is float32 (online), the probabilities are rounded
// to bfloat16 for P·c. Needs kv_lora_rank and qk_rope multiples of 16, kv_lora_rank <= 512 and
// kv_lora_rank + qk_rope <= 576 (every DeepSeek release: 512 + 64), and a 16-byte-aligned cache;
// mla_attention_bf16_supports says whether a shape qualifies (the launcher fails otherwise).
// Splits > 1 need mla_attention_workspace floats of workspace (the same layout as above).
//
// The kernel is instantiated for a few pipelines (configurations, numbered 0 to
// mla_attention_bf16_config_count() − 1): heads per block, cache positions per shared-memory
// tile, tiles held in shared memory, blocks per multiprocessor. `config` −1 picks one per shape
// (mla_attention_bf16_default_config; the environment variable R1_MLA_BF16_CONFIG=<index>
// overrides that choice process-wide, for sweeps); an index forces one. Every configuration
// computes the same result; splits are a count of position ranges whatever the configuration,
// and mla_attention_bf16_splits sizes them for the configuration named (or picked).
struct MlaBf16Config {
  int heads_per_block, tile, stages, blocks_per_sm, shared_bytes;  // shared_bytes: per block
};
int mla_attention_bf16_config_count();
MlaBf16Config mla_attention_bf16_config(int config);
int mla_attention_bf16_default_config(int tokens, int heads);
// Blocks of a configuration resident per multiprocessor on the current device, as the CUDA
// occupancy calculator sees it after a launch has raised its shared-memory limit (0 before).
int mla_attention_bf16_occupancy(int config);
bool mla_attention_bf16_supports(const MlaShape& s);
int mla_attention_bf16_splits(int tokens, int heads, int max_len, int multiprocessors, int config = -1);
void mla_attention_bf16(const MlaShape& s, const float* q_latent, const float* q, const int* positions,
                        const int* sequences, PagedCacheBf16 cache, float softmax_scale, int tokens, int splits,
                        float* workspace, float* o_latent, cudaStream_t stream, int config = -1);

// moe_routing.cu — expert choice per token (rules of r1/routing.h), then the permutation that
// groups token copies by expert, and the weighted combine back.
struct MoeRouting {
  int* expert_ids;       // [tokens, top_k]
  float* expert_weights; // [tokens, top_k]
  int* expert_offsets;   // [experts + 1] start of each expert's rows in the permuted order
  int* copy_rows;        // [tokens * top_k] permuted row of each (token, k) copy
  int* expert_counts;    // [experts] scratch
};
void moe_route(const RoutingParams& p, const float* gate_logits, const float* bias, int tokens,
               const MoeRouting& r, cudaStream_t stream);
// permuted[copy_rows[t*k]] = x[t]
void moe_gather(const float* x, int tokens, int top_k, int dim, const MoeRouting& r, float* permuted,
                cudaStream_t stream);
// out[t] (+)= Σ_k w[t][k] · expert_out[copy_rows[t][k]]
void moe_combine(const float* expert_out, int tokens, int top_k, int dim, const MoeRouting& r,
                 bool accumulate, float* out, cudaStream_t stream);

}  // namespace r1::cuda
