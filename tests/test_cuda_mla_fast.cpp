// The `fast` MLA decode path (bfloat16 cache, tensor cores: kernels/mla_decode_mma.cu) against a
// float64 reference over the same bf16-rounded cache and queries, and the bf16 cache append
// against the float32 one.
//
// Tolerance, derived rather than picked: with the queries and cache rounded alike on both sides,
// the kernel differs from the reference in (a) the bf16 rounding of each probability p_j
// (relative error at most 2^-8, and the softmax denominator is summed over the same rounded
// values) and (b) float32 arithmetic (scores, exp2f, rescales: relative ~1e-6). An output
// Σ w_j c_j / Σ w_j with every w_j = p_j (1 + δ_j), |δ_j| <= δ, is within δ/(1-δ) · max_j |c_j - o|
// of the exact one. So each value must satisfy |gpu - ref| <= (2^-8 + 1e-4)/(1 - 2^-8) · spread
// (+ 1e-6 absolute), spread from mla_attention_reference. Typical errors are ~10x below it.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cuda_test_util.h"
#include "kernels/launch.h"
#include "mla_test_util.h"
#include "r1/number_formats.h"

namespace r1 {
namespace {

std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = bf16_to_float(float_to_bf16(x));
  return v;
}
std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), [](float f) { return float_to_bf16(f); });
  return out;
}

// One decode call: sequences of the given lengths in a paged bf16 cache, tokens (sequence,
// position) attending to positions [0, position] of their sequence.
struct Case {
  cuda::MlaShape shape;
  int page_size;
  std::vector<int> lengths, sequences, positions;
  float q_scale = 1.0f;  // larger: more peaked softmax, more rescaling across tiles
};

void expect_matches_reference(const Case& c) {
  const cuda::MlaShape& s = c.shape;
  ASSERT_TRUE(cuda::mla_attention_bf16_supports(s));
  const int width = s.kv_lora_rank + s.qk_rope, qk = s.qk_nope + s.qk_rope, tokens = int(c.sequences.size());
  std::vector<std::vector<float>> caches;
  for (size_t i = 0; i < c.lengths.size(); ++i)
    caches.push_back(rounded(random_floats(size_t(c.lengths[i]) * width, 100 + uint32_t(i))));
  const PagedTestCache paged(caches, width, c.page_size);
  const std::vector<float> q_latent = rounded(random_floats(size_t(tokens) * s.heads * s.kv_lora_rank, 200, c.q_scale));
  const std::vector<float> q = rounded(random_floats(size_t(tokens) * s.heads * qk, 201, c.q_scale));
  const float scale = 1.0f / std::sqrt(192.0f);  // R1's (qk_nope + qk_rope)^-0.5
  const MlaReference ref = mla_attention_reference(s, q_latent, q, caches, c.sequences, c.positions, scale);

  DeviceVector<uint16_t> drows(to_bf16(paged.rows));
  DeviceVector<int> dtable(paged.page_table), dpos(c.positions), dseq(c.sequences);
  DeviceVector<float> dql(q_latent), dq(q);
  const cuda::PagedCacheBf16 cache{reinterpret_cast<__nv_bfloat16*>(drows.get()), dtable.get(), paged.max_pages,
                                   c.page_size};
  const int max_len = *std::max_element(c.positions.begin(), c.positions.end()) + 1;
  const double delta = (std::ldexp(1.0, -8) + 1e-4) / (1 - std::ldexp(1.0, -8));
  // Every pipeline configuration (and the automatic choice, -1), each with one split, several
  // (boundaries inside the contexts; empty splits for the short ones), more than the longest
  // context has tiles, and what the heuristic picks for an H100.
  for (int config = -1; config < cuda::mla_attention_bf16_config_count(); ++config)
  for (int splits : {1, 2, 3, 7, 64, cuda::mla_attention_bf16_splits(tokens, s.heads, max_len, 132, config)}) {
    DeviceVector<float> dout(ref.out.size(), NAN);
    DeviceVector<float> workspace(std::max<size_t>(1, cuda::mla_attention_workspace(s, tokens, splits)), NAN);
    cuda::mla_attention_bf16(s, dql.get(), dq.get(), dpos.get(), dseq.get(), cache, scale, tokens, splits,
                             workspace.get(), dout.get(), nullptr, config);
    const std::vector<float> out = dout.host();
    if (config >= 0) {  // the configuration gets the residency it was built for
      EXPECT_GE(cuda::mla_attention_bf16_occupancy(config), cuda::mla_attention_bf16_config(config).blocks_per_sm)
          << "config " << config;
    }
    size_t bad = 0, first_bad = 0;
    double worst = 0;  // largest error / bound
    for (size_t i = 0; i < out.size(); ++i) {
      const double bound = delta * ref.spread[i] + 1e-6, err = std::fabs(double(out[i]) - ref.out[i]);
      if (!(err <= bound)) {  // NaN counts as bad
        if (bad++ == 0) first_bad = i;
      }
      worst = std::max(worst, std::isnan(err) ? INFINITY : err / bound);
    }
    std::printf("config %d heads %d latent %d rope %d splits %d: relative max error %.2e, largest error/bound %.3f\n",
                config, s.heads, s.kv_lora_rank, s.qk_rope, splits, relative_max_error(out, ref.out), worst);
    EXPECT_EQ(bad, 0u) << "config " << config << ", " << splits << " splits; first at index " << first_bad << ": " << out[first_bad] << " vs "
                       << ref.out[first_bad] << " (bound " << delta * ref.spread[first_bad] << ")";
  }
}

class CudaMlaFast : public ::testing::Test {
 protected:
  void SetUp() override { R1_REQUIRE_GPU(); }
};

const cuda::MlaShape kR1Shape16{16, 128, 64, 128, 512};    // one GPU's heads of 8-way tensor parallel R1
const cuda::MlaShape kR1Shape128{128, 128, 64, 128, 512};  // all of R1's heads

TEST_F(CudaMlaFast, BatchOneContextOne) {
  expect_matches_reference({kR1Shape16, 64, {1}, {0}, {0}});
}

// Contexts just under, at and over the 64-position tile, and many tiles; pages of 64 out of order.
TEST_F(CudaMlaFast, ContextsAroundTheTileSize) {
  expect_matches_reference({kR1Shape16, 64, {63, 64, 65, 1000}, {0, 1, 2, 3}, {62, 63, 64, 999}});
}

TEST_F(CudaMlaFast, AllOfR1sHeads) {
  expect_matches_reference({kR1Shape128, 64, {1000, 65, 1}, {0, 1, 2}, {999, 64, 0}});
}

// Several tokens of one sequence at different positions beside other sequences; 20 heads (a
// partial tile of 32); pages of 24 positions, so a tile spans pages and pages span tiles.
TEST_F(CudaMlaFast, MixedBatchPartialHeadTileOddPages) {
  const cuda::MlaShape s{20, 128, 64, 128, 512};
  expect_matches_reference({s, 24, {700, 130, 1}, {0, 1, 0, 2, 0}, {699, 129, 350, 0, 63}});
}

// Scores spread over tens of units: the running maximum moves between tiles and the
// rescaling of earlier tiles matters.
TEST_F(CudaMlaFast, PeakedScores) {
  expect_matches_reference({kR1Shape16, 64, {1000, 200}, {0, 1}, {999, 199}, 4.0f});
}

// Narrower latents than R1's: the demo model's 64 + 16 (5 k-steps over 4 k-groups, half the
// warps without latent columns) with 4 heads and pages of 4, and 256 + 32 (uneven k-groups).
TEST_F(CudaMlaFast, NarrowLatents) {
  expect_matches_reference({{4, 32, 16, 32, 64}, 4, {200, 5}, {0, 1, 0}, {199, 4, 70}});
  expect_matches_reference({{16, 64, 32, 64, 256}, 16, {300}, {0}, {299}});
}

// The bf16 cache gets the float32 path's values rounded once: compared with the float32 append
// rounded on the host, every value the same or (if the compiler contracted the RoPE differently
// in the two instantiations) one bf16 step apart; rows not appended stay untouched.
TEST_F(CudaMlaFast, Bf16CacheAppendIsTheFloatAppendRounded) {
  const int latent = 512, rope_dim = 64, width = latent + rope_dim, page_size = 4, max_pages = 3, pages = 6;
  const std::vector<int> page_table = {5, 0, 3, /*sequence 1:*/ 2, 4, 1};
  const std::vector<int> sequences = {0, 0, 1, 1, 0}, positions = {3, 4, 0, 9, 11};
  const int tokens = int(sequences.size());
  const std::vector<float> kv = random_floats(size_t(tokens) * width, 50);
  std::vector<float> norm = random_floats(latent, 51, 0.5f), frequencies(rope_dim / 2);
  for (float& w : norm) w += 1.0f;
  for (int i = 0; i < rope_dim / 2; ++i) frequencies[i] = std::pow(10000.0f, -2.0f * i / rope_dim);
  const float eps = 1e-6f, magnitude = 1.0f;
  const size_t cache_values = size_t(pages) * page_size * width;
  DeviceVector<float> dkv(kv), dnorm(norm), dfreq(frequencies), dfloat(cache_values, -7.0f);
  DeviceVector<uint16_t> dbf16(cache_values, float_to_bf16(-7.0f));
  DeviceVector<int> dtable(page_table), dpos(positions), dseq(sequences);
  cuda::mla_cache_append(dkv.get(), tokens, latent, rope_dim, dnorm.get(), eps, dfreq.get(), magnitude, dpos.get(),
                         dseq.get(), cuda::PagedCache{dfloat.get(), dtable.get(), max_pages, page_size}, nullptr);
  cuda::mla_cache_append(dkv.get(), tokens, latent, rope_dim, dnorm.get(), eps, dfreq.get(), magnitude, dpos.get(),
                         dseq.get(),
                         cuda::PagedCacheBf16{reinterpret_cast<__nv_bfloat16*>(dbf16.get()), dtable.get(), max_pages,
                                              page_size},
                         nullptr);
  const std::vector<float> as_float = dfloat.host();
  const std::vector<uint16_t> as_bf16 = dbf16.host();
  size_t inexact = 0, changed = 0;
  for (size_t i = 0; i < cache_values; ++i) {
    const uint16_t want = float_to_bf16(as_float[i]);
    ASSERT_LE(std::abs(int(as_bf16[i]) - int(want)), 1) << "value " << i << ": " << bf16_to_float(as_bf16[i])
                                                         << " vs " << as_float[i];
    inexact += as_bf16[i] != want;
    changed += as_float[i] != -7.0f;
  }
  EXPECT_EQ(changed, size_t(tokens) * width);  // the float path wrote exactly the appended rows
  std::printf("bf16 append: %zu of %zu values one bf16 step from the rounded float32 append\n", inexact, cache_values);
}

// Which shapes the fast path takes (no GPU needed): every DeepSeek release's 512 + 64 and the
// demo model's 64 + 16; anything else is refused with a message before touching the device.
TEST(MlaFastPath, SupportedShapes) {
  EXPECT_TRUE(cuda::mla_attention_bf16_supports({128, 128, 64, 128, 512}));
  EXPECT_TRUE(cuda::mla_attention_bf16_supports({4, 32, 16, 32, 64}));
  EXPECT_FALSE(cuda::mla_attention_bf16_supports({128, 128, 64, 128, 520}));  // latent > 512
  EXPECT_FALSE(cuda::mla_attention_bf16_supports({128, 128, 8, 128, 512}));   // rope not a multiple of 16
  EXPECT_FALSE(cuda::mla_attention_bf16_supports({128, 128, 80, 128, 512}));  // row wider than 576
  EXPECT_FALSE(cuda::mla_attention_bf16_supports({128, 128, 64, 128, 72}));   // latent not a multiple of 16
  EXPECT_THROW(cuda::mla_attention_bf16({16, 128, 64, 128, 520}, nullptr, nullptr, nullptr, nullptr, {}, 0.1f, 1, 1,
                                        nullptr, nullptr, nullptr),
               Error);
}

// The split heuristic (no GPU needed): enough blocks to fill the machine when the batch is small,
// no splitting when the batch alone fills it, never more splits than 64-position tiles.
TEST(MlaFastPath, SplitHeuristic) {
  EXPECT_EQ(cuda::mla_attention_bf16_splits(1, 128, 1, 132), 1);
  EXPECT_EQ(cuda::mla_attention_bf16_splits(128, 128, 4096, 132), 1);
  const int one_token = cuda::mla_attention_bf16_splits(1, 128, 32768, 132);
  const int heads_per_block = cuda::mla_attention_bf16_config(cuda::mla_attention_bf16_default_config(1, 128)).heads_per_block;
  EXPECT_GE(one_token * (128 / heads_per_block), 120);  // the splits' blocks about fill 132 multiprocessors
  EXPECT_LE(one_token, 64);
  EXPECT_LE(cuda::mla_attention_bf16_splits(1, 16, 200, 132), 4);
  // Per configuration: never more splits than its tiles, none when the batch fills the machine.
  for (int config = 0; config < cuda::mla_attention_bf16_config_count(); ++config) {
    const cuda::MlaBf16Config c = cuda::mla_attention_bf16_config(config);
    for (int heads : {16, 128})
      for (int len : {1, 100, 4096, 32768}) {
        const int splits = cuda::mla_attention_bf16_splits(1, heads, len, 132, config);
        EXPECT_GE(splits, 1);
        EXPECT_LE(splits, std::min(64, (len + c.tile - 1) / c.tile)) << "config " << config << " length " << len;
      }
    // 264 tokens: whole waves of blocks for every configuration, so splitting only adds overhead.
    EXPECT_EQ(cuda::mla_attention_bf16_splits(264, 128, 4096, 132, config), 1) << "config " << config;
  }
  EXPECT_THROW(cuda::mla_attention_bf16_config(cuda::mla_attention_bf16_config_count()), Error);
}

// The configuration table (no GPU needed): distinct pipelines within Hopper's shared memory.
TEST(MlaFastPath, Configurations) {
  const int n = cuda::mla_attention_bf16_config_count();
  ASSERT_GE(n, 2);
  for (int i = 0; i < n; ++i) {
    const cuda::MlaBf16Config c = cuda::mla_attention_bf16_config(i);
    EXPECT_TRUE(c.heads_per_block == 16 || c.heads_per_block == 32) << i;
    EXPECT_TRUE(c.tile == 32 || c.tile == 64) << i;
    EXPECT_GE(c.stages, 2) << i;
    EXPECT_LE(c.blocks_per_sm * (c.shared_bytes + 1024), 228 * 1024) << i;
    for (int j = 0; j < i; ++j) {
      const cuda::MlaBf16Config d = cuda::mla_attention_bf16_config(j);
      EXPECT_FALSE(c.heads_per_block == d.heads_per_block && c.tile == d.tile && c.stages == d.stages &&
                   c.blocks_per_sm == d.blocks_per_sm)
          << i << " repeats " << j;
    }
    std::printf("config %d: %d heads, %d-position tiles, %d stages, %d blocks/SM, %d bytes of shared memory\n", i,
                c.heads_per_block, c.tile, c.stages, c.blocks_per_sm, c.shared_bytes);
  }
  const int default16 = cuda::mla_attention_bf16_default_config(32, 16), default128 = cuda::mla_attention_bf16_default_config(32, 128);
  EXPECT_TRUE(default16 >= 0 && default16 < n);
  EXPECT_TRUE(default128 >= 0 && default128 < n);
}

}  // namespace
}  // namespace r1
