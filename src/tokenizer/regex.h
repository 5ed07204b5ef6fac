// A compiled PCRE2 pattern (UTF, Unicode properties, JIT). Invalid UTF-8 in a subject is
// allowed (PCRE2_MATCH_INVALID_UTF): ill-formed bytes simply match nothing.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>
#include <string_view>

namespace r1 {

struct Match {
  size_t begin = 0, end = 0;
};

class Regex {
 public:
  // `literal` compiles the pattern as a plain string. Fails (r1::Error) on a bad pattern.
  explicit Regex(const std::string& pattern, bool literal = false);
  ~Regex();
  Regex(Regex&& other) noexcept;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  Regex& operator=(Regex&&) = delete;

  // The first match in subject[from..] (the subject ends at subject.size(): lookahead does
  // not see past it). Not thread-safe: the match data is shared.
  bool find(std::string_view subject, size_t from, Match& match) const;

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* match_data_ = nullptr;
  bool jit_ = false;
};

}  // namespace r1
