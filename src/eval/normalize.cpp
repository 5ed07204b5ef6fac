#include "eval/normalize.h"

#include <cctype>

#include "eval/extract.h"

namespace r1 {

namespace {

bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

// Replaces \name{X} by X everywhere (inner ones too, since the scan restarts where X began).
// A command that only shares a prefix (\textbf for \text) is left to its own call.
void unwrap_command(std::string& s, std::string_view name) {
  for (size_t at = s.find(name); at != std::string::npos; at = s.find(name, at)) {
    const size_t open = at + name.size();
    if (open < s.size() && is_letter(s[open])) {
      at = open;
      continue;
    }
    const auto group = brace_group(s, open);
    if (!group) {  // "\text 5" or unbalanced: leave it as written
      at = open;
      continue;
    }
    s = s.substr(0, at) + std::string(*group) + s.substr(open + group->size() + 2);
  }
}

// "\frac{270}7\text{ degrees}" -> "\frac{270}7": a trailing \text{...} holding only words is a
// unit when something stands before it.
void strip_trailing_unit_text(std::string& s) {
  for (std::string_view name : {"\\text{", "\\mbox{", "\\textrm{"}) {
    const size_t at = s.rfind(name);
    if (at == std::string::npos || at == 0) continue;
    const auto group = brace_group(s, at + name.size() - 1);
    if (!group || at + name.size() + group->size() + 1 != s.size()) continue;
    bool words = !group->empty();
    for (char c : *group) words = words && (is_letter(c) || c == ' ');
    if (words) s.erase(at);
  }
}

// "5 inches", "10 square units": trailing unit words after a quantity, separated by spaces.
void strip_trailing_unit_words(std::string& s) {
  static constexpr std::string_view kUnits[] = {
      "unit",    "units",   "square", "sq",      "cubic",   "degree",  "degrees", "cm",     "mm",
      "km",      "meter",   "meters", "metre",   "metres",  "inch",    "inches",  "foot",   "feet",
      "ft",      "yard",    "yards",  "mile",    "miles",   "second",  "seconds", "minute", "minutes",
      "hour",    "hours",   "day",    "days",    "week",    "weeks",   "year",    "years",  "dollar",
      "dollars", "cent",    "cents",  "mph",     "pounds",  "ounces",  "liters",  "grams"};
  while (true) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    const size_t space = s.rfind(' ');
    if (space == std::string::npos) return;
    const std::string_view word = std::string_view(s).substr(space + 1);
    bool known = false;
    for (std::string_view unit : kUnits) known = known || word == unit;
    if (!known) return;
    s.erase(space);
  }
}

// Removes the command `name` where it stands alone (\left but not \leftarrow).
void remove_command(std::string& s, std::string_view name) {
  size_t at = 0;
  while ((at = s.find(name, at)) != std::string::npos) {
    const size_t end = at + name.size();
    if (end < s.size() && is_letter(s[end]))
      at = end;
    else
      s.erase(at, name.size());
  }
}

// Drops whitespace and TeX spacing commands (\! \, \; \: \<space> ~ \quad), keeping \\ rows.
void remove_spacing(std::string& s) {
  for (std::string_view space : {"\\qquad", "\\quad", "\\displaystyle"}) remove_command(s, space);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && std::string_view("!,;: \\").find(s[i + 1]) != std::string_view::npos) {
      if (s[i + 1] == '\\') out += "\\\\";
      ++i;
    } else if (s[i] != '~' && !std::isspace(static_cast<unsigned char>(s[i]))) {
      out += s[i];
    }
  }
  s = std::move(out);
}

// \frac43 -> \frac{4}{3}, \sqrt2 -> \sqrt{2}: TeX takes one character as an unbraced argument.
std::string brace_single_arguments(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const std::string_view rest = s.substr(i);
    const int arguments = rest.starts_with("\\frac") ? 2 : rest.starts_with("\\sqrt") ? 1 : 0;
    if (arguments == 0) {
      out += s[i++];
      continue;
    }
    out += rest.substr(0, 5);  // both names are five characters
    i += 5;
    for (int a = 0; a < arguments && i < s.size(); ++a) {
      if (s[i] == '{') {
        const auto group = brace_group(s, i);
        if (!group) break;
        out += '{';
        out += brace_single_arguments(*group);
        out += '}';
        i += group->size() + 2;
      } else if (is_letter(s[i]) || is_digit(s[i])) {
        out += {'{', s[i++], '}'};
      } else {
        break;
      }
    }
  }
  return out;
}

// "x=5" -> "5": a single variable named on the left is not part of the answer.
void strip_variable_assignment(std::string& s) {
  const size_t eq = s.find('=');
  if (eq == std::string::npos || s.find('=', eq + 1) != std::string::npos) return;
  const std::string_view lhs = std::string_view(s).substr(0, eq);
  bool variable = lhs.size() == 1 && is_letter(lhs[0]);
  if (lhs.size() > 1 && lhs[0] == '\\') {
    variable = true;
    for (char c : lhs.substr(1)) variable = variable && is_letter(c);
  }
  if (variable && eq + 1 < s.size()) s.erase(0, eq + 1);
}

// "2,000" -> "2000", only when the whole answer is one number (so "1,-2" stays a list).
void strip_thousands_separators(std::string& s) {
  size_t i = s.starts_with('-') ? 1 : 0, digits = 0, groups = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) ++digits;
  if (digits == 0 || digits > 3) return;
  while (i + 3 < s.size() && s[i] == ',' && is_digit(s[i + 1]) && is_digit(s[i + 2]) && is_digit(s[i + 3])) {
    i += 4;
    ++groups;
  }
  if (groups == 0) return;
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && is_digit(s[i]);) ++i;
  }
  if (i != s.size()) return;
  std::erase(s, ',');
}

// AIME's "025" -> "25" (integers only: "0.5" keeps its zero).
void strip_leading_zeros(std::string& s) {
  const size_t sign = s.starts_with('-') ? 1 : 0;
  if (s.size() <= sign + 1 || s[sign] != '0') return;
  for (size_t i = sign; i < s.size(); ++i)
    if (!is_digit(s[i])) return;
  const size_t first = s.find_first_not_of('0', sign);
  s.erase(sign, (first == std::string::npos ? s.size() - 1 : first) - sign);
}

}  // namespace

std::string normalize_answer(std::string_view answer) {
  std::string s(answer);
  strip_trailing_unit_text(s);
  for (std::string_view wrapper : {"\\text", "\\textbf", "\\textrm", "\\textit", "\\mathrm", "\\mathbf", "\\mbox"})
    unwrap_command(s, wrapper);
  strip_trailing_unit_words(s);
  for (std::string_view sizing : {"\\left.", "\\right."}) replace_all(s, sizing, "");
  for (std::string_view sizing : {"\\left", "\\right"}) remove_command(s, sizing);
  for (std::string_view fraction : {"\\dfrac", "\\tfrac"}) replace_all(s, fraction, "\\frac");
  for (std::string_view mark : {"^{\\circ}", "^\\circ", "\\circ", "\\degree", "°", "\\%", "%", "\\$", "$"})
    replace_all(s, mark, "");
  remove_spacing(s);
  while (s.ends_with('.')) s.pop_back();
  s = brace_single_arguments(s);
  strip_variable_assignment(s);
  strip_thousands_separators(s);
  strip_leading_zeros(s);
  if (s.size() == 3 && s[0] == '(' && is_letter(s[1]) && s[2] == ')') s = s.substr(1, 1);  // choice "(C)"
  return s;
}

}  // namespace r1
