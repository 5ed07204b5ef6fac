// Exact-numerics grouped linear: float32 activations times checkpoint weights decoded to
// float32 on the fly (F32/F16/BF16/FP8 block-scaled), float32 accumulation. Tiles of
// kRows tokens × kOuts outputs; the weight tile is decoded once into shared memory.
#include "kernels/cuda_check.h"
#include "kernels/weight_decode.cuh"

namespace r1::cuda {

namespace {

constexpr int kRows = 32, kOuts = 64, kDepth = 32;  // tile: tokens × outputs × reduction
constexpr int kThreads = 256;                       // 16 × 16 threads, 2 tokens × 4 outputs each

__global__ void __launch_bounds__(kThreads)
grouped_linear_kernel(const WeightView* weights, const int* row_offsets, int rows, int out, int in,
                      const float* __restrict__ x, float* __restrict__ y) {
  const int group = blockIdx.z;
  const int group_begin = row_offsets ? row_offsets[group] : 0;
  const int group_end = row_offsets ? row_offsets[group + 1] : rows;
  const int row0 = group_begin + blockIdx.y * kRows;
  if (row0 >= group_end) return;  // empty expert, or past this group's rows
  const int out0 = blockIdx.x * kOuts;
  const WeightView w = weights[group];

  __shared__ float x_tile[kDepth][kRows + 1];
  __shared__ float w_tile[kDepth][kOuts + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[2][4] = {};

  for (int k0 = 0; k0 < in; k0 += kDepth) {
    for (int i = threadIdx.x; i < kRows * kDepth; i += kThreads) {
      const int r = i / kDepth, k = i % kDepth;
      const int row = row0 + r, col = k0 + k;
      x_tile[k][r] = (row < group_end && col < in) ? x[int64_t(row) * in + col] : 0.0f;
    }
    for (int i = threadIdx.x; i < kOuts * kDepth; i += kThreads) {
      const int o = i / kDepth, k = i % kDepth;
      const int row = out0 + o, col = k0 + k;
      w_tile[k][o] = (row < out && col < in) ? load_weight(w, row, col) : 0.0f;
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < kDepth; ++k) {
      const float x0 = x_tile[k][ty * 2], x1 = x_tile[k][ty * 2 + 1];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float wv = w_tile[k][tx + 16 * j];
        acc[0][j] += x0 * wv;
        acc[1][j] += x1 * wv;
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row0 + ty * 2 + r;
    if (row >= group_end) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int o = out0 + tx + 16 * j;
      if (o < out) y[int64_t(row) * out + o] = acc[r][j];
    }
  }
}

}  // namespace

void grouped_linear(const WeightView* weights, const int* row_offsets, int groups, int rows, int out,
                    int in, const float* x, float* y, cudaStream_t stream) {
  if (rows <= 0 || groups <= 0) return;
  dim3 grid((out + kOuts - 1) / kOuts, (rows + kRows - 1) / kRows, groups);
  grouped_linear_kernel<<<grid, kThreads, 0, stream>>>(weights, row_offsets, rows, out, in, x, y);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
