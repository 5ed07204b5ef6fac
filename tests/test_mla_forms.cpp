// MLA attention's two forms on the CPU: absorbed (queries mapped into the latent space; decode)
// and expanded (cached latents mapped up to keys and values; prompt chunks). Which one a chunk
// takes, the FLOPs the benchmark counts for it, and that both give the same logits.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/thread_pool.h"
#include "demo_problems.h"
#include "engine/page_allocator.h"
#include "engine/score.h"
#include "model/decode_bytes.h"
#include "model/generate.h"
#include "model/model.h"
#include "temp_files.h"

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

// Layer 0's attention outputs for positions [0, total) of one sequence (inputs x [total][hidden]),
// fed `chunk` positions a call.
std::vector<float> attention_outputs(CpuBackend& backend, const ModelConfig& config, const std::vector<float>& x,
                                     int total, int chunk) {
  const int hidden = config.hidden_size;
  PageAllocator pages_of((total + kDefaultPageSize - 1) / kDefaultPageSize, kDefaultPageSize);
  std::vector<int> pages;
  pages_of.grow(pages, total);
  backend.configure_kv_cache(pages_of.num_pages(), pages_of.page_size());
  backend.set_sequence_pages(0, pages);
  std::vector<float> out(size_t(total) * hidden);
  for (int begin = 0; begin < total; begin += chunk) {
    const int n = std::min(chunk, total - begin);
    Batch batch;
    for (int p = begin; p < begin + n; ++p) {
      batch.tokens.push_back(0);
      batch.positions.push_back(p);
      batch.sequences.push_back(0);
    }
    Activation in = backend.activation(0, n, hidden), result = backend.activation(1, n, hidden);
    std::copy_n(x.data() + size_t(begin) * hidden, size_t(n) * hidden, in.data);
    backend.prepare(batch);
    backend.attention(0, in, result);
    std::copy_n(result.data, size_t(n) * hidden, out.data() + size_t(begin) * hidden);
  }
  return out;
}

// Fast numerics at a head width the BF16 keys take (qk_head_dim 192: V2-Lite's attention, one
// layer of random weights; the demo and golden models' 48 go through float32 keys): the
// attention's outputs in each form, fed whole and in chunks of 70, against exact numerics'
// expanded form, position by position. BF16 activations, keys and cache keep each output row's
// cosine within ~1e-5 of 1; a wrong key or value layout would not.
TEST(MlaForms, FastFormsFollowExactAtV2LiteShapes) {
  if (!fast_numerics_available()) GTEST_SKIP() << "this CPU lacks AVX512-BF16 or VBMI";
  TempDir tmp;
  const std::string dir = (tmp.path / "v2-lite").string();
  ThreadPool pool(2);
  generate_model(GenerateOptions{.preset = "v2-lite", .out_dir = dir, .layers = 1, .vocab = 256}, pool);
  auto mapped = Model::load(dir), packed = Model::load(dir, Residency::large_pages);
  const ModelConfig& config = mapped->config;
  ASSERT_EQ(config.qk_head_dim(), 192);
  CpuBackend exact(config, mapped->weights, 2);
  CpuBackend fast(packed->config, packed->weights, 2, Numerics::fast);
  const int total = 150, hidden = config.hidden_size;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> x(size_t(total) * hidden);
  for (float& v : x) v = normal(rng);
  exact.force_attention_form(CpuBackend::AttentionForm::expanded);
  const std::vector<float> want = attention_outputs(exact, config, x, total, total);
  for (auto form : {CpuBackend::AttentionForm::expanded, CpuBackend::AttentionForm::absorbed})
    for (int chunk : {total, 70}) {
      fast.force_attention_form(form);
      const std::vector<float> got = attention_outputs(fast, config, x, total, chunk);
      double worst = 1;
      for (int p = 0; p < total; ++p)
        worst = std::min(worst, cosine(got.data() + size_t(p) * hidden, want.data() + size_t(p) * hidden, hidden));
      const char* name = form == CpuBackend::AttentionForm::expanded ? "expanded" : "absorbed";
      EXPECT_GE(worst, 0.9999) << name << ", chunks of " << chunk;
      std::printf("  fast %s, chunks of %d: worst cosine with exact %.7f\n", name, chunk, worst);
    }
}

}  // namespace
}  // namespace r1
