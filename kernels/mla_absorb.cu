// The two per-head projections of absorbed MLA, reading kv_b as stored: queries into the latent
// space through W_UK (kv_b rows [h·(nope+v), h·(nope+v)+nope)), and attention outputs out of it
// through W_UV (the following v_dim rows).
#include "kernels/cuda_check.h"
#include "kernels/weight_decode.cuh"

namespace r1::cuda {

namespace {

constexpr int kThreads = 128;

// q_latent[t][h][c] = Σ_d q_nope[t][h][d] · W_UK[h][d][c]
__global__ void absorb_q_kernel(WeightView kv_b, MlaShape s, const float* q, float* q_latent) {
  const int t = blockIdx.x, h = blockIdx.y, qk_dim = s.qk_nope + s.qk_rope;
  extern __shared__ float q_nope[];
  const float* q_head = q + (int64_t(t) * s.heads + h) * qk_dim;
  for (int d = threadIdx.x; d < s.qk_nope; d += kThreads) q_nope[d] = q_head[d];
  __syncthreads();
  const int64_t first_row = int64_t(h) * (s.qk_nope + s.v_dim);
  float* dst = q_latent + (int64_t(t) * s.heads + h) * s.kv_lora_rank;
  for (int c = threadIdx.x; c < s.kv_lora_rank; c += kThreads) {
    float acc = 0;
    for (int d = 0; d < s.qk_nope; ++d) acc += q_nope[d] * load_weight(kv_b, first_row + d, c);
    dst[c] = acc;
  }
}

// out[t][h][d] = Σ_c W_UV[h][d][c] · o_latent[t][h][c]; one warp per output value.
__global__ void v_out_kernel(WeightView kv_b, MlaShape s, const float* o_latent, float* out) {
  const int t = blockIdx.x, h = blockIdx.y, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const float* src = o_latent + (int64_t(t) * s.heads + h) * s.kv_lora_rank;
  const int64_t first_row = int64_t(h) * (s.qk_nope + s.v_dim) + s.qk_nope;
  for (int d = warp; d < s.v_dim; d += kThreads / 32) {
    float acc = 0;
    for (int c = lane; c < s.kv_lora_rank; c += 32) acc += src[c] * load_weight(kv_b, first_row + d, c);
    acc = warp_sum(acc);
    if (lane == 0) out[(int64_t(t) * s.heads + h) * s.v_dim + d] = acc;
  }
}

}  // namespace

void mla_absorb_q(const WeightView& kv_b, const MlaShape& s, const float* q, int tokens, float* q_latent,
                  cudaStream_t stream) {
  if (tokens == 0) return;
  absorb_q_kernel<<<dim3(tokens, s.heads), kThreads, s.qk_nope * sizeof(float), stream>>>(kv_b, s, q, q_latent);
  CUDA_CHECK_LAUNCH();
}

void mla_v_out(const WeightView& kv_b, const MlaShape& s, const float* o_latent, int tokens, float* out,
               cudaStream_t stream) {
  if (tokens == 0) return;
  v_out_kernel<<<dim3(tokens, s.heads), kThreads, 0, stream>>>(kv_b, s, o_latent, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
