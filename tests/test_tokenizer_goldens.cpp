// Every case of tokenizer_goldens.jsonl (ids from an independent Hugging Face tokenizers
// port), for both tokenizers: encode gives the same ids, decode gives the text back, and
// decoding one id at a time never splits a character and adds up to the same text.
#include <gtest/gtest.h>

#include <map>

#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer_fixtures.h"

namespace r1 {
namespace {

const Tokenizer& tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  auto& t = loaded[name];
  if (!t) t = std::make_unique<Tokenizer>(tokenizer_dir(name));
  return *t;
}

class TokenizerGoldens : public testing::TestWithParam<std::string> {};

TEST_P(TokenizerGoldens, EncodeAndDecodeMatchReference) {
  const Tokenizer& tok = tokenizer(GetParam());
  int cases = 0, passed = 0;
  for (const nlohmann::json& row : read_jsonl("tokenizer_goldens.jsonl")) {
    if (row["tokenizer"] != GetParam()) continue;
    ++cases;
    const std::string text = row["text"];
    const std::vector<int> expected = row["ids"];
    const std::vector<int> ids = tok.encode(text);
    EXPECT_EQ(ids, expected) << "text: " << text;
    EXPECT_EQ(tok.decode(expected), row["decoded"].get<std::string>());
    passed += ids == expected;
  }
  std::printf("  %s: %d/%d cases encode to the reference ids\n", GetParam().c_str(), passed, cases);
  EXPECT_EQ(cases, 269);
}

TEST_P(TokenizerGoldens, StreamingDecodeOneIdAtATime) {
  const Tokenizer& tok = tokenizer(GetParam());
  for (const nlohmann::json& row : read_jsonl("tokenizer_goldens.jsonl")) {
    if (row["tokenizer"] != GetParam()) continue;
    StreamDecoder stream(tok);
    std::string streamed;
    for (int id : row["ids"]) {
      const std::string piece = stream.push(id);
      // Every piece is whole characters: nothing held back, nothing ill-formed.
      size_t i = 0;
      while (i < piece.size()) ASSERT_NE(next_code_point(piece, i), kInvalidCodePoint) << "text: " << row["text"];
      streamed += piece;
    }
    streamed += stream.flush();
    EXPECT_EQ(streamed, row["decoded"].get<std::string>());
  }
}

INSTANTIATE_TEST_SUITE_P(Both, TokenizerGoldens, testing::Values("deepseek-v3", "deepseek-r1"),
                         [](const auto& info) { return info.param == "deepseek-v3" ? "V3" : "R1"; });

}  // namespace
}  // namespace r1
