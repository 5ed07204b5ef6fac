#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/error.h"

namespace r1 {

namespace {

// drop_cache: let the page cache forget each chunk once copied, so that the memory it held
// goes to the next large pages rather than having to be reclaimed and compacted for them.
void read_all(int fd, uint8_t* dst, size_t size, const std::string& path, bool drop_cache) {
  constexpr size_t kChunk = size_t(64) << 20;
  for (size_t done = 0; done < size;) {
    const ssize_t n = pread(fd, dst + done, std::min(kChunk, size - done), off_t(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("{}: read failed at byte {} of {}: {}", path, done, size, n < 0 ? std::strerror(errno) : "unexpected end");
    if (drop_cache) posix_fadvise(fd, off_t(done), off_t(n), POSIX_FADV_DONTNEED);
    done += size_t(n);
  }
}

}  // namespace

MappedFile::MappedFile(const std::string& path, Residency residency) : path_(path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    fail("{}: not a regular file", path);
  }
  size_ = size_t(st.st_size);
  // Anonymous memory cannot be dropped and re-read like the page cache: a file larger than the
  // memory still available stays mapped (slower, but it runs).
  const size_t available = available_memory_bytes();
  if (residency == Residency::large_pages && size_ > available) {
    std::fprintf(stderr, "%s: %.1f GiB, more than the %.1f GiB of memory available: mapped instead of read into large pages\n",
                 path.c_str(), size_ / 1073741824.0, available / 1073741824.0);
    residency = Residency::mapped;
  }
  if (size_ > 0 && residency == Residency::large_pages) {
    try {
      copy_ = LargePages(size_, path);
      // A copy and a cached file that do not both fit: keep the copy only.
      read_all(fd, copy_.data(), size_, path, /*drop_cache=*/2 * size_ > available);
    } catch (...) {
      close(fd);
      throw;
    }
    // The copy stays writable: made read-only (mprotect), every page's first read afterwards cost
    // a page-table rebuild on these VMs (a paravirtualized guest), reading at 3 GB/s instead of
    // 20 on one core, and an expert first read in decode took 7.5 ms instead of 1.2.
    data_ = copy_.data();
  } else if (size_ > 0) {
    void* p = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      close(fd);
      fail("{}: cannot map: {}", path, std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  close(fd);  // the mapping keeps the file alive
}

MappedFile::~MappedFile() {
  if (data_ && !copy_.data()) munmap(const_cast<uint8_t*>(data_), size_);  // the file mapping
}

}  // namespace r1
