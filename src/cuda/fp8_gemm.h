// DeepSeek's `fast` numerics for the linear layers: y = x · Wᵀ with x quantized to e4m3 per
// 1×128 block (kernels/launch.h: quantize_fp8), W the checkpoint's e4m3 weight with its 128×128
// block scales, products accumulated in float32 and y written as float32 (cuBLASLt's D type is
// CUDA_R_32F: no BF16 rounding on the way out). The GEMM is cuBLASLt's block-scaled FP8 matmul
// (cuBLAS 12.9+, Hopper only):
//   cuBLAS A = W, stored [out][in] (in × out column-major), op T; scale mode BLK128x128_32F, whose
//     scale tensor is K-major with a column stride that must be a multiple of 4 — the checkpoint's
//     scale_inv [ceil(out/128)][ceil(in/128)] as it is when ceil(in/128) % 4 == 0 (all of R1's
//     shapes), else a zero-padded copy made before each matmul;
//   cuBLAS B = x_q, stored [rows][in] (in × rows column-major), op N ("TN", the only FP8 layout on
//     Hopper); scale mode VEC128_32F, whose scale tensor is N-major (token index fastest), as
//     quantize_fp8 writes it;
//   D = y, out × rows column-major = [rows][out] row-major.
// cuBLASLt wants M and N (here out and the row count) to be multiples of 4: quantize_fp8 pads each
// group's rows to fp8_padded_count(n) and every matmul runs on the padded count. The pad rows'
// results (zeros) land on the following group's first rows, which that group's matmul, queued after
// on the same stream, overwrites; the last group's would land past the end of y, so that group
// writes into a scratch buffer from which its real rows are copied.
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "kernels/launch.h"

namespace r1::cuda {

// Whether Fp8Gemm can run this weight: e4m3 with 128×128 scales, `in` and `out` multiples of 16
// (16-byte rows for FP8 and for the float32 output), 16-byte aligned data and scales, rows > 0,
// and the current device and library support the block-scaled modes (compute capability 9.0,
// cuBLASLt 12.9 or newer). Otherwise use grouped_linear (the exact float32 path).
bool fp8_gemm_supported(const WeightView& w, int rows);

// Holds the cuBLASLt handle, its workspace, and one matmul configuration (descriptors and the
// heuristic's algorithm) per (out, padded rows, in) seen. One per device and thread: not
// thread-safe. Every call only queues work on `stream` (no synchronization), and its scratch
// buffers are reused by the next call, so give one Fp8Gemm one stream.
class Fp8Gemm {
 public:
  Fp8Gemm();  // on the current device
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  // y[rows, out] = x · Wᵀ, x_q/x_scales from quantize_fp8 with one group of `rows`.
  void linear(const WeightView& w, int rows, const uint8_t* x_q, const float* x_scales, float* y,
              cudaStream_t stream);

  // MoE experts: rows [host_offsets[g], host_offsets[g+1]) of y = the same rows of x times
  // weights[g]ᵀ, for each of `groups` experts (one matmul per non-empty expert; empty experts are
  // skipped). x_q/x_scales from quantize_fp8 with the same offsets. weights: host array of the
  // experts' views, all of one shape. host_offsets live on the HOST: the caller copies the device
  // expert offsets back, which costs one stream synchronization per call site (fine for prefill;
  // it rules out graph capture). Rows outside [host_offsets[0], host_offsets[groups]) are not
  // written.
  void grouped(const WeightView* weights, const int* host_offsets, int groups, const uint8_t* x_q,
               const float* x_scales, float* y, cudaStream_t stream);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace r1::cuda
