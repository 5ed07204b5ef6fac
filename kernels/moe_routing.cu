// MoE routing on the GPU: expert choice per token by the rules of r1/routing.h, the
// permutation that groups token copies by expert (per-expert offsets), gather, and the
// weighted combine back to token order.
#include <algorithm>

#include "kernels/cuda_check.h"
#include "kernels/launch.h"
#include "kernels/weight_decode.cuh"
#include "r1/routing.h"

namespace r1::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kRouteWarps = 4;          // tokens per block: one warp each
constexpr int kMaxExpertsPerLane = 16;  // n_routed_experts <= 512 = kScanThreads

// One warp per token, the same rules and tie-breaks as route_token (r1/routing.h): each lane
// scores experts lane, lane+32, ...; lanes < n_group score the groups; the top-k is k rounds of
// a warp-wide argmax (ties to the lower expert id).
__global__ void __launch_bounds__(kRouteWarps * 32)
route_kernel(RoutingParams p, const float* gate_logits, const float* bias, int tokens, MoeRouting r) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int t = blockIdx.x * kRouteWarps + warp;
  const int n = p.n_routed_experts, k = p.num_experts_per_tok;
  extern __shared__ float shared[];
  float* scores = shared + warp * (2 * n + 2 * kMaxRoutingGroups);  // per warp: scores, choice, groups
  float* choice = scores + n;
  float* group_score = choice + n;
  float* keep = group_score + kMaxRoutingGroups;
  if (t >= tokens) return;
  const float* logits = gate_logits + int64_t(t) * n;

  if (p.scoring_func == ScoringFunc::sigmoid) {
    for (int e = lane; e < n; e += 32) scores[e] = 1.0f / (1.0f + expf(-logits[e]));
  } else {
    float max_logit = -INFINITY, sum = 0;
    for (int e = lane; e < n; e += 32) max_logit = fmaxf(max_logit, logits[e]);
    max_logit = warp_max(max_logit);
    for (int e = lane; e < n; e += 32) sum += (scores[e] = expf(logits[e] - max_logit));
    sum = warp_sum(sum);
    for (int e = lane; e < n; e += 32) scores[e] /= sum;
  }
  for (int e = lane; e < n; e += 32) choice[e] = scores[e] + (bias ? bias[e] : 0.0f);
  __syncwarp();

  if (p.topk_method != TopkMethod::greedy && p.n_group > 1) {
    const int group_size = n / p.n_group;
    for (int g = lane; g < p.n_group; g += 32)
      group_score[g] = routing_group_score(choice + g * group_size, group_size, p.topk_method == TopkMethod::noaux_tc);
    __syncwarp();
    if (lane == 0) {
      for (int g = 0; g < p.n_group; ++g) keep[g] = 0;
      for (int kept = 0; kept < p.topk_group; ++kept) {
        int best = -1;
        for (int g = 0; g < p.n_group; ++g)
          if (keep[g] == 0 && (best < 0 || group_score[g] > group_score[best])) best = g;
        keep[best] = 1;
      }
    }
    __syncwarp();
    for (int e = lane; e < n; e += 32)
      if (keep[e / group_size] == 0) choice[e] = -INFINITY;
    __syncwarp();
  }

  float weight_sum = 0;
  for (int round = 0; round < k; ++round) {
    float best_value = -INFINITY;
    int best_id = n;
    for (int e = lane; e < n; e += 32)
      if (choice[e] > best_value || (choice[e] == best_value && e < best_id)) best_value = choice[e], best_id = e;
    for (int offset = 16; offset > 0; offset /= 2) {
      const float other_value = __shfl_xor_sync(0xffffffffu, best_value, offset);
      const int other_id = __shfl_xor_sync(0xffffffffu, best_id, offset);
      if (other_value > best_value || (other_value == best_value && other_id < best_id))
        best_value = other_value, best_id = other_id;
    }
    if (lane == 0) {
      r.expert_ids[int64_t(t) * k + round] = best_id;
      r.expert_weights[int64_t(t) * k + round] = scores[best_id];
      weight_sum += scores[best_id];
      choice[best_id] = -INFINITY;
    }
    __syncwarp();
  }
  if (lane == 0) {
    const float scale = p.routed_scaling_factor / (p.norm_topk_prob ? weight_sum : 1.0f);
    for (int round = 0; round < k; ++round) r.expert_weights[int64_t(t) * k + round] *= scale;
  }
}

__global__ void count_kernel(const int* expert_ids, int copies, int* counts) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < copies) atomicAdd(&counts[expert_ids[i]], 1);
}

// Exclusive scan of the counts in one block (experts <= kScanThreads), then the counts are
// reset to serve as per-expert cursors for the scatter.
constexpr int kScanThreads = 512;
__global__ void __launch_bounds__(kScanThreads) offsets_kernel(int experts, int* counts, int* offsets) {
  __shared__ int sums[kScanThreads];
  const int e = threadIdx.x;
  const int count = e < experts ? counts[e] : 0;
  sums[e] = count;
  __syncthreads();
  for (int stride = 1; stride < kScanThreads; stride *= 2) {  // Hillis-Steele inclusive scan
    const int add = e >= stride ? sums[e - stride] : 0;
    __syncthreads();
    sums[e] += add;
    __syncthreads();
  }
  if (e < experts) {
    offsets[e] = sums[e] - count;
    counts[e] = 0;
  }
  if (e == experts - 1) offsets[experts] = sums[e];
}

__global__ void scatter_kernel(const int* expert_ids, int copies, const int* offsets, int* cursors,
                               int* copy_rows) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= copies) return;
  const int e = expert_ids[i];
  copy_rows[i] = offsets[e] + atomicAdd(&cursors[e], 1);
}

// Grids are (columns / kThreads, rows, capped at kMaxGridRows): one thread per value.
constexpr int kMaxGridRows = 65535;

__global__ void gather_kernel(const float* x, int copies, int top_k, int dim, const int* copy_rows, float* permuted) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= dim) return;
  for (int copy = blockIdx.y; copy < copies; copy += gridDim.y)
    permuted[int64_t(copy_rows[copy]) * dim + i] = x[int64_t(copy / top_k) * dim + i];
}

__global__ void combine_kernel(const float* expert_out, int tokens, int top_k, int dim, const int* copy_rows,
                               const float* weights, bool accumulate, float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= dim) return;
  for (int t = blockIdx.y; t < tokens; t += gridDim.y) {
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
  if (p.n_routed_experts > 32 * kMaxExpertsPerLane)
    fail("moe_route: {} experts exceed the supported {}", p.n_routed_experts, 32 * kMaxExpertsPerLane);
  const size_t shared = sizeof(float) * kRouteWarps * (2 * p.n_routed_experts + 2 * kMaxRoutingGroups);
  route_kernel<<<(tokens + kRouteWarps - 1) / kRouteWarps, kRouteWarps * 32, shared, stream>>>(p, gate_logits, bias,
                                                                                               tokens, r);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemsetAsync(r.expert_counts, 0, sizeof(int) * p.n_routed_experts, stream));
  count_kernel<<<blocks_for(copies), kThreads, 0, stream>>>(r.expert_ids, copies, r.expert_counts);
  CUDA_CHECK_LAUNCH();
  offsets_kernel<<<1, kScanThreads, 0, stream>>>(p.n_routed_experts, r.expert_counts, r.expert_offsets);
  CUDA_CHECK_LAUNCH();
  scatter_kernel<<<blocks_for(copies), kThreads, 0, stream>>>(r.expert_ids, copies, r.expert_offsets,
                                                              r.expert_counts, r.copy_rows);
  CUDA_CHECK_LAUNCH();
}

void moe_gather(const float* x, int tokens, int top_k, int dim, const MoeRouting& r, float* permuted,
                cudaStream_t stream) {
  if (tokens == 0) return;
  gather_kernel<<<dim3(blocks_for(dim), std::min(tokens * top_k, kMaxGridRows)), kThreads, 0, stream>>>(
      x, tokens * top_k, top_k, dim, r.copy_rows, permuted);
  CUDA_CHECK_LAUNCH();
}

void moe_combine(const float* expert_out, int tokens, int top_k, int dim, const MoeRouting& r,
                 bool accumulate, float* out, cudaStream_t stream) {
  if (tokens == 0) return;
  combine_kernel<<<dim3(blocks_for(dim), std::min(tokens, kMaxGridRows)), kThreads, 0, stream>>>(expert_out, tokens, top_k, dim, r.copy_rows, r.expert_weights,
                                                  accumulate, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
