#include "eval/extract.h"

#include <cctype>

namespace r1 {

namespace {

// Position of the last `name` in `text` that is a whole command (\boxed but not \boxedx).
size_t last_command(std::string_view text, std::string_view name) {
  size_t last = std::string_view::npos;
  for (size_t at = text.find(name); at != std::string_view::npos; at = text.find(name, at + 1)) {
    const size_t end = at + name.size();
    if (end == text.size() || !std::isalpha(static_cast<unsigned char>(text[end]))) last = at;
  }
  return last;
}

}  // namespace

std::optional<std::string_view> brace_group(std::string_view text, size_t open) {
  if (open >= text.size() || text[open] != '{') return std::nullopt;
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '\\') {  // \{ and \} are literal braces; skip the escaped character
      ++i;
      continue;
    }
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return text.substr(open + 1, i - open - 1);
  }
  return std::nullopt;
}

std::optional<std::string> last_boxed(std::string_view text) {
  size_t start = std::string_view::npos, open = 0;
  for (std::string_view name : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    const size_t at = last_command(text, name);
    if (at != std::string_view::npos && (start == std::string_view::npos || at > start)) {
      start = at;
      open = at + name.size();
    }
  }
  if (start == std::string_view::npos) return std::nullopt;
  while (open < text.size() && std::isspace(static_cast<unsigned char>(text[open]))) ++open;
  const auto content = brace_group(text, open);
  if (!content) return std::nullopt;
  return std::string(*content);
}

}  // namespace r1
