#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"

namespace r1 {

std::string default_model_dir() {
  if (const char* env = std::getenv("R1_MODEL"); env && *env) return env;
  namespace fs = std::filesystem;
  const fs::path demo = fs::path("models") / "r1-demo";
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::exists(exe.parent_path().parent_path() / demo / "config.json"))
    return (exe.parent_path().parent_path() / demo).string();
  return (fs::path(R1_SOURCE_DIR) / demo).string();
}

}  // namespace r1
