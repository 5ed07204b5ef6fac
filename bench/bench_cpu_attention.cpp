// How fast the CPU's MLA attention core (src/cpu/mla_core.h) runs one token's block of heads
// at R1's shapes (64 heads of a 128-head layer, cached rows of 512 latents + 64 rope), one
// thread: exact numerics (float32 rows) against the one-thread FMA peak, fast numerics (BF16
// rows, Bf16Kernels::mla_attend) against the one-thread BF16 dot-product peak, both measured in
// the same run; with the cached rows in the caches (a prefill chunk's tokens reuse them) and
// coming from memory (decode). Rows sit in pages of 64 in shuffled order, as a paged cache holds
// them. Not a test; figures go to docs/PERFORMANCE.md.
//
//   build/bench/bench_cpu_attention [--context N ...]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>
#include <vector>

#include "cpu/bandwidth.h"
#include "cpu/mla_core.h"
#include "cpu/simd/bf16_kernels.h"
#include "cpu/thread_pool.h"
#include "r1/number_formats.h"

using namespace r1;

namespace {

constexpr int kHeads = kMlaCoreHeads, kLatent = 512, kRope = 64, kCacheDim = kLatent + kRope, kPageRows = 64;

// `copies` caches of `context` rows each, their pages shuffled together; the same in BF16.
struct Caches {
  std::vector<float> storage;
  std::vector<uint16_t> bf16_storage;
  std::vector<std::vector<const float*>> rows;  // [copy][position]
  std::vector<std::vector<const uint16_t*>> bf16_rows;
};
Caches make_caches(int context, int copies, std::mt19937& rng) {
  const int pages_each = (context + kPageRows - 1) / kPageRows;
  Caches c;
  c.storage.resize(size_t(pages_each) * copies * kPageRows * kCacheDim);
  std::normal_distribution<float> normal;
  for (float& x : c.storage) x = normal(rng);
  for (float x : c.storage) c.bf16_storage.push_back(float_to_bf16(x));
  std::vector<int> order(size_t(pages_each) * copies);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  c.rows.resize(size_t(copies));
  c.bf16_rows.resize(size_t(copies));
  for (int copy = 0; copy < copies; ++copy)
    for (int j = 0; j < context; ++j) {
      const size_t at = (size_t(order[size_t(copy) * pages_each + j / kPageRows]) * kPageRows + j % kPageRows) * kCacheDim;
      c.rows[size_t(copy)].push_back(c.storage.data() + at);
      c.bf16_rows[size_t(copy)].push_back(c.bf16_storage.data() + at);
    }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU MLA attention core throughput, one thread"};
  std::vector<int> contexts{64, 512, 2048, 8192};
  app.add_option("--context", contexts, "cached rows attended to (default 64 512 2048 8192)")->check(CLI::Range(1, 1 << 20));
  CLI11_PARSE(app, argc, argv);
  ThreadPool one(1);
  const double fma_peak = measure_fma_peak_gflop_s(one), bf16_peak = measure_bf16_peak_gflop_s(one);
  const simd::Bf16Kernels* fast = simd::bf16_kernels_for(simd::Isa::avx512);
  std::mt19937 rng(1);
  std::vector<float> q(size_t(kHeads) * kCacheDim), o(size_t(kHeads) * kLatent);
  std::normal_distribution<float> normal;
  for (float& x : q) x = normal(rng) * 0.05f;
  for (int context : contexts) {
    // From memory: enough copies to pass 256 MB, each attended to once a round (a copy holds
    // whole pages: a context of 1 row takes a page of 64).
    const size_t cache_bytes = size_t((context + kPageRows - 1) / kPageRows) * kPageRows * kCacheDim * 4;
    const int copies = int(std::max<size_t>(1, (size_t(256) << 20) / cache_bytes));
    const Caches caches = make_caches(context, copies, rng);
    const MlaCoreShape shape{kHeads, context, kCacheDim, kLatent, 0.07f};
    const double flop = 2.0 * kHeads * (kCacheDim + kLatent) * context;
    for (bool bf16 : {false, true})
      for (bool cold : {false, true}) {
        if (bf16 && !fast) continue;
        const int calls = cold ? copies : std::max(1, int(2e9 / flop));
        double best = 1e30;
        for (int trial = 0; trial < 5; ++trial) {
          const auto start = std::chrono::steady_clock::now();
          for (int call = 0; call < calls; ++call) {
            const size_t copy = size_t(cold ? call : 0);
            if (bf16)
              fast->mla_attend(shape, q.data(), caches.bf16_rows[copy].data(), o.data());
            else
              mla_attend(shape, q.data(), caches.rows[copy].data(), o.data());
          }
          best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / calls);
        }
        const double peak = bf16 ? bf16_peak : fma_peak;
        fmt::print("{{\"bench\":\"cpu_attention\",\"numerics\":\"{}\",\"heads\":{},\"context\":{},\"rows\":\"{}\","
                   "\"us\":{:.1f},\"gflop_s\":{:.1f},\"peak_gflop_s\":{:.1f},\"peak_fraction\":{:.3f}}}\n",
                   bf16 ? "fast" : "exact", kHeads, context, cold ? "memory" : "caches", best * 1e6, flop / best / 1e9, peak,
                   flop / best / 1e9 / peak);
      }
  }
  return 0;
}
