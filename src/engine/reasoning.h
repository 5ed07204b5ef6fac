// Splits R1's streamed output into its reasoning (<think>...</think>) and its answer, piece by
// piece as tokens are decoded: a tag may arrive split across pieces, so a possible partial tag
// is held back until the next piece decides it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace r1 {

enum class Channel { reasoning, answer };

struct Segment {
  Channel channel;
  std::string text;  // never empty
};

class ReasoningSplitter {
 public:
  // started_in_thinking: the prompt already opened <think> (R1's chat template ends with
  // "<think>\n"), so the output is reasoning until </think>. Otherwise the output is the answer
  // unless it begins with <think>.
  explicit ReasoningSplitter(bool started_in_thinking) : started_in_thinking_(started_in_thinking) {}

  // The text of `piece` (plus what was held back) that can be classified now. The tags and the
  // newlines right after them are dropped; in the answer, tags are ordinary text.
  std::vector<Segment> feed(std::string_view piece);

  // End of output: what was held back, as text (a tag that never completed is not a tag).
  std::vector<Segment> finish();

  bool in_reasoning() const;  // where text goes now, e.g. to dim it in a terminal

 private:
  enum class State { opening, after_open, reasoning, after_close, answer };

  std::vector<Segment> run(bool final);
  bool step(std::vector<Segment>& out, bool final);  // false when it needs more input
  void emit(std::vector<Segment>& out, Channel channel, size_t length);

  bool started_in_thinking_;
  State state_ = State::opening;
  std::string pending_;  // received, not yet emitted
};

}  // namespace r1
