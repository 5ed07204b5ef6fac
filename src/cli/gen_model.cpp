// r1 gen-model: a random checkpoint in the exact Hugging Face layout, for benchmarks.
#include <memory>

#include "cli/commands.h"
#include "cpu/thread_pool.h"
#include "model/generate.h"

namespace r1 {

Command add_gen_model_command(CLI::App& app) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("gen-model", "write a random FP8 checkpoint with a preset's shapes");
  cmd->add_option("--preset", options->preset, "r1 | v2-lite | tiny")->required();
  cmd->add_option("--out", options->out_dir, "output directory (new or empty)")->required();
  cmd->add_option("--layers", options->layers, "number of layers (default: the preset's)")->check(CLI::PositiveNumber);
  cmd->add_option("--vocab", options->vocab, "vocabulary rows (default: the preset's)")->check(CLI::PositiveNumber);
  cmd->add_option("--experts", options->experts, "routed experts per MoE layer (default: the preset's)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", options->seed, "random seed");
  return [options] {
    ThreadPool pool(0);
    generate_model(*options, pool);
    return 0;
  };
}

}  // namespace r1
