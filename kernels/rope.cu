// Interleaved-pair RoPE applied in place to the rope part of every head (r1/rope.h rules).
#include "kernels/cuda_check.h"
#include "r1/rope.h"

namespace r1::cuda {

namespace {

// One thread per (head, pair): the trigonometry is in double precision, as on the CPU.
__global__ void rope_kernel(float* x, int heads, int token_stride, int head_stride, int offset,
                            const int* positions, const float* frequencies, int rope_dim, float magnitude) {
  const int t = blockIdx.x, pairs = rope_dim / 2;
  for (int i = threadIdx.x; i < heads * pairs; i += blockDim.x) {
    const int h = i / pairs, pair = i % pairs;
    rope_rotate_pair(x + int64_t(t) * token_stride + int64_t(h) * head_stride + offset, pair, frequencies[pair],
                     positions[t], magnitude);
  }
}

}  // namespace

void rope_inplace(float* x, int tokens, int heads, int token_stride, int head_stride, int offset,
                  const int* positions, const float* frequencies, int rope_dim, float magnitude,
                  cudaStream_t stream) {
  if (tokens == 0) return;
  rope_kernel<<<tokens, 256, 0, stream>>>(x, heads, token_stride, head_stride, offset, positions,
                                          frequencies, rope_dim, magnitude);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
