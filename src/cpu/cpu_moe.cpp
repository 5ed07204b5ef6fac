// Mixture of experts on the CPU: route every token, run each chosen expert once over all the
// tokens that picked it, add the weighted results and the shared experts. Sharded, each rank
// runs its own experts and its slice of the shared experts, and the ranks' sums are added.
#include <algorithm>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/linear.h"

namespace r1 {

void CpuBackend::moe(int layer, Activation x, Activation out) {
  const LayerWeights& lw = w_.layers[layer];
  const RoutingParams& rp = cfg_.routing;
  const int n = x.tokens, hidden = x.dim, experts = rp.n_routed_experts, top_k = rp.num_experts_per_tok;

  router_logits_.resize(size_t(n) * experts);
  linear(pool_, lw.router, x.data, n, router_logits_.data());
  chosen_.resize(size_t(n) * top_k);
  route_weights_.resize(size_t(n) * top_k);
  route_scratch_.resize(size_t(2) * experts);
  const std::vector<int>& chosen = chosen_;
  const std::vector<float>& weights = route_weights_;
  const float* bias = norms_[layer].router_bias.empty() ? nullptr : norms_[layer].router_bias.data();
  for (int t = 0; t < n; ++t)
    route_token(rp, router_logits_.data() + int64_t(t) * experts, bias, route_scratch_.data(),
                chosen_.data() + int64_t(t) * top_k, route_weights_.data() + int64_t(t) * top_k);

  if (forced_routes_)
    for (const Route& r : *forced_routes_)
      for (int t = 0; t < n; ++t)
        if (r.layer == layer && r.sequence == batch_->sequences[t] && r.position == batch_->positions[t]) {
          int* ids = chosen_.data() + int64_t(t) * top_k;
          std::copy(r.experts.begin(), r.experts.end(), ids);
          routing_scores(rp, router_logits_.data() + int64_t(t) * experts, route_scratch_.data());
          routing_weights(rp, route_scratch_.data(), ids, route_weights_.data() + int64_t(t) * top_k);
        }
  if (routes_)
    for (int t = 0; t < n; ++t) {
      std::vector<int> experts(chosen.begin() + int64_t(t) * top_k, chosen.begin() + int64_t(t + 1) * top_k);
      std::sort(experts.begin(), experts.end());
      routes_->push_back({layer, batch_->sequences[t], batch_->positions[t], std::move(experts)});
    }

  // Token copies grouped by expert, in token order within each expert (the lists are cleared,
  // not freed: no allocation once decode is warm).
  copies_.resize(size_t(experts));
  for (std::vector<int>& c : copies_) c.clear();
  for (int i = 0; i < n * top_k; ++i) copies_[chosen[i]].push_back(i);
  const std::vector<std::vector<int>>& copies = copies_;

  // Every rank routes every token the same way, and runs only the experts it owns: the chosen
  // ones over the tokens that chose them (gathered), and the shared experts over all tokens.
  // All their gate and up products go in one dispatch, all their down products in a second.
  std::vector<ExpertRun>& runs = expert_runs_;
  runs.clear();
  size_t rows = 0, width_rows = 0;
  for (int e = rank().experts.begin; e < rank().experts.end; ++e)
    if (const int m = int(copies[e].size()); m > 0) {
      runs.push_back({&lw.experts[e], nullptr, m, rows * hidden, width_rows});
      rows += m, width_rows += size_t(m) * lw.experts[e].gate.out;
    }
  const size_t routed_rows = rows;
  if (cfg_.n_shared_experts > 0) {
    runs.push_back({&lw.shared_experts, x.data, n, rows * hidden, width_rows});
    rows += n, width_rows += size_t(n) * lw.shared_experts.gate.out;
  }
  gathered_.resize(routed_rows * hidden);
  expert_out_.resize(rows * hidden);
  gate_.resize(width_rows);
  up_.resize(width_rows);
  // copy_row_[copy]: where a token's copy sits in gathered_ and expert_out_ (rows of `hidden`).
  copy_row_.resize(size_t(n) * top_k);
  for (size_t k = 0, e = rank().experts.begin; k < runs.size() && e < size_t(rank().experts.end); ++e) {
    if (copies[e].empty()) continue;
    ExpertRun& run = runs[k++];
    run.x = gathered_.data() + run.hidden_at;
    for (int r = 0; r < run.tokens; ++r) copy_row_[size_t(copies[e][r])] = int(run.hidden_at / hidden) + r;
  }
  const std::vector<int>& copy_row = copy_row_;
  pool_.parallel_for(n, [&](int begin, int end, int) {  // gather: the tokens' rows to their copies
    for (int t = begin; t < end; ++t)
      for (int k = 0; k < top_k; ++k)
        if (const int e = chosen[size_t(t) * top_k + k]; rank().experts.contains(e))
          std::copy_n(x.data + int64_t(t) * hidden, hidden, gathered_.data() + int64_t(copy_row[size_t(t) * top_k + k]) * hidden);
  });
  std::vector<LinearJob>& jobs = expert_jobs_;
  jobs.clear();
  for (const ExpertRun& run : runs) {
    jobs.push_back({&run.w->gate, run.x, run.tokens, gate_.data() + run.width_at});
    jobs.push_back({&run.w->up, run.x, run.tokens, up_.data() + run.width_at});
  }
  linear_many(pool_, jobs, fast_);
  silu_mul_all(gate_.data(), up_.data(), width_rows);
  jobs.clear();
  for (const ExpertRun& run : runs)
    jobs.push_back({&run.w->down, gate_.data() + run.width_at, run.tokens, expert_out_.data() + run.hidden_at});
  linear_many(pool_, jobs, fast_);

  // Each token's sum: its experts' outputs weighted, in the order of the experts' ids, then the
  // shared experts' (a token a unit on the pool; the order does not depend on the batch).
  const float* shared = cfg_.n_shared_experts > 0 ? expert_out_.data() + runs.back().hidden_at : nullptr;
  pool_.parallel_for(n, [&](int begin, int end, int) {
    for (int t = begin; t < end; ++t) {
      thread_local std::vector<int> order;
      const int* ids = chosen.data() + size_t(t) * top_k;
      order.resize(size_t(top_k));
      for (int k = 0; k < top_k; ++k) order[size_t(k)] = k;
      std::sort(order.begin(), order.end(), [&](int a, int b) { return ids[a] < ids[b]; });
      float* dst = out.data + int64_t(t) * hidden;
      std::fill(dst, dst + hidden, 0.0f);
      for (int j = 0; j < top_k; ++j) {
        const int copy = t * top_k + order[size_t(j)];
        if (!rank().experts.contains(ids[order[size_t(j)]])) continue;
        const float* src = expert_out_.data() + int64_t(copy_row[size_t(copy)]) * hidden;
        for (int i = 0; i < hidden; ++i) dst[i] += weights[size_t(copy)] * src[i];
      }
      if (shared)
        for (int i = 0; i < hidden; ++i) dst[i] += shared[int64_t(t) * hidden + i];
    }
  });
  all_reduce(out);  // routed experts and the shared experts' slices: one sum over the ranks
}

}  // namespace r1
