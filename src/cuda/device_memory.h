// Device allocations that say what they were for when memory runs out.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace r1::cuda {

// cudaMalloc that fails with "needed vs free" numbers and the purpose on out-of-memory.
void* device_alloc(size_t bytes, const std::string& what);
// How many allocations device_alloc has made: a change says buffers may have moved (captured
// CUDA graphs hold their addresses).
uint64_t device_allocation_count();

// A growable device buffer; contents are not kept across growth.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept;

  void* reserve(size_t bytes, const std::string& what);  // at least `bytes`; may reallocate
  template <typename T>
  T* reserve_as(size_t count, const std::string& what) {
    return static_cast<T*>(reserve(count * sizeof(T), what));
  }
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

// Copies host memory to the device through pinned staging buffers, overlapping the host-side
// copy of one chunk with the transfer of the previous one.
class Uploader {
 public:
  explicit Uploader(size_t chunk_bytes = size_t(64) << 20);
  ~Uploader();
  void upload(void* device, const void* host, size_t bytes);
  void finish();  // waits for every upload

 private:
  size_t chunk_;
  void* staging_[2] = {};
  cudaEvent_t done_[2] = {};
  cudaStream_t stream_ = nullptr;
  int next_ = 0;
};

}  // namespace r1::cuda
