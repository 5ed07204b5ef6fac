// The greedy choice of each row of logits on the device, as greedy_token (src/model/greedy.h)
// makes it on the host: the largest value, the lowest index among equal maxima. Only the ids
// leave the GPU instead of whole rows of the vocabulary.
#include <climits>

#include "kernels/cuda_check.h"
#include "kernels/launch.h"

namespace r1::cuda {

namespace {

constexpr int kThreads = 512;

struct Best {
  float value;
  int index;  // INT_MAX: nothing above -inf seen
};

__device__ Best better(Best a, Best b) {
  return (b.value > a.value || (b.value == a.value && b.index < a.index)) ? b : a;
}

__global__ void argmax_kernel(const float* logits, int vocab, int* out) {
  const float* row = logits + int64_t(blockIdx.x) * vocab;
  Best best{-INFINITY, INT_MAX};
  bool nan = false;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {  // ascending: a later equal value loses
    const float v = row[i];
    if (v != v) nan = true;
    else if (v > best.value) best = {v, i};
  }
  for (int offset = 16; offset > 0; offset /= 2)
    best = better(best, {__shfl_xor_sync(0xffffffffu, best.value, offset), __shfl_xor_sync(0xffffffffu, best.index, offset)});
  __shared__ Best warp_best[kThreads / 32];
  if (threadIdx.x % 32 == 0) warp_best[threadIdx.x / 32] = best;
  nan = __syncthreads_or(nan);
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w) best = better(best, warp_best[w]);
    out[blockIdx.x] = nan ? kArgmaxNan : best.index == INT_MAX ? kArgmaxAllNegativeInfinity : best.index;
  }
}

}  // namespace

void argmax_rows(const float* logits, int rows, int vocab, int* out, cudaStream_t stream) {
  if (rows == 0) return;
  argmax_kernel<<<rows, kThreads, 0, stream>>>(logits, vocab, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace r1::cuda
