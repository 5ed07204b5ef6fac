// The pre-tokenizer of tokenizer.json: cuts text into pieces that BPE encodes independently.
// Supported: a `Split` (regex or literal pattern; behaviours Isolated, Removed,
// MergedWithPrevious, MergedWithNext), `ByteLevel` (its optional GPT-2 regex split), and a
// `Sequence` of those. Each step re-splits every piece of the previous step on its own, so a
// lookahead never sees past the end of its piece.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace r1 {

enum class SplitBehavior { isolated, removed, merged_with_previous, merged_with_next };

struct SplitStep {
  Regex regex;
  SplitBehavior behavior;
};

class PreTokenizer {
 public:
  // `config` is tokenizer.json's "pre_tokenizer" (null: the whole text is one piece).
  // Fails (r1::Error, naming the step) on what it does not support.
  explicit PreTokenizer(const nlohmann::json& config);

  // Calls `on_piece` with each piece of `text` (a view into it), in order. Pieces go through
  // all steps one at a time, so no list of the whole text's pieces is ever built.
  // Not thread-safe (the regexes' match data).
  using PieceFn = std::function<void(std::string_view)>;
  void split(std::string_view text, const PieceFn& on_piece) const;

 private:
  std::vector<SplitStep> steps_;
  void add(const nlohmann::json& config);
  void split_from(size_t step, std::string_view text, const PieceFn& on_piece) const;
};

}  // namespace r1
