#include "tokenizer/stream_decoder.h"

#include "tokenizer/utf8.h"

namespace r1 {

std::string StreamDecoder::push(int id) {
  held_ += tokenizer_.token_bytes(id);
  const size_t ready = complete_utf8_prefix(held_);
  std::string out = held_.substr(0, ready);
  held_.erase(0, ready);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace r1
