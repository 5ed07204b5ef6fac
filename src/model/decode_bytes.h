// The engine's cost model. Bytes a decode step reads from memory: the weights it multiplies by
// (attention, dense MLPs, router, shared experts, the routed experts chosen, lm_head, one
// embedding row) and the KV cache rows it attends over, the numerator of "fraction of memory
// bandwidth" (DESIGN.md §6); the multiply-adds of MLA's two forms of attention, which pick the
// form of a prompt chunk; and the FLOPs of a prompt, the numerator of a prefill's fraction of
// the arithmetic peak.
#pragma once

#include "model/config.h"
#include "model/weights.h"

namespace r1 {

// One decode step of `batch` sequences whose contexts average `context` positions, with the
// cache stored as `cache_bytes_per_value`-byte values. With batch > 1 the routed experts read
// are the expected number of distinct experts under uniform routing, an estimate.
double decode_bytes_per_step(const ModelConfig& config, const ModelWeights& weights, int batch, double context,
                             int cache_bytes_per_value);

// Whether MLA attention in the expanded form (keys and values mapped up from each cached latent
// by kv_b, then ordinary multi-head attention) takes fewer multiply-adds than the absorbed form
// (queries mapped into the latent space) for `tokens` queries of one sequence from position
// `first` on. A prompt chunk from position 0: always; a decode step's token: never.
bool expanded_form_pays(const ModelConfig& config, int first, int tokens);

// Multiply-add FLOPs (2 per product) a prompt of `prompt_len` tokens takes, as the engine
// computes it in chunks of `chunk` (cut at multiples of it): the matrix products (the
// projections, the dense MLP or the router, shared expert and num_experts_per_tok experts) and
// attention, each chunk in the expanded form where expands_chunks and it pays (kv_b on every
// cached row; scores and weighted values of qk_head_dim + v_head_dim a head and pair), else
// absorbed (kv_b on each token; kv_cache_dim + kv_lora_rank a head and pair); causal pairs only.
// Not the lm_head: prefill applies it to the last token only.
double prompt_flops(const ModelConfig& config, const ModelWeights& weights, int prompt_len, int chunk,
                    bool expands_chunks);

}  // namespace r1
