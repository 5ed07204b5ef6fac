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

  // Every rank routes every token the same way, and runs only the experts it owns.
  std::fill(out.data, out.data + int64_t(n) * hidden, 0.0f);
  for (int e = rank().experts.begin; e < rank().experts.end; ++e) {
    const int m = int(copies[e].size());
    if (m == 0) continue;
    gathered_.resize(size_t(m) * hidden);
    expert_out_.resize(size_t(m) * hidden);
    for (int r = 0; r < m; ++r) {
      const float* src = x.data + int64_t(copies[e][r] / top_k) * hidden;
      std::copy(src, src + hidden, gathered_.data() + int64_t(r) * hidden);
    }
    run_mlp(lw.experts[e], gathered_.data(), m, expert_out_.data());
    for (int r = 0; r < m; ++r) {
      const int copy = copies[e][r];
      float* dst = out.data + int64_t(copy / top_k) * hidden;
      const float* src = expert_out_.data() + int64_t(r) * hidden;
      for (int i = 0; i < hidden; ++i) dst[i] += weights[copy] * src[i];
    }
  }
  if (cfg_.n_shared_experts > 0) {
    expert_out_.resize(size_t(n) * hidden);
    run_mlp(lw.shared_experts, x.data, n, expert_out_.data());
    for (int64_t i = 0; i < int64_t(n) * hidden; ++i) out.data[i] += expert_out_[i];
  }
  all_reduce(out);  // routed experts and the shared experts' slices: one sum over the ranks
}

}  // namespace r1
