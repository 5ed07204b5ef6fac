// What the MLA attention tests of both decode paths share: a paged cache with its pages out of
// order, and the attention computed in float64 on the host.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/launch.h"

namespace r1 {

// A paged cache holding `caches` (one contiguous [length][width] block per sequence): every
// sequence's pages taken from a shuffled pool, so no sequence's pages are in order.
struct PagedTestCache {
  std::vector<float> rows;       // [pages][page_size][width]
  std::vector<int> page_table;   // [sequences][max_pages]
  int max_pages = 0;

  PagedTestCache(const std::vector<std::vector<float>>& caches, int width, int page_size) {
    std::vector<int> pages_of;
    for (const auto& c : caches) pages_of.push_back(int((c.size() / width + page_size - 1) / page_size));
    max_pages = *std::max_element(pages_of.begin(), pages_of.end());
    int total = 0;
    for (int p : pages_of) total += p;
    std::vector<int> pool(total);
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), std::mt19937(7));
    rows.assign(size_t(total) * page_size * width, NAN);  // unwritten rows poison any stray read
    page_table.assign(caches.size() * max_pages, -1);
    int next = 0;
    for (size_t s = 0; s < caches.size(); ++s) {
      for (int i = 0; i < pages_of[s]; ++i) page_table[s * max_pages + i] = pool[next++];
      for (size_t p = 0; p < caches[s].size() / width; ++p) {
        const int page = page_table[s * max_pages + int(p) / page_size];
        std::copy_n(&caches[s][p * width], width, &rows[(size_t(page) * page_size + p % page_size) * width]);
      }
    }
  }
};

// o_latent [tokens][heads][kv_lora_rank] of the absorbed attention, in float64, of each token
// over positions [0, positions[t]] of caches[sequences[t]] ([length][kv_lora + rope] each);
// q_pe is read from q [tokens][heads][qk_nope + qk_rope] at offset qk_nope. `spread` holds, per
// output value, the largest |c_j - o| over the attended positions j: an output computed with
// weights off by a relative δ each is off by at most δ·spread/(1-δ) (the bf16 path's bound).
struct MlaReference {
  std::vector<float> out, spread;
};

inline MlaReference mla_attention_reference(const cuda::MlaShape& s, const std::vector<float>& q_latent,
                                            const std::vector<float>& q, const std::vector<std::vector<float>>& caches,
                                            const std::vector<int>& sequences, const std::vector<int>& positions,
                                            float scale) {
  const int width = s.kv_lora_rank + s.qk_rope, qk = s.qk_nope + s.qk_rope, tokens = int(sequences.size());
  MlaReference r{std::vector<float>(size_t(tokens) * s.heads * s.kv_lora_rank),
                 std::vector<float>(size_t(tokens) * s.heads * s.kv_lora_rank)};
  for (int t = 0; t < tokens; ++t)
    for (int h = 0; h < s.heads; ++h) {
      const float* ql = &q_latent[(size_t(t) * s.heads + h) * s.kv_lora_rank];
      const float* qpe = &q[(size_t(t) * s.heads + h) * qk + s.qk_nope];
      const std::vector<float>& cache = caches[sequences[t]];
      std::vector<double> scores(positions[t] + 1);
      double max_score = -INFINITY, sum = 0;
      for (int j = 0; j <= positions[t]; ++j) {
        double sc = 0;
        for (int c = 0; c < s.kv_lora_rank; ++c) sc += double(ql[c]) * cache[size_t(j) * width + c];
        for (int i = 0; i < s.qk_rope; ++i) sc += double(qpe[i]) * cache[size_t(j) * width + s.kv_lora_rank + i];
        scores[j] = sc * scale;
        max_score = std::max(max_score, scores[j]);
      }
      for (auto& sc : scores) sum += (sc = std::exp(sc - max_score));
      for (int c = 0; c < s.kv_lora_rank; ++c) {
        double v = 0;
        for (int j = 0; j <= positions[t]; ++j) v += scores[j] / sum * cache[size_t(j) * width + c];
        double spread = 0;
        for (int j = 0; j <= positions[t]; ++j) spread = std::max(spread, std::fabs(cache[size_t(j) * width + c] - v));
        const size_t index = (size_t(t) * s.heads + h) * s.kv_lora_rank + c;
        r.out[index] = float(v);
        r.spread[index] = float(spread);
      }
    }
  return r;
}

}  // namespace r1
