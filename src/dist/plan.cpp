#include "dist/plan.h"

#include <algorithm>

#include "common/error.h"

namespace r1 {

Range split_range(int n, int parts, int index) {
  const int base = n / parts, extra = n % parts;
  const int begin = index * base + std::min(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

int ShardPlan::max_vocab_share() const {
  int most = 0;
  for (const RankPlan& r : ranks) most = std::max(most, r.vocab.size());
  return most;
}

ShardPlan make_plan(const ModelConfig& c, int world, Strategy strategy) {
  if (world < 1) fail("world size {}: need at least one rank", world);
  // Heads are split evenly or not at all: an uneven split would leave ranks with different
  // attention shapes, which NCCL-style lockstep collectives and the GPU kernels do not support.
  if (c.num_attention_heads % world != 0)
    fail("{} ranks cannot split the model's {} attention heads evenly (num_attention_heads must be a multiple of the "
         "rank count; try one of: {})",
         world, c.num_attention_heads, [&] {
           std::vector<int> ok;
           for (int w = 1; w <= c.num_attention_heads && ok.size() < 6; ++w)
             if (c.num_attention_heads % w == 0) ok.push_back(w);
           return fmt::format("{}", fmt::join(ok, ", "));
         }());
  if (c.vocab_size < world) fail("{} ranks cannot split a vocabulary of {}", world, c.vocab_size);

  ShardPlan plan;
  plan.world = world;
  plan.strategy = strategy;
  const int shared_width = c.n_shared_experts * c.moe_intermediate_size;
  for (int r = 0; r < world; ++r)
    plan.ranks.push_back({r, split_range(c.num_attention_heads, world, r), split_range(c.intermediate_size, world, r),
                          split_range(shared_width, world, r), split_range(c.routing.n_routed_experts, world, r),
                          split_range(c.vocab_size, world, r)});

  const long long hidden = c.hidden_size;
  bool has_dense = false;
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) has_dense = has_dense || !c.is_moe_layer(layer);
  plan.comms.push_back({"embed", Collective::all_reduce_sum, hidden, "once"});
  plan.comms.push_back({"o_proj", Collective::all_reduce_sum, hidden, "every layer"});
  if (has_dense) plan.comms.push_back({"mlp.down_proj", Collective::all_reduce_sum, hidden, "dense layers"});
  if (c.routing.n_routed_experts > 0)  // routed experts and the shared slice summed, then one all-reduce
    plan.comms.push_back({"moe (routed + shared)", Collective::all_reduce_sum, hidden, "moe layers"});
  plan.comms.push_back({"lm_head", Collective::all_gather, plan.max_vocab_share(), "once"});
  return plan;
}

}  // namespace r1
