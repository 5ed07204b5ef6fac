// The chat formats: every case of template_goldens.jsonl (rendered by real Jinja2 from each
// directory's chat_template) byte for byte, family detection, the fallback for unknown
// templates, tool-call turns and malformed messages.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer_fixtures.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

TEST(ChatTemplate, GoldensAreByteIdentical) {
  std::map<std::string, int> cases, passed;
  for (const json& row : read_jsonl("template_goldens.jsonl")) {
    const std::string name = row["tokenizer"];
    const ChatTemplate t = ChatTemplate::load(tokenizer_dir(name));
    const std::string rendered = t.render(parse_chat_messages(row["messages"]), row["add_generation_prompt"]);
    EXPECT_EQ(rendered, row["rendered"].get<std::string>()) << name << " " << row["messages"].dump();
    ++cases[name];
    passed[name] += rendered == row["rendered"];
  }
  for (const auto& [name, n] : cases) std::printf("  %s: %d/%d templates identical\n", name.c_str(), passed[name], n);
  EXPECT_EQ(cases["deepseek-r1"] + cases["deepseek-v3"], 160);
}

TEST(ChatTemplate, DetectsBothPublishedTemplatesWithoutWarning) {
  const ChatTemplate r1 = ChatTemplate::load(tokenizer_dir("deepseek-r1"));
  const ChatTemplate v3 = ChatTemplate::load(tokenizer_dir("deepseek-v3"));
  EXPECT_EQ(r1.family(), ChatFamily::deepseek_r1);
  EXPECT_EQ(v3.family(), ChatFamily::deepseek_v3);
  EXPECT_EQ(r1.warning(), "");
  EXPECT_EQ(v3.warning(), "");
}

// A directory whose tokenizer_config.json holds `config`.
fs::path config_dir(const json& config) {
  const fs::path dir = fs::temp_directory_path() / ("r1_chat_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << config.dump();
  return dir;
}

TEST(ChatTemplate, UnknownTemplateUsesClosestFamilyAndWarns) {
  // R1's template before the <think> generation prompt was added: closest is R1.
  std::ifstream in(tokenizer_dir("deepseek-r1") + "/tokenizer_config.json");
  json config = json::parse(in);
  std::string text = config["chat_template"];
  text.replace(text.find("<｜Assistant｜><think>"), std::string("<｜Assistant｜><think>").size(), "<｜Assistant｜>");
  config["chat_template"] = text;
  ChatTemplate t = ChatTemplate::load(config_dir(config).string());
  EXPECT_EQ(t.family(), ChatFamily::deepseek_r1);
  EXPECT_NE(t.warning().find("not a known DeepSeek format"), std::string::npos) << t.warning();
  EXPECT_NE(t.warning().find("DeepSeek-R1"), std::string::npos) << t.warning();

  // A template that joins system prompts and knows nothing of reasoning: closest is V3.
  config["chat_template"] = "{% set ns.system_prompt = ns.system_prompt + m %}{{ '<|user|>' }}";
  t = ChatTemplate::load(config_dir(config).string());
  EXPECT_EQ(t.family(), ChatFamily::deepseek_v3);
  EXPECT_NE(t.warning().find("DeepSeek-V3"), std::string::npos) << t.warning();

  config.erase("chat_template");
  t = ChatTemplate::load(config_dir(config).string());
  EXPECT_NE(t.warning().find("no chat_template"), std::string::npos) << t.warning();
  fs::remove_all(config_dir(config));
}

TEST(ChatTemplate, BosTokenAsPlainString) {
  const fs::path dir = config_dir({{"bos_token", "<s>"}, {"chat_template", "x"}});
  EXPECT_EQ(ChatTemplate::load(dir.string()).render({{"user", "hi", {}}}, false), "<s><｜User｜>hi");
  fs::remove_all(dir);
}

// Expected strings as Jinja2 3.1 renders DeepSeek-R1's published template for these messages.
TEST(ChatTemplate, ToolCallsAndOutputs) {
  const json messages = json::parse(R"([
    {"role": "user", "content": "weather?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Paris\"}"}},
      {"type": "function", "function": {"name": "get", "arguments": {"city": "Rome"}}}]},
    {"role": "tool", "content": "18C"},
    {"role": "tool", "content": "25C"},
    {"role": "assistant", "content": "<think>x</think>Paris 18, Rome 25."}
  ])");
  const std::string expected =
      "<B><｜User｜>weather?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get\n"
      "```json\n{\"city\":\"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get\n"
      "```json\n{\"city\":\"Rome\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
      "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>18C<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>25C"
      "<｜tool▁output▁end｜><｜tool▁outputs▁end｜><think>x</think>Paris 18, Rome 25.<｜end▁of▁sentence｜>";
  const ChatTemplate r1(ChatFamily::deepseek_r1, "<B>");
  EXPECT_EQ(r1.render(parse_chat_messages(messages), true), expected + "<｜Assistant｜><think>\n");

  // Ending on tool outputs closes them and adds no generation prompt.
  const json pending = json::array({messages[0], messages[1], messages[2]});
  const std::string rendered = r1.render(parse_chat_messages(pending), true);
  EXPECT_TRUE(rendered.ends_with("18C<｜tool▁output▁end｜><｜tool▁outputs▁end｜>")) << rendered;
}

TEST(ChatTemplate, ReasoningDroppedOnlyByR1) {
  const auto messages = parse_chat_messages(json::parse(R"({"messages": [
    {"role": "system", "content": "A"}, {"role": "system", "content": "B"},
    {"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>r</think>one</think>two"}]})"));
  EXPECT_EQ(ChatTemplate(ChatFamily::deepseek_r1, "").render(messages, true),
            "B<｜User｜>q<｜Assistant｜>two<｜end▁of▁sentence｜><｜Assistant｜><think>\n");
  EXPECT_EQ(ChatTemplate(ChatFamily::deepseek_v3, "").render(messages, true),
            "A\n\nB<｜User｜>q<｜Assistant｜><think>r</think>one</think>two<｜end▁of▁sentence｜><｜Assistant｜>");
}

TEST(ChatTemplate, MalformedMessagesNameTheMessage) {
  auto error_of = [](const char* text) {
    try {
      parse_chat_messages(json::parse(text));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(R"([{"role": "user"}])"), "messages[0]: \"content\" must be a string");
  EXPECT_EQ(error_of(R"([{"role": "user", "content": "a"}, {"content": "b"}])"),
            "messages[1]: \"role\" must be a string");
  EXPECT_EQ(error_of(R"([{"role": "assistant", "content": null}])"), "messages[0]: \"content\" must be a string");
  EXPECT_NE(error_of(R"({"role": "user"})").find("expected a JSON array"), std::string::npos);
  EXPECT_EQ(error_of(R"([3])"), "messages[0]: not an object");
}

}  // namespace
}  // namespace r1
