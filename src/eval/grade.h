// Grading a model's response against a reference answer, as `r1 grade` and `r1 bench` do.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace r1 {

// Whether `given` and `reference` are the same final answer: equal after normalize_answer, or
// equal in value (numbers, fractions, roots, pi, polynomials at several variable values), or
// lists / tuples / intervals / matrices / equations whose parts are the same answers.
bool answers_match(std::string_view given, std::string_view reference);

struct Grade {
  std::optional<std::string> extracted;  // last \boxed{} content; nullopt when nothing is boxed
  bool correct = false;                  // false whenever nothing was extracted
};

Grade grade_response(std::string_view response, std::string_view reference);

}  // namespace r1
