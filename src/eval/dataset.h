// Benchmark datasets and results as JSONL: problems in ({"problem", "answer", "id"?}), one
// line per graded sample out, so an interrupted run keeps what it finished and can resume.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace r1 {

struct Problem {
  std::string id;  // "id" or "unique_id" when the line has one, else its line number
  std::string problem, answer;
};

// Every problem of the file. A malformed line (not JSON, no string "problem", no "answer")
// stops the load with an error naming the file and line: a benchmark over a silently
// shortened dataset would report a misleading accuracy.
std::vector<Problem> load_dataset(const std::string& path);

struct SampleResult {
  std::string id;
  int sample = 0;
  std::optional<std::string> extracted;
  bool correct = false;
  int tokens = 0;
  double seconds = 0;
  std::string finish_reason;
};

std::string to_json_line(const SampleResult& r);
// The results already in `path` (none when it does not exist); a malformed line is an error
// naming its line number.
std::vector<SampleResult> load_results(const std::string& path);

// Appends result lines, each flushed to the file as soon as it is written.
class ResultsWriter {
 public:
  ResultsWriter(const std::string& path, bool append);
  ~ResultsWriter();
  void write(const SampleResult& r);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace r1
