#include "io/large_pages.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/error.h"

namespace r1 {

namespace {
constexpr size_t kLargePage = size_t(2) << 20;
}

LargePages::LargePages(size_t bytes, const std::string& what) {
  if (bytes == 0) return;
  const size_t rounded = (bytes + kLargePage - 1) / kLargePage * kLargePage;
  // Map one page more than needed, then trim both ends to the 2 MiB boundary.
  void* p = mmap(nullptr, rounded + kLargePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) fail("{}: cannot allocate {:.1f} MiB: {}", what, bytes / 1048576.0, std::strerror(errno));
  const uintptr_t start = reinterpret_cast<uintptr_t>(p), aligned = (start + kLargePage - 1) / kLargePage * kLargePage;
  if (aligned > start) munmap(p, aligned - start);
  if (start + kLargePage > aligned) munmap(reinterpret_cast<void*>(aligned + rounded), start + kLargePage - aligned);
  madvise(reinterpret_cast<void*>(aligned), rounded, MADV_HUGEPAGE);
  data_ = reinterpret_cast<uint8_t*>(aligned);
  size_ = rounded;
}

LargePages::~LargePages() {
  if (data_) munmap(data_, size_);
}

LargePages::LargePages(LargePages&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

LargePages& LargePages::operator=(LargePages&& other) noexcept {
  if (this != &other) {
    if (data_) munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

}  // namespace r1
