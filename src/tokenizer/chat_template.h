// The DeepSeek chat formats, rendered natively and byte-identical to the Jinja templates
// DeepSeek publishes in tokenizer_config.json (including the tool-call turns):
//   <｜begin▁of▁sentence｜>{system}<｜User｜>{user}<｜Assistant｜>{answer}<｜end▁of▁sentence｜>...
// R1 replays earlier assistant turns without their reasoning (only the text after the last
// </think>) and opens the generation prompt with "<think>\n"; V3 does neither and joins
// several system messages with a blank line where R1 keeps only the last.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "tokenizer/chat_family.h"

namespace r1 {

struct ToolCall {
  std::string type, name, arguments;
};

struct ChatMessage {
  std::string role;                    // system | user | assistant | tool (others are skipped, as Jinja does)
  std::optional<std::string> content;  // null only for an assistant turn that calls tools
  std::vector<ToolCall> tool_calls;
};

// Messages from JSON: an array of {"role", "content", "tool_calls"?} or {"messages": [...]}.
// Fails (r1::Error, naming the message) on a malformed one.
std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& j);

class ChatTemplate {
 public:
  ChatTemplate(ChatFamily family, std::string bos_token) : family_(family), bos_token_(std::move(bos_token)) {}

  // Reads DIR/tokenizer_config.json (chat_template, bos_token). A template of no known family
  // is rendered by the closest one, and warning() says so.
  static ChatTemplate load(const std::string& dir);

  ChatFamily family() const { return family_; }
  const std::string& warning() const { return warning_; }

  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

 private:
  ChatFamily family_;
  std::string bos_token_;
  std::string warning_;
};

}  // namespace r1
