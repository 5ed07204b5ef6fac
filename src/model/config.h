// config.json of the DeepSeek MLA + MoE family (model_type deepseek_v3 / deepseek_v2).
#pragma once

#include <string>

#include "r1/rope.h"
#include "r1/routing.h"

namespace r1 {

struct ModelConfig {
  std::string model_type;        // deepseek_v3 | deepseek_v2
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;     // dense MLP width
  int moe_intermediate_size = 0; // width of one routed (or shared) expert
  int num_hidden_layers = 0;     // layers at or beyond this index are MTP and skipped
  int first_k_dense_replace = 0; // layers below are dense
  int moe_layer_freq = 1;
  int num_attention_heads = 0;
  int q_lora_rank = 0;           // 0: plain q_proj (config null)
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
  int n_shared_experts = 0;
  RoutingParams routing;         // n_routed_experts == 0: no MoE layers
  RopeParams rope;
  float rms_norm_eps = 1e-6f;
  int max_position_embeddings = 0;
  int num_nextn_predict_layers = 0;
  bool tie_word_embeddings = false;
  int fp8_block_size = 0;        // weight_block_size of an fp8 quantization_config, else 0
  int bos_token_id = -1, eos_token_id = -1;

  int qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  int kv_cache_dim() const { return kv_lora_rank + qk_rope_head_dim; }  // latent + k_pe per token
  bool is_moe_layer(int layer) const {
    return routing.n_routed_experts > 0 && layer >= first_k_dense_replace &&
           layer % moe_layer_freq == 0;
  }
  float softmax_scale() const { return attention_softmax_scale(rope, qk_head_dim()); }
  // Prompt tokens a forward call takes unless told otherwise (EngineOptions::prefill_chunk):
  // 16 per routed expert on average, at least 256 and at most 2048. R1 (256 experts, top 8):
  // 512, where 256 gave its experts 8 tokens each and read their weights twice for a 512-token
  // prompt (the 4-layer slice, fast numerics: 87-95 -> 97-99 tok/s). The demo model (8, top 2)
  // keeps 256: with 512 its prefill ran 17% slower.
  int default_prefill_chunk() const {
    const int per_expert = routing.num_experts_per_tok > 0 ? 16 * routing.n_routed_experts / routing.num_experts_per_tok : 0;
    return per_expert < 256 ? 256 : per_expert > 2048 ? 2048 : per_expert;
  }
};

ModelConfig load_config(const std::string& model_dir);

}  // namespace r1
