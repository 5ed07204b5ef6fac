// W_UK (the first qk_nope_head_dim rows of each head's block of kv_b) transposed, so that
// absorbing a query into the latent space (q_nope · W_UK, a sum over W_UK's rows) becomes a row
// product like every other weight: streamed once from memory by the SIMD kernels, in their
// fixed order of sums. Built once at load: kv_lora_rank × qk_nope values a head (R1: 8 MB a
// layer in FP8, 0.5 GB for the whole model).
#pragma once

#include <cstdint>
#include <vector>

#include "io/large_pages.h"
#include "io/safetensors.h"
#include "model/weights.h"

namespace r1 {

class TransposedUk {
 public:
  // kv_b: [heads · (nope + v_dim), latent] (this rank's heads).
  TransposedUk(const Linear& kv_b, int heads, int nope, int v_dim, int latent);
  TransposedUk(const TransposedUk&) = delete;  // linear_ points into this object
  TransposedUk& operator=(const TransposedUk&) = delete;

  // W_UK of head h transposed: [latent, nope], row c = column c of the head's W_UK.
  Linear head(int h) const { return output_slice(linear_, h * latent_, (h + 1) * latent_); }

 private:
  int latent_;
  LargePages data_;  // streamed every decode step, like the checkpoint's weights
  std::vector<float> scales_;
  TensorView weight_, scale_inv_;
  Linear linear_;
};

}  // namespace r1
