#include "io/json_file.h"

#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace r1 {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open", path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
}

nlohmann::json read_json_object(const std::string& path) {
  nlohmann::json j = read_json(path);
  if (!j.is_object()) fail("{}: not a JSON object", path);
  return j;
}

nlohmann::json read_json_object_if_present(const std::string& path) {
  if (!std::filesystem::exists(path)) return nullptr;
  return read_json_object(path);
}

}  // namespace r1
