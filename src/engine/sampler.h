// Choosing the next token from a row of logits: greedy, or sampling with temperature, top-k,
// top-p and min-p from a seeded generator owned by each sequence (reproducible runs).
#pragma once

#include "model/greedy.h"  // greedy_token: temperature 0

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace r1 {

struct SamplingParams {
  float temperature = 1.0f;  // >= 0; 0 = greedy (argmax, ties to the lowest id)
  int top_k = 0;             // keep the k most likely tokens; 0 = all
  float top_p = 1.0f;        // (0, 1]: keep the smallest most-likely set holding this mass
  float min_p = 0.0f;        // [0, 1]: drop tokens below min_p × the top probability
  uint64_t seed = 0;
};

// Throws r1::Error naming the first invalid field.
void validate(const SamplingParams& params);

// Defaults from `model_dir`/generation_config.json when present (temperature, top_p, top_k,
// min_p; do_sample false means greedy), else SamplingParams{}. R1 ships 0.6 / 0.95.
SamplingParams sampling_defaults(const std::string& model_dir);

struct Candidate {
  int id;
  float probability;
};

// The distribution a sampler draws from: temperature applied, then top-k, top-p (on the top-k
// mass) and min-p, renormalized, most likely first (equal probabilities: lower id first).
// Requires temperature > 0.
std::vector<Candidate> truncated_distribution(std::span<const float> logits, const SamplingParams& params);


class Sampler {
 public:
  // `stream` separates sequences that share a seed (the k samples of one problem).
  explicit Sampler(const SamplingParams& params, uint64_t stream = 0);
  int sample(std::span<const float> logits);
  bool greedy() const { return params_.temperature == 0; }  // sample() is greedy_token

 private:
  double uniform();  // [0, 1), from the top 53 bits: the same on every platform

  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace r1
