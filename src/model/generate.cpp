#include "model/generate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "cpu/thread_pool.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace r1 {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json preset_config(const std::string& preset) {
  const json yarn = {{"type", "yarn"}, {"factor", 40}, {"original_max_position_embeddings", 4096},
                     {"beta_fast", 32}, {"beta_slow", 1}, {"mscale", 1.0}, {"mscale_all_dim", 1.0}};
  const json fp8 = {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"}, {"quant_method", "fp8"},
                    {"weight_block_size", {128, 128}}};
  if (preset == "r1")  // DeepSeek-R1 / V3 shapes
    return {{"architectures", {"DeepseekV3ForCausalLM"}}, {"model_type", "deepseek_v3"}, {"vocab_size", 129280},
            {"hidden_size", 7168}, {"intermediate_size", 18432}, {"moe_intermediate_size", 2048},
            {"num_hidden_layers", 61}, {"first_k_dense_replace", 3}, {"moe_layer_freq", 1},
            {"num_attention_heads", 128}, {"num_key_value_heads", 128}, {"n_routed_experts", 256},
            {"n_shared_experts", 1}, {"num_experts_per_tok", 8}, {"n_group", 8}, {"topk_group", 4},
            {"routed_scaling_factor", 2.5}, {"scoring_func", "sigmoid"}, {"topk_method", "noaux_tc"},
            {"norm_topk_prob", true}, {"q_lora_rank", 1536}, {"kv_lora_rank", 512}, {"qk_nope_head_dim", 128},
            {"qk_rope_head_dim", 64}, {"v_head_dim", 128}, {"rope_theta", 10000}, {"max_position_embeddings", 163840},
            {"rope_scaling", yarn}, {"rms_norm_eps", 1e-6}, {"hidden_act", "silu"}, {"tie_word_embeddings", false},
            {"num_nextn_predict_layers", 0}, {"bos_token_id", 0}, {"eos_token_id", 1}, {"torch_dtype", "bfloat16"},
            {"attention_bias", false}, {"quantization_config", fp8}};
  if (preset == "v2-lite") {  // DeepSeek-V2-Lite shapes (published in BF16; generated here in FP8)
    json yarn_v2 = yarn;
    yarn_v2["mscale"] = 0.707;
    yarn_v2["mscale_all_dim"] = 0.707;
    return {{"architectures", {"DeepseekV2ForCausalLM"}}, {"model_type", "deepseek_v2"}, {"vocab_size", 102400},
            {"hidden_size", 2048}, {"intermediate_size", 10944}, {"moe_intermediate_size", 1408},
            {"num_hidden_layers", 27}, {"first_k_dense_replace", 1}, {"moe_layer_freq", 1},
            {"num_attention_heads", 16}, {"num_key_value_heads", 16}, {"n_routed_experts", 64},
            {"n_shared_experts", 2}, {"num_experts_per_tok", 6}, {"n_group", 1}, {"topk_group", 1},
            {"routed_scaling_factor", 1.0}, {"scoring_func", "softmax"}, {"topk_method", "greedy"},
            {"norm_topk_prob", false}, {"q_lora_rank", nullptr}, {"kv_lora_rank", 512}, {"qk_nope_head_dim", 128},
            {"qk_rope_head_dim", 64}, {"v_head_dim", 128}, {"rope_theta", 10000}, {"max_position_embeddings", 163840},
            {"rope_scaling", yarn_v2}, {"rms_norm_eps", 1e-6}, {"hidden_act", "silu"}, {"tie_word_embeddings", false},
            {"bos_token_id", 100000}, {"eos_token_id", 100001}, {"torch_dtype", "bfloat16"},
            {"attention_bias", false}, {"quantization_config", fp8}};
  }
  if (preset == "tiny")  // the golden fixtures' shapes
    return {{"architectures", {"DeepseekV3ForCausalLM"}}, {"model_type", "deepseek_v3"}, {"vocab_size", 2048},
            {"hidden_size", 256}, {"intermediate_size", 512}, {"moe_intermediate_size", 128},
            {"num_hidden_layers", 3}, {"first_k_dense_replace", 1}, {"moe_layer_freq", 1},
            {"num_attention_heads", 4}, {"num_key_value_heads", 4}, {"n_routed_experts", 16},
            {"n_shared_experts", 1}, {"num_experts_per_tok", 4}, {"n_group", 4}, {"topk_group", 2},
            {"routed_scaling_factor", 2.5}, {"scoring_func", "sigmoid"}, {"topk_method", "noaux_tc"},
            {"norm_topk_prob", true}, {"q_lora_rank", 96}, {"kv_lora_rank", 64}, {"qk_nope_head_dim", 32},
            {"qk_rope_head_dim", 16}, {"v_head_dim", 32}, {"rope_theta", 10000}, {"max_position_embeddings", 163840},
            {"rope_scaling", yarn}, {"rms_norm_eps", 1e-6}, {"hidden_act", "silu"}, {"tie_word_embeddings", false},
            {"num_nextn_predict_layers", 0}, {"bos_token_id", 0}, {"eos_token_id", 1}, {"torch_dtype", "bfloat16"},
            {"attention_bias", false}, {"quantization_config", fp8}};
  fail("--preset: unknown preset '{}' (r1, v2-lite, tiny)", preset);
}

enum class Fill { fp8_weight, fp8_scale, bf16_random, bf16_ones, f32_bias };

struct Tensor {
  TensorToWrite spec;
  Fill fill;
  double scale;  // standard deviation of the values (fp8_scale: the block scale)
};

class TensorList {
 public:
  std::vector<Tensor> tensors;

  void linear(const std::string& prefix, int out, int in) {
    tensors.push_back({{prefix + ".weight", DType::F8_E4M3, {out, in}, nullptr}, Fill::fp8_weight, 0});
    // Codes decode to magnitudes 0.125 .. 3.75 (~1.2 rms): scale them to ~1/sqrt(in) overall.
    tensors.push_back({{prefix + ".weight_scale_inv", DType::F32, {(out + 127) / 128, (in + 127) / 128}, nullptr},
                       Fill::fp8_scale, 1.0 / (1.2 * std::sqrt(double(in)))});
  }
  void matrix(const std::string& name, int rows, int cols, double std_dev) {
    tensors.push_back({{name, DType::BF16, {rows, cols}, nullptr}, Fill::bf16_random, std_dev});
  }
  void norm(const std::string& name, int size) {
    tensors.push_back({{name, DType::BF16, {size}, nullptr}, Fill::bf16_ones, 0});
  }
  void mlp(const std::string& prefix, int hidden, int width) {
    linear(prefix + ".gate_proj", width, hidden);
    linear(prefix + ".up_proj", width, hidden);
    linear(prefix + ".down_proj", hidden, width);
  }
};

std::vector<Tensor> checkpoint_tensors(const ModelConfig& c) {
  TensorList list;
  const int hidden = c.hidden_size, heads = c.num_attention_heads;
  list.matrix("model.embed_tokens.weight", c.vocab_size, hidden, 1.0);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    list.norm(p + "input_layernorm.weight", hidden);
    list.norm(p + "post_attention_layernorm.weight", hidden);
    if (c.q_lora_rank > 0) {
      list.linear(p + "self_attn.q_a_proj", c.q_lora_rank, hidden);
      list.norm(p + "self_attn.q_a_layernorm.weight", c.q_lora_rank);
      list.linear(p + "self_attn.q_b_proj", heads * c.qk_head_dim(), c.q_lora_rank);
    } else {
      list.linear(p + "self_attn.q_proj", heads * c.qk_head_dim(), hidden);
    }
    list.linear(p + "self_attn.kv_a_proj_with_mqa", c.kv_cache_dim(), hidden);
    list.norm(p + "self_attn.kv_a_layernorm.weight", c.kv_lora_rank);
    list.linear(p + "self_attn.kv_b_proj", heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank);
    list.linear(p + "self_attn.o_proj", hidden, heads * c.v_head_dim);
    if (!c.is_moe_layer(l)) {
      list.mlp(p + "mlp", hidden, c.intermediate_size);
      continue;
    }
    const int experts = c.routing.n_routed_experts;
    list.matrix(p + "mlp.gate.weight", experts, hidden, 1.0 / std::sqrt(double(hidden)));
    if (c.routing.topk_method == TopkMethod::noaux_tc)
      list.tensors.push_back({{p + "mlp.gate.e_score_correction_bias", DType::F32, {experts}, nullptr}, Fill::f32_bias, 0.01});
    for (int e = 0; e < experts; ++e) list.mlp(fmt::format("{}mlp.experts.{}", p, e), hidden, c.moe_intermediate_size);
    if (c.n_shared_experts > 0) list.mlp(p + "mlp.shared_experts", hidden, c.n_shared_experts * c.moe_intermediate_size);
  }
  list.norm("model.norm.weight", hidden);
  list.matrix("lm_head.weight", c.vocab_size, hidden, 1.0 / std::sqrt(double(hidden)));
  return list.tensors;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [-1, 1): a deterministic function of (seed, index), so threads can fill any range.
double uniform(uint64_t seed, uint64_t index) {
  return double(splitmix64(seed ^ splitmix64(index)) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

void fill_tensor(const Tensor& t, uint64_t seed, std::vector<uint8_t>& bytes, ThreadPool& pool) {
  const size_t n = size_t(t.spec.bytes() / dtype_size(t.spec.dtype));
  bytes.resize(t.spec.bytes());
  const double half_width = std::sqrt(3.0) * t.scale;  // uniform with standard deviation `scale`
  pool.parallel_for(int((n + 65535) / 65536), [&](int begin, int end, int) {
    for (size_t i = size_t(begin) * 65536; i < std::min(n, size_t(end) * 65536); ++i) {
      const uint64_t bits = splitmix64(seed ^ splitmix64(i));
      switch (t.fill) {
        case Fill::fp8_weight:  // sign, exponent 4..7 (0.125 .. 1.875 × 2), mantissa: never NaN
          bytes[i] = uint8_t((bits & 0x80) | ((4 + ((bits >> 8) & 3)) << 3) | ((bits >> 16) & 7));
          break;
        case Fill::fp8_scale: {
          const float v = float(t.scale * (1.0 + 0.1 * uniform(seed, i)));
          std::memcpy(&bytes[i * 4], &v, 4);
          break;
        }
        case Fill::bf16_random:
        case Fill::bf16_ones: {
          const float v = t.fill == Fill::bf16_ones ? 1.0f : float(half_width * uniform(seed, i));
          uint32_t b;
          std::memcpy(&b, &v, 4);
          const uint16_t h = uint16_t(b >> 16);
          std::memcpy(&bytes[i * 2], &h, 2);
          break;
        }
        case Fill::f32_bias: {
          const float v = float(half_width * uniform(seed, i));
          std::memcpy(&bytes[i * 4], &v, 4);
          break;
        }
      }
    }
  });
}

void write_json(const fs::path& path, const json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) fail("{}: write failed", path.string());
}

}  // namespace

void generate_model(const GenerateOptions& o, ThreadPool& pool) {
  json config = preset_config(o.preset);
  if (o.layers < 0) fail("--layers must be positive");
  if (o.layers > 0) config["num_hidden_layers"] = o.layers;
  if (o.vocab < 0) fail("--vocab must be positive");
  if (o.vocab > 0) config["vocab_size"] = o.vocab;
  if (o.experts < 0) fail("--experts must be positive");
  if (o.experts > 0) {  // routing must stay possible: whole groups, enough experts for top-k
    const int groups = config["n_group"], top_groups = config["topk_group"], top_k = config["num_experts_per_tok"];
    const int per_group_min = config["topk_method"] == "noaux_tc" ? 2 : 1;  // group score: its best two
    if (o.experts % groups != 0 || o.experts / groups < per_group_min || o.experts / groups * top_groups < top_k)
      fail("--experts {}: the {} preset routes top-{} over {} of {} groups; give a multiple of {} of at least {}",
           o.experts, o.preset, top_k, top_groups, groups, groups,
           std::max(groups * per_group_min, (top_k + top_groups - 1) / top_groups * groups));
    config["n_routed_experts"] = o.experts;
  }
  const fs::path dir = o.out_dir;
  if (fs::exists(dir) && !(fs::is_directory(dir) && fs::is_empty(dir)))
    fail("--out: {} exists and is not an empty directory", dir.string());
  fs::create_directories(dir);
  write_json(dir / "config.json", config);
  write_json(dir / "generation_config.json", {{"bos_token_id", config["bos_token_id"]},
                                              {"eos_token_id", config["eos_token_id"]},
                                              {"do_sample", true}, {"temperature", 0.6}, {"top_p", 0.95}});
  const ModelConfig parsed = load_config(dir.string());
  const std::vector<Tensor> tensors = checkpoint_tensors(parsed);

  // Shards of at most ~4 GiB, tensors in order.
  constexpr size_t kShardBytes = size_t(4) << 30;
  std::vector<std::vector<size_t>> shards(1);
  size_t shard_bytes = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t bytes = tensors[i].spec.bytes();
    if (shard_bytes > 0 && shard_bytes + bytes > kShardBytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += bytes;
    total += bytes;
  }
  json weight_map = json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards.size());
    std::vector<TensorToWrite> specs;
    for (size_t i : shards[s]) {
      specs.push_back(tensors[i].spec);
      weight_map[tensors[i].spec.name] = name;
    }
    write_safetensors((dir / name).string(), specs, [&](size_t k, std::vector<uint8_t>& bytes) {
      const size_t i = shards[s][k];
      fill_tensor(tensors[i], splitmix64(o.seed * 1000003 + i), bytes, pool);
    });
    std::fprintf(stderr, "\rwrote shard %zu/%zu", s + 1, shards.size());
  }
  std::fprintf(stderr, "\n");
  write_json(dir / "model.safetensors.index.json", {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
}

}  // namespace r1
