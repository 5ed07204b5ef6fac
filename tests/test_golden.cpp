// The CPU forward pass against DeepSeek's reference logits (tests/data/golden, copied from
// shared/golden): every prompt, through prefill and the decode path, within 1e-3 × std. Whole
// prompts attend in MLA's expanded form, one token a call in the absorbed form after the first,
// chunks of 5 expanded first and absorbed after (expanded_form_pays at these shapes).
#include "golden_check.h"

namespace r1 {
namespace {

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, LogitsMatchReference) {
  EXPECT_EQ(check_against_golden(std::string(R1_TEST_DATA) + "/golden/" + GetParam().model, GetParam().chunk), 4);
}

INSTANTIATE_TEST_SUITE_P(AllPaths, Golden,
                         ::testing::Values(GoldenCase{"tiny-v3", 0}, GoldenCase{"tiny-v3", 1},
                                           GoldenCase{"tiny-v3", 5}, GoldenCase{"tiny-v3-fp8", 0},
                                           GoldenCase{"tiny-v3-fp8", 1}, GoldenCase{"tiny-v3-fp8", 5}),
                         golden_case_name);

}  // namespace
}  // namespace r1
