// r1: the command-line program. Every user-caused error ends as one line on stderr and exit 1.
#include <fmt/format.h>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
  CLI::App app{"r1: inference engine for DeepSeek-R1 and the DeepSeek MLA + MoE family"};
  app.require_subcommand(1);
  r1::Command score = r1::add_score_command(app);
  r1::Command gen_model = r1::add_gen_model_command(app);
  r1::Command tokenize = r1::add_tokenize_command(app);
  r1::Command chat_template = r1::add_template_command(app);
  r1::Command grade = r1::add_grade_command(app);
  r1::Command run = r1::add_run_command(app);
  r1::Command chat = r1::add_chat_command(app);
  r1::Command bench = r1::add_bench_command(app);
  r1::Command plan = r1::add_plan_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (CLI::App* sub : app.get_subcommands()) {
      if (sub->get_name() == "score") return score();
      if (sub->get_name() == "gen-model") return gen_model();
      if (sub->get_name() == "tokenize") return tokenize();
      if (sub->get_name() == "template") return chat_template();
      if (sub->get_name() == "grade") return grade();
      if (sub->get_name() == "run") return run();
      if (sub->get_name() == "chat") return chat();
      if (sub->get_name() == "bench") return bench();
      if (sub->get_name() == "plan") return plan();
    }
  } catch (const r1::Error& e) {
    fmt::print(stderr, "r1: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "r1: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "r1: internal error: {}\n", e.what());
    return 2;
  }
  return 1;
}
