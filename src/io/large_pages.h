// Anonymous memory starting on a 2 MiB boundary and advised for transparent huge pages, for
// data streamed again and again (the CPU backend's weights, the bandwidth probe): 4 KiB pages
// cost such streams TLB misses and scattered prefetch. The kernel may still back it with 4 KiB
// pages when no huge page is free; it works either way. Fresh memory reads as zeros.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

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

}  // namespace r1
