// MLA attention's two forms on the CPU: absorbed (queries mapped into the latent space; decode)
// and expanded (cached latents mapped up to keys and values; prompt chunks). Which one a chunk
// takes, the FLOPs the benchmark counts for it, and that both give the same logits.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/cpu_backend.h"
#include "engine/score.h"
#include "model/decode_bytes.h"
#include "model/model.h"

namespace r1 {
namespace {

ModelConfig r1_attention_shapes() {
  ModelConfig c;
  c.num_attention_heads = 128;
  c.kv_lora_rank = 512;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  return c;
}

// At R1's shapes a row's mapping up costs 512 · 256 multiply-adds a head, and the expanded form
// saves 1088 - 320 a (query, row) pair: chunks from position 0 always expand, a decode token
// never does, a later chunk does from about 171 queries on.
TEST(MlaForms, ExpandedFormPaysForPromptChunksOnly) {
  const ModelConfig c = r1_attention_shapes();
  EXPECT_TRUE(expanded_form_pays(c, 0, 1));
  EXPECT_TRUE(expanded_form_pays(c, 0, 512));
  EXPECT_TRUE(expanded_form_pays(c, 512, 512));
  EXPECT_TRUE(expanded_form_pays(c, 4096, 512));
  EXPECT_FALSE(expanded_form_pays(c, 1, 1));
  EXPECT_FALSE(expanded_form_pays(c, 10000, 1));
  EXPECT_FALSE(expanded_form_pays(c, 4096, 64));
  EXPECT_FALSE(expanded_form_pays(c, 100000, 160));
  EXPECT_TRUE(expanded_form_pays(c, 100000, 190));
}

TEST(MlaForms, PromptFlopsFollowTheForm) {
  auto model = Model::load(std::string(R1_TEST_DATA) + "/golden/tiny-v3-fp8");
  const ModelConfig& c = model->config;
  const auto flops = [&](int prompt, int chunk, bool expands) {
    return prompt_flops(c, model->weights, prompt, chunk, expands);
  };
  // Absorbed, a prompt takes the same work however it is cut.
  EXPECT_DOUBLE_EQ(flops(300, 300, false), flops(300, 1, false));
  EXPECT_DOUBLE_EQ(flops(300, 300, false), flops(300, 7, false));
  // Expanded in one chunk from position 0: kv_b once per row either way, each of the 300 · 301 / 2
  // pairs qk_head_dim + v_head_dim a head instead of kv_cache_dim + kv_lora_rank.
  const double pair_difference = 2.0 * c.num_attention_heads * c.num_hidden_layers *
                                 (c.kv_cache_dim() + c.kv_lora_rank - c.qk_head_dim() - c.v_head_dim);
  EXPECT_DOUBLE_EQ(flops(300, 300, false) - flops(300, 300, true), pair_difference * 300 * 301 / 2);
  // Chunks of one token after the first: all absorbed (decode-like), as expanded_form_pays says.
  EXPECT_DOUBLE_EQ(flops(300, 1, true), flops(300, 1, false) - pair_difference);
}

// Both forms forced on the same tokens, fed whole and in chunks of 70 (query blocks of 64,
// rows not a multiple of the panels' 16): float32 throughout, so they differ by rounding only.
TEST(MlaForms, ExpandedAndAbsorbedGiveTheSameLogits) {
  auto model = Model::load(std::string(R1_TEST_DATA) + "/golden/tiny-v3-fp8");
  CpuBackend backend(model->config, model->weights, 2);
  std::mt19937 rng(5);
  std::vector<int> tokens(150);
  for (int& t : tokens) t = int(rng() % uint32_t(model->config.vocab_size));
  for (int chunk : {0, 70}) {
    backend.force_attention_form(CpuBackend::AttentionForm::absorbed);
    const std::vector<float> absorbed = teacher_forced_logits(backend, model->config, tokens, chunk);
    backend.force_attention_form(CpuBackend::AttentionForm::expanded);
    const std::vector<float> expanded = teacher_forced_logits(backend, model->config, tokens, chunk);
    double sum_sq = 0, max_diff = 0;
    for (size_t i = 0; i < absorbed.size(); ++i) {
      sum_sq += double(absorbed[i]) * absorbed[i];
      max_diff = std::max(max_diff, double(std::fabs(absorbed[i] - expanded[i])));
    }
    const double rms = std::sqrt(sum_sq / double(absorbed.size()));
    EXPECT_GT(rms, 0.1) << "chunk " << chunk;
    EXPECT_LT(max_diff, 1e-4 * rms) << "chunk " << chunk;
    std::printf("  chunk %d: max|expanded - absorbed| = %.2e of rms %.3f\n", chunk, max_diff, rms);
  }
  backend.force_attention_form(CpuBackend::AttentionForm::automatic);
}

}  // namespace
}  // namespace r1
