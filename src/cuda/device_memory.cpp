#include "cuda/device_memory.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "kernels/cuda_check.h"

namespace r1::cuda {

namespace {
uint64_t allocations = 0;
}

uint64_t device_allocation_count() { return allocations; }

void* device_alloc(size_t bytes, const std::string& what) {
  void* p = nullptr;
  if (bytes == 0) return nullptr;
  ++allocations;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free allocation error
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    fail("out of GPU memory: {} needs {:.1f} MiB, {:.1f} MiB free of {:.1f} MiB", what, bytes / 1048576.0,
         free_bytes / 1048576.0, total_bytes / 1048576.0);
  }
  return p;
}

DeviceBuffer::~DeviceBuffer() {
  if (data_) cudaFree(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), capacity_(std::exchange(other.capacity_, 0)) {}

void* DeviceBuffer::reserve(size_t bytes, const std::string& what) {
  if (bytes <= capacity_) return data_;
  const size_t grown = std::max(bytes, capacity_ + capacity_ / 2);
  if (data_) {
    CUDA_CHECK(cudaDeviceSynchronize());  // queued kernels may still read the old buffer
    CUDA_CHECK(cudaFree(data_));
  }
  data_ = nullptr;
  capacity_ = 0;
  data_ = device_alloc(grown, what);
  capacity_ = grown;
  return data_;
}

Uploader::Uploader(size_t chunk_bytes) : chunk_(chunk_bytes) {
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  for (int i = 0; i < 2; ++i) {
    CUDA_CHECK(cudaMallocHost(&staging_[i], chunk_));
    CUDA_CHECK(cudaEventCreateWithFlags(&done_[i], cudaEventDisableTiming));
  }
}

Uploader::~Uploader() {
  cudaStreamSynchronize(stream_);
  for (int i = 0; i < 2; ++i) {
    cudaFreeHost(staging_[i]);
    cudaEventDestroy(done_[i]);
  }
  cudaStreamDestroy(stream_);
}

void Uploader::upload(void* device, const void* host, size_t bytes) {
  for (size_t offset = 0; offset < bytes; offset += chunk_) {
    const size_t n = std::min(chunk_, bytes - offset);
    CUDA_CHECK(cudaEventSynchronize(done_[next_]));  // this staging buffer's last copy is done
    std::memcpy(staging_[next_], static_cast<const char*>(host) + offset, n);
    CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(device) + offset, staging_[next_], n,
                               cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaEventRecord(done_[next_], stream_));
    next_ ^= 1;
  }
}

void Uploader::finish() { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace r1::cuda
