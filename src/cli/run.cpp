// r1 run: one prompt, one answer, for shell scripts. The answer streams to stdout and the
// reasoning to stderr (or nowhere); --json prints one object at the end instead.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/session.h"
#include "common/error.h"

namespace r1 {

namespace {

struct RunOptions {
  ModelFlags model;
  std::string prompt, system;
  bool prompt_given = false, json = false, hide_thinking = false;
};

std::string read_stdin() {
  std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  if (text.ends_with('\n')) text.pop_back();
  return text;
}

double two_decimals(double x) { return std::round(x * 100) / 100; }

nlohmann::json to_json(const Generation& g) {
  return {{"reasoning", g.reasoning},
          {"content", g.content},
          {"finish_reason", finish_reason_name(g.finish)},
          {"usage", {{"prompt_tokens", g.prompt_tokens}, {"completion_tokens", g.completion_tokens}}},
          {"timings", {{"ttft_ms", two_decimals(g.ttft_s * 1e3)}, {"decode_tok_s", two_decimals(g.decode_tok_s())}}}};
}

int run_prompt(const RunOptions& o) {
  const std::string prompt = o.prompt_given ? o.prompt : read_stdin();
  if (prompt.empty()) fail("no prompt: give -p TEXT or text on stdin");
  Session session(o.model, /*need_tokenizer=*/true);
  std::vector<ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system, {}});
  messages.push_back({"user", prompt, {}});

  Request request;
  request.prompt = session.encode_chat(messages);
  request.sampling = session.sampling();
  request.max_tokens = session.max_tokens();
  request.started_in_thinking = session.prompt_opens_thinking();
  Generation result;
  bool reasoning_shown = false;
  if (!o.json)
    request.on_text = [&](const Segment& s) {
      if (s.channel == Channel::answer) {
        std::fwrite(s.text.data(), 1, s.text.size(), stdout);
        std::fflush(stdout);
      } else if (!o.hide_thinking) {
        std::fwrite(s.text.data(), 1, s.text.size(), stderr);
        reasoning_shown = true;
      }
    };
  request.on_finish = [&](const Generation& g) { result = g; };
  Engine engine = session.make_engine(1);
  engine.submit(std::move(request));
  engine.run();

  if (o.json) {
    fmt::print("{}\n", to_json(result).dump());
    return 0;
  }
  if (reasoning_shown && !result.reasoning.ends_with('\n')) std::fputc('\n', stderr);
  if (!result.content.ends_with('\n')) std::fputc('\n', stdout);
  if (result.finish == FinishReason::context)
    fmt::print(stderr, "r1: note: the answer stopped at the context limit ({} positions; raise --context)\n",
               session.context());
  return 0;
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "one prompt, one answer: answer on stdout, reasoning on stderr");
  cmd->add_option("-p,--prompt", o->prompt, "the prompt (default: read stdin)");
  cmd->add_option("--system", o->system, "system message");
  cmd->add_flag("--json", o->json, "print one JSON object: reasoning, content, finish_reason, usage, timings");
  cmd->add_flag("--hide-thinking", o->hide_thinking, "drop the reasoning instead of printing it on stderr");
  add_model_flags(cmd, o->model);
  add_sampling_flags(cmd, o->model);
  return [o, cmd] {
    o->prompt_given = cmd->count("--prompt") > 0;
    return run_prompt(*o);
  };
}

}  // namespace r1
