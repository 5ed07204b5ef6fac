// Each r1 subcommand registers its flags on the CLI11 app and returns what to run once parsed.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace r1 {

using Command = std::function<int()>;

Command add_score_command(CLI::App& app);
Command add_gen_model_command(CLI::App& app);
Command add_tokenize_command(CLI::App& app);
Command add_template_command(CLI::App& app);
Command add_grade_command(CLI::App& app);
Command add_run_command(CLI::App& app);
Command add_chat_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_plan_command(CLI::App& app);

// The model used without --model: $R1_MODEL when set, else the embedded demo model, models/r1-demo,
// found beside the build directory of the running binary (build/r1 -> models/) or, for a binary
// built elsewhere, in the source tree it was built from.
std::string default_model_dir();

}  // namespace r1
