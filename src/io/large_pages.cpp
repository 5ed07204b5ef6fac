#include "io/large_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <utility>

#include "common/error.h"

namespace r1 {

namespace {
constexpr size_t kLargePage = size_t(2) << 20;

constexpr size_t kHeapLimit = size_t(1) << 20;  // LargePageAllocator: smaller blocks from the heap

size_t rounded(size_t bytes) { return (bytes + kLargePage - 1) / kLargePage * kLargePage; }

// `bytes` rounded up to 2 MiB, 2 MiB-aligned and advised for huge pages; nullptr when the
// mapping fails (errno says why).
void* map_large_pages(size_t bytes) {
  const size_t size = rounded(bytes);
  // Map one page more than needed, then trim both ends to the 2 MiB boundary.
  void* p = mmap(nullptr, size + kLargePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p), aligned = (start + kLargePage - 1) / kLargePage * kLargePage;
  if (aligned > start) munmap(p, aligned - start);
  if (start + kLargePage > aligned) munmap(reinterpret_cast<void*>(aligned + size), start + kLargePage - aligned);
  madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}
}  // namespace

size_t available_memory_bytes() {
  if (FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    unsigned long long kib = 0;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
    std::fclose(f);
    if (kib > 0) return size_t(kib) * 1024;
  }
  return size_t(sysconf(_SC_AVPHYS_PAGES)) * size_t(sysconf(_SC_PAGESIZE));
}

void* allocate_large_pages(size_t bytes) {
  if (bytes < kHeapLimit) return ::operator new(bytes);
  if (void* p = map_large_pages(bytes)) return p;
  throw std::bad_alloc();
}

void free_large_pages(void* p, size_t bytes) {
  if (bytes < kHeapLimit)
    ::operator delete(p);
  else if (p)
    munmap(p, rounded(bytes));
}

LargePages::LargePages(size_t bytes, const std::string& what) {
  if (bytes == 0) return;
  void* p = map_large_pages(bytes);
  if (!p) fail("{}: cannot allocate {:.1f} MiB: {}", what, bytes / 1048576.0, std::strerror(errno));
  data_ = static_cast<uint8_t*>(p);
  size_ = rounded(bytes);
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
