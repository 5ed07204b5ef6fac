// Anonymous memory starting on a 2 MiB boundary and advised for transparent huge pages, for
// data streamed again and again (the CPU backend's weights, the bandwidth probe): 4 KiB pages
// cost such streams TLB misses and scattered prefetch. The kernel may still back it with 4 KiB
// pages when no huge page is free; it works either way. Fresh memory reads as zeros.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace r1 {

class LargePages {
 public:
  LargePages() = default;
  LargePages(size_t bytes, const std::string& what);  // fails naming `what` when it cannot
  ~LargePages();
  LargePages(LargePages&& other) noexcept;
  LargePages& operator=(LargePages&& other) noexcept;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }  // the bytes asked for, rounded up to 2 MiB

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// MemAvailable of /proc/meminfo (free memory plus what the kernel can reclaim, e.g. page
// cache), or free memory where it cannot be read.
size_t available_memory_bytes();

// For std::vector: blocks of 1 MiB or more come 2 MiB-aligned and advised for huge pages, as
// LargePages does them, others from the heap. Work buffers of a long prompt (R1's attention
// holds ~160 MB of them at 256 tokens) otherwise fault in 4 KiB at a time, which in a VM cost
// 0.6 s of a 13 s prefill. Failures throw std::bad_alloc, as std::allocator's do.
void* allocate_large_pages(size_t bytes);
void free_large_pages(void* p, size_t bytes);

template <class T>
struct LargePageAllocator {
  using value_type = T;
  LargePageAllocator() = default;
  template <class U>
  LargePageAllocator(const LargePageAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(allocate_large_pages(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { free_large_pages(p, n * sizeof(T)); }
  bool operator==(const LargePageAllocator&) const = default;
};
template <class T>
using LargeVector = std::vector<T, LargePageAllocator<T>>;

}  // namespace r1
