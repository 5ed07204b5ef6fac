#include "tokenizer/chat_family.h"

#include <array>

namespace r1 {

namespace {

// Markers are the template fragments that produce each rule of a format.
constexpr std::array<std::string_view, 4> kCommon = {"<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>",
                                                     "bos_token"};
constexpr std::array<std::string_view, 3> kR1 = {
    "ns.system_prompt = message['content']",  // the last system message wins
    "split('</think>')",                      // earlier reasoning is dropped
    "<｜Assistant｜><think>",                 // the generation prompt opens the reasoning
};
constexpr std::array<std::string_view, 1> kV3 = {
    "ns.system_prompt = ns.system_prompt +",  // system messages are joined
};

template <size_t N>
int count_present(std::string_view text, const std::array<std::string_view, N>& markers) {
  int n = 0;
  for (std::string_view m : markers) n += text.find(m) != std::string_view::npos;
  return n;
}

}  // namespace

const char* chat_family_name(ChatFamily family) {
  return family == ChatFamily::deepseek_r1 ? "DeepSeek-R1" : "DeepSeek-V3";
}

ChatFamilyMatch detect_chat_family(std::string_view chat_template) {
  const int common = count_present(chat_template, kCommon);
  const int r1 = count_present(chat_template, kR1);
  const int v3 = count_present(chat_template, kV3);
  const bool all_common = common == int(kCommon.size());
  if (all_common && r1 == int(kR1.size()) && v3 == 0) return {ChatFamily::deepseek_r1, true};
  if (all_common && v3 == int(kV3.size()) && r1 == 0) return {ChatFamily::deepseek_v3, true};
  // Closest: the share of each family's own markers present, less the other's.
  const double r1_score = double(r1) / kR1.size() - double(v3) / kV3.size();
  const double v3_score = double(v3) / kV3.size() - double(r1) / kR1.size();
  return {v3_score > r1_score ? ChatFamily::deepseek_v3 : ChatFamily::deepseek_r1, false};
}

}  // namespace r1
