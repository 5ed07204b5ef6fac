#include "tokenizer/chat_template.h"

#include <filesystem>

#include "common/error.h"
#include "io/json_file.h"

namespace r1 {

namespace {

using json = nlohmann::json;

std::string string_field(const json& m, const char* key, size_t index) {
  if (!m.contains(key) || !m[key].is_string()) fail("messages[{}]: \"{}\" must be a string", index, key);
  return m[key].get<std::string>();
}

ToolCall parse_tool_call(const json& call, size_t index) {
  if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
    fail("messages[{}]: each tool call needs a \"function\" object", index);
  const json& function = call["function"];
  const json& arguments = function.value("arguments", json(""));
  return {string_field(call, "type", index), string_field(function, "name", index),
          arguments.is_string() ? arguments.get<std::string>() : arguments.dump()};
}

ChatMessage parse_message(const json& m, size_t index) {
  if (!m.is_object()) fail("messages[{}]: not an object", index);
  ChatMessage message{string_field(m, "role", index), std::nullopt, {}};
  if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
    if (!m["tool_calls"].is_array()) fail("messages[{}]: \"tool_calls\" must be an array", index);
    for (const json& call : m["tool_calls"]) message.tool_calls.push_back(parse_tool_call(call, index));
  }
  const bool may_be_null = message.role == "assistant" && !message.tool_calls.empty();
  if (!(may_be_null && (!m.contains("content") || m["content"].is_null())))
    message.content = string_field(m, "content", index);
  return message;
}

std::string read_bos_token(const json& config) {
  const json& bos = config.value("bos_token", json());
  if (bos.is_string()) return bos.get<std::string>();
  if (bos.is_object()) return bos.value("content", "");
  return "";
}

// chat_template is a string, or a list of {"name", "template"} whose "default" entry is used.
std::optional<std::string> read_template_text(const json& config) {
  const json& t = config.value("chat_template", json());
  if (t.is_string()) return t.get<std::string>();
  if (!t.is_array()) return std::nullopt;
  for (const json& entry : t)
    if (entry.is_object() && entry.value("name", "") == "default") return entry.value("template", "");
  return std::nullopt;
}

// The reply of an earlier R1 turn without its reasoning: the text after the last </think>.
std::string without_reasoning(const std::string& content) {
  const size_t end = content.rfind("</think>");
  return end == std::string::npos ? content : content.substr(end + std::string_view("</think>").size());
}

std::string system_prompt(const std::vector<ChatMessage>& messages, ChatFamily family) {
  std::string prompt;
  bool first = true;
  for (const ChatMessage& m : messages) {
    if (m.role != "system") continue;
    if (family == ChatFamily::deepseek_r1) {
      prompt = *m.content;
    } else {
      if (!first) prompt += "\n\n";
      prompt += *m.content;
    }
    first = false;
  }
  return prompt;
}

std::string tool_call_text(const ToolCall& call) {
  return "<｜tool▁call▁begin｜>" + call.type + "<｜tool▁sep｜>" + call.name + "\n```json\n" + call.arguments +
         "\n```<｜tool▁call▁end｜>";
}

}  // namespace

std::vector<ChatMessage> parse_chat_messages(const json& j) {
  const json& list = j.is_object() && j.contains("messages") ? j["messages"] : j;
  if (!list.is_array()) fail("messages: expected a JSON array of messages (or {{\"messages\": [...]}})");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < list.size(); ++i) messages.push_back(parse_message(list[i], i));
  return messages;
}

ChatTemplate ChatTemplate::load(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "tokenizer_config.json").string();
  const json config = read_json_object(path);
  const std::optional<std::string> text = read_template_text(config);
  const ChatFamilyMatch match = detect_chat_family(text.value_or(""));
  ChatTemplate t(match.family, read_bos_token(config));
  if (!text)
    t.warning_ = fmt::format("{}: no chat_template; using the {} format", path, chat_family_name(match.family));
  else if (!match.exact)
    t.warning_ = fmt::format("{}: chat_template is not a known DeepSeek format; rendering it as the closest, {}",
                             path, chat_family_name(match.family));
  return t;
}

// Follows DeepSeek's template statement by statement, including its quirks: the first tool
// call of the whole conversation opens the call block and is not closed there; each later
// call closes the block after itself.
std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  std::string out = bos_token_ + system_prompt(messages, family_);
  bool first_call = true, in_tool_outputs = false, first_output = true;
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      in_tool_outputs = false;
      out += "<｜User｜>" + *m.content;
    } else if (m.role == "assistant" && !m.content) {
      in_tool_outputs = false;
      for (const ToolCall& call : m.tool_calls) {
        if (first_call) {
          out += "<｜Assistant｜><｜tool▁calls▁begin｜>" + tool_call_text(call);
          first_call = false;
        } else {
          out += "\n";
          out += tool_call_text(call) + "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>";
        }
      }
    } else if (m.role == "assistant" && in_tool_outputs) {
      out += "<｜tool▁outputs▁end｜>" + *m.content + "<｜end▁of▁sentence｜>";
      in_tool_outputs = false;
    } else if (m.role == "assistant") {
      const std::string reply = family_ == ChatFamily::deepseek_r1 ? without_reasoning(*m.content) : *m.content;
      out += "<｜Assistant｜>" + reply + "<｜end▁of▁sentence｜>";
    } else if (m.role == "tool") {
      in_tool_outputs = true;
      out += first_output ? "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" : "\n<｜tool▁output▁begin｜>";
      out += *m.content + "<｜tool▁output▁end｜>";
      first_output = false;
    }
  }
  if (in_tool_outputs) out += "<｜tool▁outputs▁end｜>";
  if (add_generation_prompt && !in_tool_outputs)
    out += family_ == ChatFamily::deepseek_r1 ? "<｜Assistant｜><think>\n" : "<｜Assistant｜>";
  return out;
}

}  // namespace r1
