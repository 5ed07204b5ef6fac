// The CPU forward pass on every other configuration of the DeepSeek family (tests/data/family,
// written by tools/make_family_fixtures.py; logits from tools/reference_model.py, a naive-form
// port checked against DeepSeek's goldens): V2 greedy and group-limited softmax routing,
// q_lora_rank null, sizes that are not multiples of 128 with partial FP8 blocks, plain RoPE,
// mscale != mscale_all_dim, moe_layer_freq, and an MTP layer that must be skipped.
// Prefill, the decode path and chunks of 3, each within 1e-3 × std at every position.
#include "golden_check.h"

namespace r1 {
namespace {

class Family : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Family, LogitsMatchReference) {
  EXPECT_EQ(check_against_golden(std::string(R1_TEST_DATA) + "/family/" + GetParam().model, GetParam().chunk), 3);
}

std::vector<GoldenCase> all_cases() {
  std::vector<GoldenCase> cases;
  for (const char* model : {"tiny-v2-greedy", "tiny-v2-group-limited", "tiny-v3-odd", "tiny-v3-plain-rope",
                            "tiny-v3-mscale", "tiny-v3-mtp"})
    for (int chunk : {0, 1, 3}) cases.push_back({model, chunk});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllPaths, Family, ::testing::ValuesIn(all_cases()), golden_case_name);

}  // namespace
}  // namespace r1
