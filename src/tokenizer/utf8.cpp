#include "tokenizer/utf8.h"

namespace r1 {

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

namespace {

// Number of bytes of the sequence a lead byte opens (0 for a byte that cannot lead).
int sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Whether byte `b` may follow at position `k` (1-based) of a sequence opened by `lead`:
// excludes overlong forms, surrogates and code points above U+10FFFF.
bool continues(unsigned char lead, int k, unsigned char b) {
  if ((b & 0xC0) != 0x80) return false;
  if (k != 1) return true;
  if (lead == 0xE0) return b >= 0xA0;
  if (lead == 0xED) return b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90;
  if (lead == 0xF4) return b <= 0x8F;
  return true;
}

}  // namespace

char32_t next_code_point(std::string_view text, size_t& i) {
  const unsigned char lead = text[i];
  const int n = sequence_length(lead);
  if (n == 1) return text[i++];
  if (n == 0 || i + n > text.size()) {
    ++i;
    return kInvalidCodePoint;
  }
  char32_t c = lead & (0x7F >> n);
  for (int k = 1; k < n; ++k) {
    const unsigned char b = text[i + k];
    if (!continues(lead, k, b)) {
      ++i;
      return kInvalidCodePoint;
    }
    c = (c << 6) | (b & 0x3F);
  }
  i += n;
  return c;
}

size_t complete_utf8_prefix(std::string_view bytes) {
  // Only the last three bytes can belong to an unfinished sequence.
  const size_t first = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t start = bytes.size(); start-- > first;) {
    const unsigned char lead = bytes[start];
    if ((lead & 0xC0) == 0x80) continue;  // a continuation byte: look further left
    const int n = sequence_length(lead);
    const size_t have = bytes.size() - start;
    if (n <= 1 || have >= size_t(n)) return bytes.size();
    for (size_t k = 1; k < have; ++k)
      if (!continues(lead, int(k), bytes[start + k])) return bytes.size();
    return start;  // a well-formed beginning still waiting for its last bytes
  }
  return bytes.size();
}

}  // namespace r1
