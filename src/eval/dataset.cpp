#include "eval/dataset.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace r1 {

using json = nlohmann::json;

namespace {

// Each non-blank line of a JSONL file, parsed, with its line number (from 1).
template <typename Visit>
void for_each_json_line(const std::string& path, Visit visit) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open the file", path);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) fail("{}:{}: not a JSON object", path, number);
    visit(j, number);
  }
}

std::string text_field(const json& j, const char* name) {
  const json& v = j.at(name);
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

std::vector<Problem> load_dataset(const std::string& path) {
  std::vector<Problem> problems;
  for_each_json_line(path, [&](const json& j, int line) {
    if (!j.contains("problem") || !j["problem"].is_string()) fail("{}:{}: no string field \"problem\"", path, line);
    if (!j.contains("answer") || j["answer"].is_null()) fail("{}:{}: no field \"answer\"", path, line);
    Problem p{std::to_string(line), j["problem"].get<std::string>(), text_field(j, "answer")};
    for (const char* key : {"id", "unique_id"})
      if (j.contains(key) && !j[key].is_null()) {
        p.id = text_field(j, key);
        break;
      }
    problems.push_back(std::move(p));
  });
  if (problems.empty()) fail("{}: no problems in the file", path);
  return problems;
}

std::string to_json_line(const SampleResult& r) {
  const json j = {{"id", r.id},
                  {"sample", r.sample},
                  {"extracted", r.extracted ? json(*r.extracted) : json(nullptr)},
                  {"correct", r.correct},
                  {"tokens", r.tokens},
                  {"seconds", r.seconds},
                  {"finish_reason", r.finish_reason}};
  return j.dump() + "\n";
}

std::vector<SampleResult> load_results(const std::string& path) {
  std::vector<SampleResult> results;
  if (!std::ifstream(path)) return results;
  for_each_json_line(path, [&](const json& j, int line) {
    try {
      SampleResult r;
      r.id = j.at("id").get<std::string>();
      r.sample = j.at("sample").get<int>();
      if (!j.at("extracted").is_null()) r.extracted = j["extracted"].get<std::string>();
      r.correct = j.at("correct").get<bool>();
      r.tokens = j.at("tokens").get<int>();
      r.seconds = j.at("seconds").get<double>();
      r.finish_reason = j.value("finish_reason", "");
      results.push_back(std::move(r));
    } catch (const json::exception& e) {
      fail("{}:{}: not a result line ({})", path, line, e.what());
    }
  });
  return results;
}

ResultsWriter::ResultsWriter(const std::string& path, bool append) : path_(path) {
  file_ = std::fopen(path.c_str(), append ? "a" : "w");
  if (!file_) fail("{}: cannot open for writing", path);
}

ResultsWriter::~ResultsWriter() { std::fclose(file_); }

void ResultsWriter::write(const SampleResult& r) {
  const std::string line = to_json_line(r);
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    fail("{}: write failed", path_);
}

}  // namespace r1
