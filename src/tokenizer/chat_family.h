// Which DeepSeek chat format a tokenizer_config.json chat_template implements, told from
// the text of the template (r1 renders the formats natively instead of running Jinja).
#pragma once

#include <string_view>

namespace r1 {

enum class ChatFamily {
  deepseek_r1,  // last system message wins, earlier reasoning dropped, prompt opens <think>
  deepseek_v3,  // system messages joined by a blank line, no reasoning handling
};

const char* chat_family_name(ChatFamily family);

struct ChatFamilyMatch {
  ChatFamily family;
  bool exact;  // every marker of the family present and none of the other's
};

// The family whose markers the template shows best (R1 on a tie).
ChatFamilyMatch detect_chat_family(std::string_view chat_template);

}  // namespace r1
