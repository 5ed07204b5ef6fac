// Decodes generated ids one at a time into printable text. A token may end in the middle of a
// UTF-8 character (emoji and CJK are often split across byte tokens); those bytes are held
// until the character is complete, so every piece returned is whole characters. The
// concatenation of all pieces and flush() equals decode() of all ids.
#pragma once

#include <string>

#include "tokenizer/tokenizer.h"

namespace r1 {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}

  // Text that can be printed now (possibly empty). Fails on an id not in the vocabulary.
  std::string push(int id);
  // Whatever is still held (an unfinished character at the end of the stream), then resets.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  std::string held_;
};

}  // namespace r1
