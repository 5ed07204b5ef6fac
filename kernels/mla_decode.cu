// MLA attention in the absorbed form over the latent cache, one block per (token, head, split):
// split-K over the context so that short batches still fill the GPU. Each warp walks a strided
// subset of its split's positions with an online softmax; warps merge in shared memory, splits
// in a second kernel. Float32 throughout.
#include <algorithm>

#include "kernels/cuda_check.h"
#include "kernels/paged_cache.cuh"
#include "kernels/weight_decode.cuh"

namespace r1::cuda {

namespace {

constexpr int kWarps = 4, kThreads = kWarps * 32;
constexpr int kMaxLatentPerLane = 16;  // kv_lora_rank <= 512 (R1 and every release)

__global__ void __launch_bounds__(kThreads)
mla_attention_kernel(MlaShape s, const float* q_latent, const float* q, const int* positions,
                     const int* sequences, PagedCache cache, float scale, float* partial,
                     float* o_latent) {
  // Heads vary fastest so that a token's heads run together and share its cache rows in L2.
  const int h = blockIdx.x, t = blockIdx.y, split = blockIdx.z, splits = gridDim.z;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int latent = s.kv_lora_rank, width = latent + s.qk_rope;
  extern __shared__ float shared[];
  float* query = shared;                 // [latent | rope]: q_latent then q_pe
  float* warp_acc = shared + width;      // [kWarps][latent]
  __shared__ float warp_max_score[kWarps], warp_sum_exp[kWarps];

  const float* ql = q_latent + (int64_t(t) * s.heads + h) * latent;
  const float* q_pe = q + (int64_t(t) * s.heads + h) * (s.qk_nope + s.qk_rope) + s.qk_nope;
  for (int i = threadIdx.x; i < latent; i += kThreads) query[i] = ql[i];
  for (int i = threadIdx.x; i < s.qk_rope; i += kThreads) query[latent + i] = q_pe[i];
  __syncthreads();

  const int sequence = sequences[t];
  const int len = positions[t] + 1, per_split = (len + splits - 1) / splits;
  const int first = split * per_split, last = min(len, first + per_split);
  float running_max = -INFINITY, sum_exp = 0, acc[kMaxLatentPerLane] = {};
  for (int j = first + warp; j < last; j += kWarps) {
    const float* row = paged_cache_row(cache, sequence, j, width);
    float dot = 0;
    for (int i = lane; i < width; i += 32) dot += query[i] * row[i];
    const float score = warp_sum(dot) * scale;
    const float new_max = fmaxf(running_max, score);
    const float rescale = expf(running_max - new_max), p = expf(score - new_max);
    sum_exp = sum_exp * rescale + p;
#pragma unroll
    for (int k = 0; k < kMaxLatentPerLane; ++k) {
      const int c = lane + 32 * k;
      if (c < latent) acc[k] = acc[k] * rescale + p * row[c];
    }
    running_max = new_max;
  }
#pragma unroll
  for (int k = 0; k < kMaxLatentPerLane; ++k) {
    const int c = lane + 32 * k;
    if (c < latent) warp_acc[warp * latent + c] = acc[k];
  }
  if (lane == 0) {
    warp_max_score[warp] = running_max;
    warp_sum_exp[warp] = sum_exp;
  }
  __syncthreads();

  float block_max = -INFINITY;
  for (int w = 0; w < kWarps; ++w) block_max = fmaxf(block_max, warp_max_score[w]);
  float total = 0, weight[kWarps];
  for (int w = 0; w < kWarps; ++w) {
    // A warp that saw no position has max -inf and contributes nothing.
    weight[w] = warp_max_score[w] == -INFINITY ? 0.0f : expf(warp_max_score[w] - block_max);
    total += warp_sum_exp[w] * weight[w];
  }
  // One split: the normalized output. Several: [max, sum, acc...] for merge_splits_kernel.
  const int64_t head_index = int64_t(t) * s.heads + h;
  float* dst = splits == 1 ? o_latent + head_index * latent : partial + (head_index * splits + split) * (latent + 2);
  if (splits > 1 && threadIdx.x == 0) {
    dst[0] = block_max;
    dst[1] = total;
  }
  for (int c = threadIdx.x; c < latent; c += kThreads) {
    float v = 0;
    for (int w = 0; w < kWarps; ++w) v += warp_acc[w * latent + c] * weight[w];
    if (splits == 1) dst[c] = v / total;
    else dst[2 + c] = v;
  }
}

__global__ void merge_splits_kernel(int heads, int latent, int splits, const float* partial, float* o_latent) {
  const int64_t head_index = int64_t(blockIdx.x) * heads + blockIdx.y;
  const float* parts = partial + head_index * splits * (latent + 2);
  float block_max = -INFINITY;
  for (int k = 0; k < splits; ++k) block_max = fmaxf(block_max, parts[k * (latent + 2)]);
  float total = 0;
  for (int k = 0; k < splits; ++k) {
    const float m = parts[k * (latent + 2)];
    if (m != -INFINITY) total += parts[k * (latent + 2) + 1] * expf(m - block_max);
  }
  for (int c = threadIdx.x; c < latent; c += blockDim.x) {
    float v = 0;
    for (int k = 0; k < splits; ++k) {
      const float m = parts[k * (latent + 2)];
      if (m != -INFINITY) v += parts[k * (latent + 2) + 2 + c] * expf(m - block_max);
    }
    o_latent[head_index * latent + c] = v / total;
  }
}

}  // namespace

int mla_attention_splits(int tokens, int heads, int max_len, int multiprocessors) {
  constexpr int kMinPositionsPerSplit = 64, kBlocksPerMultiprocessor = 4, kMaxSplits = 64;
  const int blocks = std::max(1, tokens * heads);
  const int wanted = (kBlocksPerMultiprocessor * multiprocessors + blocks - 1) / blocks;
  const int useful = (max_len + kMinPositionsPerSplit - 1) / kMinPositionsPerSplit;
  return std::max(1, std::min({wanted, useful, kMaxSplits}));
}

size_t mla_attention_workspace(const MlaShape& s, int tokens, int splits) {
  return splits <= 1 ? 0 : size_t(tokens) * s.heads * splits * (s.kv_lora_rank + 2);
}

void mla_attention(const MlaShape& s, const float* q_latent, const float* q, const int* positions,
                   const int* sequences, PagedCache cache, float softmax_scale, int tokens, int splits,
                   float* workspace, float* o_latent, cudaStream_t stream) {
  if (tokens == 0) return;
  if (s.kv_lora_rank > 32 * kMaxLatentPerLane)
    fail("mla_attention: kv_lora_rank {} exceeds the supported {}", s.kv_lora_rank, 32 * kMaxLatentPerLane);
  splits = std::max(1, splits);
  const size_t shared = sizeof(float) * (s.kv_lora_rank + s.qk_rope + kWarps * s.kv_lora_rank);
  mla_attention_kernel<<<dim3(s.heads, tokens, splits), kThreads, shared, stream>>>(
      s, q_latent, q, positions, sequences, cache, softmax_scale, workspace, o_latent);
  CUDA_CHECK_LAUNCH();
  if (splits > 1) mla_merge_splits(s, tokens, splits, workspace, o_latent, stream);
}

void mla_merge_splits(const MlaShape& s, int tokens, int splits, const float* partial, float* o_latent,
                      cudaStream_t stream) {
  if (tokens == 0) return;
  merge_splits_kernel<<<dim3(tokens, s.heads), kThreads, 0, stream>>>(s.heads, s.kv_lora_rank, splits, partial,
                                                                       o_latent);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
