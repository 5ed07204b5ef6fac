// r1 chat: an interactive conversation. Tokens stream as they are produced; the reasoning is
// labelled and dimmed (or hidden), the answer in plain text, and a stats line follows each
// answer. Ctrl-C stops the answer in progress and returns to the prompt.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "cli/commands.h"
#include "cli/line_reader.h"
#include "cli/session.h"
#include "common/error.h"

namespace r1 {

namespace {

struct ChatOptions {
  ModelFlags model;
  std::string system;
  bool hide_thinking = false;
};

std::atomic<bool> interrupted{false};

// SIGINT ends the current answer instead of the program while it is installed.
class InterruptGuard {
 public:
  InterruptGuard() {
    interrupted = false;
    struct sigaction action {};
    action.sa_handler = [](int) { interrupted = true; };
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_);
  }
  ~InterruptGuard() { sigaction(SIGINT, &previous_, nullptr); }

 private:
  struct sigaction previous_ {};
};

// Writes the streamed answer; escape codes only when stdout is a terminal.
class ChatPrinter {
 public:
  explicit ChatPrinter(bool hide_thinking) : color_(isatty(STDOUT_FILENO)), hide_thinking_(hide_thinking) {}

  void start() { in_reasoning_ = false; }
  void text(const Segment& s) {
    if (s.channel == Channel::reasoning) {
      if (hide_thinking_) return;
      if (!in_reasoning_) write(color_ ? "\x1b[2m[thinking]\n" : "[thinking]\n");
      in_reasoning_ = true;
    } else if (in_reasoning_) {
      end_reasoning();
      write(color_ ? "\n" : "\n[answer]\n");
    }
    write(s.text);
  }
  void finish(const Generation& g) {
    if (in_reasoning_) end_reasoning();
    if (g.finish == FinishReason::cancelled) write("\n[stopped]");
    write("\n");
    const std::string stats =
        fmt::format("[{} prompt tokens, {} generated, {:.1f} tok/s, TTFT {:.0f} ms, {}]", g.prompt_tokens,
                    g.completion_tokens, g.decode_tok_s(), g.ttft_s * 1e3, finish_reason_name(g.finish));
    write(color_ ? "\x1b[2m" + stats + "\x1b[0m\n" : stats + "\n");
  }
  void set_hide_thinking(bool hide) { hide_thinking_ = hide; }
  void write(std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }

 private:
  void end_reasoning() {
    if (color_) write("\x1b[0m");
    in_reasoning_ = false;
  }
  bool color_, hide_thinking_, in_reasoning_ = false;
};

struct ChatTotals {
  int turns = 0;
  long prompt_tokens = 0, generated = 0;
  double decode_s = 0;
};

class Chat {
 public:
  explicit Chat(const ChatOptions& o)
      : options_(o), session_(o.model, /*need_tokenizer=*/true), engine_(session_.make_engine(1)), printer_(o.hide_thinking) {}

  int loop() {
    LineReader reader;
    if (reader.interactive()) printer_.write("r1 chat: /exit, /clear, /stats, /think on|off; Ctrl-C stops an answer\n");
    while (auto line = reader.read("> ")) {
      if (line->empty()) continue;
      if ((*line)[0] == '/') {
        if (!command(*line)) return 0;
        continue;
      }
      answer(*line);
    }
    return 0;
  }

 private:
  // False when the chat should end.
  bool command(const std::string& line) {
    if (line == "/exit" || line == "/quit") return false;
    if (line == "/clear") {
      history_.clear();
      printer_.write("(conversation cleared)\n");
    } else if (line == "/stats") {
      printer_.write(fmt::format("answers {}, prompt tokens {}, generated {}, {:.1f} tok/s, history {} messages\n",
                                 totals_.turns, totals_.prompt_tokens, totals_.generated,
                                 totals_.decode_s > 0 ? (totals_.generated - totals_.turns) / totals_.decode_s : 0.0,
                                 history_.size()));
    } else if (line == "/think on" || line == "/think off") {
      printer_.set_hide_thinking(line == "/think off");
    } else {
      printer_.write("commands: /exit, /clear, /stats, /think on|off\n");
    }
    return true;
  }

  std::vector<ChatMessage> conversation() const {
    std::vector<ChatMessage> messages;
    if (!options_.system.empty()) messages.push_back({"system", options_.system, {}});
    messages.insert(messages.end(), history_.begin(), history_.end());
    return messages;
  }

  void answer(const std::string& text) {
    history_.push_back({"user", text, {}});
    Request request;
    request.prompt = session_.encode_chat(conversation());
    request.sampling = session_.sampling();
    request.max_tokens = session_.max_tokens();
    request.started_in_thinking = session_.prompt_opens_thinking();
    request.on_text = [this](const Segment& s) { printer_.text(s); };
    Generation result;
    request.on_finish = [&](const Generation& g) { result = g; };
    int id = 0;
    try {
      id = engine_.submit(std::move(request));
    } catch (const Error& e) {  // e.g. the conversation no longer fits: say so, keep chatting
      fmt::print(stderr, "r1: error: {} (try /clear)\n", e.what());
      history_.pop_back();
      return;
    }
    printer_.start();
    {
      InterruptGuard guard;
      while (engine_.step())
        if (interrupted.exchange(false)) engine_.cancel(id);
    }
    printer_.finish(result);
    history_.push_back({"assistant", result.content, {}});
    ++totals_.turns;
    totals_.prompt_tokens += result.prompt_tokens;
    totals_.generated += result.completion_tokens;
    totals_.decode_s += result.decode_s;
  }

  const ChatOptions& options_;
  Session session_;
  Engine engine_;
  ChatPrinter printer_;
  std::vector<ChatMessage> history_;  // user and assistant turns (answers without reasoning)
  ChatTotals totals_;
};

}  // namespace

Command add_chat_command(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "interactive chat that streams the reasoning and the answer");
  cmd->add_option("--system", o->system, "system message");
  cmd->add_flag("--hide-thinking", o->hide_thinking, "do not show the reasoning (/think on shows it again)");
  add_model_flags(cmd, o->model);
  add_sampling_flags(cmd, o->model);
  return [o] {
    Chat chat(*o);
    return chat.loop();
  };
}

}  // namespace r1
