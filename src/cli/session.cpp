#include "cli/session.h"

#include <fmt/format.h>

#include <algorithm>

#include "cli/commands.h"
#include "common/error.h"
#include "engine/backend_factory.h"
#include "engine/stop.h"

namespace r1 {

void add_model_flags(CLI::App* cmd, ModelFlags& f) {
  f.model = default_model_dir();
  cmd->add_option("--model", f.model, "model directory (config.json + safetensors)")->capture_default_str();
  cmd->add_option("--tokenizer", f.tokenizer, "tokenizer directory (tokenizer.json, tokenizer_config.json); default: the model's");
  cmd->add_option("--device", f.device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--numerics", f.numerics,
                  "exact (float32 activations), fast (BF16 on the CPU, FP8/BF16 tensor cores on CUDA), or auto: fast on a "
                  "CPU with AVX512-BF16 and VBMI, else exact")
      ->capture_default_str();
  cmd->add_option("--threads", f.threads, "CPU threads (0 = one per core)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--ranks", f.ranks, "shard the CPU engine over N in-process ranks (tensor + expert parallel)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--context", f.context,
                  fmt::format("positions per sequence, prompt included (0 = the model's, at most {})", kDefaultContext))
      ->check(CLI::NonNegativeNumber);
}

void add_sampling_flags(CLI::App* cmd, ModelFlags& f) {
  cmd->add_option("--max-tokens", f.max_tokens, "tokens to generate at most (0 = up to the context)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature", f.temperature, "0 = greedy (default: generation_config.json, R1: 0.6)");
  cmd->add_option("--top-p", f.top_p, "nucleus mass (default: generation_config.json, R1: 0.95)");
  cmd->add_option("--top-k", f.top_k, "keep the k most likely tokens (0 = all)");
  cmd->add_option("--min-p", f.min_p, "drop tokens below min-p × the top probability");
  cmd->add_option("--seed", f.seed, "sampling seed (same seed, same output)")->capture_default_str();
}

namespace {

SamplingParams sampling_from(const ModelFlags& f) {
  SamplingParams p = sampling_defaults(f.model);
  if (f.temperature) p.temperature = *f.temperature;
  if (f.top_p) p.top_p = *f.top_p;
  if (f.top_k) p.top_k = *f.top_k;
  if (f.min_p) p.min_p = *f.min_p;
  p.seed = f.seed;
  validate(p);
  return p;
}

}  // namespace

Session::Session(const ModelFlags& f, bool need_tokenizer) : sampling_(sampling_from(f)), max_tokens_(f.max_tokens) {
  check_layout(f.model, f.device, f.ranks);  // before loading anything
  model_ = Model::load(f.model, residency_for(f.device));
  const int model_context = model_->config.max_position_embeddings;
  context_ = f.context > 0 ? f.context : std::min(model_context > 0 ? model_context : kDefaultContext, kDefaultContext);
  if (model_context > 0 && context_ > model_context)
    fail("--context {}: the model holds at most {} positions", context_, model_context);
  eos_ids_ = eos_token_ids(f.model);
  if (need_tokenizer) {
    const std::string dir = f.tokenizer.empty() ? f.model : f.tokenizer;
    tokenizer_ = std::make_unique<Tokenizer>(dir);
    template_ = ChatTemplate::load(dir);
    if (!template_->warning().empty()) fmt::print(stderr, "r1: warning: {}\n", template_->warning());
    if (auto eos = tokenizer_->added_token_id("<｜end▁of▁sentence｜>"); eos && *eos < model_->config.vocab_size)
      if (std::find(eos_ids_.begin(), eos_ids_.end(), *eos) == eos_ids_.end()) eos_ids_.push_back(*eos);
    const std::string probe = template_->render({{"user", "", {}}}, true);
    opens_thinking_ = probe.ends_with("<think>\n");
  }
  backend_ = make_backend(f.device, *model_, f.threads, parse_numerics(f.numerics, f.device), f.ranks);
  if (f.profile) {
    auto timed = std::make_unique<TimedBackend>(std::move(backend_));
    timed_ = timed.get();
    backend_ = std::move(timed);
  }
}

std::vector<int> Session::encode_chat(const std::vector<ChatMessage>& messages) const {
  return tokenizer_->encode(template_->render(messages, true));
}

Engine Session::make_engine(int max_batch) const {
  EngineOptions o;
  o.max_batch = max_batch;
  o.context_length = context_;
  o.eos_ids = eos_ids_;
  return Engine(*backend_, model_->config, tokenizer_.get(), o);
}

}  // namespace r1
