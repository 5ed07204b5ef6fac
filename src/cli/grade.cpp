// r1 grade: JSONL {"response","answer"} in, JSONL {"extracted","correct"} out, one line per
// input line. A malformed line stops the run with its line number: the output must stay
// aligned line for line with the input, so skipping is not an option; lines already graded
// have been written.
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "eval/grade.h"

namespace r1 {

namespace {

struct GradeCase {
  std::string response;
  std::string answer;
};

// `where` is "FILE:LINE" for messages.
GradeCase parse_case(const std::string& line, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    // what() reads "[json.exception.parse_error.101] parse error at line 1, column 14: ...";
    // the line is ours to name, the column is worth keeping.
    const std::string what = e.what();
    fail("{}: not valid JSON (byte {}: {})", where, e.byte, what.substr(what.find(": ") + 2));
  }
  if (!j.is_object()) fail("{}: expected a JSON object {{\"response\", \"answer\"}}", where);
  if (!j.contains("response") || !j["response"].is_string())
    fail("{}: \"response\" is missing or not a string", where);
  const auto& answer = j.contains("answer") ? j["answer"] : nlohmann::json();
  if (!answer.is_string() && !answer.is_number())
    fail("{}: \"answer\" is missing or not a string or number", where);
  return {j["response"].get<std::string>(), answer.is_string() ? answer.get<std::string>() : answer.dump()};
}

int run_grade(const std::string& input) {
  std::ifstream file;
  if (!input.empty()) {
    file.open(input);
    if (!file) fail("cannot open {}: {}", input, std::strerror(errno));
  }
  std::istream& in = input.empty() ? std::cin : file;
  const std::string source = input.empty() ? "<stdin>" : input;

  std::string line;
  size_t line_number = 0, graded = 0, correct = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines carry nothing
    const GradeCase c = parse_case(line, fmt::format("{}:{}", source, line_number));
    const Grade grade = grade_response(c.response, c.answer);
    const nlohmann::ordered_json out = {
        {"extracted", grade.extracted ? nlohmann::ordered_json(*grade.extracted) : nlohmann::ordered_json()},
        {"correct", grade.correct}};
    std::cout << out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
    ++graded;
    correct += grade.correct;
  }
  if (in.bad()) fail("{}: read error after line {}", source, line_number);
  std::cout.flush();
  fmt::print(stderr, "graded {} responses: {} correct ({:.1f}%)\n", graded, correct,
             graded ? 100.0 * double(correct) / double(graded) : 0.0);
  return 0;
}

}  // namespace

Command add_grade_command(CLI::App& app) {
  auto input = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "grade", "grade responses: JSONL {\"response\",\"answer\"} in, JSONL {\"extracted\",\"correct\"} out");
  cmd->add_option("--input", *input, "JSONL file to read instead of stdin");
  return [input] { return run_grade(*input); };
}

}  // namespace r1
