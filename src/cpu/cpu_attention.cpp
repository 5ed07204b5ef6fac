// MLA attention on the CPU in the absorbed form: queries are mapped into the latent space with
// W_UK, attend over the cached latents c and roped k_pe, and the result is mapped out with W_UV.
#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "cpu/cpu_backend.h"
#include "cpu/linear.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define R1_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define R1_VECTOR_CLONES
#endif

namespace r1 {

void CpuBackend::attention(int layer, Activation x, Activation out) {
  const Batch& batch = *batch_;
  const LayerWeights& lw = w_.layers[layer];
  // This rank's heads (all of them unsharded); the latent cache is whole on every rank.
  const int n = batch.size(), heads = rank().heads.size(), qk_dim = cfg_.qk_head_dim();
  const int latent_dim = cfg_.kv_lora_rank, rope_dim = cfg_.qk_rope_head_dim;
  const int cache_dim = cfg_.kv_cache_dim();
  const float rope_mag = rope_magnitude(cfg_.rope);

  q_.resize(size_t(n) * heads * qk_dim);
  if (cfg_.q_lora_rank > 0) {
    q_latent_.resize(size_t(n) * cfg_.q_lora_rank);
    // The two projections into the latent space keep float32 activations in fast numerics too:
    // attention amplifies their errors (and the cache keeps kv_a's for every later position),
    // and they hold ~3% of a layer's weights (docs/PERFORMANCE.md: the demo model's cosine).
    linear(pool_, lw.q_a, x.data, n, q_latent_.data());
    for (int t = 0; t < n; ++t) {
      float* row = q_latent_.data() + int64_t(t) * cfg_.q_lora_rank;
      rmsnorm_row(row, norms_[layer].q_a.data(), cfg_.q_lora_rank, cfg_.rms_norm_eps, row);
    }
    project(lw.q_b, q_latent_.data(), n, q_.data());
  } else {
    project(lw.q_proj, x.data, n, q_.data());
  }
  kv_.resize(size_t(n) * cache_dim);
  linear(pool_, lw.kv_a, x.data, n, kv_.data());

  // Rope q_pe of every head and k_pe; write normed c and roped k_pe to the cache.
  for (int t = 0; t < n; ++t) {
    const int pos = batch.positions[t];
    const int seq = batch.sequences[t];
    if (seq < 0 || seq >= int(sequence_pages_.size()) || pos >= int(sequence_pages_[seq].size()) * page_size_)
      fail("internal: position {} of sequence {} beyond its KV cache pages", pos, seq);
    for (int h = 0; h < heads; ++h)
      apply_rope(q_.data() + (int64_t(t) * heads + h) * qk_dim + cfg_.qk_nope_head_dim,
                 rope_frequencies_.data(), rope_dim, pos, rope_mag);
    float* kv = kv_.data() + int64_t(t) * cache_dim;
    float* cached = cache_row(layer, seq, pos);
    rmsnorm_row(kv, norms_[layer].kv_a.data(), latent_dim, cfg_.rms_norm_eps, cached);
    std::copy(kv + latent_dim, kv + cache_dim, cached + latent_dim);
    apply_rope(cached + latent_dim, rope_frequencies_.data(), rope_dim, pos, rope_mag);
  }

  attn_out_.resize(size_t(n) * heads * cfg_.v_head_dim);
  pool_.parallel_for(heads, [&](int begin, int end, int) {
    thread_local std::vector<float> kv_b_rows;
    for (int h = begin; h < end; ++h) attend_head(layer, h, batch, q_.data(), attn_out_.data(), kv_b_rows);
  });
  project(lw.o_proj, attn_out_.data(), n, out.data);
  all_reduce(out);  // o_proj is split by its input columns: each rank holds a partial sum
}

// One head for every token of the batch. kv_b_rows: scratch for this head's W_UK and W_UV.
// Compiled twice, for AVX-512 CPUs (picked at load time where present) and for any x86-64: its
// loops are plain C++ that the compiler vectorizes, 16 lanes wide in the first.
R1_VECTOR_CLONES
void CpuBackend::attend_head(int layer, int head, const Batch& batch, const float* q, float* out,
                             std::vector<float>& kv_b_rows) {
  const LayerWeights& lw = w_.layers[layer];
  const int heads = rank().heads.size(), qk_dim = cfg_.qk_head_dim();  // head: this rank's index
  const int nope = cfg_.qk_nope_head_dim, v_dim = cfg_.v_head_dim;
  const int latent_dim = cfg_.kv_lora_rank, rope_dim = cfg_.qk_rope_head_dim;
  const float scale = cfg_.softmax_scale();

  // Rows of kv_b for this head: nope rows of W_UK then v_dim rows of W_UV, each latent_dim long.
  kv_b_rows.resize(size_t(nope + v_dim) * latent_dim);
  for (int r = 0; r < nope + v_dim; ++r)
    decode_row(lw.kv_b, head * (nope + v_dim) + r, kv_b_rows.data() + int64_t(r) * latent_dim);
  const float* w_uk = kv_b_rows.data();
  const float* w_uv = kv_b_rows.data() + int64_t(nope) * latent_dim;

  thread_local std::vector<float> q_latent, scores, o_latent;
  q_latent.resize(size_t(latent_dim));
  o_latent.resize(size_t(latent_dim));
  for (int t = 0; t < batch.size(); ++t) {
    const float* q_head = q + (int64_t(t) * heads + head) * qk_dim;
    const float* q_pe = q_head + nope;
    std::fill(q_latent.begin(), q_latent.end(), 0.0f);
    for (int d = 0; d < nope; ++d)
      for (int c = 0; c < latent_dim; ++c) q_latent[c] += q_head[d] * w_uk[int64_t(d) * latent_dim + c];

    const int seq = batch.sequences[t];
    const int len = batch.positions[t] + 1;
    scores.resize(size_t(len));
    float max_score = -INFINITY;
    for (int j = 0; j < len; ++j) {
      const float* cached = cache_row(layer, seq, j);
      scores[j] = (dot(q_latent.data(), cached, latent_dim) + dot(q_pe, cached + latent_dim, rope_dim)) * scale;
      max_score = std::max(max_score, scores[j]);
    }
    float sum = 0;
    for (int j = 0; j < len; ++j) sum += (scores[j] = std::exp(scores[j] - max_score));
    std::fill(o_latent.begin(), o_latent.end(), 0.0f);
    for (int j = 0; j < len; ++j) {
      const float p = scores[j] / sum;
      const float* cached = cache_row(layer, seq, j);
      for (int c = 0; c < latent_dim; ++c) o_latent[c] += p * cached[c];
    }
    float* o = out + (int64_t(t) * heads + head) * v_dim;
    for (int d = 0; d < v_dim; ++d) o[d] = dot(w_uv + int64_t(d) * latent_dim, o_latent.data(), latent_dim);
  }
}

}  // namespace r1
