#include "model/timed_backend.h"

#include <fmt/format.h>

#include <chrono>
#include <set>

namespace r1 {

const char* TimedBackend::op_name(int op) {
  static const char* names[op_count] = {"embed", "norm", "attention", "mlp", "moe", "lm_head", "other"};
  return names[op];
}

template <class Fn>
void TimedBackend::timed(Op op, int tokens, Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  Tally& t = tallies_[prefill_][op];
  t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ++t.calls;
  t.tokens += tokens;
}

void TimedBackend::prepare(const Batch& batch) {
  prefill_ = std::set<int>(batch.sequences.begin(), batch.sequences.end()).size() < size_t(batch.size());
  timed(other_op, 0, [&] { inner_->prepare(batch); });
}

void TimedBackend::embed(Activation h) { timed(embed_op, h.tokens, [&] { inner_->embed(h); }); }
void TimedBackend::rmsnorm(int layer, Norm which, Activation h, Activation delta, Activation out) {
  timed(norm_op, h.tokens, [&] { inner_->rmsnorm(layer, which, h, delta, out); });
}
void TimedBackend::final_norm(Activation h, Activation out) {
  timed(norm_op, h.tokens, [&] { inner_->final_norm(h, out); });
}
void TimedBackend::add(Activation h, Activation delta) { timed(other_op, 0, [&] { inner_->add(h, delta); }); }
void TimedBackend::select_rows(Activation h, std::span<const int> rows, Activation out) {
  timed(other_op, 0, [&] { inner_->select_rows(h, rows, out); });
}
void TimedBackend::attention(int layer, Activation x, Activation out) {
  timed(attention_op, x.tokens, [&] { inner_->attention(layer, x, out); });
}
void TimedBackend::mlp(int layer, Activation x, Activation out) {
  timed(mlp_op, x.tokens, [&] { inner_->mlp(layer, x, out); });
}
void TimedBackend::moe(int layer, Activation x, Activation out) {
  timed(moe_op, x.tokens, [&] { inner_->moe(layer, x, out); });
}
void TimedBackend::lm_head(Activation x, float* host_logits) {
  timed(lm_head_op, x.tokens, [&] { inner_->lm_head(x, host_logits); });
}
void TimedBackend::lm_head_argmax(Activation x, int vocab, int* host_tokens) {
  timed(lm_head_op, x.tokens, [&] { inner_->lm_head_argmax(x, vocab, host_tokens); });
}

std::string format_op_times(const TimedBackend::Tallies& tallies) {
  std::string out = fmt::format("{:<8} {:<10} {:>8} {:>10} {:>12} {:>12} {:>7}\n", "phase", "op", "calls", "seconds",
                                "ms/call", "us/token", "share");
  for (int phase : {1, 0}) {
    double total = 0;
    for (const auto& t : tallies[phase]) total += t.seconds;
    for (int op = 0; op < TimedBackend::op_count; ++op) {
      const TimedBackend::Tally& t = tallies[phase][op];
      if (t.calls == 0) continue;
      out += fmt::format("{:<8} {:<10} {:>8} {:>10.3f} {:>12.3f} {:>12.1f} {:>6.1f}%\n", phase ? "prefill" : "decode",
                         TimedBackend::op_name(op), t.calls, t.seconds, t.seconds * 1e3 / t.calls,
                         t.tokens ? t.seconds * 1e6 / t.tokens : 0.0, total > 0 ? t.seconds / total * 100 : 0.0);
    }
  }
  return out;
}

nlohmann::json op_times_json(const TimedBackend::Tallies& tallies) {
  nlohmann::json lines = nlohmann::json::array();
  for (int phase : {1, 0})
    for (int op = 0; op < TimedBackend::op_count; ++op)
      if (const TimedBackend::Tally& t = tallies[phase][op]; t.calls > 0)
        lines.push_back({{"phase", phase ? "prefill" : "decode"}, {"op", TimedBackend::op_name(op)}, {"calls", t.calls},
                         {"tokens", t.tokens}, {"seconds", t.seconds}});
  return lines;
}

}  // namespace r1
