// Appends each token's compressed KV to its sequence's latent cache: the normed latent c and
// the roped k_pe, kv_lora_rank + rope_dim values per position, in float32 or bfloat16.
#include "kernels/cuda_check.h"
#include "kernels/paged_cache.cuh"
#include "kernels/weight_decode.cuh"
#include "r1/rope.h"

namespace r1::cuda {

namespace {

constexpr int kThreads = 128;

__device__ inline void store_value(float* p, float v) { *p = v; }
__device__ inline void store_value(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// Everything is computed in float32; only the final store depends on T (one rounding to bf16).
template <typename T>
__global__ void mla_cache_append_kernel(const float* kv, int kv_lora_rank, int rope_dim,
                                        const float* norm_weight, float eps, const float* frequencies,
                                        float magnitude, const int* positions, const int* sequences,
                                        PagedCacheOf<T> cache) {
  const int t = blockIdx.x, width = kv_lora_rank + rope_dim;
  const float* src = kv + int64_t(t) * width;
  T* dst = paged_cache_row(cache, sequences[t], positions[t], width);

  __shared__ float partial[kThreads / 32];
  float sum_squares = 0;
  for (int i = threadIdx.x; i < kv_lora_rank; i += kThreads) sum_squares += src[i] * src[i];
  sum_squares = warp_sum(sum_squares);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum_squares;
  __syncthreads();
  float total = 0;
  for (int w = 0; w < kThreads / 32; ++w) total += partial[w];
  const float inv_rms = rsqrtf(total / kv_lora_rank + eps);
  for (int i = threadIdx.x; i < kv_lora_rank; i += kThreads) store_value(dst + i, src[i] * inv_rms * norm_weight[i]);
  for (int pair = threadIdx.x; pair < rope_dim / 2; pair += kThreads) {
    float k_pe[2] = {src[kv_lora_rank + 2 * pair], src[kv_lora_rank + 2 * pair + 1]};
    rope_rotate_pair(k_pe, 0, frequencies[pair], positions[t], magnitude);
    store_value(dst + kv_lora_rank + 2 * pair, k_pe[0]);
    store_value(dst + kv_lora_rank + 2 * pair + 1, k_pe[1]);
  }
}

template <typename T>
void append(const float* kv, int tokens, int kv_lora_rank, int rope_dim, const float* norm_weight, float eps,
            const float* frequencies, float magnitude, const int* positions, const int* sequences,
            PagedCacheOf<T> cache, cudaStream_t stream) {
  if (tokens == 0) return;
  mla_cache_append_kernel<T><<<tokens, kThreads, 0, stream>>>(kv, kv_lora_rank, rope_dim, norm_weight, eps,
                                                              frequencies, magnitude, positions, sequences, cache);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void mla_cache_append(const float* kv, int tokens, int kv_lora_rank, int rope_dim, const float* norm_weight,
                      float eps, const float* frequencies, float magnitude, const int* positions,
                      const int* sequences, PagedCache cache, cudaStream_t stream) {
  append(kv, tokens, kv_lora_rank, rope_dim, norm_weight, eps, frequencies, magnitude, positions, sequences, cache,
         stream);
}

void mla_cache_append(const float* kv, int tokens, int kv_lora_rank, int rope_dim, const float* norm_weight,
                      float eps, const float* frequencies, float magnitude, const int* positions,
                      const int* sequences, PagedCacheBf16 cache, cudaStream_t stream) {
  append(kv, tokens, kv_lora_rank, rope_dim, norm_weight, eps, frequencies, magnitude, positions, sequences, cache,
         stream);
}

}  // namespace r1::cuda
