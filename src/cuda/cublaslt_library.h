// cuBLASLt opened on first use (dlopen) instead of linked: the library is hundreds of MB, and
// mapping it at startup cost every r1 command ~200 MB of resident memory, CPU runs included.
// Only the fast numerics' FP8 GEMM (src/cuda/fp8_gemm.cpp) needs it.
#pragma once

#include <cublasLt.h>

#include <string>

namespace r1::cuda {

// The entry points r1 uses, named as in cublasLt.h.
struct CublasLtLibrary {
#define R1_CUBLASLT_FUNCTIONS(X)                                                                        \
  X(cublasLtGetVersion) X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtMatmul) X(cublasLtMatmulAlgoGetHeuristic) \
  X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescDestroy) X(cublasLtMatmulDescSetAttribute)            \
  X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy)                                 \
  X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatrixLayoutCreate) X(cublasLtMatrixLayoutDestroy)
#define R1_CUBLASLT_MEMBER(name) decltype(&::name) name = nullptr;
  R1_CUBLASLT_FUNCTIONS(R1_CUBLASLT_MEMBER)
#undef R1_CUBLASLT_MEMBER
};

// The loaded library, or nullptr when it cannot be opened (then *why, if given, says why).
const CublasLtLibrary* cublaslt_library(std::string* why = nullptr);

// The loaded library; fails with the reason when it cannot be opened.
const CublasLtLibrary& cublaslt();

}  // namespace r1::cuda
