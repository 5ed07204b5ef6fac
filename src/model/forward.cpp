#include "model/forward.h"

#include <vector>

#include "model/greedy.h"

namespace r1 {

// The DeepSeek decoder (DESIGN.md §3), written once for every backend: pre-norm residual
// blocks of MLA attention and a dense MLP or MoE feed-forward.
namespace {

// The decoder up to the final norm: the normed hidden states of the rows whose logits are wanted.
Activation forward_hidden(Backend& backend, const ModelConfig& config, const Batch& batch) {
  const int n = batch.size(), hidden = config.hidden_size;
  Activation h = backend.activation(0, n, hidden);  // residual stream
  Activation x = backend.activation(1, n, hidden);  // normed input of a block
  Activation y = backend.activation(2, n, hidden);  // output of a block

  backend.prepare(batch);
  backend.embed(h);
  Activation pending{};  // the last block's output, added to h by the next norm
  for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
    backend.rmsnorm(layer, Norm::attention, h, pending, x);
    backend.attention(layer, x, y);
    backend.rmsnorm(layer, Norm::ffn, h, y, x);
    if (config.is_moe_layer(layer))
      backend.moe(layer, x, y);
    else
      backend.mlp(layer, x, y);
    pending = y;
  }
  if (pending.data) backend.add(h, pending);
  if (!batch.logit_rows.empty()) {  // only the rows whose logits are wanted go on
    Activation picked = backend.activation(3, batch.logit_count(), hidden);
    backend.select_rows(h, batch.logit_rows, picked);
    h = picked;
    x.tokens = picked.tokens;
  }
  backend.final_norm(h, x);
  return x;
}

}  // namespace

void forward(Backend& backend, const ModelConfig& config, const Batch& batch, float* logits) {
  backend.lm_head(forward_hidden(backend, config, batch), logits);
}

void forward_greedy(Backend& backend, const ModelConfig& config, const Batch& batch, int* tokens) {
  backend.lm_head_argmax(forward_hidden(backend, config, batch), config.vocab_size, tokens);
}

void Backend::lm_head_argmax(Activation x, int vocab, int* host_tokens) {
  std::vector<float> logits(size_t(x.tokens) * vocab);
  lm_head(x, logits.data());
  for (int t = 0; t < x.tokens; ++t) host_tokens[t] = greedy_token({logits.data() + size_t(t) * vocab, size_t(vocab)});
}

}  // namespace r1
