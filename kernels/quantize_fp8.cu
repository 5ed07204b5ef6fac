// Activation quantization for the FP8 GEMM (layout and rule in kernels/launch.h). Memory-bound:
// each warp reads one 128-column block of one row (a float4 per lane), reduces its amax across the
// warp, and writes 128 e4m3 codes (4 bytes per lane) and one scale.
#include <cuda_fp8.h>

#include <algorithm>

#include "kernels/cuda_check.h"
#include "kernels/weight_decode.cuh"

namespace r1::cuda {

namespace {

constexpr int kWarps = 4;  // 128-column blocks per thread block

// Padded group starts from the (device) row offsets, on the device so that quantization need not
// wait for the offsets to reach the host. One thread: at most a few hundred groups.
__global__ void padded_offsets_kernel(const int* row_offsets, int groups, int rows, int* padded) {
  int sum = 0;
  padded[0] = 0;
  for (int g = 0; g < groups; ++g) {
    sum += fp8_padded_count(row_offsets ? row_offsets[g + 1] - row_offsets[g] : rows);
    padded[g + 1] = sum;
  }
}

// One thread block per padded row (grid x) and kWarps column blocks per grid y step.
// kVector: `in` is a multiple of 4, so each lane's 4 columns are one aligned float4 and 4 bytes.
template <bool kVector>
__global__ void __launch_bounds__(kWarps * 32)
quantize_kernel(const float* __restrict__ x, int rows, int in, const int* row_offsets, int groups,
                const int* __restrict__ padded, uint8_t* __restrict__ x_q, float* __restrict__ scales) {
  const int prow = blockIdx.x;
  if (prow >= padded[groups]) return;  // the grid covers the bound, not the actual padded count
  // This row's group: the last g with padded[g] <= prow. An empty group g has padded[g] ==
  // padded[g + 1], so the last such g is never empty.
  int g = 0, hi = groups - 1;
  while (g < hi) {
    const int mid = (g + hi + 1) / 2;
    if (padded[mid] <= prow) g = mid;
    else hi = mid - 1;
  }
  const int local = prow - padded[g];
  const int begin = row_offsets ? row_offsets[g] : 0;
  const int count = (row_offsets ? row_offsets[g + 1] : rows) - begin;
  const int stride = padded[g + 1] - padded[g];  // the group's scale rows: its padded row count
  const float* src = local < count ? x + int64_t(begin + local) * in : nullptr;  // nullptr: a pad row
  const int blocks = (in + 127) / 128;
  const int lane = threadIdx.x % 32;

  for (int b = blockIdx.y * kWarps + threadIdx.x / 32; b < blocks; b += gridDim.y * kWarps) {
    const int col = b * 128 + lane * 4;
    float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (src) {
      if (kVector) {
        if (col < in) {
          const float4 f = *reinterpret_cast<const float4*>(src + col);
          v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
        }
      } else {
        for (int i = 0; i < 4; ++i)
          if (col + i < in) v[i] = src[col + i];
      }
    }
    float amax = fmaxf(fmaxf(fabsf(v[0]), fabsf(v[1])), fmaxf(fabsf(v[2]), fabsf(v[3])));
    amax = warp_max(amax);
    float s = amax / 448.0f;  // IEEE division, as in the CPU reference: the codes must match it
    if (s == 0.0f) s = 1.0f;  // an all-zero block: any scale gives zero codes
    // Hardware RN + saturate-to-finite conversion; r1::float_to_e4m3 is the same rule on the host.
    const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(v[0] / s, v[1] / s), __NV_SATFINITE, __NV_E4M3);
    const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(v[2] / s, v[3] / s), __NV_SATFINITE, __NV_E4M3);
    const uint32_t codes = lo | hi << 16;  // column col in the lowest byte
    uint8_t* dst = x_q + int64_t(prow) * in + col;
    if (kVector) {
      if (col < in) *reinterpret_cast<uint32_t*>(dst) = codes;
    } else {
      for (int i = 0; i < 4; ++i)
        if (col + i < in) dst[i] = uint8_t(codes >> (8 * i));
    }
    if (lane == 0) scales[int64_t(padded[g]) * blocks + int64_t(b) * stride + local] = s;
  }
}

}  // namespace

void quantize_fp8(const float* x, int rows, int in, const int* row_offsets, int groups, int* padded_offsets,
                  uint8_t* x_q, float* scales, cudaStream_t stream) {
  if (groups <= 0 || in <= 0) return;
  if (!row_offsets) groups = 1;
  padded_offsets_kernel<<<1, 1, 0, stream>>>(row_offsets, groups, rows, padded_offsets);
  CUDA_CHECK_LAUNCH();
  const int bound = fp8_padded_rows_bound(rows, groups);
  if (bound <= 0) return;
  const int blocks = (in + 127) / 128;
  const dim3 grid(bound, std::min((blocks + kWarps - 1) / kWarps, 65535));
  if (in % 4 == 0)
    quantize_kernel<true><<<grid, kWarps * 32, 0, stream>>>(x, rows, in, row_offsets, groups, padded_offsets, x_q, scales);
  else
    quantize_kernel<false><<<grid, kWarps * 32, 0, stream>>>(x, rows, in, row_offsets, groups, padded_offsets, x_q, scales);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
