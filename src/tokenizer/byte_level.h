// The byte-level alphabet of GPT-2 style BPE: every byte 0..255 is spelled as one printable
// Unicode character in tokenizer.json (space is 'Ġ', newline is 'Ċ'), so vocabulary strings
// never hold raw control bytes. r1 keeps tokens as raw bytes internally; this maps between the two.
#pragma once

#include <string>
#include <string_view>

namespace r1 {

// The code point that spells byte b in tokenizer.json.
char32_t byte_to_char(unsigned char b);

// The raw bytes a vocabulary string spells. A string holding a character outside the
// byte-level alphabet (<｜begin▁of▁sentence｜> is one) is kept as its UTF-8 text.
std::string byte_level_to_bytes(std::string_view spelled);

// The tokenizer.json spelling of raw bytes (UTF-8 of the mapped characters).
std::string bytes_to_byte_level(std::string_view bytes);

}  // namespace r1
