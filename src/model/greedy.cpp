#include "model/greedy.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace r1 {

float max_logit(std::span<const float> logits) {
  if (logits.empty()) fail("sampling from an empty logits row");
  float best = -INFINITY;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isnan(logits[i])) fail("logits contain NaN (token {})", i);
    best = std::max(best, logits[i]);
  }
  if (best == -INFINITY) fail("every logit is -inf: no token can be sampled");
  return best;
}

int greedy_token(std::span<const float> logits) {
  max_logit(logits);  // the same checks as sampling: non-empty, no NaN
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return int(best);
}

}  // namespace r1
