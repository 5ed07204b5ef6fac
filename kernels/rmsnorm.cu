// RMSNorm over rows, one block per row, float32 throughout.
#include "kernels/cuda_check.h"
#include "kernels/weight_decode.cuh"

namespace r1::cuda {

namespace {

constexpr int kThreads = 1024;  // one row of R1's 7168 values: 7 per thread, few dependent loads

// Sum of v over the block; every thread gets the result.
__device__ float block_sum(float v) {
  __shared__ float partial[kThreads / 32];
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0;
  for (int w = 0; w < kThreads / 32; ++w) total += partial[w];
  __syncthreads();  // partial may be reused by the next call
  return total;
}

// With `delta`, x is the residual stream: x += delta is stored back before it is normed (each
// thread re-reads only the values it wrote itself).
__global__ void rmsnorm_kernel(float* x, int x_stride, const float* delta, const float* weight, int dim,
                               float eps, float* out, int out_stride) {
  float* row = x + int64_t(blockIdx.x) * x_stride;
  float* dst = out + int64_t(blockIdx.x) * out_stride;
  float sum_squares = 0;
  if (delta) {
    const float* d = delta + int64_t(blockIdx.x) * dim;
    for (int i = threadIdx.x; i < dim; i += kThreads) {
      const float v = row[i] + d[i];
      row[i] = v;
      sum_squares += v * v;
    }
  } else {
    for (int i = threadIdx.x; i < dim; i += kThreads) sum_squares += row[i] * row[i];
  }
  const float inv_rms = rsqrtf(block_sum(sum_squares) / dim + eps);
  for (int i = threadIdx.x; i < dim; i += kThreads) dst[i] = row[i] * inv_rms * weight[i];
}

}  // namespace

void rmsnorm(const float* x, int x_stride, const float* weight, int rows, int dim, float eps, float* out,
             int out_stride, cudaStream_t stream) {
  if (rows == 0) return;
  // Without delta the kernel only reads x.
  rmsnorm_kernel<<<rows, kThreads, 0, stream>>>(const_cast<float*>(x), x_stride, nullptr, weight, dim, eps, out,
                                                out_stride);
  CUDA_CHECK_LAUNCH();
}

void add_rmsnorm(float* h, const float* delta, const float* weight, int rows, int dim, float eps, float* out,
                 cudaStream_t stream) {
  if (rows == 0) return;
  rmsnorm_kernel<<<rows, kThreads, 0, stream>>>(h, dim, delta, weight, dim, eps, out, dim);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
