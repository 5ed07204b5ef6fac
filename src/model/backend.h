// The coarse operations the forward pass is written against. A backend (cpu/, cuda/) owns the
// weights' placement, the activations, the latent KV cache and its own fusions.
#pragma once

#include <span>
#include <vector>

namespace r1 {

// The tokens of one forward call. Tokens of several sequences may be mixed; each token
// attends to the cached positions [0, position] of its own sequence.
struct Batch {
  std::vector<int> tokens;     // [n]
  std::vector<int> positions;  // [n] position of each token in its sequence, from 0
  std::vector<int> sequences;  // [n] KV cache slot of each token's sequence
  // Tokens whose logits the forward call returns, in this order; empty: every token. During
  // prefill only the last prompt token's logits are sampled from.
  std::vector<int> logit_rows;
  int size() const { return int(tokens.size()); }
  int logit_count() const { return logit_rows.empty() ? size() : int(logit_rows.size()); }
};

// A [tokens, dim] float32 activation matrix in the backend's memory.
struct Activation {
  float* data = nullptr;
  int tokens = 0, dim = 0;
};

enum class Norm { attention, ffn };  // input_layernorm, post_attention_layernorm

// exact: float32 activations and accumulation over the decoded weights (what the golden tests
// check). fast: DeepSeek's serving numerics where a backend has them: activations quantized to
// FP8 per 1×128 block for the FP8 matrix products, a BF16 latent cache, tensor cores.
enum class Numerics { exact, fast };  // input_layernorm, post_attention_layernorm

class Backend {
 public:
  virtual ~Backend() = default;

  // Reusable buffer `slot` sized for [tokens, dim]; valid until the next call with that slot.
  virtual Activation activation(int slot, int tokens, int dim) = 0;
  // The latent KV cache: `num_pages` pages of `page_size` positions each (every layer), shared
  // by all sequences. Discards the previous cache and every sequence's pages.
  virtual void configure_kv_cache(int num_pages, int page_size) = 0;
  // Sequence `slot` keeps position p in row p % page_size of page pages[p / page_size]. The
  // engine owns the allocation; a sequence's pages may be any pages, in any order.
  virtual void set_sequence_pages(int slot, std::span<const int> pages) = 0;
  // Called once per forward call before any op, with the batch every op of that call sees.
  virtual void prepare(const Batch& batch) = 0;

  virtual void embed(Activation h) = 0;
  // h += delta (skipped when delta.data is null: the residual add fused with the norm), then
  // out = rmsnorm(h) with the layer's `which` weight.
  virtual void rmsnorm(int layer, Norm which, Activation h, Activation delta, Activation out) = 0;
  virtual void final_norm(Activation h, Activation out) = 0;
  virtual void add(Activation h, Activation delta) = 0;  // h += delta
  virtual void select_rows(Activation h, std::span<const int> rows, Activation out) = 0;  // out[i] = h[rows[i]]
  virtual void attention(int layer, Activation x, Activation out) = 0;
  virtual void mlp(int layer, Activation x, Activation out) = 0;
  virtual void moe(int layer, Activation x, Activation out) = 0;
  virtual void lm_head(Activation x, float* host_logits) = 0;  // [tokens, vocab] in host memory
  // The greedy choice of each row, as greedy_token (src/engine/sampler.h) makes it: the argmax of
  // the row's logits, the lowest id among equal maxima; fails on NaN or an all -inf row. This
  // default computes the logits with lm_head; a backend can answer without copying them out.
  virtual void lm_head_argmax(Activation x, int vocab, int* host_tokens);
  // Whether a prompt chunk attends in MLA's expanded form where that takes fewer multiply-adds
  // (expanded_form_pays, model/decode_bytes.h), rather than always absorbed: the benchmark's
  // count of prefill FLOPs follows it.
  virtual bool expands_prompt_chunks() const { return false; }
};

}  // namespace r1
