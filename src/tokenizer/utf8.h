// Small UTF-8 helpers: what the tokenizer needs to walk text and never cut a character.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace r1 {

// Appends the UTF-8 encoding of code point c.
void append_utf8(std::string& out, char32_t c);

// Decodes the code point starting at text[i] and advances i past it; on an ill-formed
// sequence returns kInvalidCodePoint and advances one byte.
constexpr char32_t kInvalidCodePoint = 0xFFFFFFFF;
char32_t next_code_point(std::string_view text, size_t& i);

// Length of the longest prefix of `bytes` that does not end inside an unfinished (but so far
// well-formed) UTF-8 sequence: what a streaming printer can emit now. Ill-formed bytes count
// as complete, so they are never held back forever.
size_t complete_utf8_prefix(std::string_view bytes);

}  // namespace r1
