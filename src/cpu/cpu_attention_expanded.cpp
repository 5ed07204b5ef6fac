// MLA attention on the CPU in the expanded form, for prompt chunks: each cached latent is mapped
// up to its head's key and value by kv_b (W_UK · c_j, W_UV · c_j) once per chunk, and the
// chunk's queries attend them as in ordinary multi-head attention, the form DeepSeek's reference
// prefills in ("naive"). A (query, cached row) pair then takes qk_head_dim + v_head_dim
// multiply-adds a head where the absorbed form takes kv_cache_dim + kv_lora_rank (R1: 320
// against 1088), for kv_lora_rank · (qk_nope_head_dim + v_head_dim) a head per cached row.
#include <algorithm>
#include <cmath>

#include "cpu/cpu_backend.h"
#include "cpu/linear.h"
#include "cpu/vector_math.h"
#include "r1/number_formats.h"

namespace r1 {

namespace {

// s[j] = softmax(scale · s)[j] for j < n, in place; 16 partial maxima and sums, combined in a
// fixed order (the compiler keeps them in one vector each).
R1_VECTOR_CLONES
void softmax_row(float* s, int n, float scale) {
  constexpr int kLanes = 16;
  const int whole = n / kLanes * kLanes;
  float high[kLanes], sum[kLanes] = {};
  std::fill_n(high, kLanes, -INFINITY);
  for (int j = 0; j < whole; j += kLanes)
    for (int l = 0; l < kLanes; ++l) high[l] = std::max(high[l], s[j + l]);
  for (int j = whole; j < n; ++j) high[j - whole] = std::max(high[j - whole], s[j]);
  const float peak = *std::max_element(high, high + kLanes) * scale;
  for (int j = 0; j < whole; j += kLanes)
    for (int l = 0; l < kLanes; ++l) sum[l] += s[j + l] = exp_approx(s[j + l] * scale - peak);
  for (int j = whole; j < n; ++j) sum[j - whole] += s[j] = exp_approx(s[j] * scale - peak);
  float total = 0;
  for (float x : sum) total += x;
  const float inverse = 1.0f / total;
  for (int j = 0; j < n; ++j) s[j] *= inverse;
}

// Keys [rows][nope + rope] (their two parts row-major) in BF16 panels (simd::panel_index),
// written in the panels' order.
void pack_keys(const float* nope_part, const float* rope_part, int rows, int nope, int rope, uint16_t* panels) {
  const int width = simd::kPanelWidth, dim = nope + rope;
  for (int panel = 0; panel * width < rows; ++panel)
    for (int c = 0; c < dim; c += 2) {
      uint16_t* out = panels + (int64_t(panel) * width * dim + int64_t(c) * width);
      const float* from = c < nope ? nope_part + c : rope_part + (c - nope);
      const int row_length = c < nope ? nope : rope;
      for (int r = 0; r < width && panel * width + r < rows; ++r) {
        const float* x = from + int64_t(panel * width + r) * row_length;
        out[2 * r] = float_to_bf16(x[0]);
        out[2 * r + 1] = float_to_bf16(x[1]);
      }
    }
}

// Queries a block of scores holds: a block attends to the rows up to its last position.
constexpr int kExpandedQueryBlock = 64;

// n rows rounded up to whole panels of keys.
int whole_panels(int n) { return (n + simd::kPanelWidth - 1) / simd::kPanelWidth * simd::kPanelWidth; }

}  // namespace

// Tokens [begin, end) of the batch: one sequence's consecutive positions. Per head on one thread:
// every cached row's key and value, then each block of queries' scores, the softmax over each
// query's causal prefix, and the weighted sums of the values, every sum in an order the
// positions fix: the same bits whatever the batch around the chunk.
void CpuBackend::attend_expanded(int layer, const Batch& batch, int begin, int end, int heads) {
  const int seq = batch.sequences[begin], rows = batch.positions[end - 1] + 1;
  const int qk_dim = cfg_.qk_head_dim(), nope = cfg_.qk_nope_head_dim, v_dim = cfg_.v_head_dim;
  const int latent_dim = cfg_.kv_lora_rank, rope_dim = cfg_.qk_rope_head_dim;
  const float scale = cfg_.softmax_scale();

  // The sequence's cached rows as float32: latents [rows][latent_dim], roped keys [rows][rope_dim].
  latents_.resize(size_t(rows) * latent_dim);
  key_rope_.resize(size_t(rows) * rope_dim);
  pool_.parallel_for(rows, [&](int row_begin, int row_end, int) {
    for (int j = row_begin; j < row_end; ++j) {
      const int64_t at = cache_offset(layer, seq, j);
      float* latent = latents_.data() + int64_t(j) * latent_dim;
      float* rope = key_rope_.data() + int64_t(j) * rope_dim;
      if (fast_) {
        for (int i = 0; i < latent_dim; ++i) latent[i] = bf16_to_float(cache_bf16_[size_t(at + i)]);
        for (int i = 0; i < rope_dim; ++i) rope[i] = bf16_to_float(cache_bf16_[size_t(at + latent_dim + i)]);
      } else {
        std::copy_n(cache_.data() + at, latent_dim, latent);
        std::copy_n(cache_.data() + at + latent_dim, rope_dim, rope);
      }
    }
  });

  const bool bf16_keys = fast_ && qk_dim % simd::kBf16Step == 0 && nope % 2 == 0;  // pack_keys: pairs within a part
  const int padded_rows = whole_panels(rows);
  pool_.parallel_for(heads, [&](int head_begin, int head_end, int) {
    thread_local std::vector<float> key_nope, keys, values, queries, scores, values_out;
    thread_local std::vector<uint16_t> key_panels;
    key_nope.resize(size_t(rows) * nope);
    // Rows past `rows` (to whole panels) are zero: their scores and weights are then finite.
    keys.assign(bf16_keys ? 0 : size_t(padded_rows) * qk_dim, 0.0f);
    key_panels.assign(bf16_keys ? size_t(padded_rows) * qk_dim : 0, 0);
    values.assign(size_t(padded_rows) * v_dim, 0.0f);
    queries.resize(size_t(kExpandedQueryBlock) * qk_dim);
    scores.resize(size_t(kExpandedQueryBlock) * padded_rows);
    values_out.resize(size_t(kExpandedQueryBlock) * v_dim);
    for (int h = head_begin; h < head_end; ++h) {
      map_up(layer, h, rows, key_nope.data(), values.data());
      if (bf16_keys)
        pack_keys(key_nope.data(), key_rope_.data(), rows, nope, rope_dim, key_panels.data());
      else
        for (int j = 0; j < rows; ++j) {
          std::copy_n(key_nope.data() + int64_t(j) * nope, nope, keys.data() + int64_t(j) * qk_dim);
          std::copy_n(key_rope_.data() + int64_t(j) * rope_dim, rope_dim, keys.data() + int64_t(j) * qk_dim + nope);
        }
      for (int block = begin; block < end; block += kExpandedQueryBlock) {
        const int count = std::min(kExpandedQueryBlock, end - block);
        // The rows this block attends to, to whole panels: the scores' row stride.
        const int visible_rows = batch.positions[block + count - 1] + 1;
        const int stride = whole_panels(visible_rows);
        for (int i = 0; i < count; ++i)
          std::copy_n(q_.data() + (int64_t(block + i) * heads + h) * qk_dim, qk_dim, queries.data() + int64_t(i) * qk_dim);
        if (bf16_keys) {
          simd::Rows key_rows{simd::WeightType::bf16, key_panels.data(), nullptr, stride, qk_dim};
          key_rows.panels = true;
          linear_fast_here(key_rows, queries.data(), count, scores.data(), *fast_);
        } else {
          rows_here(simd::Rows{simd::WeightType::f32, keys.data(), nullptr, stride, qk_dim}, queries.data(), count,
                    scores.data());
        }
        for (int i = 0; i < count; ++i) {
          const int visible = batch.positions[block + i] + 1;
          float* s = scores.data() + int64_t(i) * stride;
          softmax_row(s, visible, scale);
          std::fill(s + visible, s + stride, 0.0f);
        }
        columns_here(simd::Rows{simd::WeightType::f32, values.data(), nullptr, stride, v_dim}, scores.data(), count,
                     values_out.data());
        for (int i = 0; i < count; ++i)
          std::copy_n(values_out.data() + int64_t(i) * v_dim, v_dim,
                      attn_out_.data() + (int64_t(block + i) * heads + h) * v_dim);
      }
    }
  });
}

// Head h's keys (their W_UK part, [rows][nope]) and values ([rows][v_dim]) of the latents_ rows.
// Fast numerics: the latents are BF16 values (the cache's), which the BF16 products take exactly.
void CpuBackend::map_up(int layer, int h, int rows, float* key_nope, float* values) {
  const int nope = cfg_.qk_nope_head_dim, v_dim = cfg_.v_head_dim, first = h * (nope + v_dim);
  const HeadPanels* panels = fast_ ? &head_panels_[size_t(layer)] : nullptr;
  if (panels && panels->w_uk_rows[size_t(h)].data) {
    linear_fast_here(panels->w_uk_rows[size_t(h)], latents_.data(), rows, key_nope, *fast_);
    linear_fast_here(panels->w_uv[size_t(h)], latents_.data(), rows, values, *fast_);
  } else {
    const Linear& kv_b = w_.layers[layer].kv_b;
    linear_here(output_slice(kv_b, first, first + nope), latents_.data(), rows, key_nope);
    linear_here(output_slice(kv_b, first + nope, first + nope + v_dim), latents_.data(), rows, values);
  }
}

}  // namespace r1
