// r1 gen-model: the checkpoint it writes loads and runs (same logits on every path), is the same
// for the same seed, and bad options fail cleanly.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include <filesystem>
#include <fstream>

#include "cpu/cpu_backend.h"
#include "engine/score.h"
#include "model/model.h"
#include "run_command.h"
#include "temp_files.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

TEST(GenModel, TinyPresetLoadsAndRuns) {
  TempDir tmp;
  const fs::path dir = tmp.path / "m";
  CommandResult r = run_command(fmt::format("{} gen-model --preset tiny --out {} --layers 2", R1_BINARY, dir.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* file : {"config.json", "generation_config.json", "model.safetensors.index.json",
                           "model-00001-of-00001.safetensors"})
    EXPECT_TRUE(fs::exists(dir / file)) << file;

  auto model = Model::load(dir.string());  // binds every tensor against the config: layout is complete
  EXPECT_EQ(model->config.num_hidden_layers, 2);
  EXPECT_EQ(model->config.fp8_block_size, 128);
  const TensorView& w = model->checkpoint->get("model.layers.1.mlp.experts.0.gate_proj.weight");
  EXPECT_EQ(w.dtype, DType::F8_E4M3);
  for (size_t i = 0; i < w.bytes; ++i) ASSERT_NE(w.data[i] & 0x7F, 0x7F) << "NaN code at byte " << i;

  CpuBackend backend(model->config, model->weights, 2);
  const std::vector<int> tokens = {1, 50, 700, 3, 2047, 9};
  std::vector<float> prefill = teacher_forced_logits(backend, model->config, tokens, 0);
  std::vector<float> decode = teacher_forced_logits(backend, model->config, tokens, 1);
  double sum_sq = 0, max_diff = 0;
  for (size_t i = 0; i < prefill.size(); ++i) {
    ASSERT_TRUE(std::isfinite(prefill[i]));
    sum_sq += double(prefill[i]) * prefill[i];
    max_diff = std::max(max_diff, double(std::fabs(prefill[i] - decode[i])));
  }
  const double rms = std::sqrt(sum_sq / double(prefill.size()));
  EXPECT_GT(rms, 0.1);  // not degenerate
  EXPECT_LT(max_diff, 1e-4 * rms);
}

TEST(GenModel, SameSeedSameBytes) {
  TempDir tmp;
  for (const char* name : {"a", "b"}) {
    CommandResult r = run_command(fmt::format("{} gen-model --preset tiny --layers 1 --seed 7 --out {}", R1_BINARY,
                                              (tmp.path / name).string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  EXPECT_EQ(read_file(tmp.path / "a/model-00001-of-00001.safetensors"), read_file(tmp.path / "b/model-00001-of-00001.safetensors"));
}

TEST(GenModel, BadOptions) {
  TempDir tmp;
  CommandResult r = run_command(fmt::format("{} gen-model --preset r2 --out {}", R1_BINARY, (tmp.path / "x").string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--preset: unknown preset 'r2'"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp.path / "x"));
  std::ofstream(tmp.path / "occupied");
  r = run_command(fmt::format("{} gen-model --preset tiny --out {}", R1_BINARY, tmp.path.string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("not an empty directory"), std::string::npos) << r.output;
  r = run_command(fmt::format("{} gen-model --preset tiny --out {} --layers 0", R1_BINARY, (tmp.path / "y").string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--layers"), std::string::npos) << r.output;
  // tiny routes top-4 over 2 of 4 groups: 6 experts are not whole groups
  r = run_command(fmt::format("{} gen-model --preset tiny --out {} --experts 6", R1_BINARY, (tmp.path / "z").string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--experts 6"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp.path / "z"));
}

// --experts keeps a preset's shapes with fewer routed experts (a small MoE slice for benchmarks).
TEST(GenModel, FewerExperts) {
  TempDir tmp;
  const fs::path dir = tmp.path / "m";
  CommandResult r = run_command(
      fmt::format("{} gen-model --preset tiny --out {} --layers 2 --experts 8", R1_BINARY, dir.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto model = Model::load(dir.string());
  EXPECT_EQ(model->config.routing.n_routed_experts, 8);
  EXPECT_EQ(model->weights.layers[1].experts.size(), 8u);
  CpuBackend backend(model->config, model->weights, 2);
  const std::vector<float> logits = teacher_forced_logits(backend, model->config, {1, 2, 3}, 0);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace r1
