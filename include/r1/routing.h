// MoE expert selection rules of the DeepSeek family (DESIGN.md §3, "MoE"), for one token.
// Shared by the CPU backend and the CUDA routing kernel's reference test.
#pragma once

#include <cmath>

#include "r1/host_device.h"

namespace r1 {

enum class TopkMethod { noaux_tc, greedy, group_limited_greedy };
enum class ScoringFunc { sigmoid, softmax };

constexpr int kMaxRoutingGroups = 64;

struct RoutingParams {
  int n_routed_experts = 0;
  int num_experts_per_tok = 0;
  int n_group = 1;
  int topk_group = 1;
  TopkMethod topk_method = TopkMethod::greedy;
  ScoringFunc scoring_func = ScoringFunc::softmax;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
};

// Score of one expert group used to pick groups: sum of the best two (noaux_tc) or the best one.
R1_HD float routing_group_score(const float* choice, int group_size, bool top2_sum) {
  float best = -INFINITY, second = -INFINITY;
  for (int e = 0; e < group_size; ++e) {
    float v = choice[e];
    if (v > best) {
      second = best;
      best = v;
    } else if (v > second) {
      second = v;
    }
  }
  return top2_sum ? best + second : best;
}

// Unbiased affinities of every routed expert (what the weights are made of) from its gate logit.
R1_HD void routing_scores(const RoutingParams& p, const float* gate_logits, float* scores) {
  const int n = p.n_routed_experts;
  if (p.scoring_func == ScoringFunc::sigmoid) {
    for (int e = 0; e < n; ++e) scores[e] = 1.0f / (1.0f + expf(-gate_logits[e]));
  } else {
    float max_logit = -INFINITY, sum = 0;
    for (int e = 0; e < n; ++e) max_logit = fmaxf(max_logit, gate_logits[e]);
    for (int e = 0; e < n; ++e) sum += (scores[e] = expf(gate_logits[e] - max_logit));
    for (int e = 0; e < n; ++e) scores[e] /= sum;
  }
}

// The weights of the chosen experts (num_experts_per_tok of them) from their affinities.
R1_HD void routing_weights(const RoutingParams& p, const float* scores, const int* expert_ids, float* expert_weights) {
  float weight_sum = 0;
  for (int k = 0; k < p.num_experts_per_tok; ++k) weight_sum += expert_weights[k] = scores[expert_ids[k]];
  float scale = p.routed_scaling_factor / (p.norm_topk_prob ? weight_sum : 1.0f);
  for (int k = 0; k < p.num_experts_per_tok; ++k) expert_weights[k] *= scale;
}

// gate_logits: x·Wg for every routed expert; bias: e_score_correction_bias (noaux_tc) or null.
// scratch: 2 * n_routed_experts floats. Writes num_experts_per_tok expert ids and weights,
// best first. Ties go to the lower expert id.
R1_HD void route_token(const RoutingParams& p, const float* gate_logits, const float* bias,
                       float* scratch, int* expert_ids, float* expert_weights) {
  const int n = p.n_routed_experts;
  float* scores = scratch;      // unbiased affinities: what the weights are made of
  float* choice = scratch + n;  // what selection ranks: scores (+ bias)
  routing_scores(p, gate_logits, scores);
  for (int e = 0; e < n; ++e) choice[e] = scores[e] + (bias ? bias[e] : 0.0f);

  if (p.topk_method != TopkMethod::greedy && p.n_group > 1) {
    const int group_size = n / p.n_group;
    const bool top2_sum = p.topk_method == TopkMethod::noaux_tc;
    float group_score[kMaxRoutingGroups];
    bool keep[kMaxRoutingGroups];
    for (int g = 0; g < p.n_group; ++g) {
      group_score[g] = routing_group_score(choice + g * group_size, group_size, top2_sum);
      keep[g] = false;
    }
    for (int k = 0; k < p.topk_group; ++k) {
      int best = -1;
      for (int g = 0; g < p.n_group; ++g)
        if (!keep[g] && (best < 0 || group_score[g] > group_score[best])) best = g;
      keep[best] = true;
    }
    for (int e = 0; e < n; ++e)
      if (!keep[e / group_size]) choice[e] = -INFINITY;
  }

  for (int k = 0; k < p.num_experts_per_tok; ++k) {
    int best = 0;
    for (int e = 1; e < n; ++e)
      if (choice[e] > choice[best]) best = e;
    expert_ids[k] = best;
    choice[best] = -INFINITY;
    // A masked expert can only be picked when fewer experts than top-k are left; never happens
    // for a valid config (checked when the config is loaded).
  }
  routing_weights(p, scores, expert_ids, expert_weights);
}

}  // namespace r1
