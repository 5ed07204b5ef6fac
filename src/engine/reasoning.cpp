#include "engine/reasoning.h"

namespace r1 {

namespace {

constexpr std::string_view kOpen = "<think>", kClose = "</think>";

// Length of the longest end of `text` that is the beginning of `tag` (but not all of it).
size_t partial_tag_at_end(std::string_view text, std::string_view tag) {
  for (size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n)
    if (text.ends_with(tag.substr(0, n))) return n;
  return 0;
}

}  // namespace

std::vector<Segment> ReasoningSplitter::feed(std::string_view piece) {
  pending_ += piece;
  return run(false);
}

std::vector<Segment> ReasoningSplitter::finish() { return run(true); }

bool ReasoningSplitter::in_reasoning() const {
  return state_ == State::after_open || state_ == State::reasoning ||
         (state_ == State::opening && started_in_thinking_);
}

std::vector<Segment> ReasoningSplitter::run(bool final) {
  std::vector<Segment> out;
  while (step(out, final)) {
  }
  return out;
}

void ReasoningSplitter::emit(std::vector<Segment>& out, Channel channel, size_t length) {
  if (length == 0) return;
  if (!out.empty() && out.back().channel == channel)
    out.back().text.append(pending_, 0, length);
  else
    out.push_back({channel, pending_.substr(0, length)});
  pending_.erase(0, length);
}

bool ReasoningSplitter::step(std::vector<Segment>& out, bool final) {
  switch (state_) {
    case State::opening: {  // does the output begin (after blank space) with <think>?
      const size_t text = pending_.find_first_not_of(" \t\r\n");
      const std::string_view rest = text == std::string::npos ? "" : std::string_view(pending_).substr(text);
      if (rest.starts_with(kOpen)) {
        pending_.erase(0, text + kOpen.size());
        state_ = State::after_open;
        return true;
      }
      if (!final && kOpen.starts_with(rest)) return false;  // "", "<", "<thi", ...: wait and see
      state_ = started_in_thinking_ ? State::after_open : State::answer;
      return true;
    }
    case State::after_open:
    case State::after_close: {  // drop the newlines that conventionally follow a tag
      const size_t text = pending_.find_first_not_of("\r\n");
      pending_.erase(0, text == std::string::npos ? pending_.size() : text);
      if (text == std::string::npos) return false;
      state_ = state_ == State::after_open ? State::reasoning : State::answer;
      return true;
    }
    case State::reasoning: {
      const size_t close = pending_.find(kClose);
      if (close != std::string::npos) {
        emit(out, Channel::reasoning, close);
        pending_.erase(0, kClose.size());
        state_ = State::after_close;
        return true;
      }
      const size_t held = final ? 0 : partial_tag_at_end(pending_, kClose);
      emit(out, Channel::reasoning, pending_.size() - held);
      return false;
    }
    case State::answer:
      emit(out, Channel::answer, pending_.size());
      return false;
  }
  return false;
}

}  // namespace r1
