// How fast the CPU row kernels (src/cpu/simd) turn weights into a matrix-vector product, one
// thread, for FP8 (block-scaled) and BF16 weights of R1's hidden width: from a matrix that fits
// the caches (what the arithmetic allows) and from one far larger (what memory allows), next to
// a plain read of the same bytes. Shows whether batch-1 decode is bound by the kernel's
// instructions or by memory. Then the multi-token product (prefill) in GFLOP/s against the
// one-thread FMA peak (fma_loop). Not a test; figures go to docs/PERFORMANCE.md.
//
//   build/bench/bench_cpu_rows [--isa NAME] [--tokens N] [--rows N] [--in N]
//   build/bench/bench_cpu_rows --pool [--isa NAME]   (batch-1 decode on all threads against the probe)
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "common/error.h"
#include "cpu/bandwidth.h"
#include "cpu/simd/bf16_kernels.h"
#include "cpu/thread_pool.h"
#include "cpu/simd/kernels.h"
#include "io/large_pages.h"

using namespace r1;
using namespace r1::simd;

namespace {

// Best of five timings of fn(), seconds (the machine may be shared).
template <typename Fn>
double best_seconds(Fn&& fn) {
  double best = 1e30;
  for (int trial = 0; trial < 5; ++trial) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

template <typename Fn>
double best_gbs(size_t bytes, Fn&& fn) {
  const int reps = int(2e9 / double(bytes)) + 1;
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) {
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) fn();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, double(bytes) * reps / s / 1e9);
  }
  return best;
}

// Random finite e4m3 / bf16 codes (neither has a NaN among bytes & 0x77).
void fill_weights(LargePages& weights) {
  for (size_t i = 0; i < weights.size(); ++i) weights.data()[i] = uint8_t((i * 2654435761u) >> 24) & 0x77;
}

// Batch-1 decode as the engine runs it: one token against 1.8 GB of rows split over every
// thread of a pool (lm_head's shape in BF16, the same bytes of FP8; --rows and --in give
// another FP8 shape, BF16 with half the rows), in GB/s and as a fraction
// of the read probe (bandwidth.h's, over its own 2 GiB). The machine's bandwidth drifts from
// minute to minute here, so each trial times a pass of the probe, then of each kernel, and
// every figure is the best of its trials.
void pool_decode(const Kernels& k, int in, int fp8_rows) {
  ThreadPool pool(0);
  const Bf16Kernels* fast = bf16_kernels_for(Isa::avx512);
  for (WeightType type : {WeightType::fp8, WeightType::bf16}) {
    const int out = type == WeightType::fp8 ? fp8_rows : fp8_rows / 2;
    const size_t bytes = size_t(out) * in * (type == WeightType::fp8 ? 1 : 2);
    LargePages weights(bytes, "weights");
    fill_weights(weights);
    std::vector<float> scales(size_t((out + 127) / 128) * (in / 128), 0.01f), x(in, 0.5f), y(out);
    const Rows rows{type, weights.data(), type == WeightType::fp8 ? scales.data() : nullptr, out, in, 128, in / 128,
                    in, 0, 0};
    auto pass_gbs = [&](auto&& part, int units = 0) {  // units: what parallel_for splits (default: rows)
      const auto start = std::chrono::steady_clock::now();
      pool.parallel_for(units ? units : out, part);
      return double(bytes) / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 1e9;
    };
    double probe = 0, exact = 0, fast_gbs = 0;
    for (int trial = 0; trial < 5; ++trial) {
      probe = std::max(probe, measure_read_bandwidth_gb_s(pool, size_t(2) << 30, 1));
      exact = std::max(exact, pass_gbs([&](int begin, int end, int) {
        thread_local std::vector<float> scratch(scratch_floats(in));
        k.rows(rows, x.data(), 1, begin, end, y.data(), scratch.data());
      }));
      if (fast)
        fast_gbs = std::max(fast_gbs, pass_gbs([&](int begin, int end, int) {
          thread_local std::vector<uint16_t> scratch(bf16_scratch_values(in));
          fast->rows(rows, x.data(), 1, begin, end, y.data(), scratch.data());
        }));
    }
    // The same bytes packed in panels (last: packing rearranges them), against probes of their own.
    double panel_probe = 0, panel_gbs = 0, pack_gbs = 0;
    if (fast && can_pack(rows)) {
      Rows packed = rows;
      const auto pack_start = std::chrono::steady_clock::now();
      pool.parallel_for(out / kPanelWidth, [&](int begin, int end, int) { fast->pack(packed, begin, end); });
      pack_gbs = double(bytes) / std::chrono::duration<double>(std::chrono::steady_clock::now() - pack_start).count() / 1e9;
      packed.panels = true;
      for (int trial = 0; trial < 5; ++trial) {
        panel_probe = std::max(panel_probe, measure_read_bandwidth_gb_s(pool, size_t(2) << 30, 1));
        panel_gbs = std::max(panel_gbs, pass_gbs([&](int begin, int end, int) {
          thread_local std::vector<uint16_t> scratch(bf16_scratch_values(in));
          fast->rows(packed, x.data(), 1, begin * kPanelWidth, end * kPanelWidth, y.data(), scratch.data());
        }, out / kPanelWidth));
      }
    }
    fmt::print("{{\"bench\":\"cpu_rows_pool\",\"threads\":{},\"weights\":\"{}\",\"mb\":{:.0f},\"probe_gbs\":{:.1f},"
               "\"exact_gbs\":{:.1f},\"exact_fraction\":{:.3f},\"fast_gbs\":{:.1f},\"fast_fraction\":{:.3f},"
               "\"pack_gbs\":{:.1f},\"panel_probe_gbs\":{:.1f},\"panels_gbs\":{:.1f},\"panels_fraction\":{:.3f}}}\n",
               pool.size(), type == WeightType::fp8 ? "fp8" : "bf16", bytes / 1e6, probe, exact, exact / probe, fast_gbs,
               fast_gbs / probe, pack_gbs, panel_probe, panel_gbs, panel_probe > 0 ? panel_gbs / panel_probe : 0.0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU row-kernel throughput, one thread"};
  std::string isa_name;
  int tokens = 512, gemm_rows = 512, gemm_in = 7168;
  bool pool_only = false;
  app.add_option("--isa", isa_name, "avx512-vbmi, avx512, avx2 or portable (default: the best this CPU runs)");
  app.add_option("--tokens", tokens, "tokens of the multi-token product (default 512)")->check(CLI::PositiveNumber);
  app.add_option("--rows", gemm_rows, "weight rows of the multi-token product (default 512)")->check(CLI::PositiveNumber);
  app.add_option("--in", gemm_in, "weight columns of the multi-token product (default 7168)")->check(CLI::PositiveNumber);
  app.add_flag("--pool", pool_only, "instead: batch-1 decode products on all threads against the bandwidth probe");
  CLI11_PARSE(app, argc, argv);
  try {
    const Kernels* k = &best_kernels();
    for (Isa isa : {Isa::avx512_vbmi, Isa::avx512, Isa::avx2, Isa::portable})
      if (const Kernels* candidate = kernels_for(isa); candidate && candidate->name == isa_name) k = candidate;
    if (!isa_name.empty() && k->name != isa_name) fail("--isa {}: not available on this CPU", isa_name);
    const int in = 7168;
    std::vector<float> x(in, 0.5f), scratch(scratch_floats(in));
    if (pool_only) return pool_decode(*k, app.count("--in") ? gemm_in : in, app.count("--rows") ? gemm_rows : 2 * 129280), 0;
    for (WeightType type : {WeightType::fp8, WeightType::bf16})
      for (int out : {128, 16384}) {  // 0.9 / 117 MB of FP8: in the caches, and far beyond them
        const size_t bytes = size_t(out) * in * (type == WeightType::fp8 ? 1 : 2);
        LargePages weights(bytes, "weights");  // as the CPU backend's weights sit
        fill_weights(weights);
        std::vector<float> scales(size_t((out + 127) / 128) * (in / 128), 0.01f), y(out);
        const Rows rows{type, weights.data(), type == WeightType::fp8 ? scales.data() : nullptr, out, in, 128, in / 128,
                        in, 0, 0};
        const double kernel = best_gbs(bytes, [&] { k->rows(rows, x.data(), 1, 0, out, y.data(), scratch.data()); });
        volatile float sink = 0;
        const double read = best_gbs(bytes, [&] {
          sink = k->read_sum(reinterpret_cast<const float*>(weights.data()), bytes / 4, 1);
        });
        fmt::print("{{\"bench\":\"cpu_rows\",\"isa\":\"{}\",\"weights\":\"{}\",\"mb\":{:.1f},\"kernel_gbs\":{:.1f},"
                   "\"read_gbs\":{:.1f}}}\n",
                   k->name, type == WeightType::fp8 ? "fp8" : "bf16", bytes / 1e6, kernel, read);
      }
    // Prefill: `tokens` tokens against FP8 / BF16 rows of --in columns.
    const int64_t peak_rounds = 100'000'000 / k->lanes;
    volatile float sink = 0;
    const double peak_gflops =
        double(peak_rounds) * kFmaFlopsPerRound * k->lanes / best_seconds([&] { sink = k->fma_loop(peak_rounds); }) / 1e9;
    std::vector<float> xs(size_t(tokens) * gemm_in), ys(size_t(tokens) * gemm_rows);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = float(int(i % 17) - 8) / 8;
    for (WeightType type : {WeightType::fp8, WeightType::bf16}) {
      const size_t bytes = size_t(gemm_rows) * gemm_in * (type == WeightType::fp8 ? 1 : 2);
      LargePages weights(bytes, "weights");
      fill_weights(weights);
      std::vector<float> scales(size_t((gemm_rows + 127) / 128) * ((gemm_in + 127) / 128), 0.01f);
      std::vector<float> gemm_scratch(scratch_floats(gemm_in));
      const Rows rows{type, weights.data(), type == WeightType::fp8 ? scales.data() : nullptr, gemm_rows, gemm_in, 128,
                      (gemm_in + 127) / 128, gemm_in, 0, 0};
      // One JSON line: `seconds` of a product by the kernels `name` against `peak` GFLOP/s.
      const auto report = [&](const std::string& name, double seconds, double peak) {
        const double gflops = 2.0 * tokens * gemm_rows * gemm_in / seconds / 1e9;
        fmt::print("{{\"bench\":\"cpu_rows_prefill\",\"isa\":\"{}\",\"weights\":\"{}\",\"tokens\":{},\"rows\":{},\"in\":{},"
                   "\"gflop_s\":{:.1f},\"peak_gflop_s\":{:.1f},\"peak_fraction\":{:.3f}}}\n",
                   name, type == WeightType::fp8 ? "fp8" : "bf16", tokens, gemm_rows, gemm_in, gflops, peak, gflops / peak);
      };
      report(k->name, best_seconds([&] { k->rows(rows, xs.data(), tokens, 0, gemm_rows, ys.data(), gemm_scratch.data()); }),
             peak_gflops);
      // The fast numerics' kernels (--numerics fast) on the same rows, against the BF16 dot-product peak.
      if (const Bf16Kernels* fast = bf16_kernels_for(Isa::avx512)) {
        const int64_t dot_rounds = 100'000'000 / kBf16Step;
        const double dot_peak =
            double(dot_rounds) * kDotFlopsPerRound / best_seconds([&] { sink = fast->dot_loop(dot_rounds); }) / 1e9;
        std::vector<uint16_t> fast_scratch(bf16_scratch_values(gemm_in));
        report(fast->name, best_seconds([&] { fast->rows(rows, xs.data(), tokens, 0, gemm_rows, ys.data(), fast_scratch.data()); }),
               dot_peak);
        if (can_pack(rows)) {  // the same rows packed in panels
          Rows packed = rows;
          pack_panels(packed, 0, packed.out / kPanelWidth);
          packed.panels = true;
          report(std::string(fast->name) + "-panels",
                 best_seconds([&] { fast->rows(packed, xs.data(), tokens, 0, gemm_rows, ys.data(), fast_scratch.data()); }),
                 dot_peak);
        }
      }
    }
  } catch (const Error& e) {
    fmt::print(stderr, "bench_cpu_rows: {}\n", e.what());
    return 1;
  }
}
