// The CPU's MLA attention core (src/cpu/mla_core.h) against its double-precision reference at
// edge sizes, and the bit-for-bit independence of a head's outputs from the heads beside it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cpu/mla_core.h"
#include "cpu/simd/bf16_kernels.h"
#include "r1/number_formats.h"

namespace r1 {
namespace {

// Cached rows scattered like a paged cache's (every row its own allocation), queries and
// latents of the magnitudes a trained model's normalized latents and absorbed queries have.
struct Case {
  std::vector<std::vector<float>> cache;
  std::vector<const float*> rows;
  std::vector<float> q;
};
Case random_case(const MlaCoreShape& s, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  Case c;
  c.cache.resize(size_t(s.len));
  for (auto& row : c.cache) {
    row.resize(size_t(s.cache_dim));
    for (float& x : row) x = normal(rng);
    c.rows.push_back(row.data());
  }
  c.q.resize(size_t(s.heads) * s.cache_dim);
  for (float& x : c.q) x = normal(rng) * 0.3f;
  return c;
}

TEST(MlaCore, MatchesReferenceAtEdgeSizes) {
  std::mt19937 rng(7);
  // Heads below, at and past a vector (16) and the block (64); rows below and past a score tile
  // (6 or 12) and a block of the weighted sums (64); latents with and without a tail past the
  // last whole vector (40: 8 columns; R1's 512, the tiny models' 64), ropes of 16 and 64.
  for (int heads : {1, 4, 16, 17, 33, 64})
    for (int len : {1, 5, 13, 64, 70, 131})
      for (auto [latent_dim, rope_dim] : {std::pair{64, 16}, std::pair{40, 16}, std::pair{512, 64}}) {
        const MlaCoreShape s{heads, len, latent_dim + rope_dim, latent_dim, 1.0f / std::sqrt(float(latent_dim + rope_dim))};
        const Case c = random_case(s, rng);
        std::vector<float> got(size_t(heads) * latent_dim, NAN), want(got.size());
        mla_attend(s, c.q.data(), c.rows.data(), got.data());
        mla_attend_reference(s, c.q.data(), c.rows.data(), want.data());
        // Float32 sums of ~600 terms against double ones: a few ulp of the largest output.
        float largest = 0;
        for (float w : want) largest = std::max(largest, std::fabs(w));
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 2e-5f * largest)
              << "heads " << heads << " len " << len << " latent " << latent_dim << " output " << i;
      }
}

TEST(MlaCore, HeadsDoNotDependOnTheirNeighbours) {
  std::mt19937 rng(8);
  const MlaCoreShape all{kMlaCoreHeads, 77, 576, 512, 0.07f};
  const Case c = random_case(all, rng);
  std::vector<float> together(size_t(all.heads) * all.latent_dim);
  mla_attend(all, c.q.data(), c.rows.data(), together.data());
  // Each head alone, and in blocks of 5 (tails of every tile size), give the same bits.
  for (int block : {1, 5}) {
    std::vector<float> apart(together.size(), NAN);
    for (int h = 0; h < all.heads; h += block) {
      MlaCoreShape s = all;
      s.heads = std::min(block, all.heads - h);
      mla_attend(s, c.q.data() + size_t(h) * all.cache_dim, c.rows.data(), apart.data() + size_t(h) * all.latent_dim);
    }
    for (size_t i = 0; i < together.size(); ++i) ASSERT_EQ(apart[i], together[i]) << "blocks of " << block << ", output " << i;
  }
}

// The case's rows in BF16, as fast numerics caches them.
struct Bf16Rows {
  std::vector<std::vector<uint16_t>> cache;
  std::vector<const uint16_t*> rows;
};
Bf16Rows bf16_rows(const Case& c) {
  Bf16Rows b;
  for (const auto& row : c.cache) {
    b.cache.emplace_back();
    for (float x : row) b.cache.back().push_back(float_to_bf16(x));
    b.cache.back().push_back(float_to_bf16(1e30f));  // the value past the row an odd width reads
  }
  for (const auto& row : b.cache) b.rows.push_back(row.data());
  return b;
}

// max_j p[h][j] · |rows[j][c]| for each output (h, c): p the softmax weights in double.
std::vector<float> largest_terms(const MlaCoreShape& s, const float* q, const uint16_t* const* rows) {
  std::vector<float> term(size_t(s.heads) * s.latent_dim, 0.0f);
  std::vector<double> p(size_t(s.len));
  for (int h = 0; h < s.heads; ++h) {
    double high = -INFINITY, sum = 0;
    for (int j = 0; j < s.len; ++j) {
      double dot = 0;
      for (int k = 0; k < s.cache_dim; ++k) dot += double(q[int64_t(h) * s.cache_dim + k]) * bf16_to_float(rows[j][k]);
      high = std::max(high, p[size_t(j)] = dot * s.scale);
    }
    for (double& x : p) sum += x = std::exp(x - high);
    for (int j = 0; j < s.len; ++j)
      for (int c = 0; c < s.latent_dim; ++c) {
        float& t = term[size_t(h) * s.latent_dim + c];
        t = std::max(t, float(p[size_t(j)] / sum * std::fabs(bf16_to_float(rows[j][c]))));
      }
  }
  return term;
}

const simd::Bf16Kernels* fast_kernels() { return simd::bf16_kernels_for(simd::Isa::avx512); }

TEST(MlaCoreBf16, MatchesReferenceAtEdgeSizes) {
  const simd::Bf16Kernels* fast = fast_kernels();
  if (!fast) GTEST_SKIP() << "this CPU lacks AVX512-BF16 or VBMI: no fast attention core to test";
  std::mt19937 rng(9);
  // As above, and latents with a tail past the last 64 columns (96: 32; 40: no whole 64), and
  // an odd row width.
  for (int heads : {1, 4, 16, 17, 33, 64})
    for (int len : {1, 2, 5, 13, 64, 131, 300})
      for (auto [latent_dim, rope_dim] : {std::pair{64, 16}, std::pair{40, 16}, std::pair{96, 8}, std::pair{512, 64},
                                          std::pair{63, 16}}) {  // 79: an odd width
        const MlaCoreShape s{heads, len, latent_dim + rope_dim, latent_dim, 1.0f / std::sqrt(float(latent_dim + rope_dim))};
        const Case c = random_case(s, rng);
        const Bf16Rows b = bf16_rows(c);
        std::vector<float> got(size_t(heads) * latent_dim, NAN), want(got.size()), exact(got.size());
        fast->mla_attend(s, c.q.data(), b.rows.data(), got.data());
        mla_attend_bf16_reference(s, c.q.data(), b.rows.data(), want.data());
        mla_attend_reference(s, c.q.data(), c.rows.data(), exact.data());
        float largest = 0;
        for (float w : want) largest = std::max(largest, std::fabs(w));
        const std::vector<float> term = largest_terms(s, c.q.data(), b.rows.data());
        for (size_t i = 0; i < got.size(); ++i) {
          // Float32 sums against double ones over the same BF16 values, plus softmax weights
          // whose float32 and double values round to neighbouring BF16 numbers (2^-8 of a term
          // each; ~1 in 4000 weights here): up to four of them.
          ASSERT_NEAR(got[i], want[i], 2e-5f * largest + 0x1p-6f * term[i])
              << "heads " << heads << " len " << len << " latent " << latent_dim << " output " << i;
          // And the whole is float32's attention up to BF16 rounding (2^-8 relative, each input).
          ASSERT_NEAR(got[i], exact[i], 2e-2f * largest) << "against the exact core, output " << i;
        }
      }
}

TEST(MlaCoreBf16, HeadsDoNotDependOnTheirNeighbours) {
  const simd::Bf16Kernels* fast = fast_kernels();
  if (!fast) GTEST_SKIP() << "this CPU lacks AVX512-BF16 or VBMI: no fast attention core to test";
  std::mt19937 rng(10);
  const MlaCoreShape all{kMlaCoreHeads, 77, 576, 512, 0.07f};
  const Case c = random_case(all, rng);
  const Bf16Rows b = bf16_rows(c);
  std::vector<float> together(size_t(all.heads) * all.latent_dim);
  fast->mla_attend(all, c.q.data(), b.rows.data(), together.data());
  for (int block : {1, 5}) {
    std::vector<float> apart(together.size(), NAN);
    for (int h = 0; h < all.heads; h += block) {
      MlaCoreShape s = all;
      s.heads = std::min(block, all.heads - h);
      fast->mla_attend(s, c.q.data() + size_t(h) * all.cache_dim, b.rows.data(), apart.data() + size_t(h) * all.latent_dim);
    }
    for (size_t i = 0; i < together.size(); ++i) ASSERT_EQ(apart[i], together[i]) << "blocks of " << block << ", output " << i;
  }
}

}  // namespace
}  // namespace r1
