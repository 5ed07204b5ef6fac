#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace r1 {

namespace {

// Bytes that are printable Latin-1 characters spell themselves; the other 68 bytes take the
// code points 256, 257, ... in byte order. This is the GPT-2 convention every byte-level
// tokenizer.json uses.
bool spells_itself(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct Alphabet {
  std::array<char32_t, 256> char_of_byte{};
  std::array<int, 324> byte_of_char{};  // code points < 324 only; -1 where none
  Alphabet() {
    byte_of_char.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      char_of_byte[b] = spells_itself(b) ? char32_t(b) : next++;
      byte_of_char[char_of_byte[b]] = b;
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

char32_t byte_to_char(unsigned char b) { return alphabet().char_of_byte[b]; }

std::string byte_level_to_bytes(std::string_view spelled) {
  std::string bytes;
  bytes.reserve(spelled.size());
  for (size_t i = 0; i < spelled.size();) {
    const char32_t c = next_code_point(spelled, i);
    const int b = c < alphabet().byte_of_char.size() ? alphabet().byte_of_char[c] : -1;
    if (b < 0) return std::string(spelled);
    bytes += char(b);
  }
  return bytes;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string spelled;
  for (unsigned char b : bytes) append_utf8(spelled, byte_to_char(b));
  return spelled;
}

}  // namespace r1
