// The think/answer splitter on streamed pieces: every way of cutting the output into pieces
// (each split point, one byte at a time, random cuts) must give the same two streams.
#include <gtest/gtest.h>

#include <random>

#include "engine/reasoning.h"

namespace r1 {
namespace {

struct Streams {
  std::string reasoning, answer;
  bool operator==(const Streams&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Streams& s) {
  return os << "{reasoning: \"" << s.reasoning << "\", answer: \"" << s.answer << "\"}";
}

// Feeds `pieces`, checks each segment is non-empty and that reasoning never follows the answer.
Streams split(const std::vector<std::string>& pieces, bool started_in_thinking) {
  ReasoningSplitter splitter(started_in_thinking);
  Streams s;
  bool answer_started = false;
  auto take = [&](const std::vector<Segment>& segments) {
    for (const Segment& seg : segments) {
      EXPECT_FALSE(seg.text.empty());
      if (seg.channel == Channel::answer) {
        answer_started = true;
        s.answer += seg.text;
      } else {
        EXPECT_FALSE(answer_started) << "reasoning after the answer began";
        s.reasoning += seg.text;
      }
    }
  };
  for (const std::string& piece : pieces) take(splitter.feed(piece));
  take(splitter.finish());
  return s;
}

struct Case {
  std::string output;
  bool started_in_thinking;
  Streams want;
};

const Case kCases[] = {
    // (a) the model opens <think> itself
    {"<think>\nLet me think.\n</think>\n\nThe answer is 4.", false, {"Let me think.\n", "The answer is 4."}},
    // (b) the template opened "<think>\n": only </think> appears
    {"Let me think.\n</think>\n\nThe answer is 4.", true, {"Let me think.\n", "The answer is 4."}},
    {"\nLet me think.</think>The answer", true, {"Let me think.", "The answer"}},
    {"<think>\nstill thinks it must open</think>\nok", true, {"still thinks it must open", "ok"}},
    // (c) no tags: all answer, unless the prompt opened <think>
    {"The answer is 4.", false, {"", "The answer is 4."}},
    {"The answer is 4.", true, {"The answer is 4.", ""}},
    // near-tags are text; tags inside the answer are text
    {"<thinking> about it", false, {"", "<thinking> about it"}},
    {"<think>a </thin b <think> c</think>d", false, {"a </thin b <think> c", "d"}},
    {"<think>\n\n</think>\n\nAnswer with </think> inside", false, {"", "Answer with </think> inside"}},
    {"  \n<think>x</think>y", false, {"x", "y"}},
    // truncated output: a partial tag at the end is text
    {"<think>\nreasoning </thi", false, {"reasoning </thi", ""}},
    {"<thi", false, {"", "<thi"}},
    {"", true, {"", ""}},
    // multi-byte UTF-8 passes through unharmed, whatever byte the cuts fall on
    {"<think>\n思考…</think>\n答案 ✓", false, {"思考…", "答案 ✓"}},
};

TEST(ReasoningSplitter, WholeOutputAtOnce) {
  for (const Case& c : kCases) EXPECT_EQ(split({c.output}, c.started_in_thinking), c.want) << c.output;
}

TEST(ReasoningSplitter, EverySplitPoint) {
  for (const Case& c : kCases)
    for (size_t cut = 0; cut <= c.output.size(); ++cut)
      EXPECT_EQ(split({c.output.substr(0, cut), c.output.substr(cut)}, c.started_in_thinking), c.want)
          << c.output << " cut at " << cut;
}

TEST(ReasoningSplitter, OneByteAtATime) {
  for (const Case& c : kCases) {
    std::vector<std::string> bytes;
    for (char ch : c.output) bytes.push_back(std::string(1, ch));
    EXPECT_EQ(split(bytes, c.started_in_thinking), c.want) << c.output;
  }
}

TEST(ReasoningSplitter, RandomPieces) {
  std::mt19937 gen(3);
  for (const Case& c : kCases) {
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<std::string> pieces;
      for (size_t at = 0; at < c.output.size();) {
        const size_t n = std::uniform_int_distribution<size_t>(0, 6)(gen);  // empty pieces too
        pieces.push_back(c.output.substr(at, n));
        at += n;
      }
      EXPECT_EQ(split(pieces, c.started_in_thinking), c.want) << c.output;
    }
  }
}

TEST(ReasoningSplitter, StreamsReasoningBeforeTheTagCompletes) {
  ReasoningSplitter s(true);
  const std::vector<Segment> first = s.feed("Hmm, so </th");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].channel, Channel::reasoning);
  EXPECT_EQ(first[0].text, "Hmm, so ");  // only the possible tag start is held back
  EXPECT_TRUE(s.in_reasoning());
  const std::vector<Segment> second = s.feed("ink>\n\nYes");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].channel, Channel::answer);
  EXPECT_EQ(second[0].text, "Yes");
  EXPECT_FALSE(s.in_reasoning());
}

}  // namespace
}  // namespace r1
