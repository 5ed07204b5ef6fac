#include "dist/shard_weights.h"

namespace r1 {

namespace {

MlpWeights shard_mlp(const MlpWeights& m, Range width) {
  return {output_slice(m.gate, width.begin, width.end), output_slice(m.up, width.begin, width.end),
          input_slice(m.down, width.begin, width.end)};
}

}  // namespace

ModelWeights shard_weights(const ModelWeights& full, const ModelConfig& c, const RankPlan& rank) {
  ModelWeights w = full;
  w.lm_head = output_slice(full.lm_head, rank.vocab.begin, rank.vocab.end);
  const Range h = rank.heads;
  const int q_rows = c.qk_head_dim(), kv_rows = c.qk_nope_head_dim + c.v_head_dim, o_cols = c.v_head_dim;
  for (LayerWeights& l : w.layers) {
    if (l.q_b.weight) l.q_b = output_slice(l.q_b, h.begin * q_rows, h.end * q_rows);
    if (l.q_proj.weight) l.q_proj = output_slice(l.q_proj, h.begin * q_rows, h.end * q_rows);
    l.kv_b = output_slice(l.kv_b, h.begin * kv_rows, h.end * kv_rows);
    l.o_proj = input_slice(l.o_proj, h.begin * o_cols, h.end * o_cols);
    if (!l.moe) {
      l.mlp = shard_mlp(l.mlp, rank.mlp);
      continue;
    }
    for (int e = 0; e < int(l.experts.size()); ++e)
      if (!rank.experts.contains(e)) l.experts[e] = {};
    if (l.shared_experts.gate.weight) l.shared_experts = shard_mlp(l.shared_experts, rank.shared);
  }
  return w;
}

}  // namespace r1
