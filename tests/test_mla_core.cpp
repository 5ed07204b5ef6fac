// The CPU's MLA attention core (src/cpu/mla_core.h) against its double-precision reference at
// edge sizes, and the bit-for-bit independence of a head's outputs from the heads beside it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cpu/mla_core.h"

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

}  // namespace
}  // namespace r1
