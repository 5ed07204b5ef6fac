// r1 score: teacher-forced logits, mean NLL and perplexity of a token sequence.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "common/error.h"
#include "engine/backend_factory.h"
#include "engine/score.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace r1 {

namespace {

std::vector<int> parse_token_list(const std::string& text) {
  std::vector<int> tokens;
  std::string item;
  std::stringstream in(text);
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long value = -1;
    try {
      value = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    while (used < item.size() && std::isspace(static_cast<unsigned char>(item[used]))) ++used;
    if (used == 0 || used != item.size() || value < 0 || value > INT32_MAX)
      fail("--tokens: '{}' is not a token id (expected comma-separated non-negative integers)", item);
    tokens.push_back(int(value));
  }
  if (tokens.empty()) fail("--tokens: no token ids given");
  return tokens;
}

struct ScoreOptions {
  std::string model = default_model_dir();
  std::string tokens;
  int chunk = 0;
  int threads = 0;
  int ranks = 1;
  std::string device = "cpu";
  std::string numerics = "exact";
  std::string logits_out;
};

int run_score(const ScoreOptions& o) {
  const std::vector<int> tokens = parse_token_list(o.tokens);
  check_layout(o.model, o.device, o.ranks);  // before loading anything
  auto model = Model::load(o.model, residency_for(o.device));
  auto backend = make_backend(o.device, *model, o.threads, parse_numerics(o.numerics, o.device), o.ranks);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<float> logits = teacher_forced_logits(*backend, model->config, tokens, o.chunk);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int vocab = model->config.vocab_size;

  if (!o.logits_out.empty())
    write_safetensors(o.logits_out, {{"logits", DType::F32, {int64_t(tokens.size()), vocab}, logits.data()}});
  const double nll = mean_nll(logits, tokens, vocab);
  if (std::isnan(nll))
    fmt::print("tokens: {}  (one token: nothing to predict, no NLL)\n", tokens.size());
  else
    fmt::print("tokens: {}  mean NLL: {:.6f}  perplexity: {:.4f}\n", tokens.size(), nll, std::exp(nll));
  fmt::print(stderr, "{} tokens in {:.3f} s ({:.1f} tokens/s)\n", tokens.size(), seconds,
             tokens.size() / seconds);
  return 0;
}

}  // namespace

Command add_score_command(CLI::App& app) {
  auto options = std::make_shared<ScoreOptions>();
  CLI::App* cmd = app.add_subcommand("score", "teacher-forced NLL and perplexity of a token sequence");
  cmd->add_option("--model", options->model, "model directory (config.json + safetensors)")
      ->capture_default_str();
  cmd->add_option("--tokens", options->tokens, "comma-separated token ids, e.g. \"0,15,27\"")->required();
  cmd->add_option("--chunk", options->chunk, "tokens per forward call (1 = the decode path; 0 = all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", options->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--numerics", options->numerics,
                  "exact (float32 activations), fast (BF16 on the CPU, FP8/BF16 tensor cores on CUDA), or auto (fast on a "
                  "CPU with AVX512-BF16 and VBMI, else exact)")
      ->capture_default_str();
  cmd->add_option("--threads", options->threads, "CPU threads (0 = one per core)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ranks", options->ranks, "shard the CPU engine over N in-process ranks (tensor + expert parallel)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--logits-out", options->logits_out, "write logits F32 [T, vocab] as safetensors");
  return [options] { return run_score(*options); };
}

}  // namespace r1
