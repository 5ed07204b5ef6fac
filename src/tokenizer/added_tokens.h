// Added tokens (<｜User｜>, <｜end▁of▁sentence｜>, <think>, ...) are found literally in the
// text before anything else runs: the text between them goes through the pre-tokenizer and
// BPE, the tokens themselves become their ids. At each position the longest token wins, and
// the leftmost occurrence is taken first.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe.h"

namespace r1 {

struct AddedToken {
  int id = 0;
  std::string content;
  bool special = false;
};

// A piece of input: an added token (id >= 0) or plain text to pre-tokenize (id == -1).
struct TextPiece {
  std::string_view text;
  int id = -1;
};

class AddedTokenMatcher {
 public:
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // Replaces `segments` with the cut of `text`; plain-text segments are never empty.
  void split(std::string_view text, std::vector<TextPiece>& segments) const;

 private:
  StringMap<int> id_of_content_;
  std::vector<size_t> lengths_;            // distinct token lengths, longest first
  std::array<bool, 256> can_start_{};      // first bytes of some token
};

}  // namespace r1
