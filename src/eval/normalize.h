// Answer normalization: the spelling differences that never change a math answer's meaning
// (LaTeX spacing and sizing, \text wrappers, units, degree signs, thousands separators, ...)
// are removed so that equal answers compare equal as strings, or at least parse alike.
#pragma once

#include <string>
#include <string_view>

namespace r1 {

// Canonical spelling of a final answer; see normalize.cpp for the rules, applied in order.
std::string normalize_answer(std::string_view answer);

}  // namespace r1
