// Every CUDA runtime call goes through CUDA_CHECK, which names the failing call.
#pragma once

#include <cuda_runtime.h>

#include "common/error.h"

#define CUDA_CHECK(call)                                                                    \
  do {                                                                                      \
    cudaError_t status_ = (call);                                                           \
    if (status_ != cudaSuccess)                                                             \
      ::r1::fail("CUDA error in {} ({}:{}): {}", #call, __FILE__, __LINE__,                 \
                 cudaGetErrorString(status_));                                              \
  } while (0)

// After a kernel launch: reports bad launch configurations at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
