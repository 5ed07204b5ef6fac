#include "model/weights.h"

#include "common/error.h"

namespace r1 {

namespace {

bool is_float_dtype(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

class Binder {
 public:
  Binder(const Checkpoint& checkpoint, const ModelConfig& config) : ckpt_(checkpoint), cfg_(config) {}

  const TensorView* vector(const std::string& name, int64_t size) {
    const TensorView& t = ckpt_.get(name);
    expect_shape(t, {size});
    if (!is_float_dtype(t.dtype))
      fail("{}: tensor '{}' has dtype {}, expected a float type", t.file, name, dtype_name(t.dtype));
    return &t;
  }

  const TensorView* matrix(const std::string& name, int64_t rows, int64_t cols) {
    const TensorView& t = ckpt_.get(name);
    expect_shape(t, {rows, cols});
    if (!is_float_dtype(t.dtype))
      fail("{}: tensor '{}' has dtype {}, expected a float type", t.file, name, dtype_name(t.dtype));
    return &t;
  }

  Linear linear(const std::string& prefix, int out, int in) {
    Linear l;
    l.out = out;
    l.in = in;
    const std::string name = prefix + ".weight";
    l.weight = &ckpt_.get(name);
    expect_shape(*l.weight, {out, in});
    if (l.weight->dtype == DType::F8_E4M3) {
      l.block = cfg_.fp8_block_size > 0 ? cfg_.fp8_block_size : 128;
      const std::string scale_name = prefix + ".weight_scale_inv";
      l.scale_inv = ckpt_.find(scale_name);
      if (!l.scale_inv) fail("{}: FP8 tensor '{}' has no '{}'", l.weight->file, name, scale_name);
      expect_shape(*l.scale_inv, {(out + l.block - 1) / l.block, (in + l.block - 1) / l.block});
      if (l.scale_inv->dtype != DType::F32)
        fail("{}: tensor '{}' must be F32", l.scale_inv->file, scale_name);
    } else if (!is_float_dtype(l.weight->dtype)) {
      fail("{}: tensor '{}' has dtype {}, expected F32, F16, BF16 or F8_E4M3", l.weight->file, name,
           dtype_name(l.weight->dtype));
    }
    return l;
  }

  MlpWeights mlp(const std::string& prefix, int width) {
    const int hidden = cfg_.hidden_size;
    return {linear(prefix + ".gate_proj", width, hidden), linear(prefix + ".up_proj", width, hidden),
            linear(prefix + ".down_proj", hidden, width)};
  }

 private:
  void expect_shape(const TensorView& t, const std::vector<int64_t>& shape) {
    if (t.shape != shape)
      fail("{}: tensor '{}' has shape {}, but config.json implies [{}]", t.file, t.name,
           t.shape_string(), fmt::join(shape, ", "));
  }

  const Checkpoint& ckpt_;
  const ModelConfig& cfg_;
};

LayerWeights bind_layer(Binder& b, const ModelConfig& c, int index) {
  const std::string p = fmt::format("model.layers.{}.", index);
  const int heads = c.num_attention_heads, hidden = c.hidden_size;
  LayerWeights l;
  l.input_layernorm = b.vector(p + "input_layernorm.weight", hidden);
  l.post_attention_layernorm = b.vector(p + "post_attention_layernorm.weight", hidden);
  if (c.q_lora_rank > 0) {
    l.q_a = b.linear(p + "self_attn.q_a_proj", c.q_lora_rank, hidden);
    l.q_a_layernorm = b.vector(p + "self_attn.q_a_layernorm.weight", c.q_lora_rank);
    l.q_b = b.linear(p + "self_attn.q_b_proj", heads * c.qk_head_dim(), c.q_lora_rank);
  } else {
    l.q_proj = b.linear(p + "self_attn.q_proj", heads * c.qk_head_dim(), hidden);
  }
  l.kv_a = b.linear(p + "self_attn.kv_a_proj_with_mqa", c.kv_cache_dim(), hidden);
  l.kv_a_layernorm = b.vector(p + "self_attn.kv_a_layernorm.weight", c.kv_lora_rank);
  l.kv_b = b.linear(p + "self_attn.kv_b_proj", heads * (c.qk_nope_head_dim + c.v_head_dim),
                    c.kv_lora_rank);
  l.o_proj = b.linear(p + "self_attn.o_proj", hidden, heads * c.v_head_dim);

  l.moe = c.is_moe_layer(index);
  if (!l.moe) {
    l.mlp = b.mlp(p + "mlp", c.intermediate_size);
    return l;
  }
  const int experts = c.routing.n_routed_experts;
  l.router = b.linear(p + "mlp.gate", experts, hidden);
  if (c.routing.topk_method == TopkMethod::noaux_tc)
    l.router_bias = b.vector(p + "mlp.gate.e_score_correction_bias", experts);
  for (int e = 0; e < experts; ++e)
    l.experts.push_back(b.mlp(fmt::format("{}mlp.experts.{}", p, e), c.moe_intermediate_size));
  if (c.n_shared_experts > 0)
    l.shared_experts = b.mlp(p + "mlp.shared_experts", c.n_shared_experts * c.moe_intermediate_size);
  return l;
}

}  // namespace

Linear output_slice(const Linear& w, int begin, int end) {
  if (begin < 0 || end > w.out || begin > end) fail("internal: rows [{}, {}) of a {}-row weight", begin, end, w.out);
  Linear s = w;
  s.row0 += begin;
  s.out = end - begin;
  return s;
}

Linear input_slice(const Linear& w, int begin, int end) {
  if (begin < 0 || end > w.in || begin > end) fail("internal: columns [{}, {}) of a {}-column weight", begin, end, w.in);
  Linear s = w;
  s.col0 += begin;
  s.in = end - begin;
  return s;
}

ModelWeights bind_weights(const Checkpoint& checkpoint, const ModelConfig& config) {
  Binder b(checkpoint, config);
  ModelWeights w;
  w.embed_tokens = b.matrix("model.embed_tokens.weight", config.vocab_size, config.hidden_size);
  w.norm = b.vector("model.norm.weight", config.hidden_size);
  const bool tied = config.tie_word_embeddings && !checkpoint.find("lm_head.weight");
  w.lm_head = b.linear(tied ? "model.embed_tokens" : "lm_head", config.vocab_size, config.hidden_size);
  for (int i = 0; i < config.num_hidden_layers; ++i) w.layers.push_back(bind_layer(b, config, i));
  return w;
}

}  // namespace r1
