// Stop rules: EOS ids from the model directory, max tokens, the context limit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "engine/stop.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

TEST(Stop, FinishReasons) {
  const StopRules rules{.eos_ids = {1, 7}, .max_tokens = 5, .context_length = 10};
  EXPECT_EQ(finish_reason(rules, 3, 1, 4), FinishReason::none);
  EXPECT_EQ(finish_reason(rules, 7, 1, 4), FinishReason::stop);
  EXPECT_EQ(finish_reason(rules, 3, 5, 8), FinishReason::length);
  EXPECT_EQ(finish_reason(rules, 1, 5, 10), FinishReason::stop);  // EOS outranks both limits
  EXPECT_EQ(finish_reason(rules, 3, 4, 10), FinishReason::context);
  EXPECT_EQ(finish_reason(rules, 3, 5, 10), FinishReason::length);
  const StopRules unlimited{.eos_ids = {1}};
  EXPECT_EQ(finish_reason(unlimited, 3, 100000, 100000), FinishReason::none);
  EXPECT_EQ(finish_reason_name(FinishReason::stop), "stop");
  EXPECT_EQ(finish_reason_name(FinishReason::length), "length");
  EXPECT_EQ(finish_reason_name(FinishReason::context), "context");
}

TEST(Stop, PromptMustLeaveRoomToGenerate) {
  EXPECT_NO_THROW(check_prompt_fits(9, 10));
  EXPECT_NO_THROW(check_prompt_fits(500, 0));  // no context limit known
  try {
    check_prompt_fits(10, 10);
    FAIL() << "a prompt filling the context was accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "the prompt is 10 tokens but the context holds 10: no room to generate");
  }
}

class EosIds : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(dir_); }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const char* file, const std::string& text) { std::ofstream(dir_ / file) << text; }
  fs::path dir_ = fs::temp_directory_path() / ("r1_stop_" + std::to_string(getpid()));
};

TEST_F(EosIds, GenerationConfigFirstThenConfig) {
  EXPECT_EQ(eos_token_ids(dir_.string()), std::vector<int>{});
  write("config.json", R"({"eos_token_id": 100001})");
  EXPECT_EQ(eos_token_ids(dir_.string()), std::vector<int>{100001});
  write("generation_config.json", R"({"temperature": 0.6})");  // no eos_token_id: config.json's
  EXPECT_EQ(eos_token_ids(dir_.string()), std::vector<int>{100001});
  write("generation_config.json", R"({"eos_token_id": 1})");
  EXPECT_EQ(eos_token_ids(dir_.string()), std::vector<int>{1});
  write("generation_config.json", R"({"eos_token_id": [1, 128009]})");
  EXPECT_EQ(eos_token_ids(dir_.string()), (std::vector<int>{1, 128009}));
}

TEST(Stop, EosOfTheShippedR1Directory) {
  EXPECT_EQ(eos_token_ids(std::string(R1_TEST_DATA) + "/tokenizer/deepseek-r1"), std::vector<int>{1});
}

TEST_F(EosIds, BadValueNamesTheFile) {
  write("generation_config.json", R"({"eos_token_id": "</s>"})");
  try {
    eos_token_ids(dir_.string());
    FAIL() << "a string eos_token_id was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir_ / "generation_config.json").string() + ": eos_token_id"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace r1
