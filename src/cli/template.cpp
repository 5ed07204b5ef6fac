// r1 template: prints the chat prompt a conversation renders to, exactly, with nothing added.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "io/json_file.h"
#include "tokenizer/chat_template.h"

namespace r1 {

namespace {

struct TemplateOptions {
  std::string tokenizer;
  std::string messages;
  bool add_generation_prompt = false;
};

std::vector<ChatMessage> read_messages(const std::string& path) {
  try {
    return parse_chat_messages(read_json(path));
  } catch (const Error& e) {
    const std::string what = e.what();
    // read_json's errors start with the path already; the parser's do not.
    fail("--messages {}", what.rfind(path, 0) == 0 ? what : path + ": " + what);
  }
}

int run_template(const TemplateOptions& o) {
  const ChatTemplate chat = ChatTemplate::load(o.tokenizer);
  const std::vector<ChatMessage> messages = read_messages(o.messages);
  if (!chat.warning().empty()) fmt::print(stderr, "r1: warning: {}\n", chat.warning());
  const std::string prompt = chat.render(messages, o.add_generation_prompt);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  return 0;
}

}  // namespace

Command add_template_command(CLI::App& app) {
  auto options = std::make_shared<TemplateOptions>();
  CLI::App* cmd = app.add_subcommand("template", "print the chat prompt a conversation renders to");
  cmd->add_option("--tokenizer", options->tokenizer, "directory holding tokenizer_config.json")->required();
  cmd->add_option("--messages", options->messages, "JSON file: [{\"role\", \"content\"}, ...]")->required();
  cmd->add_flag("--add-generation-prompt", options->add_generation_prompt,
                "end with the opening of the assistant's turn");
  return [options] { return run_template(*options); };
}

}  // namespace r1
