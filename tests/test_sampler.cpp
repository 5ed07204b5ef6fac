// The sampler: validation, generation_config.json defaults, greedy ties, exact truncation
// sets, drawn frequencies against the intended distribution, and seeded reproducibility.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/error.h"
#include "engine/sampler.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

std::vector<float> logits_of(const std::vector<double>& probabilities) {
  std::vector<float> logits;
  for (double p : probabilities) logits.push_back(p > 0 ? float(std::log(p)) : -INFINITY);
  return logits;
}

std::vector<int> ids_of(const std::vector<Candidate>& c) {
  std::vector<int> ids;
  for (const Candidate& x : c) ids.push_back(x.id);
  return ids;
}

// Pearson's chi-square of `draws` samples against `expected` probabilities.
double chi_square(Sampler& sampler, std::span<const float> logits, const std::vector<double>& expected, int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts.at(sampler.sample(logits));
  double chi2 = 0;
  for (size_t id = 0; id < expected.size(); ++id) {
    if (expected[id] == 0) {
      EXPECT_EQ(counts[id], 0) << "token " << id << " has probability 0 but was drawn";
      continue;
    }
    const double e = expected[id] * draws;
    chi2 += (counts[id] - e) * (counts[id] - e) / e;
  }
  return chi2;
}

TEST(Sampler, RejectsInvalidParameters) {
  auto message = [](SamplingParams p) -> std::string {
    try {
      validate(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({.temperature = -0.1f}).find("temperature"), std::string::npos);
  EXPECT_NE(message({.temperature = NAN}).find("temperature"), std::string::npos);
  EXPECT_NE(message({.top_k = -1}).find("top_k"), std::string::npos);
  EXPECT_NE(message({.top_p = 0}).find("top_p"), std::string::npos);
  EXPECT_NE(message({.top_p = 1.01f}).find("top_p"), std::string::npos);
  EXPECT_NE(message({.min_p = -0.5f}).find("min_p"), std::string::npos);
  EXPECT_NE(message({.min_p = 2}).find("min_p"), std::string::npos);
  EXPECT_EQ(message({.temperature = 0, .top_k = 5, .top_p = 1, .min_p = 1}), "");
  EXPECT_THROW(Sampler({.top_p = 2}), Error);
}

class GenerationConfig : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(dir_); }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& text) { std::ofstream(dir_ / "generation_config.json") << text; }
  std::string error_of() {
    try {
      sampling_defaults(dir_.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_ = fs::temp_directory_path() / ("r1_sampler_" + std::to_string(getpid()));
};

TEST_F(GenerationConfig, DefaultsWithoutFile) {
  const SamplingParams p = sampling_defaults(dir_.string());
  EXPECT_EQ(p.temperature, 1.0f);
  EXPECT_EQ(p.top_p, 1.0f);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_EQ(p.min_p, 0.0f);
}

TEST_F(GenerationConfig, ReadsR1Values) {
  // DeepSeek-R1's generation_config.json as published.
  write(R"({"_from_model_config": true, "bos_token_id": 0, "eos_token_id": 1, "do_sample": true,
            "temperature": 0.6, "top_p": 0.95, "transformers_version": "4.46.3"})");
  const SamplingParams p = sampling_defaults(dir_.string());
  EXPECT_FLOAT_EQ(p.temperature, 0.6f);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  EXPECT_EQ(p.top_k, 0);
  write(R"({"temperature": 0.7, "top_k": 40, "min_p": 0.05, "do_sample": false})");
  const SamplingParams q = sampling_defaults(dir_.string());
  EXPECT_EQ(q.temperature, 0.0f);  // do_sample false: greedy
  EXPECT_EQ(q.top_k, 40);
  EXPECT_FLOAT_EQ(q.min_p, 0.05f);
}

TEST(Sampler, DefaultsOfTheShippedR1Directory) {
  const SamplingParams p = sampling_defaults(std::string(R1_TEST_DATA) + "/tokenizer/deepseek-r1");
  EXPECT_FLOAT_EQ(p.temperature, 0.6f);
  EXPECT_FLOAT_EQ(p.top_p, 0.95f);
  EXPECT_EQ(p.top_k, 0);
}

TEST_F(GenerationConfig, BadFilesNameThemselves) {
  const std::string path = (dir_ / "generation_config.json").string();
  write("{\"temperature\": ");
  EXPECT_NE(error_of().find(path + ": invalid JSON"), std::string::npos) << error_of();
  write(R"({"top_p": 1.5})");
  EXPECT_NE(error_of().find(path + ": top_p must be in (0, 1]"), std::string::npos) << error_of();
  write(R"({"temperature": "hot"})");
  EXPECT_EQ(error_of(), path + ": \"temperature\" must be a number");
}

TEST(Sampler, GreedyTakesLowestIdOnTies) {
  const std::vector<float> logits = {1, 3, -INFINITY, 3, 2};
  EXPECT_EQ(greedy_token(logits), 1);
  for (uint64_t seed : {0, 1, 2}) {
    Sampler s({.temperature = 0, .seed = seed});
    for (int i = 0; i < 10; ++i) EXPECT_EQ(s.sample(logits), 1);
  }
  EXPECT_THROW(greedy_token(std::vector<float>{1, NAN}), Error);
  EXPECT_THROW(greedy_token(std::vector<float>{-INFINITY, -INFINITY}), Error);
}

// Probabilities 1/2, 1/4, 1/8, 1/16, 1/16 on ids 3, 0, 4, 1, 2: sorting must be by probability
// (then id), not by id.
const std::vector<float> kHalving = logits_of({0.25, 0.0625, 0.0625, 0.5, 0.125});

TEST(Truncation, FullDistributionSortedByProbabilityThenId) {
  const std::vector<Candidate> c = truncated_distribution(kHalving, {});
  EXPECT_EQ(ids_of(c), (std::vector<int>{3, 0, 4, 1, 2}));
  const double want[] = {0.5, 0.25, 0.125, 0.0625, 0.0625};
  for (size_t i = 0; i < c.size(); ++i) EXPECT_NEAR(c[i].probability, want[i], 1e-6);
}

TEST(Truncation, TopKTopPMinPKeepExactlyTheirSets) {
  auto kept = [](SamplingParams p) { return ids_of(truncated_distribution(kHalving, p)); };
  EXPECT_EQ(kept({.top_k = 1}), (std::vector<int>{3}));
  EXPECT_EQ(kept({.top_k = 2}), (std::vector<int>{3, 0}));
  EXPECT_EQ(kept({.top_k = 9}), (std::vector<int>{3, 0, 4, 1, 2}));
  EXPECT_EQ(kept({.top_p = 0.4f}), (std::vector<int>{3}));
  EXPECT_EQ(kept({.top_p = 0.74f}), (std::vector<int>{3, 0}));
  EXPECT_EQ(kept({.top_p = 0.76f}), (std::vector<int>{3, 0, 4}));
  EXPECT_EQ(kept({.min_p = 0.2f}), (std::vector<int>{3, 0, 4}));  // 1/8 ≥ 0.2 × 1/2; 1/16 is not
  EXPECT_EQ(kept({.min_p = 0.3f}), (std::vector<int>{3, 0}));
  // top-p measures the mass of the top-k set: {1/2, 1/4, 1/8} renormalized is 4/7, 2/7, 1/7, so
  // 0.8 is reached with two tokens (6/7), where the whole vocabulary needs three (7/8).
  EXPECT_EQ(kept({.top_k = 3, .top_p = 0.8f}), (std::vector<int>{3, 0}));
  EXPECT_EQ(kept({.top_p = 0.8f}), (std::vector<int>{3, 0, 4}));

  const std::vector<Candidate> c = truncated_distribution(kHalving, {.top_k = 2});
  EXPECT_NEAR(c[0].probability, 2.0 / 3, 1e-6);
  EXPECT_NEAR(c[1].probability, 1.0 / 3, 1e-6);
}

TEST(Truncation, TemperatureSharpens) {
  // T = 0.5 squares the probabilities: 1/4, 1/16, 1/64, 1/256, 1/256 before renormalizing.
  const std::vector<Candidate> c = truncated_distribution(kHalving, {.temperature = 0.5f});
  const double total = 0.25 + 0.0625 + 1.0 / 64 + 2.0 / 256;
  EXPECT_NEAR(c[0].probability, 0.25 / total, 1e-6);
  EXPECT_NEAR(c[2].probability, (1.0 / 64) / total, 1e-6);
}

TEST(Truncation, NucleusOnAFullVocabularyMatchesASortedReference) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0, 3);
  std::vector<float> logits(129280);
  for (float& l : logits) l = normal(gen);
  for (float top_p : {0.5f, 0.9f, 0.99f}) {
    // Reference: sort everything, accumulate until the mass reaches top_p.
    std::vector<std::pair<double, int>> all;
    const float top = *std::max_element(logits.begin(), logits.end());
    double total = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      all.push_back({std::exp((logits[i] - top) / 1.0f), int(i)});  // float, as the sampler does
      total += all.back().first;
    }
    std::sort(all.begin(), all.end(), [](auto a, auto b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    std::vector<int> want;
    double mass = 0;
    for (auto [p, id] : all) {
      want.push_back(id);
      mass += p;
      if (mass >= top_p * total) break;
    }
    EXPECT_EQ(ids_of(truncated_distribution(logits, {.top_p = top_p})), want) << "top_p " << top_p;
  }
}

// Critical values of chi-square at p = 0.001: a correct sampler fails one seed in a thousand;
// the seeds are fixed, so the outcome is too.
constexpr double kChi2df1 = 10.83, kChi2df3 = 16.27;

TEST(Sampling, FrequenciesFollowTheDistribution) {
  const std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  const std::vector<float> logits = logits_of(p);
  Sampler plain({.seed = 11});
  EXPECT_LT(chi_square(plain, logits, p, 200000), kChi2df3);

  // T = 0.5: probabilities ∝ p².
  std::vector<double> squared;
  for (double x : p) squared.push_back(x * x / 0.3);
  Sampler cold({.temperature = 0.5f, .seed = 12});
  EXPECT_LT(chi_square(cold, logits, squared, 200000), kChi2df3);

  // top-k 2: only 0.3 and 0.4 remain, as 3/7 and 4/7.
  Sampler top2({.top_k = 2, .seed = 13});
  EXPECT_LT(chi_square(top2, logits, {0, 0, 3.0 / 7, 4.0 / 7}, 200000), kChi2df1);

  // Sanity of the test itself: the untempered distribution is far from p².
  Sampler wrong({.seed = 14});
  EXPECT_GT(chi_square(wrong, logits, squared, 20000), 1000);
}

TEST(Sampling, SameSeedSameTokens) {
  std::vector<float> logits(1000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i))) * 2;
  auto run = [&](SamplingParams p, uint64_t stream) {
    Sampler s(p, stream);
    std::vector<int> tokens;
    for (int i = 0; i < 200; ++i) tokens.push_back(s.sample(logits));
    return tokens;
  };
  for (SamplingParams p : {SamplingParams{.seed = 5}, SamplingParams{.temperature = 0.6f, .top_p = 0.95f, .seed = 5}}) {
    EXPECT_EQ(run(p, 0), run(p, 0));
    EXPECT_NE(run(p, 0), run(p, 1));
    SamplingParams other = p;
    other.seed = 6;
    EXPECT_NE(run(p, 0), run(other, 0));
  }
}

}  // namespace
}  // namespace r1
