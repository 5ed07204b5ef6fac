// The CPU forward pass against DeepSeek's reference logits (tests/data/golden, copied from
// shared/golden): every prompt, through prefill and the decode path, within 1e-3 × std.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>

#include "cpu/cpu_backend.h"
#include "engine/score.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace r1 {
namespace {

struct GoldenCase {
  std::string model;
  int chunk;  // 0 = the whole prompt in one forward call
};

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, LogitsMatchReference) {
  const std::string dir = std::string(R1_TEST_DATA) + "/golden/" + GetParam().model;
  auto model = Model::load(dir);
  CpuBackend backend(model->config, model->weights, 2);
  SafetensorsFile golden(dir + "/golden.safetensors");
  const int vocab = model->config.vocab_size;

  int prompts = 0;
  for (int i = 0;; ++i) {
    auto tok = golden.tensors().find(fmt::format("tokens_{}", i));
    if (tok == golden.tensors().end()) break;
    const TensorView& ref = golden.tensors().at(fmt::format("logits_{}", i));
    const int* ids = reinterpret_cast<const int*>(tok->second.data);
    std::vector<int> tokens(ids, ids + tok->second.numel());
    ASSERT_EQ(ref.shape, (std::vector<int64_t>{int64_t(tokens.size()), vocab}));
    const float* expected = reinterpret_cast<const float*>(ref.data);

    std::vector<float> logits = teacher_forced_logits(backend, model->config, tokens, GetParam().chunk);
    double worst_ratio = 0;
    for (size_t t = 0; t < tokens.size(); ++t) {
      const float* e = expected + t * vocab;
      double mean = 0, var = 0, max_diff = 0;
      for (int v = 0; v < vocab; ++v) mean += e[v];
      mean /= vocab;
      for (int v = 0; v < vocab; ++v) var += (e[v] - mean) * (e[v] - mean);
      const double std_dev = std::sqrt(var / vocab);
      for (int v = 0; v < vocab; ++v) max_diff = std::max(max_diff, double(std::fabs(logits[t * vocab + v] - e[v])));
      ASSERT_FALSE(std::isnan(max_diff));
      EXPECT_LE(max_diff, 1e-3 * std_dev) << "prompt " << i << " position " << t;
      worst_ratio = std::max(worst_ratio, max_diff / std_dev);
    }
    std::printf("  prompt %d (%zu tokens): worst max|diff|/std = %.2e\n", i, tokens.size(), worst_ratio);
    ++prompts;
  }
  EXPECT_EQ(prompts, 4);
}

INSTANTIATE_TEST_SUITE_P(AllPaths, Golden,
                         ::testing::Values(GoldenCase{"tiny-v3", 0}, GoldenCase{"tiny-v3", 1},
                                           GoldenCase{"tiny-v3", 5}, GoldenCase{"tiny-v3-fp8", 0},
                                           GoldenCase{"tiny-v3-fp8", 1}, GoldenCase{"tiny-v3-fp8", 5}),
                         [](const auto& info) {
                           std::string name = info.param.model + "_chunk" + std::to_string(info.param.chunk);
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace r1
