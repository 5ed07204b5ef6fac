#include "cuda/fp8_gemm.h"

#include <cublasLt.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>

#include "cuda/cublas_check.h"
#include "cuda/cublaslt_library.h"
#include "cuda/device_memory.h"
#include "kernels/cuda_check.h"

namespace r1::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // cuBLAS's recommendation for Hopper

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
int blocks_of_128(int n) { return (n + 127) / 128; }

std::string shape_text(int rows, int out, int in) {
  return fmt::format(" for y[{}, {}] = x[{}, {}] · W[{}, {}]ᵀ (e4m3; x 1x128-block scales, W 128x128)", rows, out,
                     rows, in, out, in);
}

// The weight's own requirements (no device query).
bool weight_fits(const WeightView& w) {
  return w.type == WeightType::e4m3 && w.block == 128 && w.scale_inv && w.out > 0 && w.in > 0 && w.out % 16 == 0 &&
         w.in % 16 == 0 && aligned16(w.data) && aligned16(w.scale_inv);
}

// One matmul configuration: the descriptors for (out, rows, in) and the algorithm the heuristic
// picked for them. The scale pointers are set on the descriptor before every call.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool has_algo = false;
};

}  // namespace

bool fp8_gemm_supported(const WeightView& w, int rows) {
  if (!weight_fits(w) || rows <= 0) return false;
  const CublasLtLibrary* library = cublaslt_library();
  if (!library || library->cublasLtGetVersion() < 120900) return false;  // VEC128 / BLK128x128 scale modes came in 12.9
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major == 9 && minor == 0;  // the cuBLAS docs list these scale modes for 9.0 only
}

struct Fp8Gemm::State {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulPreference_t preference = nullptr;
  void* workspace = nullptr;
  std::map<std::array<int, 3>, Plan> plans;  // by (out, padded rows, in)
  DeviceBuffer scale_scratch;  // weight scales re-laid with rows of round_up(L, 4), when needed
  DeviceBuffer tail;           // the last group's padded output

  static void destroy(Plan& p) {
    if (p.a) cublaslt().cublasLtMatrixLayoutDestroy(p.a);
    if (p.b) cublaslt().cublasLtMatrixLayoutDestroy(p.b);
    if (p.d) cublaslt().cublasLtMatrixLayoutDestroy(p.d);
    if (p.desc) cublaslt().cublasLtMatmulDescDestroy(p.desc);
  }

  ~State() {
    for (auto& [key, p] : plans) destroy(p);
    if (preference) cublaslt().cublasLtMatmulPreferenceDestroy(preference);
    if (workspace) cudaFree(workspace);
    if (handle) cublaslt().cublasLtDestroy(handle);
  }

  // The weight's scales in the BLK128x128 layout: the column stride (scales per block row) must be
  // a multiple of 4. R1's shapes (in = 7168, 2048, 1536, 512, ...) already have it; others are
  // copied, zero-padded, into a scratch buffer before each matmul (stream order keeps one buffer
  // enough; no cache keyed by pointer that a freed and reused allocation could fool).
  const float* weight_scales(const WeightView& w, cudaStream_t stream) {
    const int l = blocks_of_128(w.in), l4 = (l + 3) / 4 * 4, block_rows = blocks_of_128(w.out);
    if (l == l4) return w.scale_inv;
    float* padded = scale_scratch.reserve_as<float>(size_t(block_rows) * l4, "padded FP8 weight scales");
    CUDA_CHECK(cudaMemsetAsync(padded, 0, size_t(block_rows) * l4 * sizeof(float), stream));
    CUDA_CHECK(cudaMemcpy2DAsync(padded, l4 * sizeof(float), w.scale_inv, l * sizeof(float), l * sizeof(float),
                                 block_rows, cudaMemcpyDeviceToDevice, stream));
    return padded;
  }

  Plan& plan(int out, int rows, int in) {
    auto [it, added] = plans.try_emplace({out, rows, in});
    Plan& p = it->second;
    if (!added) return p;
    try {
      describe(p, out, rows, in);
    } catch (...) {  // leave no half-made plan behind
      destroy(p);
      plans.erase(it);
      throw;
    }
    return p;
  }

  static void describe(Plan& p, int out, int rows, int in) {
    const auto shape = [&] { return shape_text(rows, out, in); };  // called only when a check fails
    const cublasOperation_t transpose = CUBLAS_OP_T, keep = CUBLAS_OP_N;
    const int32_t a_mode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F, b_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), shape());
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose), shape());
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &keep, sizeof keep), shape());
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &a_mode, sizeof a_mode), shape());
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &b_mode, sizeof b_mode), shape());
    // Column-major layouts (rows, cols, leading dimension) of the row-major buffers; see fp8_gemm.h.
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, in, out, in), shape());
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, in, rows, in), shape());
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatrixLayoutCreate(&p.d, CUDA_R_32F, out, rows, out), shape());
  }

  // y[rows, out] = x · Wᵀ for one weight; rows is already a multiple of kFp8RowAlign.
  void matmul(const WeightView& w, int rows, const uint8_t* x_q, const float* x_scales, float* y,
              cudaStream_t stream) {
    const auto shape = [&] { return shape_text(rows, w.out, w.in); };  // called only when a check fails
    const float* w_scales = weight_scales(w, stream);
    if (!aligned16(x_q) || !aligned16(x_scales) || !aligned16(y) || !aligned16(w_scales))
      fail("FP8 GEMM: x, its scales, y and the weight scales must be 16-byte aligned{}", shape());
    Plan& p = plan(w.out, rows, w.in);
    // The heuristic checks the scale pointers too, so they are set before it runs.
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scales, sizeof w_scales), shape());
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scales, sizeof x_scales), shape());
    if (!p.has_algo) {
      cublasLtMatmulHeuristicResult_t result{};
      int found = 0;
      CUBLAS_CHECK_FOR(cublaslt().cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.d, p.d, preference, 1, &result, &found), shape());
      if (found == 0) fail("cuBLAS error: cublasLtMatmulAlgoGetHeuristic found no algorithm: {}{}", cublas_status_name(CUBLAS_STATUS_NOT_SUPPORTED), shape());
      p.algo = result.algo;
      p.has_algo = true;
    }
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK_FOR(cublaslt().cublasLtMatmul(handle, p.desc, &one, w.data, p.a, x_q, p.b, &zero, y, p.d, y, p.d, &p.algo, workspace,
                                    kWorkspaceBytes, stream), shape());
  }
};

Fp8Gemm::Fp8Gemm() : state_(std::make_unique<State>()) {
  CUBLAS_CHECK(cublaslt().cublasLtCreate(&state_->handle));
  CUBLAS_CHECK(cublaslt().cublasLtMatmulPreferenceCreate(&state_->preference));
  const uint64_t bytes = kWorkspaceBytes;
  CUBLAS_CHECK(cublaslt().cublasLtMatmulPreferenceSetAttribute(state_->preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &bytes,
                                                   sizeof bytes));
  state_->workspace = device_alloc(kWorkspaceBytes, "cuBLASLt workspace");
}

Fp8Gemm::~Fp8Gemm() = default;

void Fp8Gemm::linear(const WeightView& w, int rows, const uint8_t* x_q, const float* x_scales, float* y,
                     cudaStream_t stream) {
  const int offsets[2] = {0, rows};
  grouped(&w, offsets, 1, x_q, x_scales, y, stream);
}

void Fp8Gemm::grouped(const WeightView* weights, const int* host_offsets, int groups, const uint8_t* x_q,
                      const float* x_scales, float* y, cudaStream_t stream) {
  if (groups <= 0) return;
  const int end = host_offsets[groups], in = weights[0].in, out = weights[0].out, l = blocks_of_128(in);
  if (!fp8_gemm_supported(weights[0], std::max(end - host_offsets[0], 1)))
    fail("FP8 GEMM: this weight or device is not supported (check fp8_gemm_supported first){}",
         shape_text(end - host_offsets[0], out, in));
  int padded = 0;  // this group's first row in x_q: quantize_fp8's padded_offsets[g]
  for (int g = 0; g < groups; ++g) {
    const int begin = host_offsets[g], rows = host_offsets[g + 1] - begin, rows4 = fp8_padded_count(rows);
    if (rows <= 0) continue;
    const WeightView& w = weights[g];
    if (w.in != in || w.out != out || !weight_fits(w))
      fail("FP8 GEMM: expert {} of {} ({}x{}) differs from expert 0 or is not supported{}", g, groups, w.out, w.in,
           shape_text(rows, out, in));
    const uint8_t* xg = x_q + int64_t(padded) * in;
    const float* sg = x_scales + int64_t(padded) * l;
    float* yg = y + int64_t(begin) * out;
    if (begin + rows4 <= end) {
      state_->matmul(w, rows4, xg, sg, yg, stream);  // pad rows' zeros go to the next groups' rows
    } else {
      float* tail = state_->tail.reserve_as<float>(size_t(rows4) * out, "FP8 GEMM tail rows");
      state_->matmul(w, rows4, xg, sg, tail, stream);
      CUDA_CHECK(cudaMemcpyAsync(yg, tail, size_t(rows) * out * sizeof(float), cudaMemcpyDeviceToDevice, stream));
    }
    padded += rows4;
  }
}

}  // namespace r1::cuda
