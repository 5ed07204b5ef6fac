// A whole file in read-only memory; tensors are views into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/large_pages.h"

namespace r1 {

// mapped: the file's pages themselves (mmap; nothing copied, shared with the page cache: what a
// GPU backend uploads from). large_pages: read into 2 MiB-aligned anonymous memory advised for
// transparent huge pages — the CPU backend streams every weight each token, and the page cache's
// 4 KiB pages cost it TLB misses and scattered prefetch (docs/PERFORMANCE.md measures both).
enum class Residency { mapped, large_pages };

class MappedFile {
 public:
  explicit MappedFile(const std::string& path, Residency residency = Residency::mapped);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // The bytes are this process's own copy (Residency::large_pages), not the file's pages.
  bool private_copy() const { return size_ > 0 && data_ == copy_.data(); }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;  // the file mapping, or copy_'s memory
  size_t size_ = 0;
  LargePages copy_;  // Residency::large_pages: the file's bytes
};

}  // namespace r1
