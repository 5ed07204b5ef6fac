#include "eval/expression.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <numbers>
#include <string>

namespace r1 {

namespace {

bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

struct NotAnExpression {};

double apply_function(std::string_view name, double x) {
  if (name == "sin") return std::sin(x);
  if (name == "cos") return std::cos(x);
  if (name == "tan") return std::tan(x);
  if (name == "cot") return 1 / std::tan(x);
  if (name == "sec") return 1 / std::cos(x);
  if (name == "csc") return 1 / std::sin(x);
  if (name == "arcsin") return std::asin(x);
  if (name == "arccos") return std::acos(x);
  if (name == "arctan") return std::atan(x);
  if (name == "ln" || name == "log") return std::log(x);
  if (name == "exp") return std::exp(x);
  throw NotAnExpression{};
}

// Commands the parser understands. A name is matched as a prefix of the letters after the
// backslash, so that "\cotx" (spaces removed from "\cot x") reads as \cot followed by x.
constexpr std::string_view kCommands[] = {
    "arcsin", "arccos", "arctan", "lambda", "epsilon", "alpha", "binom", "theta", "gamma", "delta",
    "sigma",  "omega",  "cdot",   "times",  "frac",    "sqrt",  "beta",  "cos",   "sin",   "tan",
    "cot",    "sec",    "csc",    "exp",    "div",     "phi",   "psi",   "tau",   "rho",   "eta",
    "chi",    "mu",     "nu",     "pi",     "ln",      "log"};

bool is_greek(std::string_view name) {
  for (std::string_view g : {"alpha", "beta", "gamma", "delta", "epsilon", "theta", "lambda", "sigma", "omega",
                             "phi", "psi", "tau", "rho", "eta", "chi", "mu", "nu"})
    if (name == g) return true;
  return false;
}

// A fixed value in [0.5, 2.5) for each variable name and point: positive (so roots and logs
// are defined), irrational-looking (so different expressions do not agree by accident).
double variable_value(std::string_view name, int point) {
  double h = 0;
  for (char c : name) h = h * 1.6180339887 + static_cast<unsigned char>(c);
  const double x = h * 0.7548776662 + point * 0.5698402910;
  return 0.5 + 2 * (x - std::floor(x));
}

class Parser {
 public:
  Parser(std::string_view text, int point) : s_(text), point_(point) {}

  double parse_all() {
    const double value = expression();
    if (pos_ != s_.size()) throw NotAnExpression{};
    return value;
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!accept(c)) throw NotAnExpression{};
  }

  // The command at pos_ (after a backslash), or "" when there is none; does not consume.
  std::string_view command_at(size_t at) const {
    if (at >= s_.size() || s_[at] != '\\') return {};
    const std::string_view rest = s_.substr(at + 1);
    for (std::string_view name : kCommands)
      if (rest.starts_with(name)) return name;
    return {};
  }
  bool accept_command(std::string_view name) {
    if (command_at(pos_) != name) return false;
    pos_ += 1 + name.size();
    return true;
  }

  double expression() {
    double value = term();
    while (true) {
      if (accept('+'))
        value += term();
      else if (accept('-'))
        value -= term();
      else
        return value;
    }
  }

  double term() {
    double value = signed_factor();
    while (true) {
      if (accept('*') || accept_command("cdot") || accept_command("times"))
        value *= signed_factor();
      else if (accept('/') || accept_command("div"))
        value /= signed_factor();
      else if (starts_primary())
        value *= signed_factor();  // implicit product: 3\sqrt{13}, 2k, (a+5)(b+2)
      else
        return value;
    }
  }

  bool starts_primary() const {
    const char c = peek();
    if (is_digit(c) || c == '.' || is_letter(c) || c == '(' || c == '{' || c == '[') return true;
    const std::string_view name = command_at(pos_);
    return !name.empty() && name != "cdot" && name != "times" && name != "div";
  }

  double signed_factor() {
    if (accept('-')) return -signed_factor();
    if (accept('+')) return signed_factor();
    return power();
  }

  double power() {
    double value = primary();
    if (accept('^')) value = std::pow(value, is_digit(peek()) ? number() : argument());  // 2^10: as meant
    while (accept('!')) value = factorial(value);
    return value;
  }

  static double factorial(double n) {
    if (n < 0 || n > 170 || n != std::floor(n)) throw NotAnExpression{};
    double result = 1;
    for (int i = 2; i <= int(n); ++i) result *= i;
    return result;
  }

  // A TeX macro argument: a braced group, or a single digit, letter or command.
  double argument() {
    if (accept('{')) {
      const double value = expression();
      expect('}');
      return value;
    }
    const char c = peek();
    if (is_digit(c)) {
      ++pos_;
      return c - '0';
    }
    if (is_letter(c) || c == '\\') return primary();
    throw NotAnExpression{};
  }

  double number() {
    const size_t start = pos_;
    while (is_digit(peek())) ++pos_;
    if (accept('.'))
      while (is_digit(peek())) ++pos_;
    if (pos_ == start || (pos_ == start + 1 && s_[start] == '.')) throw NotAnExpression{};
    return std::strtod(std::string(s_.substr(start, pos_ - start)).c_str(), nullptr);
  }

  double group(char open, char close) {
    expect(open);
    const double value = expression();
    expect(close);
    return value;
  }

  double primary() {
    const char c = peek();
    if (is_digit(c) || c == '.') return number();
    if (c == '(') return group('(', ')');
    if (c == '[') return group('[', ']');
    if (c == '{') return group('{', '}');
    if (is_letter(c)) {
      ++pos_;
      return variable_value(std::string_view(&s_[pos_ - 1], 1), point_);
    }
    return command();
  }

  double command() {
    const std::string_view name = command_at(pos_);
    if (name.empty()) throw NotAnExpression{};
    pos_ += 1 + name.size();
    if (name == "pi") return std::numbers::pi;
    if (is_greek(name)) return variable_value(name, point_);
    if (name == "frac") {
      const double numerator = argument();
      return numerator / argument();
    }
    if (name == "binom") {
      const double n = argument(), k = argument();
      return factorial(n) / (factorial(k) * factorial(n - k));
    }
    if (name == "sqrt") {
      const double degree = peek() == '[' ? group('[', ']') : 2;
      return std::pow(argument(), 1 / degree);
    }
    // \sin^2x is (\sin x)^2. The operand is one power (\sin x^2 is sin(x²)); "\sin 2x" reads
    // as (\sin 2)·x, the same on both sides of a comparison, which is what matters here.
    const double exponent = accept('^') ? argument() : 1;
    return std::pow(apply_function(name, power()), exponent);
  }

  std::string_view s_;
  size_t pos_ = 0;
  int point_;
};

// A run of three letters outside a command name is a word ("Evelyn", "east"), not a product.
bool contains_word(std::string_view text) {
  int run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      while (i + 1 < text.size() && is_letter(text[i + 1])) ++i;
      run = 0;
    } else {
      run = is_letter(text[i]) ? run + 1 : 0;
      if (run >= 3) return true;
    }
  }
  return false;
}

}  // namespace

std::optional<double> evaluate_expression(std::string_view text, int point) {
  if (text.empty() || contains_word(text)) return std::nullopt;
  try {
    const double value = Parser(text, point).parse_all();
    if (!std::isfinite(value)) return std::nullopt;
    return value;
  } catch (const NotAnExpression&) {
    return std::nullopt;
  }
}

}  // namespace r1
