// The fast numerics' product for BF16 weights (R1's lm_head, routers, BF16 checkpoints) when a
// step has enough rows for the tensor cores to pay: y[rows, out] = bf16(x) · Wᵀ through cuBLASLt,
// float32 accumulation and output. x is rounded to bfloat16 first (to_bf16 in kernels/launch.h).
//   cuBLAS A = W, stored [out][in] (in × out column-major), op T; B = x_bf16 [rows][in], op N;
//   D = y, out × rows column-major = [rows][out] row-major.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <memory>

#include "kernels/launch.h"

namespace r1::cuda {

// Whether Bf16Gemm takes this weight: BF16, `in` a multiple of 8 (16-byte rows), 16-byte aligned,
// and cuBLASLt can be opened.
bool bf16_gemm_supported(const WeightView& w);

// One per stream: holds the cuBLASLt handle, workspace and one plan per (out, rows, in).
class Bf16Gemm {
 public:
  Bf16Gemm();
  ~Bf16Gemm();
  Bf16Gemm(const Bf16Gemm&) = delete;
  Bf16Gemm& operator=(const Bf16Gemm&) = delete;

  void linear(const WeightView& w, int rows, const __nv_bfloat16* x, float* y, cudaStream_t stream);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace r1::cuda
