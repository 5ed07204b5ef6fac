#include "eval/grade.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "eval/expression.h"
#include "eval/extract.h"
#include "eval/normalize.h"

namespace r1 {

namespace {

bool equivalent(std::string_view a, std::string_view b);

bool same_number(double a, double b) {
  return std::fabs(a - b) <= 1e-6 * std::max(std::fabs(a), std::fabs(b)) || std::fabs(a - b) < 1e-12;
}

// Equal in value at every evaluation point (one point suffices for constants, but variables
// need several: x^2 and x agree at x = 1).
bool same_value(std::string_view a, std::string_view b) {
  for (int point = 0; point < kEvaluationPoints; ++point) {
    const auto x = evaluate_expression(a, point), y = evaluate_expression(b, point);
    if (!x || !y || !same_number(*x, *y)) return false;
  }
  return true;
}

// Splits at `separator` where no bracket is open.
std::vector<std::string_view> split_top_level(std::string_view s, std::string_view separator) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth == 0 && s.substr(i).starts_with(separator)) {
      parts.push_back(s.substr(start, i - start));
      start = i + separator.size();
      i = start - 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

// A comma-separated answer: "3,5,7", "(3,\frac{\pi}{2})", "(3,4]", "\{1,2\}".
struct List {
  std::string brackets;  // the enclosing pair, e.g. "(]" or "\{\}"; empty for a bare list
  std::vector<std::string_view> items;
  bool ordered() const { return brackets == "()" || brackets == "[]" || brackets == "(]" || brackets == "[)"; }
};

// True when the bracket opened at s[0] closes at the last character (not "(a+5)(b+2)").
bool enclosed(std::string_view s) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '(' || s[i] == '[' || s[i] == '{') ++depth;
    if (s[i] == ')' || s[i] == ']' || s[i] == '}') --depth;
    if (depth == 0) return i + 1 == s.size();
  }
  return false;
}

List split_list(std::string_view s) {
  List list;
  if (s.size() >= 4 && s.starts_with("\\{") && s.ends_with("\\}")) {
    list.brackets = "\\{\\}";
    s = s.substr(2, s.size() - 4);
  } else if (s.size() >= 2 && (s[0] == '(' || s[0] == '[') && (s.back() == ')' || s.back() == ']') && enclosed(s)) {
    list.brackets = {s[0], s.back()};
    s = s.substr(1, s.size() - 2);
  }
  list.items = split_top_level(s, ",");
  return list;
}

bool lists_match(const List& a, const List& b) {
  if (a.brackets != b.brackets || a.items.size() != b.items.size()) return false;
  if (a.ordered()) {
    for (size_t i = 0; i < a.items.size(); ++i)
      if (!equivalent(a.items[i], b.items[i])) return false;
    return true;
  }
  // Unordered (a bare list of solutions, a set): match each item of a with an unused one of b.
  std::vector<bool> used(b.items.size(), false);
  for (std::string_view x : a.items) {
    size_t j = 0;
    while (j < b.items.size() && (used[j] || !equivalent(x, b.items[j]))) ++j;
    if (j == b.items.size()) return false;
    used[j] = true;
  }
  return true;
}

// Rows of cells of "\begin{pmatrix}a&b\\c&d\end{pmatrix}" (any *matrix environment).
std::optional<std::vector<std::vector<std::string_view>>> matrix_cells(std::string_view s) {
  if (!s.starts_with("\\begin{")) return std::nullopt;
  const size_t name_end = s.find('}');
  if (name_end == std::string_view::npos) return std::nullopt;
  const std::string_view name = s.substr(7, name_end - 7);
  const std::string end = "\\end{" + std::string(name) + "}";
  if (!name.ends_with("matrix") || !s.ends_with(end)) return std::nullopt;
  const std::string_view body = s.substr(name_end + 1, s.size() - end.size() - name_end - 1);
  std::vector<std::vector<std::string_view>> rows;
  for (std::string_view row : split_top_level(body, "\\\\")) rows.push_back(split_top_level(row, "&"));
  return rows;
}

bool matrices_match(const std::vector<std::vector<std::string_view>>& a,
                    const std::vector<std::vector<std::string_view>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t r = 0; r < a.size(); ++r) {
    if (a[r].size() != b[r].size()) return false;
    for (size_t c = 0; c < a[r].size(); ++c)
      if (!equivalent(a[r][c], b[r][c])) return false;
  }
  return true;
}

// Both normalized.
bool equivalent(std::string_view a, std::string_view b) {
  if (a == b) return true;
  const auto ma = matrix_cells(a), mb = matrix_cells(b);
  if (ma || mb) return ma && mb && matrices_match(*ma, *mb);
  const List la = split_list(a), lb = split_list(b);
  if (la.items.size() > 1 || lb.items.size() > 1) return lists_match(la, lb);
  const auto ea = split_top_level(a, "="), eb = split_top_level(b, "=");
  if (ea.size() == 2 && eb.size() == 2)  // equations: the same sides, either way round
    return (equivalent(ea[0], eb[0]) && equivalent(ea[1], eb[1])) ||
           (equivalent(ea[0], eb[1]) && equivalent(ea[1], eb[0]));
  return same_value(a, b);
}

// Deepest bracket nesting: normalization and comparison recurse into groups, so an absurdly
// nested answer would exhaust the stack.
int nesting_depth(std::string_view s) {
  int depth = 0, deepest = 0;
  for (char c : s) {
    if (c == '(' || c == '[' || c == '{') deepest = std::max(deepest, ++depth);
    if (c == ')' || c == ']' || c == '}') --depth;
  }
  return deepest;
}

constexpr int kMaxNesting = 100;  // real answers stay under 10

}  // namespace

bool answers_match(std::string_view given, std::string_view reference) {
  if (nesting_depth(given) > kMaxNesting || nesting_depth(reference) > kMaxNesting) return given == reference;
  return equivalent(normalize_answer(given), normalize_answer(reference));
}

Grade grade_response(std::string_view response, std::string_view reference) {
  Grade grade;
  grade.extracted = last_boxed(response);
  grade.correct = grade.extracted && answers_match(*grade.extracted, reference);
  return grade;
}

}  // namespace r1
