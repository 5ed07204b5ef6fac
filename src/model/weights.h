// Per-layer views of a checkpoint's tensors, checked against the config. Nothing is copied:
// every pointer leads into the safetensors mappings.
#pragma once

#include <vector>

#include "io/safetensors.h"
#include "model/config.h"

namespace r1 {

// y = x · Wᵀ with W [out, in] in F32/F16/BF16, or F8_E4M3 with block scales:
// W[i][j] = e4m3(q[i][j]) * scale_inv[i / block][j / block].
// A Linear may be a view of part of the stored weight (a rank's shard): rows [row0, row0 + out)
// and columns [col0, col0 + in) of `weight`; scale_inv stays the whole tensor's.
struct Linear {
  const TensorView* weight = nullptr;
  const TensorView* scale_inv = nullptr;  // [ceil(rows/block), ceil(cols/block)] F32 of the stored weight, FP8 only
  int out = 0, in = 0, block = 0;
  int row0 = 0, col0 = 0;
};

// Rows [begin, end) of w's output (a column-parallel shard), or columns [begin, end) of its
// input (a row-parallel shard); views, nothing copied.
Linear output_slice(const Linear& w, int begin, int end);
Linear input_slice(const Linear& w, int begin, int end);

struct MlpWeights {  // down(silu(gate(x)) * up(x))
  Linear gate, up;   // [width, hidden]
  Linear down;       // [hidden, width]
};

struct LayerWeights {
  const TensorView* input_layernorm = nullptr;          // [hidden]
  const TensorView* post_attention_layernorm = nullptr; // [hidden]
  // MLA. With q LoRA: q_b(q_a_layernorm(q_a(x))); without: q_proj(x).
  Linear q_a;                                  // [q_lora_rank, hidden]
  const TensorView* q_a_layernorm = nullptr;   // [q_lora_rank]
  Linear q_b;                                  // [heads * qk_head_dim, q_lora_rank]
  Linear q_proj;                               // [heads * qk_head_dim, hidden]
  Linear kv_a;                                 // [kv_lora_rank + qk_rope, hidden]
  const TensorView* kv_a_layernorm = nullptr;  // [kv_lora_rank]
  Linear kv_b;                                 // [heads * (qk_nope + v_head_dim), kv_lora_rank]
  Linear o_proj;                               // [hidden, heads * v_head_dim]
  // Feed-forward: dense below first_k_dense_replace, MoE from there on.
  bool moe = false;
  MlpWeights mlp;                              // dense MLP
  Linear router;                                // mlp.gate [n_routed_experts, hidden]
  const TensorView* router_bias = nullptr;     // e_score_correction_bias [n_routed_experts]
  std::vector<MlpWeights> experts;             // [n_routed_experts], width moe_intermediate
  MlpWeights shared_experts;                   // width n_shared * moe_intermediate (if any)
};

struct ModelWeights {
  const TensorView* embed_tokens = nullptr;  // [vocab, hidden]
  const TensorView* norm = nullptr;          // [hidden]
  Linear lm_head;                            // [vocab, hidden]
  std::vector<LayerWeights> layers;          // num_hidden_layers (MTP layers not bound)
};

ModelWeights bind_weights(const Checkpoint& checkpoint, const ModelConfig& config);

}  // namespace r1
