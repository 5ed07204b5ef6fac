// MLA attention on the CPU in the absorbed form: queries are mapped into the latent space with
// W_UK, attend over the cached latents c and roped k_pe, and the result is mapped out with W_UV.
#include <algorithm>

#include "common/error.h"
#include "cpu/cpu_backend.h"
#include "cpu/linear.h"
#include "cpu/vector_math.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define R1_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define R1_VECTOR_CLONES
#endif

namespace r1 {

namespace {
// o[h][c] = Σ_j p[h][j] · rows[j][c] for c in [c0, c0 + kValueWidth), `heads` (<= kValueHeads)
// heads, j in order: the accumulators stay in registers over all positions instead of a load
// and a store of o per position and head.
constexpr int kValueHeads = 4, kValueWidth = 64;
R1_VECTOR_CLONES
void weighted_rows(const float* p, int64_t p_stride, int heads, const float* const* rows, int len, int c0,
                   float* o, int64_t o_stride) {
  float acc[kValueHeads][kValueWidth] = {};
  for (int j = 0; j < len; ++j) {
    const float* row = rows[j] + c0;
    for (int h = 0; h < kValueHeads; ++h) {
      const float w = h < heads ? p[h * p_stride + j] : 0.0f;
      for (int l = 0; l < kValueWidth; ++l) acc[h][l] += w * row[l];
    }
  }
  for (int h = 0; h < heads; ++h)
    for (int l = 0; l < kValueWidth; ++l) o[h * o_stride + c0 + l] = acc[h][l];
}

}  // namespace

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
  // The two projections into the latent space keep float32 activations in fast numerics too:
  // attention amplifies their errors (and the cache keeps kv_a's for every later position),
  // and they hold ~3% of a layer's weights (docs/PERFORMANCE.md: the demo model's cosine).
  // They read the same x: one dispatch.
  if (cfg_.q_lora_rank > 0) {
    q_latent_.resize(size_t(n) * cfg_.q_lora_rank);
    const LinearJob jobs[] = {{&lw.q_a, x.data, n, q_latent_.data()}, {&lw.kv_a, x.data, n, kv_.data()}};
    linear_many(pool_, jobs, nullptr);
    for (int t = 0; t < n; ++t) {
      float* row = q_latent_.data() + int64_t(t) * cfg_.q_lora_rank;
      rmsnorm_row(row, norms_[layer].q_a.data(), cfg_.q_lora_rank, cfg_.rms_norm_eps, row);
    }
    project(lw.q_b, q_latent_.data(), n, q_.data());
  } else {
    project(lw.q_proj, x.data, n, q_.data());
    linear(pool_, lw.kv_a, x.data, n, kv_.data());
  }

  // Rope q_pe of every head and k_pe; write normed c and roped k_pe to the cache (the tokens
  // split between the threads: 3% of a long prompt's attention on one).
  for (int t = 0; t < n; ++t) {
    const int pos = batch.positions[t], seq = batch.sequences[t];
    if (seq < 0 || seq >= int(sequence_pages_.size()) || pos >= int(sequence_pages_[seq].size()) * page_size_)
      fail("internal: position {} of sequence {} beyond its KV cache pages", pos, seq);
  }
  pool_.parallel_for(n, [&](int begin, int end, int) {
    for (int t = begin; t < end; ++t) {
      const int pos = batch.positions[t];
      for (int h = 0; h < heads; ++h)
        apply_rope(q_.data() + (int64_t(t) * heads + h) * qk_dim + cfg_.qk_nope_head_dim,
                   rope_frequencies_.data(), rope_dim, pos, rope_mag);
      float* kv = kv_.data() + int64_t(t) * cache_dim;
      float* cached = cache_row(layer, batch.sequences[t], pos);
      rmsnorm_row(kv, norms_[layer].kv_a.data(), latent_dim, cfg_.rms_norm_eps, cached);
      std::copy(kv + latent_dim, kv + cache_dim, cached + latent_dim);
      apply_rope(cached + latent_dim, rope_frequencies_.data(), rope_dim, pos, rope_mag);
    }
  });

  attend(layer, batch, heads);
  project(lw.o_proj, attn_out_.data(), n, out.data);
  all_reduce(out);  // o_proj is split by its input columns: each rank holds a partial sum
}

// Attention in three passes, each over the unit that keeps its data in the caches:
// per head, the queries absorbed into the latent space (q_nope · W_UK, beside q_pe); per token
// and block of heads, scores and weighted latent sums, every cached row read once for the
// block (MLA's latent is shared by all heads); per head, the latent sums mapped out by W_UV.
// Each output's sums run in the same order whatever the batch and the split (batch invariance).
void CpuBackend::attend(int layer, const Batch& batch, int heads) {
  const LayerWeights& lw = w_.layers[layer];
  const int n = batch.size(), qk_dim = cfg_.qk_head_dim(), nope = cfg_.qk_nope_head_dim, v_dim = cfg_.v_head_dim;
  const int latent_dim = cfg_.kv_lora_rank, cache_dim = cfg_.kv_cache_dim();
  q_absorbed_.resize(size_t(n) * heads * cache_dim);
  o_latent_.resize(size_t(n) * heads * latent_dim);
  attn_out_.resize(size_t(n) * heads * v_dim);

  // Both products of a head run on one thread (tokens gathered to [n][in]): W_UK's rows (kv_b's
  // first nope rows of the head) are the queries' dimensions, a column product; W_UV's (the
  // next v_dim) are the values', a row product.
  pool_.parallel_for(heads, [&](int begin, int end, int) {
    thread_local std::vector<float> q_nope, absorbed;
    q_nope.resize(size_t(n) * nope);
    absorbed.resize(size_t(n) * latent_dim);
    for (int h = begin; h < end; ++h) {
      for (int t = 0; t < n; ++t)
        std::copy_n(q_.data() + (int64_t(t) * heads + h) * qk_dim, nope, q_nope.data() + int64_t(t) * nope);
      const int w_uk = h * (nope + v_dim);
      columns_here(output_slice(lw.kv_b, w_uk, w_uk + nope), q_nope.data(), n, absorbed.data());
      for (int t = 0; t < n; ++t) {
        const float* q_head = q_.data() + (int64_t(t) * heads + h) * qk_dim;
        float* row = q_absorbed_.data() + (int64_t(t) * heads + h) * cache_dim;
        std::copy_n(absorbed.data() + int64_t(t) * latent_dim, latent_dim, row);
        std::copy(q_head + nope, q_head + qk_dim, row + latent_dim);
      }
    }
  });

  // Blocks of 16 heads: a block's latent sums stay in L1, R1's 128 heads give 8 blocks a token.
  constexpr int block = 16;
  const int blocks = (heads + block - 1) / block;
  // Tokens in the order 0, n-1, 1, n-2, ...: a prompt's later tokens attend to longer prefixes,
  // and each thread's contiguous range of units then holds as many long as short ones (in
  // token order the last thread took 30% longer than the first on a 256-token chunk).
  pool_.parallel_for(n * blocks, [&](int begin, int end, int) {
    for (int unit = begin; unit < end; ++unit) {
      const int k = unit / blocks, t = k % 2 == 0 ? k / 2 : n - 1 - k / 2, h0 = unit % blocks * block;
      attend_token(layer, batch, t, heads, h0, std::min(heads, h0 + block));
    }
  });

  pool_.parallel_for(heads, [&](int begin, int end, int) {
    thread_local std::vector<float> latent, values;
    latent.resize(size_t(n) * latent_dim);
    values.resize(size_t(n) * v_dim);
    for (int h = begin; h < end; ++h) {
      for (int t = 0; t < n; ++t)
        std::copy_n(o_latent_.data() + (int64_t(t) * heads + h) * latent_dim, latent_dim,
                    latent.data() + int64_t(t) * latent_dim);
      const int w_uv = h * (nope + v_dim) + nope;  // kv_b rows of head h: nope of W_UK, then v_dim of W_UV
      linear_here(output_slice(lw.kv_b, w_uv, w_uv + v_dim), latent.data(), n, values.data());
      for (int t = 0; t < n; ++t)
        std::copy_n(values.data() + int64_t(t) * v_dim, v_dim, attn_out_.data() + (int64_t(t) * heads + h) * v_dim);
    }
  });
}

// Token t against its sequence's cache for heads [h0, h1): softmax(q · c_j · scale) over the
// positions j <= its own, then the weighted sum of the latents c_j.
R1_VECTOR_CLONES
void CpuBackend::attend_token(int layer, const Batch& batch, int t, int heads, int h0, int h1) {
  const int latent_dim = cfg_.kv_lora_rank, cache_dim = cfg_.kv_cache_dim(), count = h1 - h0;
  const int seq = batch.sequences[t], len = batch.positions[t] + 1;
  const float scale = cfg_.softmax_scale();
  const float* q = q_absorbed_.data() + (int64_t(t) * heads + h0) * cache_dim;
  thread_local std::vector<float> scores, page_scores;
  thread_local std::vector<const float*> rows;
  scores.resize(size_t(count) * len);
  page_scores.resize(size_t(count) * page_size_);
  rows.resize(len);
  for (int j = 0; j < len; ++j) rows[j] = cache_row(layer, seq, j);
  // The scores a page at a time: its cached rows are a float32 matrix for the row kernels, the
  // heads' absorbed queries its tokens (each score summed in the kernels' fixed order).
  for (int j0 = 0; j0 < len; j0 += page_size_) {
    const int page_rows = std::min(page_size_, len - j0);
    const simd::Rows page{simd::WeightType::f32, rows[j0], nullptr, page_rows, cache_dim, 0, 0, cache_dim};
    rows_here(page, q, count, page_scores.data());
    for (int k = 0; k < count; ++k)
      for (int j = 0; j < page_rows; ++j) scores[size_t(k) * len + j0 + j] = page_scores[size_t(k) * page_rows + j] * scale;
  }
  for (int h = 0; h < count; ++h) {
    float* row = scores.data() + size_t(h) * len;
    const float max_score = *std::max_element(row, row + len);
    for (int j = 0; j < len; ++j) row[j] = exp_approx(row[j] - max_score);
    float lane_sums[16] = {};  // 16 partial sums (vectorized), folded in a fixed order
    const int whole_lanes = len / 16 * 16;
    for (int j = 0; j < whole_lanes; j += 16)
      for (int l = 0; l < 16; ++l) lane_sums[l] += row[j + l];
    for (int j = whole_lanes; j < len; ++j) lane_sums[j - whole_lanes] += row[j];
    float sum = 0;
    for (float s : lane_sums) sum += s;
    for (int j = 0; j < len; ++j) row[j] /= sum;
  }
  float* o = o_latent_.data() + (int64_t(t) * heads + h0) * latent_dim;
  const int whole = latent_dim / kValueWidth * kValueWidth;
  for (int h = 0; h < count; h += kValueHeads) {
    const int group = std::min(kValueHeads, count - h);
    for (int c0 = 0; c0 < whole; c0 += kValueWidth)
      weighted_rows(scores.data() + size_t(h) * len, len, group, rows.data(), len, c0, o + int64_t(h) * latent_dim, latent_dim);
    for (int k = h; k < h + group; ++k)  // columns past the last whole block, in the same j order
      for (int c = whole; c < latent_dim; ++c) {
        float sum_c = 0;
        for (int j = 0; j < len; ++j) sum_c += scores[size_t(k) * len + j] * rows[j][c];
        o[int64_t(k) * latent_dim + c] = sum_c;
      }
  }
}

}  // namespace r1
