// MLA attention on the CPU: the projections and the cache writes, then each run of a sequence's
// tokens in the absorbed form (queries mapped into the latent space with W_UK, attending over the
// cached latents c and roped k_pe, the result mapped out with W_UV) or, for prompt chunks, the
// expanded one (cpu_attention_expanded.cpp).
#include <algorithm>

#include "common/error.h"
#include "cpu/cpu_backend.h"
#include "cpu/linear.h"
#include "cpu/mla_core.h"
#include "model/decode_bytes.h"
#include "r1/number_formats.h"

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
  kv_.resize(size_t(n) * cache_dim);
  // kv_a keeps float32-grade activations in fast numerics too (split in BF16 hi and lo): the
  // cache keeps its output for every later position, and attention amplifies the error
  // (docs/PERFORMANCE.md: the demo model's worst cosine 0.99984 with q_a in BF16, 0.99941 with
  // kv_a too). The queries' first product and kv_a read the same x: one dispatch.
  const LinearJob kv_a{.w = &lw.kv_a, .x = x.data, .tokens = n, .y = kv_.data(), .split = true};
  if (cfg_.q_lora_rank > 0) {
    q_latent_.resize(size_t(n) * cfg_.q_lora_rank);
    const LinearJob jobs[] = {{.w = &lw.q_a, .x = x.data, .tokens = n, .y = q_latent_.data()}, kv_a};
    linear_many(pool_, jobs, fast_);
    rmsnorm_rows(q_latent_.data(), nullptr, norms_[layer].q_a.data(), n, cfg_.q_lora_rank, q_latent_.data());
    project(lw.q_b, q_latent_.data(), n, q_.data());
  } else {
    const LinearJob jobs[] = {{.w = &lw.q_proj, .x = x.data, .tokens = n, .y = q_.data()}, kv_a};
    linear_many(pool_, jobs, fast_);
  }

  // Rope q_pe of every head and k_pe; write normed c and roped k_pe to the cache (the tokens
  // split between the threads: 3% of a long prompt's attention on one).
  for (int t = 0; t < n; ++t) {
    const int pos = batch.positions[t], seq = batch.sequences[t];
    if (seq < 0 || seq >= int(sequence_pages_.size()) || pos >= int(sequence_pages_[seq].size()) * page_size_)
      fail("internal: position {} of sequence {} beyond its KV cache pages", pos, seq);
  }
  pool_.parallel_for(n, [&](int begin, int end, int) {
    thread_local std::vector<float> cosines, sines;  // a position's rotations, shared by its heads
    thread_local std::vector<float> row;             // fast numerics: the row before its rounding
    cosines.resize(size_t(rope_dim / 2));
    sines.resize(size_t(rope_dim / 2));
    row.resize(size_t(cache_dim));
    for (int t = begin; t < end; ++t) {
      const int pos = batch.positions[t];
      for (int i = 0; i < rope_dim / 2; ++i)
        rope_cos_sin(rope_frequencies_[size_t(i)], pos, rope_mag, &cosines[size_t(i)], &sines[size_t(i)]);
      const auto rotate = [&](float* x) {
        for (int i = 0; i < rope_dim / 2; ++i) rope_rotate(x + 2 * i, cosines[size_t(i)], sines[size_t(i)]);
      };
      for (int h = 0; h < heads; ++h) rotate(q_.data() + (int64_t(t) * heads + h) * qk_dim + cfg_.qk_nope_head_dim);
      float* kv = kv_.data() + int64_t(t) * cache_dim;
      const int64_t at = cache_offset(layer, batch.sequences[t], pos);
      float* cached = fast_ ? row.data() : cache_.data() + at;
      rmsnorm_row(kv, norms_[layer].kv_a.data(), latent_dim, cfg_.rms_norm_eps, cached);
      std::copy(kv + latent_dim, kv + cache_dim, cached + latent_dim);
      rotate(cached + latent_dim);
      if (fast_)
        for (int i = 0; i < cache_dim; ++i) cache_bf16_[size_t(at + i)] = float_to_bf16(cached[i]);
    }
  });

  attn_out_.resize(size_t(n) * heads * cfg_.v_head_dim);
  attend(layer, batch, heads);
  project(lw.o_proj, attn_out_.data(), n, out.data);
  all_reduce(out);  // o_proj is split by its input columns: each rank holds a partial sum
}

// Each run of a sequence's consecutive positions in the batch attends in the form that costs it
// less (expanded_form_pays): a prompt chunk expanded, a decode step's token absorbed. Whether a
// run is expanded depends on its own positions only, and the engine cuts prompts into chunks at
// the same positions whatever the batch (batch invariance).
void CpuBackend::attend(int layer, const Batch& batch, int heads) {
  absorbed_tokens_.clear();
  for (int begin = 0, end; begin < batch.size(); begin = end) {
    const int seq = batch.sequences[begin], first = batch.positions[begin];
    for (end = begin + 1; end < batch.size(); ++end)
      if (batch.sequences[end] != seq || batch.positions[end] != first + (end - begin)) break;
    const bool expanded = attention_form_ == AttentionForm::automatic
                              ? expanded_form_pays(cfg_, first, end - begin)
                              : attention_form_ == AttentionForm::expanded;
    if (expanded)
      attend_expanded(layer, batch, begin, end, heads);
    else
      for (int t = begin; t < end; ++t) absorbed_tokens_.push_back(t);
  }
  if (!absorbed_tokens_.empty()) attend_absorbed(layer, batch, absorbed_tokens_, heads);
}

// The absorbed form in three passes, each over the unit that keeps its data in the caches:
// per head, the queries absorbed into the latent space (q_nope · W_UK, beside q_pe); per token
// and block of heads, scores and weighted latent sums, every cached row read once for the
// block (MLA's latent is shared by all heads); per head, the latent sums mapped out by W_UV.
// Each output's sums run in the same order whatever the batch and the split (batch invariance).
void CpuBackend::attend_absorbed(int layer, const Batch& batch, std::span<const int> tokens, int heads) {
  const LayerWeights& lw = w_.layers[layer];
  const int n = int(tokens.size()), all = batch.size(), qk_dim = cfg_.qk_head_dim(), nope = cfg_.qk_nope_head_dim;
  const int v_dim = cfg_.v_head_dim, latent_dim = cfg_.kv_lora_rank, cache_dim = cfg_.kv_cache_dim();
  q_absorbed_.resize(size_t(all) * heads * cache_dim);
  o_latent_.resize(size_t(all) * heads * latent_dim);

  // A head's product runs on one thread (tokens gathered to [n][in]): W_UK's rows (kv_b's first
  // nope rows of the head) are the queries' dimensions, a column product (fast numerics: a row
  // product on their transposed copy); W_UV's (the next v_dim) are the values', a row product
  // (fast numerics: on their copy, activations split).
  pool_.parallel_for(heads, [&](int begin, int end, int) {
    thread_local std::vector<float> q_nope, absorbed;
    q_nope.resize(size_t(n) * nope);
    absorbed.resize(size_t(n) * latent_dim);
    for (int h = begin; h < end; ++h) {
      for (int i = 0; i < n; ++i)
        std::copy_n(q_.data() + (int64_t(tokens[i]) * heads + h) * qk_dim, nope, q_nope.data() + int64_t(i) * nope);
      const simd::Rows* panels = fast_ ? &head_panels_[size_t(layer)].w_uk[size_t(h)] : nullptr;
      const int w_uk = h * (nope + v_dim);
      if (panels && panels->data)
        linear_fast_here(*panels, q_nope.data(), n, absorbed.data(), *fast_);
      else
        columns_here(output_slice(lw.kv_b, w_uk, w_uk + nope), q_nope.data(), n, absorbed.data());
      for (int i = 0; i < n; ++i) {
        const float* q_head = q_.data() + (int64_t(tokens[i]) * heads + h) * qk_dim;
        float* row = q_absorbed_.data() + (int64_t(tokens[i]) * heads + h) * cache_dim;
        std::copy_n(absorbed.data() + int64_t(i) * latent_dim, latent_dim, row);
        std::copy(q_head + nope, q_head + qk_dim, row + latent_dim);
      }
    }
  });

  // Blocks of kMlaCoreHeads heads (R1's 128: two a token, so that one token's attention takes
  // both threads). Tokens in the order 0, n-1, 1, n-2, ...: a prompt's later tokens attend to
  // longer prefixes, and each thread's contiguous range of units then holds as many long as short
  // ones (in token order the last thread took 30% longer than the first on a 256-token chunk).
  const int blocks = (heads + kMlaCoreHeads - 1) / kMlaCoreHeads;
  pool_.parallel_for(n * blocks, [&](int begin, int end, int) {
    thread_local std::vector<const float*> rows;
    thread_local std::vector<const uint16_t*> bf16_rows;
    for (int unit = begin; unit < end; ++unit) {
      const int k = unit / blocks, t = tokens[k % 2 == 0 ? k / 2 : n - 1 - k / 2], h0 = unit % blocks * kMlaCoreHeads;
      const int seq = batch.sequences[t], len = batch.positions[t] + 1;
      const auto gather = [&](auto& pointers, const auto* cache) {  // the sequence's cached rows, in order
        pointers.resize(size_t(len));
        for (int j = 0; j < len; ++j) pointers[size_t(j)] = cache + cache_offset(layer, seq, j);
        return pointers.data();
      };
      const MlaCoreShape shape{std::min(kMlaCoreHeads, heads - h0), len, cache_dim, latent_dim, cfg_.softmax_scale()};
      const float* q = q_absorbed_.data() + (int64_t(t) * heads + h0) * cache_dim;
      float* o = o_latent_.data() + (int64_t(t) * heads + h0) * latent_dim;
      if (fast_)
        fast_->mla_attend(shape, q, gather(bf16_rows, cache_bf16_.data()), o);
      else
        mla_attend(shape, q, gather(rows, cache_.data()), o);
    }
  });

  pool_.parallel_for(heads, [&](int begin, int end, int) {
    thread_local std::vector<float> latent, values;
    latent.resize(size_t(n) * latent_dim);
    values.resize(size_t(n) * v_dim);
    for (int h = begin; h < end; ++h) {
      for (int i = 0; i < n; ++i)
        std::copy_n(o_latent_.data() + (int64_t(tokens[i]) * heads + h) * latent_dim, latent_dim,
                    latent.data() + int64_t(i) * latent_dim);
      const simd::Rows* panels = fast_ ? &head_panels_[size_t(layer)].w_uv[size_t(h)] : nullptr;
      const int w_uv = h * (nope + v_dim) + nope;  // kv_b rows of head h: nope of W_UK, then v_dim of W_UV
      if (panels && panels->data)
        linear_fast_here(*panels, latent.data(), n, values.data(), *fast_, true);
      else
        linear_here(output_slice(lw.kv_b, w_uv, w_uv + v_dim), latent.data(), n, values.data());
      for (int i = 0; i < n; ++i)
        std::copy_n(values.data() + int64_t(i) * v_dim, v_dim, attn_out_.data() + (int64_t(tokens[i]) * heads + h) * v_dim);
    }
  });
}

}  // namespace r1
