// The committed demo model (models/r1-demo): the engine reproduces the logits its trainer computed
// on the exported weights (trainer_logits.safetensors, written by tools/export_demo_model.py)
// within 1e-3 x std, on the prefill and the decode path; and through the CLI, with no --model
// (the demo model is the default), it reasons and answers arithmetic correctly.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "demo_problems.h"
#include "engine/score.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "pty_session.h"
#include "run_command.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;


template <typename T>
std::vector<T> values(const TensorView& t) {
  std::vector<T> out(size_t(t.numel()));
  std::memcpy(out.data(), t.data, t.bytes);
  return out;
}

TEST(DemoModel, EngineMatchesTrainerLogits) {
  const fs::path ref_path = kDemoModel / "trainer_logits.safetensors";
  ASSERT_TRUE(fs::exists(kDemoModel / "config.json") && fs::exists(ref_path))
      << "the committed demo model is missing from " << kDemoModel.string();

  auto model = Model::load(kDemoModel.string());
  CpuBackend backend(model->config, model->weights, 2);
  SafetensorsFile refs(ref_path.string());
  const auto& tensors = refs.tensors();
  const std::vector<int32_t> vocab_ids = values<int32_t>(tensors.at("vocab_ids"));
  const int vocab = model->config.vocab_size;

  int checked = 0;
  for (int i = 0; tensors.count("tokens_" + std::to_string(i)); ++i, ++checked) {
    const std::vector<int32_t> ids = values<int32_t>(tensors.at("tokens_" + std::to_string(i)));
    const std::vector<float> expected = values<float>(tensors.at("logits_" + std::to_string(i)));
    const size_t T = ids.size(), U = vocab_ids.size();
    ASSERT_EQ(expected.size(), T * U);
    double sum = 0, sum_sq = 0;
    for (float v : expected) sum += v, sum_sq += double(v) * v;
    const double mean = sum / double(expected.size());
    const double std_dev = std::sqrt(sum_sq / double(expected.size()) - mean * mean);
    ASSERT_GT(std_dev, 0.0);

    const std::vector<int> tokens(ids.begin(), ids.end());
    for (int chunk : {0, 1}) {  // prefill, then the decode path one token at a time
      const std::vector<float> logits = teacher_forced_logits(backend, model->config, tokens, chunk);
      ASSERT_EQ(logits.size(), T * size_t(vocab));
      double worst = 0, worst_unused = 0;
      std::vector<bool> used(size_t(vocab), false);
      for (int32_t id : vocab_ids) used[size_t(id)] = true;
      for (size_t t = 0; t < T; ++t) {
        const float* row = logits.data() + t * size_t(vocab);
        for (size_t u = 0; u < U; ++u)
          worst = std::max(worst, double(std::fabs(row[vocab_ids[u]] - expected[t * U + u])));
        for (int v = 0; v < vocab; ++v)
          if (!used[size_t(v)]) worst_unused = std::max(worst_unused, double(std::fabs(row[v])));
      }
      EXPECT_LE(worst, 1e-3 * std_dev) << "sequence " << i << ", chunk " << chunk << ": max |diff| " << worst
                                       << ", std " << std_dev;
      EXPECT_EQ(worst_unused, 0.0) << "rows the task never uses must give logit 0";
    }
  }
  EXPECT_GT(checked, 0) << "no tokens_0 in " << ref_path.string();
}


TEST(DemoModel, RunJsonReasonsAndAnswers) {
  const CommandResult r = run_command(fmt::format("{} run --json -p 'What is 123 + 456?' 2>/dev/null", R1_BINARY));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_FALSE(j.at("reasoning").get<std::string>().empty()) << r.output;
  EXPECT_NE(j.at("content").get<std::string>().find("\\boxed{579}"), std::string::npos) << r.output;
  EXPECT_EQ(j.at("finish_reason"), "stop");
}

// Fresh problems of the three families through the engine, greedy: the committed model scored
// 99% on 300 such problems (models/r1-demo/README.md); 40 must stay at or above 90%.
TEST(DemoModel, SolvesFreshArithmeticThroughBench) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("r1_demo_{}", getpid());
  fs::create_directories(dir);
  write_demo_problems((dir / "problems.jsonl").string(), 40, 20261123);
  const auto [correct, total] =
      bench_problems("", (dir / "problems.jsonl").string(), (dir / "results.jsonl").string(), 8);
  fs::remove_all(dir);
  std::printf("  demo model: %d/%d correct\n", correct, total);
  EXPECT_EQ(total, 40);
  EXPECT_GE(correct, 36);
}

// The chat in a terminal: the reasoning streams dimmed, then the boxed answer, then /exit.
TEST(DemoModel, ChatShowsDimmedReasoningThenTheAnswer) {
  PtySession chat(fmt::format("{} chat --temperature 0", R1_BINARY));
  ASSERT_TRUE(chat.started());
  chat.wait_for("> ");
  chat.type("What is 25 + 17?\r");
  const std::string& seen = chat.wait_for("tok/s");
  const size_t thinking = seen.find("\x1b[2m[thinking]"), answer = seen.find("\\boxed{42}");
  ASSERT_NE(thinking, std::string::npos) << seen;
  ASSERT_NE(answer, std::string::npos) << seen;
  EXPECT_LT(thinking, answer);
  EXPECT_NE(seen.find("5+7+0 = 12"), std::string::npos) << "the column sums are part of the reasoning: " << seen;
  chat.wait_for("> ", seen.find("tok/s"));
  chat.type("/exit\r");
  EXPECT_EQ(chat.exit_status(), 0);
}

}  // namespace
}  // namespace r1
