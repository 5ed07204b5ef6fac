#include "engine/engine.h"

#include <algorithm>

#include "common/error.h"
#include "model/forward.h"

namespace r1 {

struct Engine::Sequence {
  int id = 0, slot = -1;
  Request request;
  std::vector<int> tokens;  // prompt, then every sampled token
  int fed = 0;              // positions already in the KV cache
  std::vector<int> pages;
  Sampler sampler;
  std::optional<StreamDecoder> decoder;
  ReasoningSplitter splitter;
  Generation result;
  Clock::time_point submitted, first_token;
  bool cancelled = false;

  Sequence(int id_, Request r, const Tokenizer* tokenizer)
      : id(id_), request(std::move(r)), tokens(request.prompt), sampler(request.sampling, request.sampler_stream),
        splitter(request.started_in_thinking), submitted(Clock::now()) {
    if (tokenizer) decoder.emplace(*tokenizer);
    result.prompt_tokens = int(request.prompt.size());
  }
  bool prefilling() const { return fed + 1 < int(tokens.size()); }
};

namespace {

EngineOptions resolve(EngineOptions o, const ModelConfig& config) {
  if (o.context_length <= 0) o.context_length = config.max_position_embeddings;
  if (o.context_length <= 0) fail("the model's config.json gives no max_position_embeddings: set a context length");
  if (o.prefill_chunk == 0) o.prefill_chunk = config.default_prefill_chunk();
  if (o.max_batch <= 0 || o.prefill_chunk <= 0 || o.page_size <= 0)
    fail("engine: batch size, prefill chunk and page size must be positive");
  if (o.kv_pages <= 0) o.kv_pages = o.max_batch * ((o.context_length + o.page_size - 1) / o.page_size);
  return o;
}

}  // namespace

Engine::Engine(Backend& backend, const ModelConfig& config, const Tokenizer* tokenizer, EngineOptions options)
    : backend_(backend),
      config_(config),
      tokenizer_(tokenizer),
      options_(resolve(std::move(options), config)),
      pages_(options_.kv_pages, options_.page_size) {
  backend_.configure_kv_cache(pages_.num_pages(), pages_.page_size());
  for (int slot = options_.max_batch - 1; slot >= 0; --slot) free_slots_.push_back(slot);
}

Engine::~Engine() = default;

int Engine::submit(Request request) {
  if (request.prompt.empty()) fail("the prompt is empty: nothing to generate from");
  for (int id : request.prompt)
    if (id < 0 || id >= config_.vocab_size)
      fail("prompt token id {} is outside the model's vocabulary of {} (does the tokenizer belong to this model?)",
           id, config_.vocab_size);
  check_prompt_fits(int(request.prompt.size()), options_.context_length);
  validate(request.sampling);
  auto s = std::make_unique<Sequence>(next_id_++, std::move(request), tokenizer_);
  if (worst_case_pages(*s) > pages_.num_pages())
    fail("the KV cache holds {} positions, fewer than this request may need", pages_.num_pages() * pages_.page_size());
  waiting_.push_back(std::move(s));
  return waiting_.back()->id;
}

void Engine::cancel(int id) { cancelled_.push_back(id); }

bool Engine::step() {
  drop_cancelled();
  admit();
  if (running_.empty()) return !idle();
  const auto start = Clock::now();
  const bool prefill = std::any_of(running_.begin(), running_.end(), [](const auto& s) { return s->prefilling(); });
  const int fed = forward_step(prefill);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  (prefill ? stats_.prefill_tokens : stats_.decode_tokens) += fed;
  (prefill ? stats_.prefill_s : stats_.decode_s) += seconds;
  return !idle();
}

void Engine::run() {
  while (step()) {
  }
}

// Pages for the positions a sequence may come to hold: its prompt plus max_tokens, within the context.
int Engine::worst_case_pages(const Sequence& s) const {
  const int max_new = s.request.max_tokens > 0 ? s.request.max_tokens : options_.context_length;
  return pages_.pages_for(int(std::min<long>(long(s.request.prompt.size()) + max_new, options_.context_length)));
}

// First come, first served: a request waits while the one before it cannot start.
void Engine::admit() {
  while (!waiting_.empty() && !free_slots_.empty()) {
    Sequence& s = *waiting_.front();
    const int need = worst_case_pages(s);
    if (committed_pages_ + need > pages_.num_pages()) break;
    committed_pages_ += need;
    s.slot = free_slots_.back();
    free_slots_.pop_back();
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Engine::drop_cancelled() {
  for (int id : cancelled_) {
    for (auto& s : running_)
      if (s->id == id) s->cancelled = true;
    for (auto& s : waiting_)
      if (s->id == id) s->cancelled = true;
  }
  cancelled_.clear();
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (!(*it)->cancelled) {
      ++it;
      continue;
    }
    finish(**it, FinishReason::cancelled);
    it = waiting_.erase(it);
  }
  for (size_t i = 0; i < running_.size();)
    if (running_[i]->cancelled)
      finish(*running_[i], FinishReason::cancelled);  // removes it from running_
    else
      ++i;
}

// Builds the batch (prompt chunks, or one token per sequence), runs it, and samples for every
// sequence whose last fed token was the end of what it had.
int Engine::forward_step(bool prefill) {
  Batch batch;
  std::vector<Sequence*> sampled;  // in the order of batch.logit_rows
  int budget = options_.prefill_chunk;
  for (auto& s : running_) {
    if (prefill && !s->prefilling()) continue;
    // A prompt is cut at multiples of the chunk in its own positions, whatever runs beside it:
    // how a chunk attends depends on its positions (cpu_attention.cpp), and so would the bits.
    const int chunk = options_.prefill_chunk;
    const int count = prefill ? std::min(chunk - s->fed % chunk, int(s->tokens.size()) - s->fed) : 1;
    if (prefill && count > budget) break;  // the next step takes it whole
    budget -= count;
    pages_.grow(s->pages, s->fed + count);  // within the committed pages: cannot fail
    backend_.set_sequence_pages(s->slot, s->pages);
    for (int p = s->fed; p < s->fed + count; ++p) {
      batch.tokens.push_back(s->tokens[p]);
      batch.positions.push_back(p);
      batch.sequences.push_back(s->slot);
    }
    s->fed += count;
    if (s->fed == int(s->tokens.size())) {
      sampled.push_back(s.get());
      batch.logit_rows.push_back(batch.size() - 1);
    }
  }
  if (sampled.empty()) batch.logit_rows.push_back(0);  // a prefill chunk mid-prompt: nothing to sample
  // When every sequence sampled is greedy the backend picks the tokens itself (on a GPU only the
  // ids then leave it); the same choices as the samplers would make.
  const bool all_greedy = std::all_of(sampled.begin(), sampled.end(), [](Sequence* s) { return s->sampler.greedy(); });
  if (!sampled.empty() && all_greedy) {
    greedy_tokens_.resize(size_t(batch.logit_count()));
    forward_greedy(backend_, config_, batch, greedy_tokens_.data());
    for (size_t i = 0; i < sampled.size(); ++i) advance(*sampled[i], greedy_tokens_[i]);
  } else {
    logits_.resize(size_t(batch.logit_count()) * config_.vocab_size);
    forward(backend_, config_, batch, logits_.data());
    for (size_t i = 0; i < sampled.size(); ++i)
      advance(*sampled[i], sampled[i]->sampler.sample({logits_.data() + i * config_.vocab_size, size_t(config_.vocab_size)}));
  }
  return batch.size();
}

// Appends the next token of `s`, streams its text, and retires the sequence when it stops.
void Engine::advance(Sequence& s, int token) {
  if (s.result.completion_tokens == 0) s.first_token = Clock::now();
  s.tokens.push_back(token);
  s.result.tokens.push_back(token);
  ++s.result.completion_tokens;
  const StopRules rules{options_.eos_ids, s.request.max_tokens, options_.context_length};
  const FinishReason reason = finish_reason(rules, token, s.result.completion_tokens, int(s.tokens.size()));
  // Ids the tokenizer does not know (padding rows of the vocabulary) print nothing.
  if (reason != FinishReason::stop && s.decoder && tokenizer_->contains(token))
    emit(s, s.splitter.feed(s.decoder->push(token)));
  if (reason != FinishReason::none) finish(s, reason);
}

void Engine::emit(Sequence& s, const std::vector<Segment>& segments) {
  for (const Segment& segment : segments) {
    (segment.channel == Channel::reasoning ? s.result.reasoning : s.result.content) += segment.text;
    if (s.request.on_text) s.request.on_text(segment);
  }
}

// Flushes the text held back, reports the result, and (for a running sequence) gives its
// pages and slot back and removes it from running_.
void Engine::finish(Sequence& s, FinishReason reason) {
  if (s.decoder) emit(s, s.splitter.feed(s.decoder->flush()));
  emit(s, s.splitter.finish());
  s.result.finish = reason;
  const auto now = Clock::now();
  if (s.result.completion_tokens > 0) {
    s.result.ttft_s = std::chrono::duration<double>(s.first_token - s.submitted).count();
    s.result.decode_s = std::chrono::duration<double>(now - s.first_token).count();
  }
  if (s.request.on_finish) s.request.on_finish(s.result);
  if (s.slot < 0) return;  // never admitted
  pages_.release(s.pages);
  committed_pages_ -= worst_case_pages(s);
  free_slots_.push_back(s.slot);
  std::erase_if(running_, [&](const auto& r) { return r.get() == &s; });
}

}  // namespace r1
