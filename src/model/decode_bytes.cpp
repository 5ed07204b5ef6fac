#include "model/decode_bytes.h"

#include <cmath>

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

double prefill_flops_per_token(const ModelConfig& config, const ModelWeights& weights, double context) {
  const double attention = 2.0 * config.num_attention_heads * (config.kv_cache_dim() + config.kv_lora_rank) * context;
  double total = 0;
  for (const LayerWeights& l : weights.layers) {
    total += flops(l.q_a) + flops(l.q_b) + flops(l.q_proj) + flops(l.kv_a) + flops(l.kv_b) + flops(l.o_proj) + attention;
    if (!l.moe) {
      total += flops(l.mlp);
      continue;
    }
    total += flops(l.router) + flops(l.shared_experts);
    if (!l.experts.empty()) total += config.routing.num_experts_per_tok * flops(l.experts[0]);
  }
  return total;
}

}  // namespace r1
