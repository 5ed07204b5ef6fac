// Reading the small optional JSON files of a model directory (generation_config.json, config.json).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace r1 {

// The parsed file, or null when it does not exist; a file that exists but is not a JSON object
// is an error naming it.
nlohmann::json read_json_if_present(const std::string& path);

}  // namespace r1
