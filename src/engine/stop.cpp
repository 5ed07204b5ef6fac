#include "engine/stop.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "common/error.h"
#include "io/json_file.h"

namespace r1 {

namespace {

// eos_token_id of one file: nullopt when absent, the ids when an int or a list of ints.
std::optional<std::vector<int>> eos_field(const std::string& path) {
  const nlohmann::json j = read_json_object_if_present(path);
  if (j.is_null() || !j.contains("eos_token_id") || j["eos_token_id"].is_null()) return std::nullopt;
  const nlohmann::json& e = j["eos_token_id"];
  std::vector<int> ids;
  for (const nlohmann::json& id : e.is_array() ? e : nlohmann::json::array({e})) {
    if (!id.is_number_integer() || id.get<long long>() < 0)
      fail("{}: eos_token_id must be a token id or a list of them (got {})", path, e.dump());
    ids.push_back(id.get<int>());
  }
  return ids;
}

}  // namespace

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::context: return "context";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::none: break;
  }
  return "none";
}

std::vector<int> eos_token_ids(const std::string& model_dir) {
  const std::filesystem::path dir(model_dir);
  for (const char* file : {"generation_config.json", "config.json"})
    if (auto ids = eos_field((dir / file).string())) return *ids;
  return {};
}

void check_prompt_fits(int prompt_tokens, int context_length) {
  if (context_length > 0 && prompt_tokens >= context_length)
    fail("the prompt is {} tokens but the context holds {}: no room to generate", prompt_tokens, context_length);
}

FinishReason finish_reason(const StopRules& rules, int token, int generated, int positions) {
  if (std::find(rules.eos_ids.begin(), rules.eos_ids.end(), token) != rules.eos_ids.end()) return FinishReason::stop;
  if (rules.max_tokens > 0 && generated >= rules.max_tokens) return FinishReason::length;
  if (rules.context_length > 0 && positions >= rules.context_length) return FinishReason::context;
  return FinishReason::none;
}

}  // namespace r1
