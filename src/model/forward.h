#pragma once

#include "model/backend.h"
#include "model/config.h"

namespace r1 {

// One forward pass of the decoder over `batch`; writes [batch.logit_count(), vocab] logits.
void forward(Backend& backend, const ModelConfig& config, const Batch& batch, float* logits);

// The same pass ending in the greedy choice of each logit row: [batch.logit_count()] token ids.
void forward_greedy(Backend& backend, const ModelConfig& config, const Batch& batch, int* tokens);

}  // namespace r1
