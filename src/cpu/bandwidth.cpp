#include "cpu/bandwidth.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "cpu/simd/kernels.h"

namespace r1 {

double measure_read_bandwidth_gb_s(ThreadPool& pool, size_t bytes, int tries) {
  constexpr size_t kPage = size_t(2) << 20;  // 2 MiB: large pages, as the weights should sit
  bytes = (bytes + kPage - 1) / kPage * kPage;
  float* buffer = static_cast<float*>(std::aligned_alloc(kPage, bytes));
  if (!buffer) fail("bandwidth probe: cannot allocate {} bytes", bytes);
  madvise(buffer, bytes, MADV_HUGEPAGE);
  const int parts = pool.size();
  const size_t floats = bytes / 4, per_part = floats / parts / 128 * 128;
  pool.parallel_for(parts, [&](int begin, int end, int) {  // each thread touches its own pages
    std::memset(buffer + begin * per_part, 0, (end - begin) * per_part * 4);
  });
  const simd::Kernels& k = simd::best_kernels();
  std::vector<float> sums(static_cast<size_t>(parts));  // kept so the reads cannot be optimized away
  double best_s = 1e30;
  for (int t = 0; t < tries; ++t) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(parts, [&](int begin, int end, int) {
      for (int p = begin; p < end; ++p) sums[p] += k.read_sum(buffer + p * per_part, per_part);
    });
    best_s = std::min(best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::free(buffer);
  return double(per_part) * parts * 4 / best_s / 1e9;
}

double measure_fma_peak_gflop_s(ThreadPool& pool, int tries) {
  const simd::Kernels& k = simd::best_kernels();
  constexpr int64_t kIterations = int64_t(1) << 25;  // ~0.1-0.3 s per try on one core
  const int parts = pool.size();
  std::vector<float> sums(static_cast<size_t>(parts));
  double best_s = 1e30;
  for (int t = 0; t < tries; ++t) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(parts, [&](int begin, int end, int) {
      for (int p = begin; p < end; ++p) sums[p] += k.fma_loop(kIterations);
    });
    best_s = std::min(best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return double(kIterations) * simd::kFmaFlopsPerRound * k.lanes * parts / best_s / 1e9;
}

}  // namespace r1
