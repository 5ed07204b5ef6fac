#include "engine/score.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "engine/page_allocator.h"
#include "model/forward.h"

namespace r1 {

std::vector<float> teacher_forced_logits(Backend& backend, const ModelConfig& config,
                                         const std::vector<int>& tokens, int chunk) {
  const int total = int(tokens.size()), vocab = config.vocab_size;
  for (int t : tokens)
    if (t < 0 || t >= vocab) fail("token id {} is outside the vocabulary [0, {})", t, vocab);
  if (chunk <= 0) chunk = std::max(total, 1);
  std::vector<float> logits(size_t(total) * vocab);
  PageAllocator allocator(std::max(1, (total + kDefaultPageSize - 1) / kDefaultPageSize), kDefaultPageSize);
  std::vector<int> pages;
  allocator.grow(pages, total);
  backend.configure_kv_cache(allocator.num_pages(), allocator.page_size());
  backend.set_sequence_pages(0, pages);
  for (int begin = 0; begin < total; begin += chunk) {
    const int end = std::min(total, begin + chunk);
    Batch batch;
    for (int p = begin; p < end; ++p) {
      batch.tokens.push_back(tokens[p]);
      batch.positions.push_back(p);
      batch.sequences.push_back(0);
    }
    forward(backend, config, batch, logits.data() + int64_t(begin) * vocab);
  }
  return logits;
}

double mean_nll(const std::vector<float>& logits, const std::vector<int>& tokens, int vocab) {
  if (tokens.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  double total = 0;
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    const float* row = logits.data() + t * vocab;
    const double max_logit = *std::max_element(row, row + vocab);
    double sum = 0;
    for (int v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - max_logit);
    total += max_logit + std::log(sum) - row[tokens[t + 1]];
  }
  return total / double(tokens.size() - 1);
}

}  // namespace r1
