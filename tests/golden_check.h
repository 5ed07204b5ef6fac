// Checks the CPU engine (whole or sharded) against a model directory's golden.safetensors (`tokens_i` I32 [T],
// `logits_i` F32 [T, vocab]): max|logits − golden| ≤ 1e-3 × std(golden) at every position.
#pragma once

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "dist/distributed_backend.h"
#include "engine/score.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace r1 {

// Feeds every prompt `chunk` tokens per forward call (0 = all at once), prints each prompt's
// worst max|diff|/std, and returns the number of prompts checked. ranks > 1: the CPU engine
// sharded over that many in-process ranks, also compared with the unsharded engine.
inline int check_against_golden(const std::string& dir, int chunk, int ranks = 1) {
  auto model = Model::load(dir);
  CpuBackend whole(model->config, model->weights, 2);
  std::unique_ptr<Backend> sharded;
  if (ranks > 1) sharded = std::make_unique<DistributedBackend>(model->config, model->weights, DistributedOptions{ranks, 2});
  Backend& backend = sharded ? *sharded : whole;
  SafetensorsFile golden(dir + "/golden.safetensors");
  const int vocab = model->config.vocab_size;

  int prompts = 0;
  for (int i = 0;; ++i) {
    auto tok = golden.tensors().find(fmt::format("tokens_{}", i));
    if (tok == golden.tensors().end()) break;
    const TensorView& ref = golden.tensors().at(fmt::format("logits_{}", i));
    const int* ids = reinterpret_cast<const int*>(tok->second.data);
    std::vector<int> tokens(ids, ids + tok->second.numel());
    EXPECT_EQ(ref.shape, (std::vector<int64_t>{int64_t(tokens.size()), vocab}));
    if (ref.shape != std::vector<int64_t>{int64_t(tokens.size()), vocab}) return prompts;
    const float* expected = reinterpret_cast<const float*>(ref.data);

    std::vector<float> logits = teacher_forced_logits(backend, model->config, tokens, chunk);
    std::vector<float> unsharded;
    if (sharded) unsharded = teacher_forced_logits(whole, model->config, tokens, chunk);
    double worst_ratio = 0;
    for (size_t t = 0; t < tokens.size(); ++t) {
      const float* e = expected + t * vocab;
      double mean = 0, var = 0, max_diff = 0;
      for (int v = 0; v < vocab; ++v) mean += e[v];
      mean /= vocab;
      for (int v = 0; v < vocab; ++v) var += (e[v] - mean) * (e[v] - mean);
      const double std_dev = std::sqrt(var / vocab);
      for (int v = 0; v < vocab; ++v)
        max_diff = std::max(max_diff, double(std::fabs(logits[t * vocab + v] - e[v])));
      if (sharded) {
        double from_whole = 0;
        for (int v = 0; v < vocab; ++v)
          from_whole = std::max(from_whole, double(std::fabs(logits[t * vocab + v] - unsharded[t * vocab + v])));
        EXPECT_LE(from_whole, 1e-3 * std_dev) << "prompt " << i << " position " << t << ": sharded vs unsharded";
      }
      EXPECT_FALSE(std::isnan(max_diff)) << "prompt " << i << " position " << t;
      EXPECT_LE(max_diff, 1e-3 * std_dev) << "prompt " << i << " position " << t;
      worst_ratio = std::max(worst_ratio, max_diff / std_dev);
    }
    std::printf("  prompt %d (%zu tokens): worst max|diff|/std = %.2e\n", i, tokens.size(), worst_ratio);
    ++prompts;
  }
  return prompts;
}

// One golden comparison: a model directory under tests/data and how it is fed.
struct GoldenCase {
  std::string model;
  int chunk;      // tokens per forward call; 0 = the whole prompt in one call
  int ranks = 1;  // in-process ranks sharding the CPU engine
};

inline void PrintTo(const GoldenCase& c, std::ostream* os) {
  *os << c.model << " chunk " << c.chunk;
  if (c.ranks > 1) *os << " ranks " << c.ranks;
}

// gtest parameter name: "family/tiny-v3" and chunk 5 -> "family_tiny_v3_chunk5".
inline std::string golden_case_name(const ::testing::TestParamInfo<GoldenCase>& info) {
  std::string name = info.param.model + "_chunk" + std::to_string(info.param.chunk);
  if (info.param.ranks > 1) name += "_ranks" + std::to_string(info.param.ranks);
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

}  // namespace r1
