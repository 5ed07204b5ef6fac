// Appends each token's compressed KV to its sequence's latent cache: the normed latent c and
// the roped k_pe, kv_lora_rank + rope_dim floats per position.
#include "kernels/cuda_check.h"
#include "kernels/paged_cache.cuh"
#include "kernels/weight_decode.cuh"
#include "r1/rope.h"

namespace r1::cuda {

namespace {

constexpr int kThreads = 128;

__global__ void mla_cache_append_kernel(const float* kv, int kv_lora_rank, int rope_dim,
                                        const float* norm_weight, float eps, const float* frequencies,
                                        float magnitude, const int* positions, const int* sequences,
                                        PagedCache cache) {
  const int t = blockIdx.x, width = kv_lora_rank + rope_dim;
  const float* src = kv + int64_t(t) * width;
  float* dst = paged_cache_row(cache, sequences[t], positions[t], width);

  __shared__ float partial[kThreads / 32];
  float sum_squares = 0;
  for (int i = threadIdx.x; i < kv_lora_rank; i += kThreads) sum_squares += src[i] * src[i];
  sum_squares = warp_sum(sum_squares);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum_squares;
  __syncthreads();
  float total = 0;
  for (int w = 0; w < kThreads / 32; ++w) total += partial[w];
  const float inv_rms = rsqrtf(total / kv_lora_rank + eps);
  for (int i = threadIdx.x; i < kv_lora_rank; i += kThreads) dst[i] = src[i] * inv_rms * norm_weight[i];
  for (int pair = threadIdx.x; pair < rope_dim / 2; pair += kThreads) {
    float* k_pe = dst + kv_lora_rank;
    k_pe[2 * pair] = src[kv_lora_rank + 2 * pair];
    k_pe[2 * pair + 1] = src[kv_lora_rank + 2 * pair + 1];
    rope_rotate_pair(k_pe, pair, frequencies[pair], positions[t], magnitude);
  }
}

}  // namespace

void mla_cache_append(const float* kv, int tokens, int kv_lora_rank, int rope_dim, const float* norm_weight,
                      float eps, const float* frequencies, float magnitude, const int* positions,
                      const int* sequences, PagedCache cache, cudaStream_t stream) {
  if (tokens == 0) return;
  mla_cache_append_kernel<<<tokens, kThreads, 0, stream>>>(kv, kv_lora_rank, rope_dim, norm_weight, eps,
                                                           frequencies, magnitude, positions, sequences, cache);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
