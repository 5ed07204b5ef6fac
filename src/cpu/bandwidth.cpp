#include "cpu/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <vector>

#include "cpu/simd/bf16_kernels.h"
#include "cpu/simd/kernels.h"
#include "io/large_pages.h"

namespace r1 {

namespace {

// The shortest of `tries` runs of part(p) for every p < pool.size(), all threads at once.
// part returns a value that is kept so that the work cannot be optimized away.
double best_seconds(ThreadPool& pool, int tries, const std::function<float(int)>& part) {
  const int parts = pool.size();
  std::vector<float> sums(static_cast<size_t>(parts));
  double best_s = 1e30;
  for (int t = 0; t < tries; ++t) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(parts, [&](int begin, int end, int) {
      for (int p = begin; p < end; ++p) sums[p] += part(p);
    });
    best_s = std::min(best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best_s;
}

}  // namespace

double measure_read_bandwidth_gb_s(ThreadPool& pool, size_t bytes, int tries) {
  LargePages memory(bytes, "bandwidth probe");  // large pages, as the CPU backend's weights sit
  float* buffer = reinterpret_cast<float*>(memory.data());
  const int parts = pool.size();
  const size_t per_part = memory.size() / 4 / parts / 128 * 128;
  pool.parallel_for(parts, [&](int begin, int end, int) {  // each thread touches its own pages
    std::memset(buffer + begin * per_part, 0, (end - begin) * per_part * 4);
  });
  const simd::Kernels& k = simd::best_kernels();
  // One run a thread, two and four side by side (the fast kernels read 4 panels at once): the
  // fastest, so that no kernel reads faster than its yardstick. Here 2 or 4 runs read 10-20%
  // faster than one (35-38 against 40-45 GB/s in the same minute), and the fast decode on panels
  // had read 1.08x a probe of one run; 8 runs read slower.
  double s = 1e30;
  for (int streams : {1, 2, 4})
    s = std::min(s, best_seconds(pool, tries, [&](int p) { return k.read_sum(buffer + p * per_part, per_part, streams); }));
  return double(per_part) * parts * 4 / s / 1e9;
}

double measure_fma_peak_gflop_s(ThreadPool& pool, int tries) {
  const simd::Kernels& k = simd::best_kernels();
  constexpr int64_t kIterations = int64_t(1) << 25;  // ~0.1-0.3 s per try on one core
  const double s = best_seconds(pool, tries, [&](int) { return k.fma_loop(kIterations); });
  return double(kIterations) * simd::kFmaFlopsPerRound * k.lanes * pool.size() / s / 1e9;
}

double measure_bf16_peak_gflop_s(ThreadPool& pool, int tries) {
  const simd::Bf16Kernels* k = simd::bf16_kernels_for(simd::Isa::avx512);
  if (!k) return 0;
  constexpr int64_t kIterations = int64_t(1) << 24;
  const double s = best_seconds(pool, tries, [&](int) { return k->dot_loop(kIterations); });
  return double(kIterations) * simd::kDotFlopsPerRound * pool.size() / s / 1e9;
}

}  // namespace r1
