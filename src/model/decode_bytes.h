// Bytes a decode step reads from memory: the weights it multiplies by (attention, dense MLPs,
// router, shared experts, the routed experts chosen, lm_head, one embedding row) and the KV
// cache rows it attends over. The numerator of "fraction of memory bandwidth" (DESIGN.md §6).
#pragma once

#include "model/config.h"
#include "model/weights.h"

namespace r1 {

// One decode step of `batch` sequences whose contexts average `context` positions, with the
// cache stored as `cache_bytes_per_value`-byte values. With batch > 1 the routed experts read
// are the expected number of distinct experts under uniform routing, an estimate.
double decode_bytes_per_step(const ModelConfig& config, const ModelWeights& weights, int batch, double context,
                             int cache_bytes_per_value);

}  // namespace r1
