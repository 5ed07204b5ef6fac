// Teacher-forced scoring: logits at every position of a token sequence, and its mean NLL.
#pragma once

#include <vector>

#include "model/backend.h"
#include "model/config.h"

namespace r1 {

// Feeds `tokens` through the model `chunk` tokens per forward call (chunk <= 0: all at once)
// as sequence slot 0; returns logits [tokens.size(), vocab] row-major.
std::vector<float> teacher_forced_logits(Backend& backend, const ModelConfig& config,
                                         const std::vector<int>& tokens, int chunk);

// Mean over positions t < T-1 of -log softmax(logits[t])[tokens[t+1]]; NaN when T < 2.
double mean_nll(const std::vector<float>& logits, const std::vector<int>& tokens, int vocab);

}  // namespace r1
