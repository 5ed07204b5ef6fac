#include "engine/page_allocator.h"

#include "common/error.h"

namespace r1 {

PageAllocator::PageAllocator(int num_pages, int page_size) : num_pages_(num_pages), page_size_(page_size) {
  if (num_pages <= 0 || page_size <= 0) fail("KV cache: {} pages of {} positions is not a cache", num_pages, page_size);
  // Page 0 on top, so a fresh pool hands out pages in ascending order.
  for (int page = num_pages - 1; page >= 0; --page) free_.push_back(page);
}

bool PageAllocator::grow(std::vector<int>& pages, int positions) {
  const int needed = pages_for(positions) - int(pages.size());
  if (needed <= 0) return true;
  if (needed > free_pages()) return false;
  for (int i = 0; i < needed; ++i) {
    pages.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void PageAllocator::release(std::vector<int>& pages) {
  for (auto page = pages.rbegin(); page != pages.rend(); ++page) free_.push_back(*page);
  pages.clear();
}

}  // namespace r1
