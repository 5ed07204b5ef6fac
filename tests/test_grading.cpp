// Answer extraction, normalization and equivalence, and agreement with the reference grader
// (a sympy-based one) on the shared development set.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/expression.h"
#include "eval/extract.h"
#include "eval/grade.h"
#include "eval/normalize.h"

namespace r1 {
namespace {

TEST(Extract, LastBoxWinsAndBracesBalance) {
  EXPECT_EQ(last_boxed("first \\boxed{1}, then \\boxed{\\frac{1}{2}} done"), "\\frac{1}{2}");
  EXPECT_EQ(last_boxed("\\boxed{2} and finally \\fbox{x^{2}}"), "x^{2}");
  EXPECT_EQ(last_boxed("\\fbox{2} and finally \\boxed{3}"), "3");
  EXPECT_EQ(last_boxed("\\boxed {7}"), "7");
  EXPECT_EQ(last_boxed("\\boxed{\\{1,2\\}}"), "\\{1,2\\}");            // escaped braces are content
  EXPECT_EQ(last_boxed("\\boxed{\\left\\{ x \\right.}"), "\\left\\{ x \\right.");
  EXPECT_EQ(last_boxed("\\boxed{}"), "");
}

TEST(Extract, NothingBoxed) {
  EXPECT_EQ(last_boxed("the answer is 5"), std::nullopt);
  EXPECT_EQ(last_boxed("\\boxed{12"), std::nullopt);                   // truncated: never closed
  EXPECT_EQ(last_boxed("\\boxed{1} then \\boxed{2"), std::nullopt);    // the last box is the answer
  EXPECT_EQ(last_boxed("\\boxedx{1}"), std::nullopt);                  // another command
  EXPECT_EQ(last_boxed("\\boxed 5"), std::nullopt);
}

TEST(Normalize, SpellingRules) {
  EXPECT_EQ(normalize_answer("\\left( 3, \\dfrac{\\pi}{2} \\right)"), "(3,\\frac{\\pi}{2})");
  EXPECT_EQ(normalize_answer("\\tfrac43"), "\\frac{4}{3}");
  EXPECT_EQ(normalize_answer("\\frac 59"), "\\frac{5}{9}");
  EXPECT_EQ(normalize_answer("11\\sqrt2"), "11\\sqrt{2}");
  EXPECT_EQ(normalize_answer("\\text{\\text{east}}"), "east");
  EXPECT_EQ(normalize_answer("\\textbf{7}"), "7");
  EXPECT_EQ(normalize_answer("\\frac{270}7\\text{ degrees}"), "\\frac{270}{7}");
  EXPECT_EQ(normalize_answer("12 square units"), "12");
  EXPECT_EQ(normalize_answer("90^\\circ"), "90");
  EXPECT_EQ(normalize_answer("90^{\\circ}"), "90");
  EXPECT_EQ(normalize_answer("50\\%"), "50");
  EXPECT_EQ(normalize_answer("\\$32,\\!348"), "32348");
  EXPECT_EQ(normalize_answer("11,\\! 111,\\! 111,\\! 100"), "11111111100");
  EXPECT_EQ(normalize_answer("1,-2"), "1,-2");       // a list, not a thousands separator
  EXPECT_EQ(normalize_answer("3,5,7"), "3,5,7");
  EXPECT_EQ(normalize_answer("025"), "25");
  EXPECT_EQ(normalize_answer("-007"), "-7");
  EXPECT_EQ(normalize_answer("00"), "0");
  EXPECT_EQ(normalize_answer("0.5"), "0.5");
  EXPECT_EQ(normalize_answer("5."), "5");
  EXPECT_EQ(normalize_answer("x = 9"), "9");
  EXPECT_EQ(normalize_answer("\\theta=\\pi"), "\\pi");
  EXPECT_EQ(normalize_answer("5x-7y=0"), "5x-7y=0");  // an equation, not a named value
  EXPECT_EQ(normalize_answer("\\text{(C)}"), "C");
  EXPECT_EQ(normalize_answer("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"), "\\begin{pmatrix}1\\\\2\\end{pmatrix}");
  EXPECT_EQ(normalize_answer("a\\leftarrow b"), "a\\leftarrowb");  // \left only as a command
}

TEST(Expression, Values) {
  auto value = [](std::string_view s) { return evaluate_expression(s, 0).value_or(-12345); };
  EXPECT_DOUBLE_EQ(value("3\\sqrt{13}"), 3 * std::sqrt(13.0));
  EXPECT_DOUBLE_EQ(value("-\\frac{\\pi}{6}"), -M_PI / 6);
  EXPECT_DOUBLE_EQ(value("\\frac{3\\sqrt{3}}{4}"), 3 * std::sqrt(3.0) / 4);
  EXPECT_DOUBLE_EQ(value("2^{10}-1"), 1023);
  EXPECT_DOUBLE_EQ(value("2^10"), 1024);  // what the writer meant, though TeX would print 2¹0
  EXPECT_DOUBLE_EQ(value("\\sqrt[3]{27}"), 3);
  EXPECT_DOUBLE_EQ(value("5!"), 120);
  EXPECT_DOUBLE_EQ(value("\\binom{6}{2}"), 15);
  EXPECT_DOUBLE_EQ(value("2\\cdot3+4\\times5-6\\div4"), 24.5);
  EXPECT_DOUBLE_EQ(value(".0000672"), 0.0000672);
  EXPECT_DOUBLE_EQ(value("(1+2)(3+4)"), 21);
  for (std::string_view not_numeric : {"Evelyn", "52_8", "1\\pm\\sqrt{19}", "(2,\\infty)", "x<3", "", "\\frac{1}"})
    EXPECT_EQ(evaluate_expression(not_numeric, 0), std::nullopt) << not_numeric;
}

TEST(Expression, VariablesDifferBetweenPoints) {
  const auto a = evaluate_expression("x", 0), b = evaluate_expression("x", 1), c = evaluate_expression("y", 0);
  ASSERT_TRUE(a && b && c);
  EXPECT_NE(*a, *b);
  EXPECT_NE(*a, *c);
}

TEST(Match, EquivalentAnswers) {
  const std::pair<std::string_view, std::string_view> same[] = {
      {"\\dfrac{14}{3}", "\\frac{14}{3}"},  {"9.0", "9"},
      {"025", "25"},                        {"0.5", "\\frac12"},
      {"2,000", "2000"},                    {"x = 27", "27"},
      {"\\text{p - q}", "p - q"},           {"\\cot x", "\\cotx"},
      {"70\\sqrt{2}", "70 \\sqrt{2}"},      {"\\sqrt{8}", "2\\sqrt2"},
      {"288\\pi", "288 \\pi"},              {"\\pi r^2", "r^2\\pi"},
      {"x^2+2x+1", "(x+1)^2"},              {"(a+5)(b+2)", "ab+2a+5b+10"},
      {"-2+7i", "7i-2"},                    {"3,5,7", "7,5,3"},
      {"\\{1,2\\}", "\\{2,1\\}"},           {"(3, \\tfrac{\\pi}{2})", "\\left(3,\\frac{\\pi}{2}\\right)"},
      {"(3,4]", "(3, 4]"},                  {"90", "90^\\circ"},
      {"\\text{Evelyn}", "Evelyn"},         {"(C)", "C"},
      {"5x-7y+11z+4=0", "5x - 7y + 11z + 4 = 0"},
      {"x+y=1", "1=y+x"},
      {"\\begin{pmatrix}-\\frac13\\\\ 0.5\\end{pmatrix}", "\\begin{pmatrix} -1/3 \\\\ 1/2 \\end{pmatrix}"},
  };
  for (auto [a, b] : same) {
    EXPECT_TRUE(answers_match(a, b)) << a << " vs " << b;
    EXPECT_TRUE(answers_match(b, a)) << b << " vs " << a;
  }
}

TEST(Match, DifferentAnswers) {
  const std::pair<std::string_view, std::string_view> different[] = {
      {"2", "3"},           {"\\frac{14}{3}", "\\frac{14}{5}"}, {"0.333", "\\frac13"},
      {"(1,2)", "(2,1)"},   {"(3,4]", "[3,4)"},                 {"(1,2)", "1,2"},
      {"1,2", "12"},        {"1,2,3", "1,2"},                   {"x^2", "x"},
      {"2x", "2y"},         {"Evelyn", "nEvely"},               {"52_8", "52"},
      {"\\sqrt{5}", "5"},   {"\\pi", "3.14"},                   {"east", "west"},
      {"1+\\sqrt{19}", "1\\pm\\sqrt{19}"},
      {"\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1&2\\end{pmatrix}"},
      {"x=1", "x=2"},
  };
  for (auto [a, b] : different) {
    EXPECT_FALSE(answers_match(a, b)) << a << " vs " << b;
    EXPECT_FALSE(answers_match(b, a)) << b << " vs " << a;
  }
}

TEST(Match, AbsurdNestingIsComparedAsWrittenNotRecursed) {
  const int n = 200000;
  const std::string braces = std::string(n, '{') + "1" + std::string(n, '}');
  std::string fractions, tuple;
  for (int i = 0; i < n; ++i) fractions += "\\frac{";
  fractions += "1";
  for (int i = 0; i < n; ++i) fractions += "}{2}";
  for (int i = 0; i < n; ++i) tuple += "(1,";
  tuple += "1" + std::string(n, ')');
  EXPECT_FALSE(answers_match(braces, "1"));
  EXPECT_TRUE(answers_match(braces, braces));
  EXPECT_FALSE(answers_match(fractions, "0"));
  EXPECT_FALSE(answers_match(tuple, "(1,1)"));
}

TEST(Grade, NothingBoxedIsNeverCorrect) {
  const Grade g = grade_response("Therefore the result is 9.", "9");
  EXPECT_EQ(g.extracted, std::nullopt);
  EXPECT_FALSE(g.correct);
  const Grade h = grade_response("wrong \\boxed{8}, right \\boxed{09}.", "9");
  EXPECT_EQ(h.extracted, "09");
  EXPECT_TRUE(h.correct);
}

// Issue 4's acceptance: `extracted` identical on every case, `correct` agreeing with the
// reference grader on at least 98% of them.
TEST(Grade, AgreesWithReferenceGraderOnDevSet) {
  std::ifstream in(std::string(R1_TEST_DATA) + "/grading/grading_dev.jsonl");
  ASSERT_TRUE(in) << "missing tests/data/grading/grading_dev.jsonl";
  std::string line;
  int cases = 0, same_extracted = 0, agree = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const Grade g = grade_response(j["response"].get<std::string>(), j["answer"].get<std::string>());
    const auto want = j["extracted"].is_null() ? std::nullopt : std::optional(j["extracted"].get<std::string>());
    ++cases;
    same_extracted += g.extracted == want;
    agree += g.correct == j["correct"].get<bool>();
    EXPECT_EQ(g.extracted, want) << "line " << cases;
    if (g.correct != j["correct"].get<bool>())
      fmt::print("  disagree on line {}: answer {} extracted {}\n", cases, j["answer"].dump(), j["extracted"].dump());
  }
  const double agreement = 100.0 * agree / cases;
  fmt::print("  {} cases: extracted identical on {}, correct agrees on {} ({:.2f}%)\n", cases, same_extracted,
             agree, agreement);
  EXPECT_EQ(cases, 1676);
  EXPECT_EQ(same_extracted, cases);
  EXPECT_GE(agreement, 98.0);
}

}  // namespace
}  // namespace r1
