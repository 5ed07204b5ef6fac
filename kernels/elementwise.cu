// Small elementwise ops of the forward pass: residual add, SiLU·mul, rounding to bfloat16,
// embedding lookup.
#include <algorithm>

#include "kernels/cuda_check.h"
#include "kernels/weight_decode.cuh"

namespace r1::cuda {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) { return int((n + kThreads - 1) / kThreads); }

__global__ void add_kernel(float* h, const float* delta, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) h[i] += delta[i];
}

__global__ void silu_mul_kernel(const float* gate, const float* up, float* out, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

__global__ void to_bf16_kernel(const float* x, __nv_bfloat16* y, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = __float2bfloat16_rn(x[i]);
}

__global__ void embed_kernel(WeightView table, const int* tokens, int n, int dim, float* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= dim) return;
  for (int t = blockIdx.y; t < n; t += gridDim.y) out[int64_t(t) * dim + i] = load_weight(table, tokens[t], i);
}

}  // namespace

void add_inplace(float* h, const float* delta, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(h, delta, n);
  CUDA_CHECK_LAUNCH();
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  silu_mul_kernel<<<blocks_for(n), kThreads, 0, stream>>>(gate, up, out, n);
  CUDA_CHECK_LAUNCH();
}

void to_bf16(const float* x, __nv_bfloat16* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  to_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, n);
  CUDA_CHECK_LAUNCH();
}

void embed_rows(const void* table, WeightType type, const int* tokens, int n, int dim, float* out,
                cudaStream_t stream) {
  if (n == 0) return;
  WeightView view;
  view.data = table;
  view.type = type;
  view.in = dim;
  embed_kernel<<<dim3(blocks_for(dim), std::min(n, 65535)), kThreads, 0, stream>>>(view, tokens, n, dim, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
