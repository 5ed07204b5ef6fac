// The CUDA backend's fast numerics, judged where they can be judged (issue 11): the tiny random
// golden checkpoints are chaotic under any rounding, so the trained demo model is the yardstick.
// Teacher-forced logits on its trainer's sequences keep cosine >= 0.995 with the CPU's exact
// logits at every position (prefill and decode path), and greedy accuracy on 300 fresh problems
// stays within 1 point of the CPU's exact numerics.
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "cpu/cpu_backend.h"
#include "cuda_test_util.h"
#include "demo_problems.h"
#include "engine/score.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "run_command.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

// Worst per-position cosine between the GPU's fast logits and the CPU's exact ones over the
// trainer's sequences, fed `chunk` tokens per forward call.
double worst_cosine_against_cpu_exact(int chunk) {
  auto model = Model::load(kDemoModel.string());
  CpuBackend cpu(model->config, model->weights, 0);
  auto gpu = make_cuda_backend(model->config, model->weights, Numerics::fast);
  SafetensorsFile refs((kDemoModel / "trainer_logits.safetensors").string());
  const int vocab = model->config.vocab_size;
  double worst = 1;
  int checked = 0;
  for (int i = 0; refs.tensors().count(fmt::format("tokens_{}", i)); ++i, ++checked) {
    const TensorView& t = refs.tensors().at(fmt::format("tokens_{}", i));
    std::vector<int> tokens(size_t(t.numel()));
    std::memcpy(tokens.data(), t.data, t.bytes);
    const std::vector<float> exact = teacher_forced_logits(cpu, model->config, tokens, 0);
    const std::vector<float> fast = teacher_forced_logits(*gpu, model->config, tokens, chunk);
    double sequence_worst = 1;
    for (size_t p = 0; p < tokens.size(); ++p)
      sequence_worst = std::min(sequence_worst, cosine(fast.data() + p * vocab, exact.data() + p * vocab, vocab));
    std::printf("  sequence %d (%zu tokens), chunk %d: worst cosine %.6f\n", i, tokens.size(), chunk, sequence_worst);
    worst = std::min(worst, sequence_worst);
  }
  EXPECT_GT(checked, 0);
  return worst;
}

// One token per call: the decode path (weight-streaming GEMV on float32 activations, BF16
// latent cache, tensor-core attention).
TEST(CudaFast, DemoModelDecodeLogitsFollowCpuExact) {
  R1_REQUIRE_GPU();
  EXPECT_GE(worst_cosine_against_cpu_exact(1), 0.995);
}

// Whole sequences per call: the prefill path, whose projections take FP8 activations (1x128
// blocks) through the FP8 GEMM. The demo model was trained without FP8 in the loop (unlike R1),
// and this is where it loses most (issue 11's bar, not met on 2026-11-23: worst 0.916; the torch
// port with the same rounding, tools/fp8_activation_drift.py, gets 0.914: the model's drift).
TEST(CudaFast, DemoModelPrefillLogitsFollowCpuExact) {
  R1_REQUIRE_GPU();
  EXPECT_GE(worst_cosine_against_cpu_exact(0), 0.995);
}

TEST(CudaFast, DemoModelAccuracyWithinOnePointOfCpuExact) {
  R1_REQUIRE_GPU();
  const fs::path dir = fs::temp_directory_path() / fmt::format("r1_fast_{}", getpid());
  fs::create_directories(dir);
  const std::string problems = (dir / "problems.jsonl").string();
  write_demo_problems(problems, 300, 20261124);
  BenchScore scores[2];
  const char* modes[2] = {"--device cpu --numerics exact", "--device cuda --numerics fast"};
  for (int m = 0; m < 2; ++m)
    scores[m] = bench_problems(fmt::format("--model {} {}", kDemoModel.string(), modes[m]), problems,
                               (dir / fmt::format("results{}.jsonl", m)).string(), 32);
  fs::remove_all(dir);
  ASSERT_EQ(scores[0].total, 300);
  ASSERT_EQ(scores[1].total, 300);
  EXPECT_LE(std::abs(scores[0].correct - scores[1].correct), 3);  // 1 point of 300
}

}  // namespace
}  // namespace r1
