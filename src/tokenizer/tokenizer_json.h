// Reads tokenizer.json fast: its two big tables (model.vocab, 128k entries, and model.merges)
// go straight into flat vectors through nlohmann's SAX interface; the small rest (added
// tokens, pre-tokenizer, decoder...) becomes an ordinary JSON document. Building a DOM of the
// whole file takes ~200 ms; this takes ~30-45 ms.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace r1 {

// One merge rule, in raw bytes: left token + right token, and where the left one ends.
struct MergeRule {
  std::string joined;
  size_t left_size = 0;
  std::string_view left() const { return std::string_view(joined).substr(0, left_size); }
  std::string_view right() const { return std::string_view(joined).substr(left_size); }
};

// Tokens are turned from tokenizer.json's byte-level spelling into raw bytes as they are read
// (see byte_level.h).
struct TokenizerJson {
  nlohmann::json document;         // the file without model.vocab and model.merges
  std::vector<std::string> vocab;  // raw bytes of each token by id ("" where no token has the id)
  std::vector<MergeRule> merges;   // in rank order; "a b" and ["a", "b"] both accepted
};

TokenizerJson read_tokenizer_json(const std::string& path);

}  // namespace r1
