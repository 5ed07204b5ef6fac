// Interleaved-pair RoPE applied in place to the rope part of every head (r1/rope.h rules).
#include "kernels/cuda_check.h"
#include "r1/rope.h"

namespace r1::cuda {

namespace {

// The token's cos/sin (double-precision trigonometry, as on the CPU) are computed once into
// shared memory, then one thread per (head, pair) rotates.
__global__ void rope_kernel(float* x, int heads, int token_stride, int head_stride, int offset,
                            const int* positions, const float* frequencies, int rope_dim, float magnitude) {
  extern __shared__ float cos_sin[];  // [pairs][2]
  const int t = blockIdx.x, pairs = rope_dim / 2;
  for (int i = threadIdx.x; i < pairs; i += blockDim.x)
    rope_cos_sin(frequencies[i], positions[t], magnitude, &cos_sin[2 * i], &cos_sin[2 * i + 1]);
  __syncthreads();
  for (int i = threadIdx.x; i < heads * pairs; i += blockDim.x) {
    const int h = i / pairs, pair = i % pairs;
    rope_rotate(x + int64_t(t) * token_stride + int64_t(h) * head_stride + offset + 2 * pair, cos_sin[2 * pair],
                cos_sin[2 * pair + 1]);
  }
}

}  // namespace

void rope_inplace(float* x, int tokens, int heads, int token_stride, int head_stride, int offset,
                  const int* positions, const float* frequencies, int rope_dim, float magnitude,
                  cudaStream_t stream) {
  if (tokens == 0) return;
  rope_kernel<<<tokens, 256, rope_dim * sizeof(float), stream>>>(x, heads, token_stride, head_stride, offset, positions,
                                          frequencies, rope_dim, magnitude);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
