// How long one layer's MLA attention (projections included) takes a prompt chunk in the absorbed
// and in the expanded form, on a checkpoint's first layer, all threads: the two forms chosen at
// random call by call in one process, so that the machine's drift falls on both alike (runs
// minutes apart move by up to 2x on a shared VM). The chunk's cache prefix is filled first.
// Not a test; figures go to docs/PERFORMANCE.md.
//
//   build/r1 gen-model --preset r1 --layers 1 --out /tmp/r1-l1      (4.3 GB)
//   build/bench/bench_mla_forms --model /tmp/r1-l1 --numerics fast --first 0 --tokens 512
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "common/error.h"
#include "cpu/cpu_backend.h"
#include "engine/page_allocator.h"
#include "model/decode_bytes.h"
#include "model/model.h"

using namespace r1;

int main(int argc, char** argv) {
  CLI::App app{"CPU MLA attention of a prompt chunk: absorbed against expanded, one layer"};
  std::string dir, numerics = "exact";
  int first = 0, tokens = 512, calls = 10, threads = 2;
  app.add_option("--model", dir, "checkpoint directory")->required();
  app.add_option("--numerics", numerics, "exact or fast")->check(CLI::IsMember({"exact", "fast"}));
  app.add_option("--first", first, "the chunk's first position (default 0)")->check(CLI::NonNegativeNumber);
  app.add_option("--tokens", tokens, "the chunk's tokens (default 512)")->check(CLI::PositiveNumber);
  app.add_option("--calls", calls, "timed calls, both forms together (default 10)")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads (default 2)")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    auto model = Model::load(dir, Residency::large_pages);
    const ModelConfig& config = model->config;
    CpuBackend backend(config, model->weights, threads, numerics == "fast" ? Numerics::fast : Numerics::exact);
    PageAllocator pages_of((first + tokens + kDefaultPageSize - 1) / kDefaultPageSize, kDefaultPageSize);
    std::vector<int> pages;
    pages_of.grow(pages, first + tokens);
    backend.configure_kv_cache(pages_of.num_pages(), pages_of.page_size());
    backend.set_sequence_pages(0, pages);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal;
    // Layer 0's attention over positions [begin, begin + count) of sequence 0, on random inputs.
    const auto attend = [&](int begin, int count, CpuBackend::AttentionForm form) {
      Batch batch;
      for (int p = begin; p < begin + count; ++p) {
        batch.tokens.push_back(0);
        batch.positions.push_back(p);
        batch.sequences.push_back(0);
      }
      Activation x = backend.activation(0, count, config.hidden_size), out = backend.activation(1, count, config.hidden_size);
      std::generate_n(x.data, size_t(count) * config.hidden_size, [&] { return normal(rng) * 0.1f; });
      backend.force_attention_form(form);
      backend.prepare(batch);
      const auto start = std::chrono::steady_clock::now();
      backend.attention(0, x, out);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const int chunk = config.default_prefill_chunk();
    for (int p = 0; p < first; p += chunk) attend(p, std::min(chunk, first - p), CpuBackend::AttentionForm::automatic);
    double seconds[2] = {}, best[2] = {1e30, 1e30};
    int count[2] = {};
    for (int call = 0; call < calls; ++call) {
      const int expanded = int(rng() % 2);
      const double s = attend(first, tokens, expanded ? CpuBackend::AttentionForm::expanded : CpuBackend::AttentionForm::absorbed);
      seconds[expanded] += s, best[expanded] = std::min(best[expanded], s), ++count[expanded];
    }
    for (int expanded : {0, 1})
      if (count[expanded])
        fmt::print("{{\"bench\":\"mla_forms\",\"numerics\":\"{}\",\"first\":{},\"tokens\":{},\"form\":\"{}\",\"calls\":{},"
                   "\"mean_ms\":{:.1f},\"best_ms\":{:.1f},\"engine_picks\":{}}}\n",
                   numerics, first, tokens, expanded ? "expanded" : "absorbed", count[expanded],
                   seconds[expanded] / count[expanded] * 1e3, best[expanded] * 1e3,
                   expanded_form_pays(config, first, tokens) == bool(expanded));
  } catch (const Error& e) {
    fmt::print(stderr, "bench_mla_forms: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
