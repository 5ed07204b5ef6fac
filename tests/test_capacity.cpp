// `r1 plan` on DeepSeek-R1's real config.json (tests/data/r1-config, no weights) against a hand
// computation of the checkpoint's bytes, for 8×H200 on one node and 16×H100 on two.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "run_command.h"

namespace r1 {
namespace {

const std::string kPlan = std::string(R1_BINARY) + " plan --model " + R1_TEST_DATA + "/r1-config";
constexpr double kGiB = 1 << 30;

// An FP8 [out, in] linear as published: one byte per weight and an F32 scale per 128×128 block.
double fp8(double out, double in) { return out * in + 4 * std::ceil(out / 128) * std::ceil(in / 128); }

// DeepSeek-R1 by hand: hidden 7168, 61 layers (3 dense, 58 MoE), 128 heads of q 128+64 and v 128,
// q LoRA 1536, kv LoRA 512, dense 18432, 256 routed + 1 shared experts of 2048, vocab 129280.
// Norms, router, embedding and lm_head are BF16 (2 bytes), the router bias F32. MTP layer 61 is
// not loaded, so not counted.
struct HandR1 {
  double per_layer_attention = fp8(1536, 7168) + fp8(128 * 192, 1536) + fp8(576, 7168) + fp8(128 * 256, 512) +
                               fp8(7168, 128 * 128);
  double per_layer_norms = 2 * 7168 * 2 + 1536 * 2 + 512 * 2;
  double dense_mlp = 3 * fp8(18432, 7168);
  double expert = 3 * fp8(2048, 7168);
  double router = 256 * 7168 * 2 + 256 * 4;
  double embed = 129280.0 * 7168 * 2;  // and lm_head the same
  double total() const {
    return 61 * (per_layer_attention + per_layer_norms) + 3 * dense_mlp + 58 * (257 * expert + router) + 2 * embed +
           7168 * 2;
  }
  // Whole on every GPU: norms, q_a and kv_a (MLA's shared projections), the routers.
  double replicated() const {
    return 61 * (per_layer_norms + fp8(1536, 7168) + fp8(576, 7168)) + 58 * router + 7168 * 2;
  }
  double per_gpu(int gpus) const { return (total() - replicated()) / gpus + replicated(); }
};

// The number after `label` in r1 plan's output.
double number_after(const std::string& out, const std::string& label) {
  const size_t at = out.find(label);
  if (at == std::string::npos) return NAN;
  return std::stod(out.substr(at + label.size()));
}

void expect_plan(const std::string& flags, int gpus, double kv_gib) {
  const CommandResult r = run_command(kPlan + " " + flags);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const HandR1 hand;
  EXPECT_NEAR(number_after(r.output, "checkpoint:") * kGiB, hand.total(), 0.001 * hand.total()) << r.output;
  EXPECT_NEAR(number_after(r.output, "  weights") * kGiB, hand.per_gpu(gpus), 0.01 * hand.per_gpu(gpus)) << r.output;
  EXPECT_NEAR(number_after(r.output, "(replicated") * kGiB, hand.replicated(), 0.01 * hand.replicated()) << r.output;
  EXPECT_NEAR(number_after(r.output, "  KV cache"), kv_gib, 0.006) << r.output;
  EXPECT_NE(r.output.find(": fits"), std::string::npos) << r.output;
  EXPECT_GT(number_after(r.output, "decode at batch 1:"), 0) << r.output;
  EXPECT_GT(number_after(r.output, "weights alone:"), 1) << r.output;
}

TEST(PlanCommand, R1On8H200) {
  // 61 layers × 576 values × 2 bytes × 32768 positions × batch 2.
  expect_plan("--gpus 8 --gpu h200 --context 32768 --batch 2", 8, 61.0 * 576 * 2 * 32768 * 2 / kGiB);
}

TEST(PlanCommand, R1On16H100InTwoNodes) {
  expect_plan("--gpus 8 --nodes 2 --gpu h100", 16, 61.0 * 576 * 2 * 16384 / kGiB);
}

TEST(PlanCommand, SaysWhatDoesNotFit) {
  const CommandResult r = run_command(kPlan + " --gpus 8 --gpu h100");  // ~79 GiB of weights per 80 GB GPU
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("DOES NOT FIT"), std::string::npos) << r.output;
}

TEST(PlanCommand, RefusesUndividedHeads) {
  const CommandResult r = run_command(kPlan + " --gpus 3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output.rfind("r1: error: 3 ranks cannot split the model's 128 attention heads evenly", 0), 0u) << r.output;
  EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "not one line: " << r.output;
}

}  // namespace
}  // namespace r1
