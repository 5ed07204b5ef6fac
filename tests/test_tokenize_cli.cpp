// r1 tokenize and r1 template end to end: the golden cases through the command line, exact
// output bytes, and one clear error line (naming line, file or flag) for each kind of bad input.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "run_command.h"
#include "tokenizer_fixtures.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kR1 = tokenizer_dir("deepseek-r1");

struct TempFile {
  fs::path path;
  TempFile(const std::string& name, const std::string& content)
      : path(fs::temp_directory_path() / fmt::format("r1_{}_{}", getpid(), name)) {
    std::ofstream(path, std::ios::binary) << content;
  }
  ~TempFile() { fs::remove(path); }
};

CommandResult tokenize(const std::string& flags, const fs::path& input) {
  return run_command(fmt::format("{} tokenize --tokenizer '{}' {} < '{}'", R1_BINARY, kR1, flags, input.string()));
}

std::vector<json> r1_goldens() {
  std::vector<json> rows;
  for (json& row : read_jsonl("tokenizer_goldens.jsonl"))
    if (row["tokenizer"] == "deepseek-r1") rows.push_back(std::move(row));
  return rows;
}

TEST(TokenizeCli, StdinTextToIds) {
  const json golden = r1_goldens().at(3);
  const TempFile input("text", golden["text"].get<std::string>());
  const CommandResult r = tokenize("", input.path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, golden["ids"].dump() + "\n");
}

TEST(TokenizeCli, BatchAndDecodeOverEveryGoldenCase) {
  std::string texts, ids;
  for (const json& row : r1_goldens()) {
    texts += json{{"text", row["text"]}}.dump() + "\n";
    ids += json{{"ids", row["ids"]}}.dump() + "\n";
  }
  const TempFile text_input("texts.jsonl", texts), id_input("ids.jsonl", ids);
  CommandResult r = tokenize("--batch", text_input.path);
  ASSERT_EQ(r.exit_code, 0) << r.output.substr(0, 500);
  EXPECT_EQ(r.output, ids);

  r = tokenize("--decode", id_input.path);
  ASSERT_EQ(r.exit_code, 0) << r.output.substr(0, 500);
  std::istringstream lines(r.output);
  std::string line;
  for (const json& row : r1_goldens()) {
    ASSERT_TRUE(std::getline(lines, line));
    EXPECT_EQ(json::parse(line)["text"], row["decoded"]);
  }
}

TEST(TokenizeCli, BadInputIsOneErrorLineNamingTheLine) {
  const TempFile bad_json("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"no end\"\n");
  CommandResult r = tokenize("--batch", bad_json.path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("r1: error: stdin line 2: invalid JSON"), std::string::npos) << r.output;

  const TempFile no_text("no_text.jsonl", "{\"ids\": [1]}\n");
  r = tokenize("--batch", no_text.path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("r1: error: stdin line 1: expected an object with \"text\""), std::string::npos) << r.output;

  for (const char* bad_id : {"128815", "-1", "1.5", "\"7\"", "99999999999"}) {
    const TempFile ids("ids.jsonl", fmt::format("{{\"ids\": [1]}}\n\n{{\"ids\": [5, {}]}}\n", bad_id));
    r = tokenize("--decode", ids.path);
    EXPECT_EQ(r.exit_code, 1) << bad_id;
    EXPECT_NE(r.output.find(fmt::format("r1: error: stdin line 3: {} is not a token id", bad_id)), std::string::npos)
        << r.output;
  }
}

TEST(TokenizeCli, MissingTokenizerAndFlags) {
  const TempFile input("text", "hi");
  CommandResult r = run_command(fmt::format("{} tokenize --tokenizer /nonexistent < '{}'", R1_BINARY, input.path.string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "r1: error: /nonexistent/tokenizer.json: cannot open: No such file or directory\n");
  r = run_command(fmt::format("{} tokenize < '{}'", R1_BINARY, input.path.string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--tokenizer"), std::string::npos) << r.output;
}

CommandResult render(const std::string& dir, const fs::path& messages, bool generation_prompt) {
  return run_command(fmt::format("{} template --tokenizer '{}' --messages '{}' {}", R1_BINARY, dir,
                                 messages.string(), generation_prompt ? "--add-generation-prompt" : ""));
}

TEST(TemplateCli, PrintsEveryGoldenPromptExactly) {
  int cases = 0;
  for (const json& row : read_jsonl("template_goldens.jsonl")) {
    const TempFile messages("messages.json", row["messages"].dump());
    const CommandResult r = render(tokenizer_dir(row["tokenizer"]), messages.path, row["add_generation_prompt"]);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, row["rendered"].get<std::string>());  // nothing added, not even a newline
    ++cases;
  }
  EXPECT_EQ(cases, 160);
}

TEST(TemplateCli, UnknownTemplateWarnsOnStderrAndStillRenders) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("r1_template_{}", getpid());
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token": "<s>", "chat_template": "{{ messages }}"})";
  const TempFile messages("messages.json", R"([{"role": "user", "content": "hi"}])");
  const CommandResult both = render(dir.string(), messages.path, true);
  const CommandResult out = run_command(fmt::format("{} template --tokenizer '{}' --messages '{}' 2>/dev/null",
                                                    R1_BINARY, dir.string(), messages.path.string()));
  fs::remove_all(dir);
  EXPECT_EQ(both.exit_code, 0);
  EXPECT_NE(both.output.find("r1: warning: "), std::string::npos) << both.output;
  EXPECT_EQ(out.output, "<s><｜User｜>hi");
}

TEST(TemplateCli, BadMessagesNameTheFile) {
  const TempFile bad("bad.json", R"([{"role": "user", "content": 5}])");
  CommandResult r = render(kR1, bad.path, false);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, fmt::format("r1: error: --messages {}: messages[0]: \"content\" must be a string\n",
                                  bad.path.string()));
  r = render(kR1, "/nonexistent.json", false);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "r1: error: --messages /nonexistent.json: cannot open\n");
  const TempFile truncated("truncated.json", "[{\"role\": ");
  r = render(kR1, truncated.path, false);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("invalid JSON"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace r1
