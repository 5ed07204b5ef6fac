// A backend that times every op of another (r1 bench --synthetic --profile): where a forward pass
// spends its time, per op, split into prefill calls (some sequence brings several tokens) and
// decode calls (one token per sequence). Ops are timed as the host sees them: a GPU backend
// whose ops return before the device finishes is charged at its next synchronizing op.
#pragma once

#include <array>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "model/backend.h"

namespace r1 {

class TimedBackend final : public Backend {
 public:
  enum Op { embed_op, norm_op, attention_op, mlp_op, moe_op, lm_head_op, other_op, op_count };
  struct Tally {
    double seconds = 0;
    long calls = 0, tokens = 0;
  };
  using Tallies = std::array<std::array<Tally, op_count>, 2>;  // [decode, prefill][op]

  explicit TimedBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  const Tallies& tallies() const { return tallies_; }
  static const char* op_name(int op);

  Activation activation(int slot, int tokens, int dim) override { return inner_->activation(slot, tokens, dim); }
  void configure_kv_cache(int num_pages, int page_size) override { inner_->configure_kv_cache(num_pages, page_size); }
  void set_sequence_pages(int slot, std::span<const int> pages) override { inner_->set_sequence_pages(slot, pages); }
  void prepare(const Batch& batch) override;

  void embed(Activation h) override;
  void rmsnorm(int layer, Norm which, Activation h, Activation delta, Activation out) override;
  void final_norm(Activation h, Activation out) override;
  void add(Activation h, Activation delta) override;
  void select_rows(Activation h, std::span<const int> rows, Activation out) override;
  void attention(int layer, Activation x, Activation out) override;
  void mlp(int layer, Activation x, Activation out) override;
  void moe(int layer, Activation x, Activation out) override;
  void lm_head(Activation x, float* host_logits) override;
  void lm_head_argmax(Activation x, int vocab, int* host_tokens) override;
  bool expands_prompt_chunks() const override { return inner_->expands_prompt_chunks(); }

 private:
  template <class Fn>
  void timed(Op op, int tokens, Fn&& fn);

  std::unique_ptr<Backend> inner_;
  Tallies tallies_{};
  bool prefill_ = false;  // the forward call in progress
};

// The tallies as a table: one line per op and phase that ran, ms per call, µs per token, share.
std::string format_op_times(const TimedBackend::Tallies& tallies);
// The same lines as JSON objects {phase, op, calls, tokens, seconds}.
nlohmann::json op_times_json(const TimedBackend::Tallies& tallies);

}  // namespace r1
