// Reads tokenizer.json fast: its two big tables (model.vocab, 128k entries, and model.merges)
// go straight into flat vectors through nlohmann's SAX interface; the small rest (added
// tokens, pre-tokenizer, decoder...) becomes an ordinary JSON document. Building a DOM of the
// whole file takes ~200 ms; this takes ~30-45 ms.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace r1 {

struct TokenizerJson {
  nlohmann::json document;                                 // the file without model.vocab and model.merges
  std::vector<std::pair<std::string, int>> vocab;          // token as spelled in the file -> id
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order; "a b" and ["a", "b"] both accepted
};

TokenizerJson read_tokenizer_json(const std::string& path);

}  // namespace r1
