// Paths of the tokenizer fixtures and a JSONL reader for the golden files.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace r1 {

inline std::string tokenizer_dir(const std::string& name) { return std::string(R1_TEST_DATA) + "/tokenizer/" + name; }

inline std::vector<nlohmann::json> read_jsonl(const std::string& name) {
  std::ifstream in(std::string(R1_TEST_DATA) + "/tokenizer/" + name);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

}  // namespace r1
