// Every cuBLAS / cuBLASLt call goes through CUBLAS_CHECK, which names the failing call and the
// status (like CUDA_CHECK in kernels/cuda_check.h); CUBLAS_CHECK_FOR adds what was being done.
#pragma once

#include <cublasLt.h>

#include <string>

#include "common/error.h"

namespace r1 {

// The status's enumerator name. Written out here because cublasGetStatusName lives in libcublas,
// which code using only libcublasLt does not link.
inline const char* cublas_status_name(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unknown cuBLAS status";
}

}  // namespace r1

// `context` is a std::string (or string literal) appended to the message, e.g. the GEMM's shape.
#define CUBLAS_CHECK_FOR(call, context)                                                             \
  do {                                                                                              \
    const cublasStatus_t status_ = (call);                                                          \
    if (status_ != CUBLAS_STATUS_SUCCESS)                                                           \
      ::r1::fail("cuBLAS error in {} ({}:{}): {}{}", #call, __FILE__, __LINE__,                     \
                 ::r1::cublas_status_name(status_), std::string(context));                          \
  } while (0)

#define CUBLAS_CHECK(call) CUBLAS_CHECK_FOR(call, "")
