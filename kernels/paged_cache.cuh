// Addressing of the paged latent cache (PagedCacheOf in launch.h), shared by the kernels that
// write and read it, for either element type.
#pragma once

#include <cstdint>

#include "kernels/launch.h"

namespace r1::cuda {

// The row [kv_lora + rope] of `position` in sequence `sequence`, `width` values per row.
template <typename T>
__device__ inline T* paged_cache_row(const PagedCacheOf<T>& cache, int sequence, int position, int width) {
  const int page = cache.page_table[int64_t(sequence) * cache.max_pages + position / cache.page_size];
  return cache.layer + (int64_t(page) * cache.page_size + position % cache.page_size) * width;
}

}  // namespace r1::cuda
