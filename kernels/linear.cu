// Exact-numerics grouped linear: float32 activations times checkpoint weights decoded to
// float32 on the fly (F32/F16/BF16/FP8 block-scaled), float32 accumulation.
// Few rows (decode): a weight-streaming GEMV, 16-byte weight loads, every weight byte read once.
// More rows: tiles of kRows tokens × kOuts outputs, the weight tile decoded once into shared memory.
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


// ---- weight-streaming GEMV for up to kGemvMaxRows rows per group (in passes of up to 8) ----
// Each warp computes kGemvOutsPerWarp consecutive outputs at once so that every activation
// value it loads serves all of them; each lane streams 16-byte weight chunks.

constexpr int kGemvWarps = 8, kGemvOutsPerWarp = 4;

// kSplitK: for narrow weights (few blocks), the block's warps share its kOuts outputs and
// split the reduction instead of taking kOuts outputs each; partial sums meet in shared memory.
template <WeightType T, int R, bool kSplitK>
__global__ void __launch_bounds__(kGemvWarps * 32)
gemv_kernel(const WeightView* weights, const int* row_offsets, int rows, int out, int in,
            const float* __restrict__ x, float* __restrict__ y) {
  using P = Packed<T>;
  constexpr int kOuts = kGemvOutsPerWarp;
  constexpr int kStride = kSplitK ? 32 * kGemvWarps : 32;
  __shared__ float partial[kSplitK ? kGemvWarps : 1][kOuts][R];
  const int group = blockIdx.y;
  const int begin = row_offsets ? row_offsets[group] : 0;
  const int n = (row_offsets ? row_offsets[group + 1] : rows) - begin;
  if (n <= 0) return;
  const WeightView w = weights[group];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int first_out = (kSplitK ? blockIdx.x : blockIdx.x * kGemvWarps + warp) * kOuts;
  if (first_out >= out) return;  // in split mode the whole block leaves together
  const int chunks = in / P::count;
  const int scale_cols = (in + w.block - 1) / w.block;
  const float* xs = x + int64_t(begin) * in;

  // Rows past `out` re-read the last row; their results are not stored.
  const uint4* row[kOuts];
  const float* scales[kOuts];
#pragma unroll
  for (int j = 0; j < kOuts; ++j) {
    const int o = min(first_out + j, out - 1);
    row[j] = reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(w.data) + int64_t(o) * in * (16 / P::count));
    scales[j] = T == WeightType::e4m3 ? w.scale_inv + int64_t(o / w.block) * scale_cols : nullptr;
  }
  // Rows in passes of R; a group of more than R rows reads its weights again (mostly from L2).
  for (int r0 = 0; r0 < n; r0 += R) {
    const int rows_here = min(R, n - r0);
    const float* xr = xs + int64_t(r0) * in;
    float acc[kOuts][R] = {};
#pragma unroll 2
    for (int c = (kSplitK ? warp * 32 : 0) + lane; c < chunks; c += kStride) {
      uint4 raw[kOuts];
#pragma unroll
      for (int j = 0; j < kOuts; ++j) raw[j] = __ldg(row[j] + c);
      float scale[kOuts];
#pragma unroll
      for (int j = 0; j < kOuts; ++j) scale[j] = T == WeightType::e4m3 ? scales[j][c * P::count / w.block] : 1.0f;
#pragma unroll
      for (int p = 0; p < P::count / 4; ++p) {
        float wv[kOuts][4];
#pragma unroll
        for (int j = 0; j < kOuts; ++j) P::piece(raw[j], p, wv[j]);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          if (r >= rows_here) break;
          const float4 v = *reinterpret_cast<const float4*>(xr + int64_t(r) * in + c * P::count + 4 * p);
#pragma unroll
          for (int j = 0; j < kOuts; ++j)
            acc[j][r] += scale[j] * (wv[j][0] * v.x + wv[j][1] * v.y + wv[j][2] * v.z + wv[j][3] * v.w);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kOuts; ++j)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (r >= rows_here) break;
        const float sum = warp_sum(acc[j][r]);
        if (kSplitK && lane == 0) partial[kSplitK ? warp : 0][j][r] = sum;
        if (!kSplitK && lane == 0 && first_out + j < out) y[int64_t(begin + r0 + r) * out + first_out + j] = sum;
      }
    if (kSplitK) {
      __syncthreads();
      const int j = threadIdx.x / R, r = threadIdx.x % R;
      if (j < kOuts && r < rows_here && first_out + j < out) {
        float sum = 0;
        for (int k = 0; k < kGemvWarps; ++k) sum += partial[k][j][r];
        y[int64_t(begin + r0 + r) * out + first_out + j] = sum;
      }
      __syncthreads();
    }
  }
}

// Below this many blocks a plain GEMV leaves most multiprocessors idle: split the reduction.
constexpr int kGemvSplitBelowBlocks = 128;

template <WeightType T, bool kSplitK>
void launch_gemv_rows(const WeightView* weights, const WeightView& p, const int* row_offsets, int groups, int rows,
                      const float* x, float* y, cudaStream_t stream) {
  const int outs_per_block = kSplitK ? kGemvOutsPerWarp : kGemvWarps * kGemvOutsPerWarp;
  const dim3 grid((p.out + outs_per_block - 1) / outs_per_block, groups);
  const int threads = kGemvWarps * 32;
  if (rows <= 1) gemv_kernel<T, 1, kSplitK><<<grid, threads, 0, stream>>>(weights, row_offsets, rows, p.out, p.in, x, y);
  else if (rows <= 2) gemv_kernel<T, 2, kSplitK><<<grid, threads, 0, stream>>>(weights, row_offsets, rows, p.out, p.in, x, y);
  else if (rows <= 4) gemv_kernel<T, 4, kSplitK><<<grid, threads, 0, stream>>>(weights, row_offsets, rows, p.out, p.in, x, y);
  else gemv_kernel<T, 8, kSplitK><<<grid, threads, 0, stream>>>(weights, row_offsets, rows, p.out, p.in, x, y);
}

template <WeightType T>
void launch_gemv(const WeightView* weights, const WeightView& p, const int* row_offsets, int groups, int rows,
                 const float* x, float* y, cudaStream_t stream) {
  const int plain_blocks = (p.out + kGemvWarps * kGemvOutsPerWarp - 1) / (kGemvWarps * kGemvOutsPerWarp) * groups;
  if (plain_blocks < kGemvSplitBelowBlocks) launch_gemv_rows<T, true>(weights, p, row_offsets, groups, rows, x, y, stream);
  else launch_gemv_rows<T, false>(weights, p, row_offsets, groups, rows, x, y, stream);
}

}  // namespace

bool linear_uses_gemv(const WeightView& p, int rows) {
  return rows <= kGemvMaxRows && rows_load_in_chunks(p, p.in);
}

void grouped_linear(const WeightView* weights, const WeightView& p, const int* row_offsets, int groups, int rows,
                    const float* x, float* y, cudaStream_t stream) {
  if (rows <= 0 || groups <= 0) return;
  if (linear_uses_gemv(p, rows)) {
    with_weight_type(p.type, [&](auto type) {
      launch_gemv<decltype(type)::value>(weights, p, row_offsets, groups, rows, x, y, stream);
    });
  } else {
    dim3 grid((p.out + kOuts - 1) / kOuts, (rows + kRows - 1) / kRows, groups);
    grouped_linear_kernel<<<grid, kThreads, 0, stream>>>(weights, row_offsets, rows, p.out, p.in, x, y);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
