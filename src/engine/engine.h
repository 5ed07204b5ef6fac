// The generation engine: sequences decode together in one batch, each at its own position,
// joining when a batch slot and KV pages are free and leaving when a stop rule fires
// (continuous batching). Prompts are fed in chunks (chunked prefill); the KV cache is paged.
//
// A step is one forward call: while some sequence still has prompt tokens to feed, the step
// feeds up to `prefill_chunk` of them (from one or several sequences); otherwise it advances
// every running sequence by one token. Keeping the two kinds of step apart makes the prefill
// and decode speeds measurable on their own.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/page_allocator.h"
#include "engine/reasoning.h"
#include "engine/sampler.h"
#include "engine/stop.h"
#include "model/backend.h"
#include "model/config.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace r1 {

struct EngineOptions {
  int max_batch = 8;         // sequences decoding together
  int prefill_chunk = 0;     // prompt tokens per forward call; 0: the model's default_prefill_chunk()
  int context_length = 0;    // positions per sequence, prompt included; 0: the model's maximum
  int page_size = kDefaultPageSize;
  int kv_pages = 0;          // pages in the KV cache; 0: room for max_batch full contexts
  std::vector<int> eos_ids;  // tokens that end an answer
};

// What one request produced. completion_tokens counts every sampled token, EOS included.
struct Generation {
  std::vector<int> tokens;  // sampled ids, EOS included
  std::string reasoning, content;
  FinishReason finish = FinishReason::none;
  int prompt_tokens = 0, completion_tokens = 0;
  double ttft_s = 0;    // submission to first sampled token (queueing and prefill)
  double decode_s = 0;  // first sampled token to the last
  double decode_tok_s() const { return decode_s > 0 ? (completion_tokens - 1) / decode_s : 0; }
};

struct Request {
  std::vector<int> prompt;
  SamplingParams sampling;
  uint64_t sampler_stream = 0;      // tells apart samples of one prompt that share a seed
  int max_tokens = 0;               // 0: up to the context
  bool started_in_thinking = false; // the prompt opened <think> (R1's template does)
  std::function<void(const Segment&)> on_text;        // each streamed piece, as decoded
  std::function<void(const Generation&)> on_finish;   // once, when the sequence leaves
};

// Throughput over the engine's life: prefill steps and decode steps timed apart.
struct EngineStats {
  long prefill_tokens = 0, decode_tokens = 0;
  double prefill_s = 0, decode_s = 0;
  double prefill_tok_s() const { return prefill_s > 0 ? prefill_tokens / prefill_s : 0; }
  double decode_tok_s() const { return decode_s > 0 ? decode_tokens / decode_s : 0; }
};

class Engine {
 public:
  // tokenizer: decodes the streamed text; nullptr for token-only use (synthetic benchmarks).
  Engine(Backend& backend, const ModelConfig& config, const Tokenizer* tokenizer, EngineOptions options);
  ~Engine();

  // Queues a request and returns its id. Fails (r1::Error) when the prompt leaves no room in
  // the context or holds an id outside the model's vocabulary.
  int submit(Request request);
  // Ends a queued or running request at the next step, finish reason "cancelled".
  void cancel(int id);
  // One forward call (or only admissions and cancellations). False when nothing is left.
  bool step();
  void run();  // steps until every request has finished
  bool idle() const { return waiting_.empty() && running_.empty(); }

  const EngineOptions& options() const { return options_; }
  const EngineStats& stats() const { return stats_; }
  const PageAllocator& pages() const { return pages_; }

 private:
  struct Sequence;
  using Clock = std::chrono::steady_clock;

  void admit();
  void drop_cancelled();
  int forward_step(bool prefill);  // the tokens fed
  void advance(Sequence& s, int token);
  void emit(Sequence& s, const std::vector<Segment>& segments);
  void finish(Sequence& s, FinishReason reason);
  int worst_case_pages(const Sequence& s) const;

  Backend& backend_;
  const ModelConfig& config_;
  const Tokenizer* tokenizer_;
  EngineOptions options_;
  PageAllocator pages_;
  int committed_pages_ = 0;  // worst-case pages of the running sequences: growth never fails
  std::vector<int> free_slots_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::vector<int> cancelled_;
  std::vector<float> logits_;
  std::vector<int> greedy_tokens_;
  EngineStats stats_;
  int next_id_ = 0;
};

}  // namespace r1
