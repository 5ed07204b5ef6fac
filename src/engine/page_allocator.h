// Fixed-size pages of the KV cache handed to sequences as they grow and taken back when they
// leave, so the cache holds what sequences actually use rather than max_tokens each.
#pragma once

#include <vector>

namespace r1 {

// Positions per page unless the caller chooses: small enough that a short answer wastes little,
// large enough that the page table stays short.
constexpr int kDefaultPageSize = 64;

class PageAllocator {
 public:
  PageAllocator(int num_pages, int page_size);

  int page_size() const { return page_size_; }
  int num_pages() const { return num_pages_; }
  int free_pages() const { return int(free_.size()); }
  // Pages needed to hold `positions` positions.
  int pages_for(int positions) const { return (positions + page_size_ - 1) / page_size_; }

  // Appends pages to `pages` until it holds `positions` positions. False (and `pages`
  // unchanged) when too few pages are free.
  bool grow(std::vector<int>& pages, int positions);
  // Returns every page of `pages` to the pool and empties it. The most recently freed
  // pages are handed out first (they are the warmest in cache).
  void release(std::vector<int>& pages);

 private:
  int num_pages_, page_size_;
  std::vector<int> free_;  // a stack: back() is handed out next
};

}  // namespace r1
