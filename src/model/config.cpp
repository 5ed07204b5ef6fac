#include "model/config.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "common/error.h"
#include "io/json_file.h"

namespace r1 {

using json = nlohmann::json;

namespace {

// Reads config fields with their names, so every error says which field is wrong.
struct Fields {
  const json& j;
  std::string path;

  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  int integer(const char* key, std::optional<int> fallback = std::nullopt) const {
    if (!has(key)) {
      if (fallback) return *fallback;
      fail("{}: missing '{}'", path, key);
    }
    if (!j[key].is_number_integer()) fail("{}: '{}' must be an integer", path, key);
    return j[key].get<int>();
  }
  double number(const char* key, std::optional<double> fallback = std::nullopt) const {
    if (!has(key)) {
      if (fallback) return *fallback;
      fail("{}: missing '{}'", path, key);
    }
    if (!j[key].is_number()) fail("{}: '{}' must be a number", path, key);
    return j[key].get<double>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!j[key].is_string()) fail("{}: '{}' must be a string", path, key);
    return j[key].get<std::string>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j[key].is_boolean()) fail("{}: '{}' must be true or false", path, key);
    return j[key].get<bool>();
  }
};

void parse_rope(const Fields& f, ModelConfig& c) {
  c.rope.rope_dim = c.qk_rope_head_dim;
  c.rope.theta = f.number("rope_theta", 10000.0);
  if (!f.has("rope_scaling")) return;
  const json& rs = f.j["rope_scaling"];
  if (!rs.is_object()) fail("{}: 'rope_scaling' must be an object or null", f.path);
  Fields s{rs, f.path + " rope_scaling"};
  std::string type = s.string("type", s.string("rope_type", ""));
  if (type != "yarn") fail("{}: rope_scaling type '{}' is not supported (only yarn)", f.path, type);
  c.rope.factor = s.number("factor");
  c.rope.yarn = c.rope.factor > 1.0;
  c.rope.original_max_position = s.number("original_max_position_embeddings", 4096);
  c.rope.beta_fast = s.number("beta_fast", 32);
  c.rope.beta_slow = s.number("beta_slow", 1);
  c.rope.mscale = s.number("mscale", 1);
  c.rope.mscale_all_dim = s.number("mscale_all_dim", 0);
}

void parse_routing(const Fields& f, ModelConfig& c) {
  RoutingParams& r = c.routing;
  r.n_routed_experts = f.integer("n_routed_experts", 0);
  if (r.n_routed_experts == 0) return;
  r.num_experts_per_tok = f.integer("num_experts_per_tok");
  r.n_group = f.integer("n_group", 1);
  r.topk_group = f.integer("topk_group", 1);
  r.norm_topk_prob = f.boolean("norm_topk_prob", false);
  r.routed_scaling_factor = float(f.number("routed_scaling_factor", 1.0));
  const bool v3 = c.model_type == "deepseek_v3";
  std::string method = f.string("topk_method", v3 ? "noaux_tc" : "greedy");
  if (method == "noaux_tc") r.topk_method = TopkMethod::noaux_tc;
  else if (method == "greedy") r.topk_method = TopkMethod::greedy;
  else if (method == "group_limited_greedy") r.topk_method = TopkMethod::group_limited_greedy;
  else fail("{}: unknown topk_method '{}' (noaux_tc, greedy, group_limited_greedy)", f.path, method);
  std::string scoring = f.string("scoring_func", v3 ? "sigmoid" : "softmax");
  if (scoring == "sigmoid") r.scoring_func = ScoringFunc::sigmoid;
  else if (scoring == "softmax") r.scoring_func = ScoringFunc::softmax;
  else fail("{}: unknown scoring_func '{}' (sigmoid, softmax)", f.path, scoring);

  if (r.n_group < 1 || r.n_group > kMaxRoutingGroups || r.n_routed_experts % r.n_group != 0)
    fail("{}: n_group {} must divide n_routed_experts {} (at most {} groups)", f.path, r.n_group,
         r.n_routed_experts, kMaxRoutingGroups);
  if (r.topk_group < 1 || r.topk_group > r.n_group)
    fail("{}: topk_group {} must be in [1, n_group {}]", f.path, r.topk_group, r.n_group);
  const int group_size = r.n_routed_experts / r.n_group;
  const bool grouped = r.topk_method != TopkMethod::greedy && r.n_group > 1;
  const int selectable = grouped ? r.topk_group * group_size : r.n_routed_experts;
  if (r.num_experts_per_tok < 1 || r.num_experts_per_tok > selectable)
    fail("{}: num_experts_per_tok {} must be in [1, {}] (experts in the kept groups)", f.path,
         r.num_experts_per_tok, selectable);
  if (r.topk_method == TopkMethod::noaux_tc && grouped && group_size < 2)
    fail("{}: noaux_tc needs at least 2 experts per group", f.path);
}

}  // namespace

ModelConfig load_config(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  const json j = read_json_object(path);
  Fields f{j, path};

  ModelConfig c;
  c.model_type = f.string("model_type", "");
  if (c.model_type != "deepseek_v3" && c.model_type != "deepseek_v2")
    fail("{}: model_type '{}' is not supported (deepseek_v3, deepseek_v2)", path, c.model_type);
  c.vocab_size = f.integer("vocab_size");
  c.hidden_size = f.integer("hidden_size");
  c.intermediate_size = f.integer("intermediate_size");
  c.moe_intermediate_size = f.integer("moe_intermediate_size", 0);
  c.num_hidden_layers = f.integer("num_hidden_layers");
  c.first_k_dense_replace = f.integer("first_k_dense_replace", 0);
  c.moe_layer_freq = f.integer("moe_layer_freq", 1);
  c.num_attention_heads = f.integer("num_attention_heads");
  c.q_lora_rank = f.integer("q_lora_rank", 0);
  c.kv_lora_rank = f.integer("kv_lora_rank");
  c.qk_nope_head_dim = f.integer("qk_nope_head_dim");
  c.qk_rope_head_dim = f.integer("qk_rope_head_dim");
  c.v_head_dim = f.integer("v_head_dim");
  c.n_shared_experts = f.integer("n_shared_experts", 0);
  c.rms_norm_eps = float(f.number("rms_norm_eps", 1e-6));
  c.max_position_embeddings = f.integer("max_position_embeddings", 4096);
  c.num_nextn_predict_layers = f.integer("num_nextn_predict_layers", 0);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  c.bos_token_id = f.integer("bos_token_id", -1);
  c.eos_token_id = f.has("eos_token_id") && f.j["eos_token_id"].is_array()
                       ? f.j["eos_token_id"][0].get<int>()
                       : f.integer("eos_token_id", -1);
  if (f.boolean("attention_bias", false)) fail("{}: attention_bias true is not supported", path);
  std::string act = f.string("hidden_act", "silu");
  if (act != "silu") fail("{}: hidden_act '{}' is not supported (silu)", path, act);

  for (auto [name, value] : {std::pair{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
                             {"num_hidden_layers", c.num_hidden_layers},
                             {"num_attention_heads", c.num_attention_heads},
                             {"kv_lora_rank", c.kv_lora_rank}, {"v_head_dim", c.v_head_dim},
                             {"qk_nope_head_dim", c.qk_nope_head_dim}})
    if (value <= 0) fail("{}: '{}' must be positive", path, name);
  if (c.qk_rope_head_dim <= 0 || c.qk_rope_head_dim % 2 != 0)
    fail("{}: 'qk_rope_head_dim' must be positive and even", path);
  if (c.q_lora_rank < 0 || c.moe_layer_freq < 1 || c.n_shared_experts < 0)
    fail("{}: q_lora_rank, moe_layer_freq or n_shared_experts out of range", path);

  parse_rope(f, c);
  parse_routing(f, c);
  if (c.routing.n_routed_experts > 0 && c.moe_intermediate_size <= 0)
    fail("{}: 'moe_intermediate_size' must be positive for a MoE model", path);

  if (f.has("quantization_config")) {
    Fields q{j["quantization_config"], path + " quantization_config"};
    std::string method = q.string("quant_method", "");
    if (method != "fp8") fail("{}: quant_method '{}' is not supported (fp8)", path, method);
    std::string fmt_name = q.string("fmt", "e4m3");
    if (fmt_name != "e4m3") fail("{}: fp8 format '{}' is not supported (e4m3)", path, fmt_name);
    c.fp8_block_size = 128;
    if (q.has("weight_block_size")) {
      const json& b = q.j["weight_block_size"];
      if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || b[0] != b[1] ||
          b[0].get<int>() <= 0)
        fail("{}: weight_block_size must be [n, n] (square blocks)", path);
      c.fp8_block_size = b[0];
    }
  }
  return c;
}

}  // namespace r1
