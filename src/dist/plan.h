// The sharding plan: which slice of every weight each rank owns, and where the ranks talk.
// A pure function of (config, world size, strategy), computed before anything is loaded, so
// tests and `r1 plan` can inspect it. Sharding lives here and in the backend ops, never in
// the forward loop (DESIGN.md §2).
#pragma once

#include <string>
#include <vector>

#include "model/config.h"

namespace r1 {

struct Range {  // [begin, end)
  int begin = 0, end = 0;
  int size() const { return end - begin; }
  bool contains(int i) const { return i >= begin && i < end; }
  bool operator==(const Range&) const = default;
};

// The only strategy so far: tensor parallel over heads and MLP widths, expert parallel over
// routed experts, vocabulary parallel embedding and lm_head (DESIGN.md §4).
enum class Strategy { tensor_expert };

enum class Collective { all_reduce_sum, all_gather };

// A point of the forward pass where every rank joins a collective.
struct CommPoint {
  std::string after;          // the op whose partial results it combines, e.g. "o_proj"
  Collective op;
  long long values_per_token;  // floats each rank contributes per token (all_gather: its share, padded)
  std::string when;            // "once", "every layer", "dense layers" or "moe layers"
};

// One rank's shard. Replicated on every rank: the norms, q_a, kv_a (MLA's latent projection is
// shared by all heads), the router, and the latent KV cache (c and k_pe are not per head, so
// every rank caches the same rows; only the per-head expansion through kv_b is split).
struct RankPlan {
  int rank = 0;
  Range heads;    // q_b / q_proj rows heads × qk_head_dim, kv_b rows heads × (qk_nope + v), o_proj columns heads × v
  Range mlp;      // dense MLP width: gate/up rows, down_proj columns
  Range shared;   // shared experts' width (n_shared × moe_intermediate): the same split
  Range experts;  // routed experts owned whole (expert parallel), possibly unequal counts
  Range vocab;    // embed_tokens rows and lm_head rows
};

struct ShardPlan {
  int world = 1;
  Strategy strategy = Strategy::tensor_expert;
  std::vector<RankPlan> ranks;
  std::vector<CommPoint> comms;
  int max_vocab_share() const;  // the padded per-rank piece of the lm_head all-gather
};

// Fails (r1::Error, before anything is loaded) when the world size cannot split the heads.
ShardPlan make_plan(const ModelConfig& config, int world, Strategy strategy = Strategy::tensor_expert);

// Part `index` of [0, n) cut into `parts` nearly equal contiguous ranges (the first n % parts
// ranges one longer).
Range split_range(int n, int parts, int index);

}  // namespace r1
