// MoE routing on the GPU: expert choice per token with the shared rules of r1/routing.h, the
// permutation that groups token copies by expert (per-expert offsets), gather, and the
// weighted combine back to token order.
#include "kernels/cuda_check.h"
#include "kernels/launch.h"
#include "r1/routing.h"

namespace r1::cuda {

namespace {

constexpr int kThreads = 128;

__global__ void route_kernel(RoutingParams p, const float* gate_logits, const float* bias, int tokens,
                             MoeRouting r) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= tokens) return;
  const int n = p.n_routed_experts, k = p.num_experts_per_tok;
  route_token(p, gate_logits + int64_t(t) * n, bias, r.scratch + int64_t(t) * 2 * n,
              r.expert_ids + int64_t(t) * k, r.expert_weights + int64_t(t) * k);
}

__global__ void count_kernel(const int* expert_ids, int copies, int* counts) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < copies) atomicAdd(&counts[expert_ids[i]], 1);
}

// Exclusive scan of the counts (a few hundred experts: one thread is enough), then the counts
// are reset to serve as per-expert cursors for the scatter.
__global__ void offsets_kernel(int experts, int* counts, int* offsets) {
  int running = 0;
  for (int e = 0; e < experts; ++e) {
    offsets[e] = running;
    running += counts[e];
    counts[e] = 0;
  }
  offsets[experts] = running;
}

__global__ void scatter_kernel(const int* expert_ids, int copies, const int* offsets, int* cursors,
                               int* copy_rows) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= copies) return;
  const int e = expert_ids[i];
  copy_rows[i] = offsets[e] + atomicAdd(&cursors[e], 1);
}

__global__ void gather_kernel(const float* x, int top_k, int dim, const int* copy_rows, float* permuted) {
  const int copy = blockIdx.x;
  const float* src = x + int64_t(copy / top_k) * dim;
  float* dst = permuted + int64_t(copy_rows[copy]) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = src[i];
}

__global__ void combine_kernel(const float* expert_out, int top_k, int dim, const int* copy_rows,
                               const float* weights, bool accumulate, float* out) {
  const int t = blockIdx.x;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = 0;
    for (int k = 0; k < top_k; ++k)
      v += weights[t * top_k + k] * expert_out[int64_t(copy_rows[t * top_k + k]) * dim + i];
    float* dst = out + int64_t(t) * dim + i;
    *dst = accumulate ? *dst + v : v;
  }
}

int blocks_for(int n) { return (n + kThreads - 1) / kThreads; }

}  // namespace

void moe_route(const RoutingParams& p, const float* gate_logits, const float* bias, int tokens,
               const MoeRouting& r, cudaStream_t stream) {
  if (tokens == 0) return;
  const int copies = tokens * p.num_experts_per_tok;
  route_kernel<<<blocks_for(tokens), kThreads, 0, stream>>>(p, gate_logits, bias, tokens, r);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemsetAsync(r.expert_counts, 0, sizeof(int) * p.n_routed_experts, stream));
  count_kernel<<<blocks_for(copies), kThreads, 0, stream>>>(r.expert_ids, copies, r.expert_counts);
  CUDA_CHECK_LAUNCH();
  offsets_kernel<<<1, 1, 0, stream>>>(p.n_routed_experts, r.expert_counts, r.expert_offsets);
  CUDA_CHECK_LAUNCH();
  scatter_kernel<<<blocks_for(copies), kThreads, 0, stream>>>(r.expert_ids, copies, r.expert_offsets,
                                                              r.expert_counts, r.copy_rows);
  CUDA_CHECK_LAUNCH();
}

void moe_gather(const float* x, int tokens, int top_k, int dim, const MoeRouting& r, float* permuted,
                cudaStream_t stream) {
  if (tokens == 0) return;
  gather_kernel<<<tokens * top_k, kThreads, 0, stream>>>(x, top_k, dim, r.copy_rows, permuted);
  CUDA_CHECK_LAUNCH();
}

void moe_combine(const float* expert_out, int tokens, int top_k, int dim, const MoeRouting& r,
                 bool accumulate, float* out, cudaStream_t stream) {
  if (tokens == 0) return;
  combine_kernel<<<tokens, kThreads, 0, stream>>>(expert_out, top_k, dim, r.copy_rows, r.expert_weights,
                                                  accumulate, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
