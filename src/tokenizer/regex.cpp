#include "tokenizer/regex.h"

#include <utility>

#include "common/error.h"

namespace r1 {

Regex::Regex(const std::string& pattern, bool literal) {
  // PCRE2_UCP (Unicode \s, \w...) means nothing to, and is refused with, a literal.
  const uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  int error = 0;
  PCRE2_SIZE offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error, &offset,
                        nullptr);
  if (!code_) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    fail("regex '{}': {} at offset {}", pattern, reinterpret_cast<const char*>(message), offset);
  }
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;  // without JIT the interpreter still works
  match_data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
}

Regex::~Regex() {
  pcre2_match_data_free(match_data_);
  pcre2_code_free(code_);
}

Regex::Regex(Regex&& other) noexcept
    : code_(std::exchange(other.code_, nullptr)),
      match_data_(std::exchange(other.match_data_, nullptr)),
      jit_(other.jit_) {}

bool Regex::find(std::string_view subject, size_t from, Match& match) const {
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const int rc = jit_ ? pcre2_jit_match(code_, s, subject.size(), from, 0, match_data_, nullptr)
                      : pcre2_match(code_, s, subject.size(), from, 0, match_data_, nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof message);
    fail("regex match failed: {}", reinterpret_cast<const char*>(message));
  }
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data_);
  match = {ovector[0], ovector[1]};
  return true;
}

}  // namespace r1
