// Reading JSON files (config.json, the safetensors index, tokenizer_config.json, chat messages,
// generation_config.json). Every failure is one error naming the file: "PATH: cannot open",
// "PATH: invalid JSON: ...", "PATH: not a JSON object".
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace r1 {

nlohmann::json read_json(const std::string& path);
nlohmann::json read_json_object(const std::string& path);
// The parsed object, or null when the file does not exist.
nlohmann::json read_json_object_if_present(const std::string& path);

}  // namespace r1
