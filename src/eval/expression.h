// Numeric evaluation of a normalized LaTeX answer ("3\sqrt{13}", "-\frac{\pi}{6}", "x^3+3x-6"),
// so that answers written differently can be compared by value.
#pragma once

#include <optional>
#include <string_view>

namespace r1 {

// Number of variable assignments two expressions are compared at.
inline constexpr int kEvaluationPoints = 3;

// The value of `text` (normalized, no spaces) with each variable (a letter, or a Greek letter
// command) set to a fixed pseudo-random value of assignment `point` in [0, kEvaluationPoints).
// Knows + - * / ^ ! \cdot \times \div, implicit products, parentheses and braces, \frac,
// \sqrt (and \sqrt[n]), \binom, \pi, and the elementary functions. nullopt for anything else
// (words, subscripts, \pm, \infty, relations): such answers are compared as written.
std::optional<double> evaluate_expression(std::string_view text, int point);

}  // namespace r1
