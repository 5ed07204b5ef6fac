#include "model/forward.h"

namespace r1 {

// The DeepSeek decoder (DESIGN.md §3), written once for every backend: pre-norm residual
// blocks of MLA attention and a dense MLP or MoE feed-forward.
void forward(Backend& backend, const ModelConfig& config, const Batch& batch, float* logits) {
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
  backend.lm_head(x, logits);
}

}  // namespace r1
