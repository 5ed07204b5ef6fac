#include "engine/json_file.h"

#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace r1 {

nlohmann::json read_json_if_present(const std::string& path) {
  if (!std::filesystem::exists(path)) return nullptr;
  std::ifstream in(path);
  if (!in) fail("cannot open {}", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", path, e.what());
  }
  if (!j.is_object()) fail("{}: expected a JSON object", path);
  return j;
}

}  // namespace r1
