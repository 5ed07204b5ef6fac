// What `r1 run`, `r1 chat` and `r1 bench` share: the flags choosing the model, tokenizer,
// device and sampling, and the loaded session built from them (model, backend, tokenizer,
// chat template, stop tokens, engine).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/model.h"
#include "model/timed_backend.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace r1 {

struct ModelFlags {
  std::string model;      // default_model_dir()
  std::string tokenizer;  // empty: the model directory
  std::string device = "cpu";
  std::string numerics = "auto";
  int threads = 0;
  int ranks = 1;          // > 1: the CPU engine sharded over in-process ranks
  int context = 0;        // 0: the model's max_position_embeddings, at most kDefaultContext
  int max_tokens = 0;     // 0: up to the context
  std::optional<float> temperature, top_p, min_p;
  std::optional<int> top_k;
  uint64_t seed = 0;
  bool profile = false;   // time every backend op (r1 bench --synthetic --profile)
};

// Positions per sequence unless --context says otherwise: R1 answers AIME in ~10k tokens.
constexpr int kDefaultContext = 16384;

void add_model_flags(CLI::App* cmd, ModelFlags& flags);     // --model --tokenizer --device --threads --ranks --context
void add_sampling_flags(CLI::App* cmd, ModelFlags& flags);  // --max-tokens --temperature --top-p --top-k --min-p --seed

class Session {
 public:
  // need_tokenizer false: token-only use (the synthetic benchmark).
  Session(const ModelFlags& flags, bool need_tokenizer);

  const ModelConfig& config() const { return model_->config; }
  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const SamplingParams& sampling() const { return sampling_; }
  int context() const { return context_; }
  int max_tokens() const { return max_tokens_; }

  // The prompt ids of a conversation, rendered with the generation prompt.
  std::vector<int> encode_chat(const std::vector<ChatMessage>& messages) const;
  // Whether that prompt opens the assistant turn inside <think> (R1's template does).
  bool prompt_opens_thinking() const { return opens_thinking_; }

  Engine make_engine(int max_batch) const;
  const Backend& backend() const { return *backend_; }
  // The op times so far; null unless the flags asked for --profile.
  const TimedBackend* timed_backend() const { return timed_; }

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<Backend> backend_;
  TimedBackend* timed_ = nullptr;  // backend_ itself when profiling
  std::unique_ptr<Tokenizer> tokenizer_;
  std::optional<ChatTemplate> template_;
  SamplingParams sampling_;
  std::vector<int> eos_ids_;
  int context_ = 0, max_tokens_ = 0;
  bool opens_thinking_ = false;
};

}  // namespace r1
