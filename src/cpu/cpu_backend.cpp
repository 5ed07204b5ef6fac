#include "cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "cpu/linear.h"
#include "cpu/vector_math.h"
#include "dist/shard_weights.h"

namespace r1 {

namespace {
std::vector<float> decode_vector(const TensorView* t) {
  if (!t) return {};
  std::vector<float> v(size_t(t->numel()));
  decode_floats(*t, 0, int(v.size()), v.data());
  return v;
}
}  // namespace

void rmsnorm_row(const float* x, const float* weight, int n, float eps, float* out) {
  double sum_squares = 0;
  for (int i = 0; i < n; ++i) sum_squares += double(x[i]) * x[i];
  const float inv_rms = float(1.0 / std::sqrt(sum_squares / n + eps));
  for (int i = 0; i < n; ++i) out[i] = x[i] * inv_rms * weight[i];
}

bool fast_numerics_available() { return simd::bf16_kernels_for(simd::Isa::avx512) != nullptr; }

CpuBackend::CpuBackend(const ModelConfig& config, const ModelWeights& weights, int threads, Numerics numerics)
    : CpuBackend(config, weights, threads, make_plan(config, 1), nullptr, numerics) {}

CpuBackend::CpuBackend(const ModelConfig& config, const ModelWeights& weights, int threads, const ShardPlan& plan,
                       Communicator& comm, Numerics numerics)
    : CpuBackend(config, shard_weights(weights, config, plan.ranks.at(comm.rank())), threads, plan, &comm,
                 numerics) {}

CpuBackend::CpuBackend(const ModelConfig& config, ModelWeights shard, int threads, ShardPlan plan, Communicator* comm,
                       Numerics numerics)
    : cfg_(config), w_(std::move(shard)), plan_(std::move(plan)), comm_(comm), pool_(threads) {
  if (numerics == Numerics::fast) {
    fast_ = simd::bf16_kernels_for(simd::Isa::avx512);
    if (!fast_) fail("--numerics fast: this CPU lacks AVX512-BF16 or AVX512-VBMI, which the CPU's fast numerics need; use --numerics exact");
    pack_weights_for_fast_kernels();
    copy_heads_for_fast_kernels();
  }
  const ModelWeights& weights = w_;
  for (const LayerWeights& l : weights.layers)
    norms_.push_back({decode_vector(l.input_layernorm), decode_vector(l.post_attention_layernorm),
                      decode_vector(l.q_a_layernorm), decode_vector(l.kv_a_layernorm),
                      decode_vector(l.router_bias)});
  final_norm_ = decode_vector(weights.norm);
  for (int i = 0; i < config.qk_rope_head_dim / 2; ++i)
    rope_frequencies_.push_back(rope_frequency(config.rope, i));
}

// The products the fast kernels run (kv_b through the copies below; not the router), packed in
// panels where the weights are this process's copy: outer products on them reach 0.69-0.79 of
// the BF16 peak on FP8 where rows reach 0.42-0.54, and a token streams each panel as one run of
// bytes (bench_cpu_rows: decode on both threads 0.96 of the probe where rows read 0.73).
void CpuBackend::pack_weights_for_fast_kernels() {
  std::vector<const Linear*> all;
  const auto mlp = [&](const MlpWeights& m) { all.insert(all.end(), {&m.gate, &m.up, &m.down}); };
  for (const LayerWeights& l : w_.layers) {
    all.insert(all.end(), {&l.q_a, &l.kv_a, &l.q_b, &l.q_proj, &l.o_proj});
    mlp(l.mlp);
    mlp(l.shared_experts);
    for (const MlpWeights& e : l.experts) mlp(e);
  }
  if (w_.lm_head.weight != w_.embed_tokens) all.push_back(&w_.lm_head);  // tied: the embedding reads rows
  for (const Linear* w : all)
    if (w->weight) pack_for_fast_kernels(pool_, *w, *fast_);
}

// Each head's slices of kv_b copied for the fast kernels, in panels, a layer's heads in one
// large-page buffer (R1: 24 MB a layer, 0.2% of its bytes):
// - W_UK absorbs the queries as a column product (its rows are the query's dimensions), which
//   the panels do not take in place: transposed, it is a row product (BF16 activations, as
//   DeepSeek's reference absorbs). The float32 column product ran at about half the FMA peak:
//   ~3% of a fast prefill.
// - W_UK as it is maps a prompt chunk's cached latents up to keys (the expanded form), beside
//   W_UV to values: panels reach twice the rate of the FP8 rows in place.
// - W_UV's rows lie between W_UK's in kv_b: copied, a decode step streams them as one run of
//   bytes rather than 64 KB pieces 64 KB apart, through the panels (R1 slice, batch-1 decode,
//   alternating in one process: 0.315 -> 0.209 ms a layer against the exact kernels on kv_b).
//   Its activations (the attention's latent sums) stay float32-grade (split_rows): rounded to
//   BF16 alone they moved 12 of the demo model's 592 routing choices.
void CpuBackend::copy_heads_for_fast_kernels() {
  const int heads = rank().heads.size(), nope = cfg_.qk_nope_head_dim, v_dim = cfg_.v_head_dim;
  for (const LayerWeights& l : w_.layers) {
    HeadPanels& copy = head_panels_.emplace_back();
    const auto rows = [&](int h, bool w_uv) {
      const int first = h * (nope + v_dim) + (w_uv ? nope : 0);
      return rows_of(output_slice(l.kv_b, first, first + (w_uv ? v_dim : nope)));
    };
    copy.w_uk.resize(size_t(heads));
    copy.w_uk_rows.resize(size_t(heads));
    copy.w_uv.resize(size_t(heads));
    // Every head's copies have the shapes of head 0's: where the panels cannot take them,
    // nothing is copied (the exact kernels run).
    const simd::Rows uk = rows(0, false), uv = rows(0, true);
    const bool fp8 = uk.type == simd::WeightType::fp8;
    if (!simd::can_pack(simd::Rows{uk.type, nullptr, nullptr, uk.in, uk.out, uk.block}) ||
        !simd::can_pack(simd::Rows{uv.type, nullptr, nullptr, uv.out, uv.in, uv.block}))
      continue;
    const size_t uk_bytes = size_t(uk.out) * uk.in * (fp8 ? 1 : 2), uv_bytes = size_t(uv.out) * uv.in * (fp8 ? 1 : 2);
    const size_t uk_scales = copied_scales(uk), uv_scales = copied_scales(uv);
    const size_t head_bytes = 2 * uk_bytes + uv_bytes, head_scales = 2 * uk_scales + uv_scales;
    copy.bytes.resize(head_bytes * heads);
    copy.scales.resize(head_scales * heads);
    pool_.parallel_for(heads, [&](int begin, int end, int) {
      for (int h = begin; h < end; ++h) {
        uint8_t* bytes = copy.bytes.data() + h * head_bytes;
        float* scales = copy.scales.data() + h * head_scales;
        simd::Rows t = copy_rows(rows(h, false), true, bytes, scales);
        simd::Rows k = copy_rows(rows(h, false), false, bytes + uk_bytes, scales + uk_scales);
        simd::Rows v = copy_rows(rows(h, true), false, bytes + 2 * uk_bytes, scales + 2 * uk_scales);
        if (!t.data || !k.data || !v.data) continue;  // this head's rows straddle FP8 scale blocks
        for (simd::Rows* r : {&t, &k, &v}) {
          fast_->pack(*r, 0, r->out / simd::kPanelWidth);
          r->panels = true;
        }
        copy.w_uk[size_t(h)] = t;
        copy.w_uk_rows[size_t(h)] = k;
        copy.w_uv[size_t(h)] = v;
      }
    });
  }
}

Activation CpuBackend::activation(int slot, int tokens, int dim) {
  if (int(activations_.size()) <= slot) activations_.resize(size_t(slot) + 1);
  activations_[slot].resize(size_t(tokens) * dim);
  return {activations_[slot].data(), tokens, dim};
}

void CpuBackend::configure_kv_cache(int num_pages, int page_size) {
  if (num_pages < 0 || page_size <= 0) fail("internal: KV cache of {} pages of {} positions", num_pages, page_size);
  num_pages_ = num_pages;
  page_size_ = page_size;
  const size_t values = size_t(cfg_.num_hidden_layers) * num_pages * page_size * cfg_.kv_cache_dim();
  cache_.clear();
  cache_bf16_.clear();
  if (fast_)
    cache_bf16_.assign(values + 1, 0);  // + 1: the BF16 core reads a value past an odd-width row
  else
    cache_.assign(values, 0.0f);
  sequence_pages_.clear();
}

void CpuBackend::set_sequence_pages(int slot, std::span<const int> pages) {
  for (int page : pages)
    if (page < 0 || page >= num_pages_) fail("internal: KV cache page {} outside [0, {})", page, num_pages_);
  if (int(sequence_pages_.size()) <= slot) sequence_pages_.resize(size_t(slot) + 1);
  sequence_pages_[slot].assign(pages.begin(), pages.end());
}

int64_t CpuBackend::cache_offset(int layer, int sequence, int position) const {
  const std::vector<int>& pages = sequence_pages_[sequence];
  const int page = pages[position / page_size_], row = position % page_size_;
  return ((int64_t(layer) * num_pages_ + page) * page_size_ + row) * cfg_.kv_cache_dim();
}

void CpuBackend::all_reduce(Activation a) {
  if (comm_) comm_->all_reduce_sum(a.data, size_t(a.tokens) * a.dim);
}

// Each rank writes the rows of its vocabulary range and zeros elsewhere; the sum is the lookup.
void CpuBackend::embed(Activation h) {
  for (int t = 0; t < batch_->size(); ++t) {
    float* row = h.data + int64_t(t) * h.dim;
    if (rank().vocab.contains(batch_->tokens[t]))
      decode_floats(*w_.embed_tokens, int64_t(batch_->tokens[t]) * h.dim, h.dim, row);
    else
      std::fill(row, row + h.dim, 0.0f);
  }
  all_reduce(h);
}

// A token a unit on the pool (a long prompt's norms were ~1% of its prefill on one thread).
void CpuBackend::rmsnorm_rows(float* h, const float* delta, const float* weight, int tokens, int dim, float* out) {
  pool_.parallel_for(tokens, [&](int begin, int end, int) {
    for (int t = begin; t < end; ++t) {
      float* row = h + int64_t(t) * dim;
      if (delta)
        for (int i = 0; i < dim; ++i) row[i] += delta[int64_t(t) * dim + i];
      rmsnorm_row(row, weight, dim, cfg_.rms_norm_eps, out + int64_t(t) * dim);
    }
  });
}

void CpuBackend::rmsnorm(int layer, Norm which, Activation h, Activation delta, Activation out) {
  const auto& weight = which == Norm::attention ? norms_[layer].input : norms_[layer].post_attention;
  rmsnorm_rows(h.data, delta.data, weight.data(), h.tokens, h.dim, out.data);
}

void CpuBackend::final_norm(Activation h, Activation out) {
  rmsnorm_rows(h.data, nullptr, final_norm_.data(), h.tokens, h.dim, out.data);
}

void CpuBackend::add(Activation h, Activation delta) {
  const int64_t n = int64_t(h.tokens) * h.dim;
  for (int64_t i = 0; i < n; ++i) h.data[i] += delta.data[i];
}

void CpuBackend::select_rows(Activation h, std::span<const int> rows, Activation out) {
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy_n(h.data + int64_t(rows[i]) * h.dim, h.dim, out.data + int64_t(i) * h.dim);
}

void CpuBackend::project(const Linear& w, const float* x, int tokens, float* y) {
  if (fast_)
    linear_fast(pool_, w, x, tokens, y, *fast_);
  else
    linear(pool_, w, x, tokens, y);
}

R1_VECTOR_CLONES void silu_mul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + exp_approx(-gate[i])) * up[i];
}

void CpuBackend::silu_mul_all(float* gate, const float* up, size_t n) {
  constexpr size_t kPiece = 4096;  // a unit of work: 32 KB of the two
  pool_.parallel_for(int((n + kPiece - 1) / kPiece), [&](int begin, int end, int) {
    const size_t first = size_t(begin) * kPiece, last = std::min(n, size_t(end) * kPiece);
    silu_mul(gate + first, up + first, last - first);
  });
}

void CpuBackend::run_mlp(const MlpWeights& w, const float* x, int tokens, float* out) {
  const size_t width = size_t(w.gate.out) * tokens;
  gate_.resize(width);
  up_.resize(width);
  const LinearJob jobs[] = {{&w.gate, x, tokens, gate_.data()}, {&w.up, x, tokens, up_.data()}};
  linear_many(pool_, jobs, fast_);
  silu_mul_all(gate_.data(), up_.data(), width);
  project(w.down, gate_.data(), tokens, out);
}

void CpuBackend::mlp(int layer, Activation x, Activation out) {
  run_mlp(w_.layers[layer].mlp, x.data, x.tokens, out.data);
  all_reduce(out);
}

// Each rank computes the logits of its vocabulary range; an all-gather of equal (padded)
// pieces puts every range in place.
void CpuBackend::lm_head(Activation x, float* host_logits) {
  if (!comm_) return project(w_.lm_head, x.data, x.tokens, host_logits);
  const int n = x.tokens, share = w_.lm_head.out, vocab = cfg_.vocab_size, world = comm_->world();
  const int padded = plan_.max_vocab_share();
  rank_logits_.resize(size_t(n) * share);
  padded_logits_.assign(size_t(n) * padded, 0.0f);
  gathered_logits_.resize(size_t(world) * n * padded);
  project(w_.lm_head, x.data, n, rank_logits_.data());
  for (int t = 0; t < n; ++t)
    std::copy_n(rank_logits_.data() + int64_t(t) * share, share, padded_logits_.data() + int64_t(t) * padded);
  comm_->all_gather(padded_logits_.data(), size_t(n) * padded, gathered_logits_.data());
  for (int r = 0; r < world; ++r) {
    const Range v = plan_.ranks[r].vocab;
    for (int t = 0; t < n; ++t)
      std::copy_n(gathered_logits_.data() + (int64_t(r) * n + t) * padded, v.size(),
                  host_logits + int64_t(t) * vocab + v.begin);
  }
}

}  // namespace r1
