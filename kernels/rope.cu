// Interleaved-pair RoPE applied in place to the rope part of every head (r1/rope.h rules).
#include "kernels/cuda_check.h"
#include "r1/rope.h"

namespace r1::cuda {

namespace {

constexpr int kHeadsPerBlock = 16;  // R1's 128 heads: 8 blocks per token, 2 rotations per thread

// A block takes kHeadsPerBlock heads of one token: the token's cos/sin (double-precision
// trigonometry, as on the CPU) are computed into shared memory, then one thread per (head, pair)
// rotates.
__global__ void rope_kernel(float* x, int heads, int token_stride, int head_stride, int offset,
                            const int* positions, const float* frequencies, int rope_dim, float magnitude) {
  extern __shared__ float cos_sin[];  // [pairs][2]
  const int t = blockIdx.x, pairs = rope_dim / 2;
  const int first_head = blockIdx.y * kHeadsPerBlock, heads_here = min(kHeadsPerBlock, heads - first_head);
  for (int i = threadIdx.x; i < pairs; i += blockDim.x)
    rope_cos_sin(frequencies[i], positions[t], magnitude, &cos_sin[2 * i], &cos_sin[2 * i + 1]);
  __syncthreads();
  for (int i = threadIdx.x; i < heads_here * pairs; i += blockDim.x) {
    const int h = first_head + i / pairs, pair = i % pairs;
    rope_rotate(x + int64_t(t) * token_stride + int64_t(h) * head_stride + offset + 2 * pair, cos_sin[2 * pair],
                cos_sin[2 * pair + 1]);
  }
}

}  // namespace

void rope_inplace(float* x, int tokens, int heads, int token_stride, int head_stride, int offset,
                  const int* positions, const float* frequencies, int rope_dim, float magnitude,
                  cudaStream_t stream) {
  if (tokens == 0) return;
  const dim3 grid(tokens, (heads + kHeadsPerBlock - 1) / kHeadsPerBlock);
  rope_kernel<<<grid, 256, rope_dim * sizeof(float), stream>>>(x, heads, token_stride, head_stride, offset, positions,
                                          frequencies, rope_dim, magnitude);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
