// Tokenizer behaviour beyond the goldens: ill-formed UTF-8 input, streaming of split
// characters, the generic tokenizer.json features (pair merges, merge ranks, added-token
// matching, Split behaviours) on a small hand-made tokenizer, and clean load errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer_fixtures.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const Tokenizer& deepseek() {
  static const Tokenizer t(tokenizer_dir("deepseek-r1"));
  return t;
}

std::vector<int> concat(std::initializer_list<std::vector<int>> parts) {
  std::vector<int> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

TEST(Tokenizer, IllFormedUtf8IsEncodedAsItsBytesAndRoundTrips) {
  const Tokenizer& t = deepseek();
  // A lone continuation byte, a truncated 3-byte character, an overlong form, a surrogate.
  for (const std::string text : {"abc\x80xyz", "end \xE4\xB8", "\xC0\xAF slash", "\xED\xA0\x80 x", "\xFF"}) {
    const std::vector<int> ids = t.encode(text);
    EXPECT_EQ(t.decode(ids), text);
  }
  // An ill-formed byte is its own piece, spelled by its byte-level token (0xFF is 'ÿ').
  const std::vector<int> ff = t.encode("\xFF");
  ASSERT_EQ(ff.size(), 1u);
  EXPECT_EQ(t.token_bytes(ff[0]), "\xFF");
  EXPECT_EQ(t.encode("word\xFFword"), concat({t.encode("word"), ff, t.encode("word")}));
  EXPECT_NE(t.encode("\xC3\xBF"), ff);  // the well-formed character ÿ is a different token
}

TEST(Tokenizer, AddedTokensAreMatchedLiterallyAndDecodeVerbatim) {
  const Tokenizer& t = deepseek();
  const int user = *t.added_token_id("<｜User｜>"), think = *t.added_token_id("<think>");
  EXPECT_EQ(t.encode("<｜User｜><think>"), (std::vector<int>{user, think}));
  EXPECT_EQ(t.encode("a<think>b"), concat({t.encode("a"), {think}, t.encode("b")}));
  EXPECT_TRUE(t.is_special(*t.added_token_id("<｜end▁of▁sentence｜>")));
  EXPECT_FALSE(t.is_special(think));
  EXPECT_EQ(t.decode(std::vector<int>{user}), "<｜User｜>");
  EXPECT_THROW(t.decode(std::vector<int>{t.vocab_size()}), Error);
  EXPECT_THROW(t.decode(std::vector<int>{-1}), Error);
}

TEST(StreamDecoder, HoldsBytesUntilTheCharacterIsComplete) {
  const Tokenizer& t = deepseek();
  const std::string text = "🦀 and 鲸鱼 and é";
  const std::vector<int> ids = t.encode(text);
  StreamDecoder stream(t);
  std::string joined;
  int held = 0;  // pushes that returned less than the token's bytes: a character was split
  for (int id : ids) {
    const std::string piece = stream.push(id);
    EXPECT_EQ(complete_utf8_prefix(piece), piece.size());
    held += piece.size() < t.token_bytes(id).size();
    joined += piece;
  }
  EXPECT_GT(held, 0) << "the text should contain a character split across tokens";
  EXPECT_EQ(joined + stream.flush(), text);
  // An unfinished character at the end comes out of flush().
  EXPECT_EQ(stream.push(t.encode("\xF0\x9F")[0]), "");
  EXPECT_EQ(stream.flush().substr(0, 1), "\xF0");
}

TEST(Utf8, CompletePrefix) {
  EXPECT_EQ(complete_utf8_prefix("ab\xE4\xB8"), 2u);       // waiting for the third byte
  EXPECT_EQ(complete_utf8_prefix("ab\xE4\xB8\xAD"), 5u);   // complete
  EXPECT_EQ(complete_utf8_prefix("ab\xF0"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE4" "c"), 4u);       // ill-formed: nothing to wait for
  EXPECT_EQ(complete_utf8_prefix("\x80\x80"), 2u);
  EXPECT_EQ(complete_utf8_prefix("\xED\xA0"), 2u);         // a surrogate never completes
}

TEST(ByteLevel, AlphabetRoundTrips) {
  EXPECT_EQ(bytes_to_byte_level(" \n"), "ĠĊ");
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, char(b));
    EXPECT_EQ(byte_level_to_bytes(bytes_to_byte_level(one)), one);
  }
  EXPECT_EQ(byte_level_to_bytes("<｜User｜>"), "<｜User｜>");  // not byte-level: kept as spelled
}

// A directory holding `tokenizer` as tokenizer.json.
struct TempTokenizer {
  fs::path dir = fs::temp_directory_path() / ("r1_tok_" + std::to_string(getpid()));
  explicit TempTokenizer(const json& tokenizer) {
    fs::create_directories(dir);
    std::ofstream(dir / "tokenizer.json") << tokenizer.dump();
  }
  ~TempTokenizer() { fs::remove_all(dir); }
};

// Every byte as a token (ids 0..255, spelled in the byte-level alphabet), plus `extra`.
json tiny_tokenizer(const json& merges, const json& extra_vocab) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[bytes_to_byte_level(std::string(1, char(b)))] = b;
  for (const auto& [token, id] : extra_vocab.items()) vocab[token] = id;
  return {{"added_tokens", json::array({{{"id", 300}, {"content", "<x>"}, {"special", true}},
                                        {{"id", 301}, {"content", "<xy>"}, {"special", false}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "Sequence"},
                             {"pretokenizers", json::array({{{"type", "Split"},
                                                             {"pattern", {{"String", "-"}}},
                                                             {"behavior", "MergedWithNext"}},
                                                            {{"type", "ByteLevel"}, {"use_regex", false}}})}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

TEST(Tokenizer, PairMergesApplyByRankAndAddedTokensLongestFirst) {
  // "bc" ranks before "ab", so "abc" -> a + bc, never ab + c.
  const json merges = json::array({json::array({"b", "c"}), json::array({"a", "b"}), json::array({"a", "bc"})});
  TempTokenizer tmp(tiny_tokenizer(merges, {{"bc", 256}, {"ab", 257}, {"abc", 258}}));
  const Tokenizer t(tmp.dir.string());
  EXPECT_EQ(t.encode("abc"), (std::vector<int>{258}));
  EXPECT_EQ(t.encode("ab"), (std::vector<int>{257}));
  EXPECT_EQ(t.encode("abd"), (std::vector<int>{257, 'd'}));
  // Leftmost, then longest: "<xy>" beats "<x>" where both start.
  EXPECT_EQ(t.encode("a<xy><x>"), (std::vector<int>{'a', 301, 300}));
  // MergedWithNext: "-" opens the next piece, so "ab-c" cuts as "ab" | "-c".
  EXPECT_EQ(t.encode("ab-c"), (std::vector<int>{257, '-', 'c'}));
  EXPECT_EQ(t.decode(t.encode("a<xy>-bc\xFF")), "a<xy>-bc\xFF");
}

std::string load_error(const json& tokenizer) {
  TempTokenizer tmp(tokenizer);
  try {
    Tokenizer t(tmp.dir.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Tokenizer, LoadErrorsNameTheFileAndTheProblem) {
  json base = tiny_tokenizer(json::array({"a b"}), {{"ab", 256}});
  EXPECT_EQ(load_error(base), "no error");  // the "a b" string form of merges

  json bad_merge = base;
  bad_merge["model"]["merges"] = json::array({"a z"});
  EXPECT_NE(load_error(bad_merge).find("model.merges[0]: 'a z' names a token missing from model.vocab"),
            std::string::npos);
  json bad_regex = base;
  bad_regex["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  EXPECT_NE(load_error(bad_regex).find("regex '(unclosed'"), std::string::npos);
  json unigram = base;
  unigram["model"]["type"] = "Unigram";
  EXPECT_NE(load_error(unigram).find("model type"), std::string::npos);
  json lstrip = base;
  lstrip["added_tokens"][0]["lstrip"] = true;
  EXPECT_NE(load_error(lstrip).find("lstrip=true is not supported"), std::string::npos);

  const std::string missing = load_error(json::array());  // valid JSON, not an object
  EXPECT_NE(missing.find("tokenizer.json: not a JSON object"), std::string::npos) << missing;
  EXPECT_THROW(Tokenizer("/nonexistent"), Error);
  fs::create_directories("/tmp/r1_truncated");
  std::ofstream("/tmp/r1_truncated/tokenizer.json") << R"({"model": {"vocab": {"a": 0)";
  try {
    Tokenizer t("/tmp/r1_truncated");
    ADD_FAILURE() << "truncated file loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/tmp/r1_truncated/tokenizer.json: "), std::string::npos) << e.what();
  }
  fs::remove_all("/tmp/r1_truncated");
}

}  // namespace
}  // namespace r1
