// Timing on the GPU for the benchmarks: the median of device-event timings, and the copy
// bandwidth every figure is divided by, measured in the same run.
#pragma once

#include <algorithm>
#include <functional>
#include <vector>

#include "kernels/cuda_check.h"

namespace r1 {

// Median time in milliseconds of `fn` over `repeats` runs after `warmup` runs.
inline double time_ms(const std::function<void()>& fn, int warmup = 3, int repeats = 20) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<float> times;
  for (int i = 0; i < repeats; ++i) {
    CUDA_CHECK(cudaEventRecord(start));
    fn();
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

// Device-to-device copy of `bytes`, counting bytes read plus bytes written, in GB/s.
inline double copy_bandwidth_gbs(size_t bytes = size_t(2) << 30) {
  void *a, *b;
  CUDA_CHECK(cudaMalloc(&a, bytes));
  CUDA_CHECK(cudaMalloc(&b, bytes));
  CUDA_CHECK(cudaMemset(a, 1, bytes));
  const double ms = time_ms([&] { CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); });
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / (ms * 1e-3) / 1e9;
}

}  // namespace r1
