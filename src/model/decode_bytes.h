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

// Multiply-add FLOPs (2 per product) one prompt token takes, as the engine computes them: the
// matrix products (the projections, kv_b applied absorbed, the dense MLP or the router, shared
// expert and num_experts_per_tok experts) and attention in the absorbed form over `context`
// positions on average (every head's scores over the cached latent and k_pe, its weighted sum of
// latents: at R1's shapes and a 512-token prompt 6% of the total). Not the lm_head: prefill
// applies it to the last token only.
double prefill_flops_per_token(const ModelConfig& config, const ModelWeights& weights, double context);

}  // namespace r1
