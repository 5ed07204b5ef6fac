// A rank's views of the checkpoint: the slices its RankPlan names, still pointing into the
// mappings, so a rank reads (pages in) only the bytes of its own shard.
#pragma once

#include "dist/plan.h"
#include "model/weights.h"

namespace r1 {

// Heads: q_b / q_proj and kv_b rows, o_proj columns. MLP and shared experts: gate/up rows,
// down_proj columns. Routed experts outside the rank's range are left unbound. Embedding and
// lm_head: the vocabulary rows (the embedding stays a whole-tensor view; the backend reads
// only its rows). Norms, q_a, kv_a and the router are whole on every rank.
ModelWeights shard_weights(const ModelWeights& full, const ModelConfig& config, const RankPlan& rank);

}  // namespace r1
