#include "cuda/bf16_gemm.h"

#include <fmt/format.h>

#include <array>
#include <map>

#include "cuda/cublas_check.h"
#include "cuda/cublaslt_library.h"
#include "cuda/device_memory.h"

namespace r1::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

}  // namespace

bool bf16_gemm_supported(const WeightView& w) {
  return w.type == WeightType::bf16 && w.in % 8 == 0 && w.out > 0 && aligned16(w.data) && cublaslt_library();
}

struct Bf16Gemm::State {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulPreference_t preference = nullptr;
  void* workspace = nullptr;
  std::map<std::array<int, 3>, Plan> plans;  // by (out, rows, in)

  ~State() {
    const CublasLtLibrary& lt = cublaslt();
    for (auto& [key, p] : plans) {
      if (p.a) lt.cublasLtMatrixLayoutDestroy(p.a);
      if (p.b) lt.cublasLtMatrixLayoutDestroy(p.b);
      if (p.d) lt.cublasLtMatrixLayoutDestroy(p.d);
      if (p.desc) lt.cublasLtMatmulDescDestroy(p.desc);
    }
    if (preference) lt.cublasLtMatmulPreferenceDestroy(preference);
    if (handle) lt.cublasLtDestroy(handle);
    cudaFree(workspace);
  }

  const Plan& plan(int out, int rows, int in) {
    auto [it, added] = plans.try_emplace({out, rows, in});
    Plan& p = it->second;
    if (!added) return p;
    const CublasLtLibrary& lt = cublaslt();
    const std::string shape = fmt::format(" for y[{}, {}] = bf16 x[{}, {}] · W[{}, {}]ᵀ", rows, out, rows, in, out, in);
    try {
      const cublasOperation_t transpose = CUBLAS_OP_T, keep = CUBLAS_OP_N;
      CUBLAS_CHECK_FOR(lt.cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), shape);
      CUBLAS_CHECK_FOR(lt.cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose), shape);
      CUBLAS_CHECK_FOR(lt.cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &keep, sizeof keep), shape);
      CUBLAS_CHECK_FOR(lt.cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, in, out, in), shape);
      CUBLAS_CHECK_FOR(lt.cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, in, rows, in), shape);
      CUBLAS_CHECK_FOR(lt.cublasLtMatrixLayoutCreate(&p.d, CUDA_R_32F, out, rows, out), shape);
      cublasLtMatmulHeuristicResult_t result{};
      int found = 0;
      CUBLAS_CHECK_FOR(lt.cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.d, p.d, preference, 1, &result, &found), shape);
      if (found == 0) fail("cuBLASLt found no algorithm{}", shape);
      p.algo = result.algo;
    } catch (...) {  // leave no half-made plan behind
      plans.erase(it);
      throw;
    }
    return p;
  }
};

Bf16Gemm::Bf16Gemm() : state_(std::make_unique<State>()) {
  const CublasLtLibrary& lt = cublaslt();
  CUBLAS_CHECK(lt.cublasLtCreate(&state_->handle));
  CUBLAS_CHECK(lt.cublasLtMatmulPreferenceCreate(&state_->preference));
  const uint64_t bytes = kWorkspaceBytes;
  CUBLAS_CHECK(lt.cublasLtMatmulPreferenceSetAttribute(state_->preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &bytes, sizeof bytes));
  state_->workspace = device_alloc(kWorkspaceBytes, "cuBLASLt workspace");
}

Bf16Gemm::~Bf16Gemm() = default;

void Bf16Gemm::linear(const WeightView& w, int rows, const __nv_bfloat16* x, float* y, cudaStream_t stream) {
  if (rows <= 0) return;
  if (!bf16_gemm_supported(w)) fail("BF16 GEMM: weight {}x{} not supported (check bf16_gemm_supported first)", w.out, w.in);
  const Plan& p = state_->plan(w.out, rows, w.in);
  const float one = 1.0f, zero = 0.0f;
  CUBLAS_CHECK(cublaslt().cublasLtMatmul(state_->handle, p.desc, &one, w.data, p.a, x, p.b, &zero, y, p.d, y, p.d,
                                         &p.algo, state_->workspace, kWorkspaceBytes, stream));
}

}  // namespace r1::cuda
