// Interleaved-pair RoPE applied in place to the rope part of every head (r1/rope.h rules).
#include "kernels/cuda_check.h"
#include "r1/rope.h"

namespace r1::cuda {

namespace {

__global__ void rope_kernel(float* x, int heads, int token_stride, int head_stride, int offset,
                            const int* positions, const float* frequencies, int rope_dim, float magnitude) {
  const int t = blockIdx.x;
  for (int h = threadIdx.x; h < heads; h += blockDim.x)
    apply_rope(x + int64_t(t) * token_stride + int64_t(h) * head_stride + offset, frequencies, rope_dim,
               positions[t], magnitude);
}

}  // namespace

void rope_inplace(float* x, int tokens, int heads, int token_stride, int head_stride, int offset,
                  const int* positions, const float* frequencies, int rope_dim, float magnitude,
                  cudaStream_t stream) {
  if (tokens == 0) return;
  rope_kernel<<<tokens, 128, 0, stream>>>(x, heads, token_stride, head_stride, offset, positions,
                                          frequencies, rope_dim, magnitude);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
