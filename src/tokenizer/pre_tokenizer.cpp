#include "tokenizer/pre_tokenizer.h"

#include "common/error.h"

namespace r1 {

namespace {

using json = nlohmann::json;

// The split ByteLevel applies when its use_regex is true (GPT-2's pattern).
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

SplitBehavior parse_behavior(const std::string& name) {
  if (name == "Isolated") return SplitBehavior::isolated;
  if (name == "Removed") return SplitBehavior::removed;
  if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
  fail("pre_tokenizer: Split behavior '{}' is not supported", name);
}

SplitStep parse_split(const json& config) {
  if (config.value("invert", false)) fail("pre_tokenizer: Split with invert=true is not supported");
  const json& pattern = config.at("pattern");
  const SplitBehavior behavior = parse_behavior(config.at("behavior").get<std::string>());
  if (pattern.contains("Regex")) return {Regex(pattern["Regex"].get<std::string>()), behavior};
  if (pattern.contains("String")) return {Regex(pattern["String"].get<std::string>(), true), behavior};
  fail("pre_tokenizer: Split pattern must be {{\"Regex\": ...}} or {{\"String\": ...}}");
}

// Cuts one piece at the matches of `step`, passing each resulting piece to `emit_piece`.
template <typename Emit>
void split_piece(const SplitStep& step, std::string_view piece, Emit&& emit_piece) {
  size_t gap_begin = 0;       // start of the text not yet emitted
  size_t pending_begin = 0;   // MergedWithNext: a match waiting to be joined to the next gap
  bool pending = false;
  auto emit = [&](size_t b, size_t e) {
    if (e > b) emit_piece(piece.substr(b, e - b));
  };
  Match m;
  for (size_t from = 0; from < piece.size() && step.regex.find(piece, from, m);) {
    if (m.end == m.begin) {  // empty matches do not cut
      from = m.end + 1;
      continue;
    }
    switch (step.behavior) {
      case SplitBehavior::isolated: emit(gap_begin, m.begin), emit(m.begin, m.end); break;
      case SplitBehavior::removed: emit(gap_begin, m.begin); break;
      case SplitBehavior::merged_with_previous: emit(gap_begin, m.end); break;
      case SplitBehavior::merged_with_next:
        emit(pending ? pending_begin : gap_begin, m.begin);
        pending_begin = m.begin, pending = true;
        break;
    }
    gap_begin = from = m.end;
  }
  emit(pending ? pending_begin : gap_begin, piece.size());
}

}  // namespace

PreTokenizer::PreTokenizer(const json& config) {
  if (!config.is_null()) add(config);
}

void PreTokenizer::add(const json& config) {
  const std::string type = config.value("type", "");
  if (type == "Sequence") {
    for (const json& step : config.at("pretokenizers")) add(step);
  } else if (type == "Split") {
    steps_.push_back(parse_split(config));
  } else if (type == "ByteLevel") {
    // The byte-to-character mapping itself is implicit: r1 tokenizes raw bytes.
    if (config.value("add_prefix_space", false))
      fail("pre_tokenizer: ByteLevel with add_prefix_space=true is not supported");
    if (config.value("use_regex", true)) steps_.push_back({Regex(kGpt2Pattern), SplitBehavior::isolated});
  } else {
    fail("pre_tokenizer: type '{}' is not supported", type);
  }
}

void PreTokenizer::split(std::string_view text, const PieceFn& on_piece) const {
  if (!text.empty()) split_from(0, text, on_piece);
}

void PreTokenizer::split_from(size_t step, std::string_view text, const PieceFn& on_piece) const {
  if (step == steps_.size()) return on_piece(text);
  split_piece(steps_[step], text, [&](std::string_view piece) { split_from(step + 1, piece, on_piece); });
}

}  // namespace r1
