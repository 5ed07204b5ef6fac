// The two per-head projections of absorbed MLA, reading kv_b as stored: queries into the latent
// space through W_UK (kv_b rows [h·(nope+v), h·(nope+v)+nope)), and attention outputs out of it
// through W_UV (the following v_dim rows). When the latent rows allow
// 16-byte loads, each lane reads whole 16-byte chunks of a row, else one value at a time.
#include "kernels/cuda_check.h"
#include "kernels/weight_decode.cuh"

namespace r1::cuda {

namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32;

template <WeightType T>
__device__ float chunk_scale(const WeightView& w, int64_t row, int col) {
  if (T != WeightType::e4m3) return 1.0f;
  return w.scale_inv[(row / w.block) * ((w.in + w.block - 1) / w.block) + col / w.block];
}

// Decode reads each head's 2 × nope × kv_lora weights once per step (R1: 128 KB per head in
// FP8); blocks over (head, slice) rather than one per head keep enough loads in flight.
constexpr int kChunksPerBlock = 8;                             // absorb_q: 8 chunks × 32 row slices
constexpr int kRowSlices = kThreads / kChunksPerBlock;
constexpr int kRowsPerWarp = 4, kRowsPerBlock = kWarps * kRowsPerWarp;  // v_out

// q_latent[t][h][c] = Σ_d q_nope[t][h][d] · W_UK[h][d][c]: a block owns kChunksPerBlock chunks
// of columns c; its threads split the rows d into kRowSlices strided slices, whose partial sums
// meet in shared memory.
template <WeightType T>
__global__ void __launch_bounds__(kThreads)
absorb_q_kernel(WeightView kv_b, MlaShape s, const float* q, int tokens, float* q_latent) {
  using P = Packed<T>;
  const int h = blockIdx.x, slice = threadIdx.x / kChunksPerBlock;
  const int local_chunk = threadIdx.x % kChunksPerBlock, c = blockIdx.y * kChunksPerBlock + local_chunk;
  const int qk_dim = s.qk_nope + s.qk_rope, chunks = s.kv_lora_rank / P::count;
  const int64_t first_row = int64_t(h) * (s.qk_nope + s.v_dim);
  const int64_t row_bytes = int64_t(s.kv_lora_rank) * (16 / P::count);
  __shared__ float partial[kRowSlices][kChunksPerBlock * 16 + 1];
  for (int t = 0; t < tokens; ++t) {
    const float* q_nope = q + (int64_t(t) * s.heads + h) * qk_dim;
    float acc[P::count] = {};
    if (c < chunks) {
#pragma unroll 4
      for (int d = slice; d < s.qk_nope; d += kRowSlices) {
        const uint4 raw = __ldg(reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(kv_b.data) +
                                                               (first_row + d) * row_bytes) + c);
        const float qd = q_nope[d] * chunk_scale<T>(kv_b, first_row + d, c * P::count);
#pragma unroll
        for (int p = 0; p < P::count / 4; ++p) {
          float wv[4];
          P::piece(raw, p, wv);
#pragma unroll
          for (int k = 0; k < 4; ++k) acc[4 * p + k] += qd * wv[k];
        }
      }
    }
#pragma unroll
    for (int k = 0; k < P::count; ++k) partial[slice][local_chunk * P::count + k] = acc[k];
    __syncthreads();
    float* dst = q_latent + (int64_t(t) * s.heads + h) * s.kv_lora_rank + int64_t(blockIdx.y) * kChunksPerBlock * P::count;
    const int columns = min(kChunksPerBlock, chunks - int(blockIdx.y) * kChunksPerBlock) * P::count;
    for (int i = threadIdx.x; i < columns; i += kThreads) {
      float sum = 0;
      for (int k = 0; k < kRowSlices; ++k) sum += partial[k][i];
      dst[i] = sum;
    }
    __syncthreads();
  }
}

// out[t][h][d] = Σ_c W_UV[h][d][c] · o_latent[t][h][c]: a block owns kRowsPerBlock rows d, each
// warp kRowsPerWarp of them at once (their loads in flight together), lanes the chunks c.
template <WeightType T>
__global__ void __launch_bounds__(kThreads)
v_out_kernel(WeightView kv_b, MlaShape s, const float* o_latent, int tokens, float* out) {
  using P = Packed<T>;
  const int h = blockIdx.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int chunks = s.kv_lora_rank / P::count;
  const int first_d = blockIdx.y * kRowsPerBlock + warp * kRowsPerWarp;
  if (first_d >= s.v_dim) return;
  const int64_t first_row = int64_t(h) * (s.qk_nope + s.v_dim) + s.qk_nope;
  const int64_t row_bytes = int64_t(s.kv_lora_rank) * (16 / P::count);
  const uint4* rows[kRowsPerWarp];
#pragma unroll
  for (int j = 0; j < kRowsPerWarp; ++j)  // rows past v_dim re-read the last one, unstored
    rows[j] = reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(kv_b.data) +
                                             (first_row + min(first_d + j, s.v_dim - 1)) * row_bytes);
  for (int t = 0; t < tokens; ++t) {
    const float* x = o_latent + (int64_t(t) * s.heads + h) * s.kv_lora_rank;
    float acc[kRowsPerWarp] = {};
    for (int c = lane; c < chunks; c += 32) {
      uint4 raw[kRowsPerWarp];
#pragma unroll
      for (int j = 0; j < kRowsPerWarp; ++j) raw[j] = __ldg(rows[j] + c);
#pragma unroll
      for (int j = 0; j < kRowsPerWarp; ++j) {
        float dot = 0;
#pragma unroll
        for (int p = 0; p < P::count / 4; ++p) {
          float wv[4];
          P::piece(raw[j], p, wv);
          const float4 v = *reinterpret_cast<const float4*>(x + c * P::count + 4 * p);
          dot += wv[0] * v.x + wv[1] * v.y + wv[2] * v.z + wv[3] * v.w;
        }
        acc[j] += dot * chunk_scale<T>(kv_b, first_row + min(first_d + j, s.v_dim - 1), c * P::count);
      }
    }
#pragma unroll
    for (int j = 0; j < kRowsPerWarp; ++j) {
      const float sum = warp_sum(acc[j]);
      if (lane == 0 && first_d + j < s.v_dim) out[(int64_t(t) * s.heads + h) * s.v_dim + first_d + j] = sum;
    }
  }
}

// Fallbacks for latent widths that are not a multiple of the 16-byte chunk (tiny test models).
__global__ void absorb_q_scalar_kernel(WeightView kv_b, MlaShape s, const float* q, float* q_latent) {
  const int h = blockIdx.x, t = blockIdx.y, qk_dim = s.qk_nope + s.qk_rope;
  const float* q_nope = q + (int64_t(t) * s.heads + h) * qk_dim;
  const int64_t first_row = int64_t(h) * (s.qk_nope + s.v_dim);
  float* dst = q_latent + (int64_t(t) * s.heads + h) * s.kv_lora_rank;
  for (int c = threadIdx.x; c < s.kv_lora_rank; c += blockDim.x) {
    float acc = 0;
    for (int d = 0; d < s.qk_nope; ++d) acc += q_nope[d] * load_weight(kv_b, first_row + d, c);
    dst[c] = acc;
  }
}

__global__ void v_out_scalar_kernel(WeightView kv_b, MlaShape s, const float* o_latent, float* out) {
  const int h = blockIdx.x, t = blockIdx.y, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const float* src = o_latent + (int64_t(t) * s.heads + h) * s.kv_lora_rank;
  const int64_t first_row = int64_t(h) * (s.qk_nope + s.v_dim) + s.qk_nope;
  for (int d = warp; d < s.v_dim; d += blockDim.x / 32) {
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
  if (!rows_load_in_chunks(kv_b, s.kv_lora_rank)) {
    absorb_q_scalar_kernel<<<dim3(s.heads, tokens), 128, 0, stream>>>(kv_b, s, q, q_latent);
  } else {
    with_weight_type(kv_b.type, [&](auto type) {
      using P = Packed<decltype(type)::value>;
      const dim3 grid(s.heads, (s.kv_lora_rank / P::count + kChunksPerBlock - 1) / kChunksPerBlock);
      absorb_q_kernel<decltype(type)::value><<<grid, kThreads, 0, stream>>>(kv_b, s, q, tokens, q_latent);
    });
  }
  CUDA_CHECK_LAUNCH();
}

void mla_v_out(const WeightView& kv_b, const MlaShape& s, const float* o_latent, int tokens, float* out,
               cudaStream_t stream) {
  if (tokens == 0) return;
  if (!rows_load_in_chunks(kv_b, s.kv_lora_rank)) {
    v_out_scalar_kernel<<<dim3(s.heads, tokens), 128, 0, stream>>>(kv_b, s, o_latent, out);
  } else {
    with_weight_type(kv_b.type, [&](auto type) {
      const dim3 grid(s.heads, (s.v_dim + kRowsPerBlock - 1) / kRowsPerBlock);
      v_out_kernel<decltype(type)::value><<<grid, kThreads, 0, stream>>>(kv_b, s, o_latent, tokens, out);
    });
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
