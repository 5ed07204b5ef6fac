#include "model/decode_bytes.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace r1 {

namespace {

double bytes(const Linear& w) {
  if (!w.weight) return 0;
  return double(w.weight->bytes) + (w.scale_inv ? double(w.scale_inv->bytes) : 0.0);
}

double bytes(const MlpWeights& m) { return bytes(m.gate) + bytes(m.up) + bytes(m.down); }

double flops(const Linear& w) { return w.weight ? 2.0 * double(w.out) * w.in : 0.0; }
double flops(const MlpWeights& m) { return flops(m.gate) + flops(m.up) + flops(m.down); }

}  // namespace

double decode_bytes_per_step(const ModelConfig& config, const ModelWeights& weights, int batch, double context,
                             int cache_bytes_per_value) {
  double total = bytes(weights.lm_head);
  if (weights.embed_tokens) total += double(batch) * weights.embed_tokens->bytes / config.vocab_size;
  for (const LayerWeights& l : weights.layers) {
    total += bytes(l.q_a) + bytes(l.q_b) + bytes(l.q_proj) + bytes(l.kv_a) + bytes(l.kv_b) + bytes(l.o_proj);
    total += double(batch) * context * config.kv_cache_dim() * cache_bytes_per_value;
    if (!l.moe) {
      total += bytes(l.mlp);
      continue;
    }
    total += bytes(l.router) + bytes(l.shared_experts);
    if (l.experts.empty()) continue;
    const double n = double(l.experts.size()), k = config.routing.num_experts_per_tok;
    const double distinct = n * (1.0 - std::pow(1.0 - k / n, batch));  // = k at batch 1
    total += distinct * bytes(l.experts[0]);
  }
  return total;
}

namespace {

// (query, cached row) pairs of `tokens` queries from position `first` on: each attends to the
// rows up to its own position.
int64_t attended_pairs(int first, int tokens) { return int64_t(tokens) * first + int64_t(tokens) * (tokens + 1) / 2; }

}  // namespace

// Multiply-adds a head: the expanded form maps every cached row up (W_UK and W_UV) and takes the
// smaller pairs; the absorbed one maps each query in and its output out (as many as a row's
// mapping) and takes the larger pairs.
bool expanded_form_pays(const ModelConfig& c, int first, int tokens) {
  const int64_t per_row = int64_t(c.kv_lora_rank) * (c.qk_nope_head_dim + c.v_head_dim);
  const int64_t pair_saving = int64_t(c.kv_cache_dim() + c.kv_lora_rank) - (c.qk_head_dim() + c.v_head_dim);
  return int64_t(first) * per_row < attended_pairs(first, tokens) * pair_saving;
}

double prompt_flops(const ModelConfig& config, const ModelWeights& weights, int prompt_len, int chunk,
                    bool expands_chunks) {
  double per_token = 0, kv_b = 0;  // every matrix product but kv_b; kv_b
  for (const LayerWeights& l : weights.layers) {
    per_token += flops(l.q_a) + flops(l.q_b) + flops(l.q_proj) + flops(l.kv_a) + flops(l.o_proj);
    kv_b += flops(l.kv_b);
    if (!l.moe) {
      per_token += flops(l.mlp);
      continue;
    }
    per_token += flops(l.router) + flops(l.shared_experts);
    if (!l.experts.empty()) per_token += config.routing.num_experts_per_tok * flops(l.experts[0]);
  }
  const double pair_flops = 2.0 * config.num_attention_heads * double(weights.layers.size());
  double total = per_token * prompt_len;
  for (int first = 0; first < prompt_len; first += chunk) {
    const int tokens = std::min(chunk, prompt_len - first);
    const double pairs = double(attended_pairs(first, tokens));
    if (expands_chunks && expanded_form_pays(config, first, tokens))
      total += kv_b * (first + tokens) + pair_flops * (config.qk_head_dim() + config.v_head_dim) * pairs;
    else
      total += kv_b * tokens + pair_flops * (config.kv_cache_dim() + config.kv_lora_rank) * pairs;
  }
  return total;
}

}  // namespace r1
