// End-to-end decode speed of a model on the GPU, against the time to read once what a decode
// step must read (decode_bytes_per_step: at batch 1 everything but the routed experts, plus
// num_experts_per_tok experts per MoE layer, and the KV rows), at the device bandwidth measured
// in the same run (device-to-device copy). Use with a slice of R1's real shapes:
// r1 gen-model --preset r1 --layers 4 --out DIR.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <vector>

#include "cuda/cuda_backend.h"
#include "engine/backend_factory.h"
#include "engine/page_allocator.h"
#include "device_timing.h"
#include "kernels/cuda_check.h"
#include "model/decode_bytes.h"
#include "model/forward.h"
#include "model/model.h"

using namespace r1;

int main(int argc, char** argv) {
  CLI::App app{"decode speed against the weight-read time"};
  std::string model_dir;
  int batch = 1, context = 64, steps = 16;
  app.add_option("--model", model_dir, "model directory")->required();
  app.add_option("--batch", batch, "sequences decoding together")->check(CLI::PositiveNumber);
  app.add_option("--context", context, "prompt tokens before decoding")->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "decode steps timed")->check(CLI::PositiveNumber);
  std::string numerics = "exact";
  app.add_option("--numerics", numerics, "exact or fast")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const auto load_start = std::chrono::steady_clock::now();
    auto model = Model::load(model_dir);
    auto backend = make_cuda_backend(model->config, model->weights, parse_numerics(numerics, "cuda"));
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
    const int vocab = model->config.vocab_size;
    std::vector<float> logits(size_t(std::max(batch, context)) * vocab);

    // Each sequence gets its own consecutive run of pages.
    const int pages_per_sequence = (context + steps + kDefaultPageSize) / kDefaultPageSize;
    backend->configure_kv_cache(batch * pages_per_sequence, kDefaultPageSize);
    for (int s = 0; s < batch; ++s) {  // prefill each sequence with its own tokens
      std::vector<int> pages(pages_per_sequence);
      std::iota(pages.begin(), pages.end(), s * pages_per_sequence);
      backend->set_sequence_pages(s, pages);
      Batch prompt;
      for (int p = 0; p < context; ++p) {
        prompt.tokens.push_back((s * 7919 + p * 104729) % vocab);
        prompt.positions.push_back(p);
        prompt.sequences.push_back(s);
      }
      forward(*backend, model->config, prompt, logits.data());
    }
    std::vector<double> step_ms;
    for (int step = 0; step < steps; ++step) {
      Batch next;
      for (int s = 0; s < batch; ++s) {
        next.tokens.push_back((s * 31 + step * 17) % vocab);
        next.positions.push_back(context + step);
        next.sequences.push_back(s);
      }
      const auto start = std::chrono::steady_clock::now();
      forward(*backend, model->config, next, logits.data());  // ends with the logits on the host
      step_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(step_ms.begin(), step_ms.end());
    const double median_ms = step_ms[step_ms.size() / 2];
    const double bandwidth = copy_bandwidth_gbs();
    // The cache holds float32 (exact) or BF16 (fast); the timed steps attend over context +
    // steps/2 positions on average.
    const int cache_bytes = numerics == "fast" ? 2 : 4;
    const double bytes = decode_bytes_per_step(model->config, model->weights, batch, context + steps / 2.0, cache_bytes);
    const double read_ms = bytes / (bandwidth * 1e9) * 1e3;
    fmt::print("{{\"bench\":\"decode\",\"numerics\":\"{}\",\"layers\":{},\"batch\":{},\"context\":{},\"step_ms\":{:.3f},\"tokens_per_s\":{:.1f},"
               "\"bytes_per_step_gb\":{:.3f},\"copy_gbs\":{:.0f},\"read_ms\":{:.3f},\"step_over_read\":{:.2f},"
               "\"load_s\":{:.1f}}}\n",
               numerics, model->config.num_hidden_layers, batch, context, median_ms, batch * 1e3 / median_ms, bytes / 1e9,
               bandwidth, read_ms, median_ms / read_ms, load_s);
  } catch (const Error& e) {
    fmt::print(stderr, "bench_decode: {}\n", e.what());
    return 1;
  }
}
