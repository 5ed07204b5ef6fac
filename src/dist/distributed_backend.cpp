#include "dist/distributed_backend.h"

#include <algorithm>

#include "common/error.h"

namespace r1 {

DistributedBackend::DistributedBackend(const ModelConfig& config, const ModelWeights& weights,
                                       DistributedOptions options)
    : cfg_(config), options_(options), plan_(make_plan(config, options.ranks)),
      comms_(make_in_process_group(options.ranks, {options.timeout})),
      slots_(size_t(options.ranks)), lm_head_scratch_(size_t(options.ranks)), errors_(size_t(options.ranks)) {
  // Ranks wait for each other at every collective, so more threads than cores in total only
  // adds switching: each rank gets its share of the cores, at least one.
  const int cores = options.threads > 0 ? options.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  const int per_rank = std::max(1, cores / options.ranks);
  for (int r = 0; r < options.ranks; ++r)
    ranks_.push_back(std::make_unique<CpuBackend>(config, weights, per_rank, plan_, *comms_[r], options.numerics));
  for (int r = 0; r < options.ranks; ++r) threads_.emplace_back([this, r] { rank_loop(r); });
}

DistributedBackend::~DistributedBackend() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void DistributedBackend::rank_loop(int rank) {
  long seen = 0;
  for (;;) {
    const std::function<void(int)>* job;
    {
      std::unique_lock lock(mutex_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    std::string error;
    bool cause = false;  // this rank failed on its own, rather than being stopped by another
    try {
      (*job)(rank);
    } catch (const RankStopped& e) {
      error = e.what();
    } catch (const std::exception& e) {
      error = e.what();
      cause = true;
    }
    if (!error.empty()) {
      {
        std::lock_guard lock(mutex_);
        errors_[rank] = error;
        const std::string who = fmt::format("rank {}", rank);
        if (cause && first_error_.empty()) first_error_ = error.starts_with(who) ? error : who + ": " + error;
      }
      comms_[rank]->abort(error);  // the others stop at their next collective instead of waiting
    }
    std::lock_guard lock(mutex_);
    if (--pending_ == 0) done_.notify_all();
  }
}

void DistributedBackend::on_ranks(const std::function<void(int)>& job) {
  std::unique_lock lock(mutex_);
  if (!first_error_.empty()) fail("the {} ranks stopped after an earlier failure: {}", options_.ranks, first_error_);
  job_ = &job;
  pending_ = options_.ranks;
  ++generation_;
  start_.notify_all();
  done_.wait(lock, [&] { return pending_ == 0; });
  int failed = -1;
  for (int r = 0; r < options_.ranks && failed < 0; ++r)
    if (!errors_[r].empty()) failed = r;
  if (failed < 0) return;
  if (first_error_.empty()) first_error_ = errors_[failed];  // only stopped ranks: a timeout's own message
  std::vector<int> stopped;
  for (int r = 0; r < options_.ranks; ++r)
    if (!errors_[r].empty() && !first_error_.starts_with(fmt::format("rank {}:", r))) stopped.push_back(r);
  fail("{} (ranks stopped with it: {})", first_error_, stopped.empty() ? "none" : fmt::format("{}", fmt::join(stopped, ", ")));
}

Activation DistributedBackend::on(int rank, Activation a) const {
  const std::vector<float*>& mine = slots_[0];
  const auto it = std::find(mine.begin(), mine.end(), a.data);
  if (it == mine.end()) fail("internal: an activation not handed out by the distributed backend");
  return {slots_[rank][size_t(it - mine.begin())], a.tokens, a.dim};
}

Activation DistributedBackend::activation(int slot, int tokens, int dim) {
  Activation first;
  for (int r = 0; r < options_.ranks; ++r) {
    const Activation a = ranks_[r]->activation(slot, tokens, dim);
    if (int(slots_[r].size()) <= slot) slots_[r].resize(size_t(slot) + 1, nullptr);
    slots_[r][slot] = a.data;
    if (r == 0) first = a;
  }
  return first;
}

// Cache layout and batch: local state of each rank, no collectives, so the calling thread does it.
void DistributedBackend::configure_kv_cache(int num_pages, int page_size) {
  for (auto& rank : ranks_) rank->configure_kv_cache(num_pages, page_size);
}

void DistributedBackend::set_sequence_pages(int slot, std::span<const int> pages) {
  for (auto& rank : ranks_) rank->set_sequence_pages(slot, pages);
}

void DistributedBackend::prepare(const Batch& batch) {
  for (auto& rank : ranks_) rank->prepare(batch);
}

void DistributedBackend::embed(Activation h) {
  on_ranks([&](int r) { ranks_[r]->embed(on(r, h)); });
}

void DistributedBackend::rmsnorm(int layer, Norm which, Activation h, Activation delta, Activation out) {
  on_ranks([&](int r) { ranks_[r]->rmsnorm(layer, which, on(r, h), delta.data ? on(r, delta) : delta, on(r, out)); });
}

void DistributedBackend::final_norm(Activation h, Activation out) {
  on_ranks([&](int r) { ranks_[r]->final_norm(on(r, h), on(r, out)); });
}

void DistributedBackend::add(Activation h, Activation delta) {
  on_ranks([&](int r) { ranks_[r]->add(on(r, h), on(r, delta)); });
}

void DistributedBackend::select_rows(Activation h, std::span<const int> rows, Activation out) {
  on_ranks([&](int r) { ranks_[r]->select_rows(on(r, h), rows, on(r, out)); });
}

void DistributedBackend::attention(int layer, Activation x, Activation out) {
  on_ranks([&](int r) {
    if (r == options_.fail_rank && layer == options_.fail_layer)
      fail("test hook: rank {} fails at the attention of layer {}", r, layer);
    ranks_[r]->attention(layer, on(r, x), on(r, out));
  });
}

void DistributedBackend::mlp(int layer, Activation x, Activation out) {
  on_ranks([&](int r) { ranks_[r]->mlp(layer, on(r, x), on(r, out)); });
}

void DistributedBackend::moe(int layer, Activation x, Activation out) {
  on_ranks([&](int r) { ranks_[r]->moe(layer, on(r, x), on(r, out)); });
}

void DistributedBackend::lm_head(Activation x, float* host_logits) {
  for (int r = 1; r < options_.ranks; ++r) lm_head_scratch_[r].resize(size_t(x.tokens) * cfg_.vocab_size);
  on_ranks([&](int r) { ranks_[r]->lm_head(on(r, x), r == 0 ? host_logits : lm_head_scratch_[r].data()); });
}

}  // namespace r1
