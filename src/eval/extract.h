// Final-answer extraction: what a model put in its last \boxed{...} (or \fbox{...}).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace r1 {

// The content of the last \boxed{...} or \fbox{...} in `text`, braces balanced (escaped
// braces \{ \} do not count), without the wrapper. nullopt when nothing is boxed, or when the
// last box is never closed (a truncated answer is no answer).
std::optional<std::string> last_boxed(std::string_view text);

// The group starting at text[open] == '{' up to its matching '}', both excluded; nullopt when
// unbalanced. Escaped braces (\{, \}) are content, not structure.
std::optional<std::string_view> brace_group(std::string_view text, size_t open);

}  // namespace r1
