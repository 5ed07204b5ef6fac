// The greedy choice over a row of logits, shared by the sampler (temperature 0) and the backends'
// lm_head_argmax: the largest logit, the lowest id among equal maxima; an empty row, a NaN or a
// row of -inf is an error (there is nothing to choose).
#pragma once

#include <span>

namespace r1 {

float max_logit(std::span<const float> logits);  // after the checks above
int greedy_token(std::span<const float> logits);

}  // namespace r1
