// r1 grade end to end: JSONL in and out, and one clear error line for bad input.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "run_command.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

fs::path write_temp(const std::string& name, const std::string& text) {
  const fs::path path = fs::temp_directory_path() / fmt::format("r1_grade_{}_{}", getpid(), name);
  std::ofstream(path) << text;
  return path;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(GradeCli, DevSetOneOutputLinePerInputLine) {
  const std::string input = std::string(R1_TEST_DATA) + "/grading/grading_dev.jsonl";
  CommandResult r = run_command(fmt::format("{} grade --input '{}' 2>/dev/null", R1_BINARY, input));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<std::string> out = lines_of(r.output);
  std::ifstream in(input);
  size_t i = 0;
  for (std::string line; std::getline(in, line); ++i) {
    ASSERT_LT(i, out.size());
    const auto want = nlohmann::json::parse(line), got = nlohmann::json::parse(out[i]);
    ASSERT_EQ(got.size(), 2u) << out[i];
    EXPECT_EQ(got["extracted"], want["extracted"]) << "line " << i + 1;
    EXPECT_TRUE(got["correct"].is_boolean());
  }
  EXPECT_EQ(out.size(), i);
}

TEST(GradeCli, StdinNumbersAndBlankLines) {
  const fs::path input = write_temp("ok.jsonl",
                                    "{\"response\": \"so \\\\boxed{025}\", \"answer\": 25}\n"
                                    "\n"
                                    "{\"response\": \"no box\", \"answer\": \"3\"}\r\n");
  CommandResult r = run_command(fmt::format("{} grade < '{}' 2>&1", R1_BINARY, input.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "{\"extracted\":\"025\",\"correct\":true}\n"
            "{\"extracted\":null,\"correct\":false}\n"
            "graded 2 responses: 1 correct (50.0%)\n");
  fs::remove(input);
}

TEST(GradeCli, MalformedLineStopsWithItsNumberAfterEarlierResults) {
  const fs::path input = write_temp("bad.jsonl",
                                    "{\"response\": \"\\\\boxed{1}\", \"answer\": \"1\"}\n"
                                    "\n"
                                    "{\"response\": \"\\\\boxed{2}\", \"answer\": \n");
  CommandResult r = run_command(fmt::format("{} grade --input '{}'", R1_BINARY, input.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("{\"extracted\":\"1\",\"correct\":true}\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(fmt::format("r1: error: {}:3: not valid JSON", input.string())), std::string::npos)
      << r.output;
  fs::remove(input);
}

TEST(GradeCli, MissingFieldNamedWithLine) {
  const fs::path input = write_temp("field.jsonl", "{\"response\": \"\\\\boxed{1}\"}\n");
  CommandResult r = run_command(fmt::format("{} grade --input '{}'", R1_BINARY, input.string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, fmt::format("r1: error: {}:1: \"answer\" is missing or not a string or number\n",
                                  input.string()));
  fs::remove(input);
}

TEST(GradeCli, MissingFileAndUnknownFlag) {
  CommandResult missing = run_command(fmt::format("{} grade --input /nonexistent/x.jsonl", R1_BINARY));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.output, "r1: error: cannot open /nonexistent/x.jsonl: No such file or directory\n");
  CommandResult flag = run_command(fmt::format("{} grade --bogus", R1_BINARY));
  EXPECT_NE(flag.exit_code, 0);
  EXPECT_NE(flag.output.find("--bogus"), std::string::npos) << flag.output;
}

}  // namespace
}  // namespace r1
