// RoPE/YaRN frequencies, the softmax scale, and the three routing methods, on cases worked out
// by hand from DESIGN.md §3.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "r1/rope.h"
#include "r1/routing.h"

namespace r1 {
namespace {

RopeParams tiny_yarn() {  // the golden fixtures' rope: d 16, factor 40, beta 32/1, orig 4096
  RopeParams p;
  p.rope_dim = 16;
  p.theta = 10000;
  p.yarn = true;
  p.factor = 40;
  p.original_max_position = 4096;
  return p;
}

TEST(Rope, YarnFrequencies) {
  // correction range: low = floor(16 ln(4096/(64π)) / (2 ln 1e4)) = 2, high = ceil(5.63) = 6
  const RopeParams p = tiny_yarn();
  auto base = [](int i) { return std::pow(10000.0, -2.0 * i / 16); };
  EXPECT_FLOAT_EQ(rope_frequency(p, 0), 1.0f);
  EXPECT_FLOAT_EQ(rope_frequency(p, 2), float(base(2)));                         // ramp 0
  EXPECT_FLOAT_EQ(rope_frequency(p, 4), float(base(4) / 40 * 0.5 + base(4) * 0.5));  // ramp 0.5
  EXPECT_FLOAT_EQ(rope_frequency(p, 7), float(base(7) / 40));                    // ramp 1
  RopeParams plain = p;
  plain.yarn = false;
  EXPECT_FLOAT_EQ(rope_frequency(plain, 7), float(base(7)));
}

TEST(Rope, SoftmaxScaleAndMagnitude) {
  RopeParams p = tiny_yarn();
  const double m = 0.1 * std::log(40.0) + 1;
  EXPECT_FLOAT_EQ(attention_softmax_scale(p, 48), float(m * m / std::sqrt(48.0)));
  EXPECT_FLOAT_EQ(rope_magnitude(p), 1.0f);
  p.mscale = 0.707;
  p.mscale_all_dim = 1.0;
  EXPECT_FLOAT_EQ(rope_magnitude(p), float((0.0707 * std::log(40.0) + 1) / m));
  p.yarn = false;
  EXPECT_FLOAT_EQ(attention_softmax_scale(p, 48), float(1 / std::sqrt(48.0)));
}

TEST(Rope, RotatesInterleavedPairs) {
  float x[4] = {1, 0, 0, 2};
  const float freq[2] = {0.5f, 0.25f};
  apply_rope(x, freq, 4, 2, 1.0f);  // angles 1.0 and 0.5
  EXPECT_NEAR(x[0], std::cos(1.0), 1e-6);
  EXPECT_NEAR(x[1], std::sin(1.0), 1e-6);
  EXPECT_NEAR(x[2], -2 * std::sin(0.5), 1e-6);
  EXPECT_NEAR(x[3], 2 * std::cos(0.5), 1e-6);
}

struct Routed {
  std::vector<int> ids;
  std::vector<float> weights;
};

Routed route(const RoutingParams& p, const std::vector<float>& logits, const std::vector<float>& bias) {
  std::vector<float> scratch(2 * logits.size());
  Routed r{std::vector<int>(p.num_experts_per_tok), std::vector<float>(p.num_experts_per_tok)};
  route_token(p, logits.data(), bias.empty() ? nullptr : bias.data(), scratch.data(), r.ids.data(),
              r.weights.data());
  return r;
}

RoutingParams noaux(int experts, int groups, int topk_group, int top_k) {
  return {experts, top_k, groups, topk_group, TopkMethod::noaux_tc, ScoringFunc::sigmoid, true, 2.5f};
}

TEST(Routing, NoauxTcPicksGroupsByTopTwoSum) {
  // All scores 0.5; biased choice per group {0.6,0.5} {0.8,0.7} {0.5,0.5} {0.75,0.55}:
  // top-2 sums 1.1 1.5 1.0 1.3 keep groups 1 and 3; best experts there are 2 and 6.
  Routed r = route(noaux(8, 4, 2, 2), std::vector<float>(8, 0.0f), {0.1f, 0, 0.3f, 0.2f, 0, 0, 0.25f, 0.05f});
  EXPECT_EQ(r.ids, (std::vector<int>{2, 6}));
  EXPECT_FLOAT_EQ(r.weights[0], 1.25f);  // 0.5 / (0.5 + 0.5) * 2.5
  EXPECT_FLOAT_EQ(r.weights[1], 1.25f);
}

TEST(Routing, NoauxTcTopTwoSumDiffersFromMax) {
  // Group 0 has the single best expert (0.9+b) but group 1 the best pair: top-2 sum keeps group 1.
  std::vector<float> bias = {0.4f, -0.5f, 0.3f, 0.3f};
  Routed r = route(noaux(4, 2, 1, 1), std::vector<float>(4, 0.0f), bias);
  EXPECT_EQ(r.ids, (std::vector<int>{2}));
}

TEST(Routing, WeightsComeFromUnbiasedScores) {
  RoutingParams p = noaux(8, 1, 1, 2);
  Routed r = route(p, {2, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 1, 1, 0, 0, 0, 0});
  EXPECT_EQ(r.ids, (std::vector<int>{2, 3}));  // 1.5 each beats sigmoid(2) = 0.88; tie -> lower id
  EXPECT_FLOAT_EQ(r.weights[0], 1.25f);
  p.norm_topk_prob = false;
  r = route(p, {2, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 1, 1, 0, 0, 0, 0});
  EXPECT_FLOAT_EQ(r.weights[0], 0.5f * 2.5f);  // scaled even when not normalized
}

TEST(Routing, GreedySoftmax) {
  RoutingParams p{4, 2, 1, 1, TopkMethod::greedy, ScoringFunc::softmax, false, 1.0f};
  Routed r = route(p, {1, 2, 3, 0}, {});
  const double sum = std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + 1.0;
  EXPECT_EQ(r.ids, (std::vector<int>{2, 1}));
  EXPECT_NEAR(r.weights[0], std::exp(3.0) / sum, 1e-6);
  EXPECT_NEAR(r.weights[1], std::exp(2.0) / sum, 1e-6);
  p.norm_topk_prob = true;
  p.routed_scaling_factor = 16.0f;
  r = route(p, {1, 2, 3, 0}, {});
  EXPECT_NEAR(r.weights[0], 16 * std::exp(3.0) / (std::exp(3.0) + std::exp(2.0)), 1e-5);
}

TEST(Routing, GroupLimitedGreedyUsesGroupMax) {
  // Group max: g0 = 3 beats g1 = 2.9, so both experts come from group 0 although 3 scores 2.9.
  RoutingParams p{8, 2, 4, 1, TopkMethod::group_limited_greedy, ScoringFunc::softmax, false, 1.0f};
  Routed r = route(p, {0, 3, 2, 2.9f, -1, -1, -1, -1}, {});
  EXPECT_EQ(r.ids, (std::vector<int>{1, 0}));
  p.topk_method = TopkMethod::greedy;
  r = route(p, {0, 3, 2, 2.9f, -1, -1, -1, -1}, {});
  EXPECT_EQ(r.ids, (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace r1
