// Helpers for GPU tests: skip with the reason when no device is present, device copies of
// host vectors, and seeded random inputs.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_backend.h"
#include "kernels/cuda_check.h"

namespace r1 {

#define R1_REQUIRE_GPU()                                                  \
  do {                                                                    \
    std::string reason_;                                                  \
    if (!cuda_device_available(&reason_)) GTEST_SKIP() << "skipped: " << reason_; \
  } while (0)

template <typename T>
class DeviceVector {
 public:
  explicit DeviceVector(const std::vector<T>& host) : size_(host.size()) {
    CUDA_CHECK(cudaMalloc(&data_, std::max<size_t>(1, size_) * sizeof(T)));
    if (size_) CUDA_CHECK(cudaMemcpy(data_, host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  explicit DeviceVector(size_t size, T fill = T()) : DeviceVector(std::vector<T>(size, fill)) {}
  ~DeviceVector() { cudaFree(data_); }
  DeviceVector(const DeviceVector&) = delete;
  T* get() const { return data_; }
  std::vector<T> host() const {
    std::vector<T> out(size_);
    CUDA_CHECK(cudaDeviceSynchronize());
    if (size_) CUDA_CHECK(cudaMemcpy(out.data(), data_, size_ * sizeof(T), cudaMemcpyDeviceToHost));
    return out;
  }

 private:
  T* data_ = nullptr;
  size_t size_;
};

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Largest |a - b| relative to the largest |b| (a scale-free error for whole tensors).
inline double relative_max_error(const std::vector<float>& a, const std::vector<float>& b) {
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) return INFINITY;
    max_diff = std::max(max_diff, double(std::fabs(a[i] - b[i])));
    max_ref = std::max(max_ref, double(std::fabs(b[i])));
  }
  return max_diff / std::max(max_ref, 1e-30);
}

}  // namespace r1
