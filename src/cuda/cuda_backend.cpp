#include "cuda/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>

#include "cuda/bf16_gemm.h"
#include "cuda/device_memory.h"
#include "cuda/device_weights.h"
#include "cuda/fp8_gemm.h"
#include "cuda/step_graphs.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.h"

namespace r1 {

using namespace r1::cuda;

namespace {

class CudaBackend final : public Backend {
 public:
  CudaBackend(const ModelConfig& config, const ModelWeights& weights, Numerics numerics)
      : cfg_(config), w_(weights), fast_(numerics == Numerics::fast) {
    shape_ = {config.num_attention_heads, config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim,
              config.kv_lora_rank};
    bf16_cache_ = fast_ && mla_attention_bf16_supports(shape_);
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    graphs_ = std::make_unique<StepGraphs>(stream_);
    int device = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount, device));
    std::vector<float> frequencies;
    for (int i = 0; i < config.qk_rope_head_dim / 2; ++i) frequencies.push_back(rope_frequency(config.rope, i));
    rope_frequencies_ = upload(frequencies, "rope frequencies");
  }
  ~CudaBackend() override {
    graphs_.reset();
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }

  Activation activation(int slot, int tokens, int dim) override {
    if (int(activations_.size()) <= slot) activations_.resize(size_t(slot) + 1);
    return {activations_[slot].reserve_as<float>(size_t(tokens) * dim, "activations"), tokens, dim};
  }

  void configure_kv_cache(int num_pages, int page_size) override {
    if (num_pages < 0 || page_size <= 0) fail("internal: KV cache of {} pages of {} positions", num_pages, page_size);
    num_pages_ = num_pages;
    page_size_ = page_size;
    const size_t values = size_t(cfg_.num_hidden_layers) * num_pages * page_size * cfg_.kv_cache_dim();
    cache_ = cache_buffer_.reserve(std::max<size_t>(values, 1) * (bf16_cache_ ? 2 : 4), "KV cache");
    sequence_pages_.clear();
    page_table_dirty_ = true;
    graphs_->clear();  // the cache's layout is baked into captured launches
  }

  void set_sequence_pages(int slot, std::span<const int> pages) override {
    for (int page : pages)
      if (page < 0 || page >= num_pages_) fail("internal: KV cache page {} outside [0, {})", page, num_pages_);
    if (int(sequence_pages_.size()) <= slot) sequence_pages_.resize(size_t(slot) + 1);
    std::vector<int>& mine = sequence_pages_[slot];
    if (std::equal(mine.begin(), mine.end(), pages.begin(), pages.end())) return;  // re-sent every step
    mine.assign(pages.begin(), pages.end());
    page_table_dirty_ = true;
  }

  void prepare(const Batch& batch) override {
    n_ = batch.size();
    max_len_ = 0;
    for (int t = 0; t < n_; ++t) {
      max_len_ = std::max(max_len_, batch.positions[t] + 1);
      const int s = batch.sequences[t];
      if (s < 0 || s >= int(sequence_pages_.size()) || batch.positions[t] >= int(sequence_pages_[s].size()) * page_size_)
        fail("internal: token {} at position {} outside the KV cache of sequence {}", t, batch.positions[t], s);
    }
    if (page_table_dirty_) upload_page_table();
    std::vector<int> packed(batch.tokens);
    packed.insert(packed.end(), batch.positions.begin(), batch.positions.end());
    packed.insert(packed.end(), batch.sequences.begin(), batch.sequences.end());
    int* d = batch_ints_.reserve_as<int>(packed.size(), "batch");
    // From pageable memory the copy is staged before the call returns: `packed` may go.
    CUDA_CHECK(cudaMemcpyAsync(d, packed.data(), packed.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
    tokens_ = d;
    positions_ = d + n_;
    sequences_ = d + 2 * n_;
    attention_splits_ = bf16_cache_ ? mla_attention_bf16_splits(n_, cfg_.num_attention_heads, max_len_, multiprocessors_)
                                    : mla_attention_splits(n_, cfg_.num_attention_heads, max_len_, multiprocessors_);
    // Every host-side value the step's launches depend on; larger batches (prefill) run eagerly.
    std::vector<int> key;
    if (n_ <= kGraphMaxTokens) {
      key = {n_, attention_splits_, max_pages_};
      key.insert(key.end(), batch.logit_rows.begin(), batch.logit_rows.end());
    }
    graphs_->begin(key);
  }

  // While a captured step replays, the ops below have nothing to do: the graph launched from
  // lm_head does their work.
  void embed(Activation h) override {
    if (graphs_->replaying()) return;
    embed_rows(w_.embed, w_.embed_type, tokens_, n_, h.dim, h.data, stream_);
  }

  void rmsnorm(int layer, Norm which, Activation h, Activation delta, Activation out) override {
    if (graphs_->replaying()) return;
    const DeviceLayer& l = w_.layers[layer];
    add_rmsnorm(h.data, delta.data, which == Norm::attention ? l.input_norm : l.post_attention_norm, h.tokens,
                h.dim, cfg_.rms_norm_eps, out.data, stream_);
  }

  void final_norm(Activation h, Activation out) override {
    if (graphs_->replaying()) return;
    cuda::rmsnorm(h.data, h.dim, w_.final_norm, h.tokens, h.dim, cfg_.rms_norm_eps, out.data, out.dim, stream_);
  }

  void add(Activation h, Activation delta) override {
    if (graphs_->replaying()) return;
    add_inplace(h.data, delta.data, int64_t(h.tokens) * h.dim, stream_);
  }

  // A few rows (one per sequence sampled): one device-to-device copy each.
  void select_rows(Activation h, std::span<const int> rows, Activation out) override {
    if (graphs_->replaying()) return;
    for (size_t i = 0; i < rows.size(); ++i)
      CUDA_CHECK(cudaMemcpyAsync(out.data + i * h.dim, h.data + size_t(rows[i]) * h.dim, size_t(h.dim) * sizeof(float),
                                 cudaMemcpyDeviceToDevice, stream_));
  }

  void attention(int layer, Activation x, Activation out) override;
  void mlp(int layer, Activation x, Activation out) override {
    if (!graphs_->replaying()) run_mlp(w_.layers[layer].mlp, x.data, x.tokens, out.data);
  }
  void moe(int layer, Activation x, Activation out) override;

  void lm_head(Activation x, float* host_logits) override {
    const float* logits = device_logits(x);
    CUDA_CHECK(cudaMemcpyAsync(host_logits, logits, size_t(x.tokens) * cfg_.vocab_size * sizeof(float),
                               cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // Only the ids leave the GPU. The argmax runs after the step's graph, so one captured step
  // serves both this and lm_head.
  void lm_head_argmax(Activation x, int vocab, int* host_tokens) override {
    const float* logits = device_logits(x);
    int* ids = argmax_ids_.reserve_as<int>(size_t(x.tokens), "greedy token ids");
    argmax_rows(logits, x.tokens, vocab, ids, stream_);
    CUDA_CHECK(cudaMemcpyAsync(host_tokens, ids, size_t(x.tokens) * sizeof(int), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (int t = 0; t < x.tokens; ++t) {
      if (host_tokens[t] == kArgmaxNan) fail("logits contain NaN (row {} of the step)", t);
      if (host_tokens[t] == kArgmaxAllNegativeInfinity) fail("every logit is -inf: no token can be sampled");
    }
  }

 private:
  // The step's logits [x.tokens, vocab] on the device; ends the step's captured or replayed graph.
  const float* device_logits(Activation x) {
    float* logits = scratch(0, size_t(x.tokens) * cfg_.vocab_size);
    if (!graphs_->replaying()) linear(w_.lm_head, x.data, x.tokens, logits);
    graphs_->end();
    return logits;
  }
  float* scratch(int slot, size_t count) {
    if (int(scratch_.size()) <= slot) scratch_.resize(size_t(slot) + 1);
    return scratch_[slot].reserve_as<float>(count, "scratch");
  }
  template <typename T>
  T* upload(const std::vector<T>& values, const std::string& what) {
    owned_.emplace_back();
    T* d = owned_.back().reserve_as<T>(values.size(), what);
    CUDA_CHECK(cudaMemcpy(d, values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
  }
  // The page lists as one [sequences][max_pages_] table (unused entries 0), as the kernels read it.
  void upload_page_table() {
    max_pages_ = 1;
    for (const auto& pages : sequence_pages_) max_pages_ = std::max(max_pages_, int(pages.size()));
    page_table_host_.assign(std::max<size_t>(sequence_pages_.size(), 1) * max_pages_, 0);
    for (size_t s = 0; s < sequence_pages_.size(); ++s)
      std::copy(sequence_pages_[s].begin(), sequence_pages_[s].end(), page_table_host_.begin() + s * max_pages_);
    int* d = page_table_.reserve_as<int>(page_table_host_.size(), "KV cache page table");
    CUDA_CHECK(cudaMemcpy(d, page_table_host_.data(), page_table_host_.size() * sizeof(int), cudaMemcpyHostToDevice));
    page_table_dirty_ = false;
  }
  template <typename T>
  PagedCacheOf<T> layer_cache(int layer) const {
    const size_t layer_values = size_t(num_pages_) * page_size_ * cfg_.kv_cache_dim();
    return {static_cast<T*>(cache_) + layer * layer_values, static_cast<const int*>(page_table_.data()), max_pages_,
            page_size_};
  }
  // Fast numerics take batches of kTensorCoreMinRows rows or more (prefill, batched decode) to the
  // tensor cores through cuBLASLt: FP8 weights on FP8-quantized activations, BF16 weights on
  // BF16-rounded ones. Fewer rows stay on the weight-streaming GEMV, at the memory roofline.
  // The MoE experts' grouped GEMM reads the expert offsets back to the host, so it only takes
  // steps too large to be captured as CUDA graphs.
  static constexpr int kTensorCoreMinRows = 8;
  bool use_fp8_gemm(const WeightView& w, int rows) const {
    return fast_ && rows >= kTensorCoreMinRows && fp8_gemm_supported(w, rows);
  }
  bool use_bf16_gemm(const WeightView& w, int rows) const {
    return fast_ && rows >= kTensorCoreMinRows && bf16_gemm_supported(w);
  }
  // x [rows, in] quantized per 1×128 block into quantized_; groups as grouped_linear takes them.
  void quantize(const float* x, int rows, int in, const int* row_offsets, int groups) {
    const size_t padded = size_t(fp8_padded_rows_bound(rows, groups));
    quantized_x_ = quantized_.reserve_as<uint8_t>(padded * in, "FP8 activations");
    quantized_scales_ = quantized_scales_buffer_.reserve_as<float>(padded * ((in + 127) / 128), "FP8 activation scales");
    int* padded_offsets = padded_offsets_.reserve_as<int>(size_t(groups) + 1, "FP8 row offsets");
    quantize_fp8(x, rows, in, row_offsets, groups, padded_offsets, quantized_x_, quantized_scales_, stream_);
  }
  void linear(const DeviceLinear& l, const float* x, int rows, float* y) {
    if (use_fp8_gemm(l.view, rows)) {
      quantize(x, rows, l.view.in, nullptr, 1);
      fp8_gemm().linear(l.view, rows, quantized_x_, quantized_scales_, y, stream_);
    } else if (use_bf16_gemm(l.view, rows)) {
      auto* x_bf16 = rounded_.reserve_as<__nv_bfloat16>(size_t(rows) * l.view.in, "BF16 activations");
      to_bf16(x, x_bf16, int64_t(rows) * l.view.in, stream_);
      if (!bf16_gemm_) bf16_gemm_ = std::make_unique<Bf16Gemm>();
      bf16_gemm_->linear(l.view, rows, x_bf16, y, stream_);
    } else {
      grouped_linear(l.device_view, l.view, nullptr, 1, rows, x, y, stream_);
    }
  }
  Fp8Gemm& fp8_gemm() {
    if (!fp8_gemm_) fp8_gemm_ = std::make_unique<Fp8Gemm>();
    return *fp8_gemm_;
  }
  void run_mlp(const DeviceMlp& m, const float* x, int rows, float* out) {
    const size_t width = size_t(rows) * m.gate.view.out;
    float* gate = scratch(1, width);
    float* up = scratch(2, width);
    linear(m.gate, x, rows, gate);
    linear(m.up, x, rows, up);
    silu_mul(gate, up, gate, int64_t(width), stream_);
    linear(m.down, gate, rows, out);
  }

  const ModelConfig& cfg_;
  DeviceWeights w_;
  bool fast_;
  bool bf16_cache_ = false;  // fast numerics, where the tensor-core attention takes the shape
  cudaStream_t stream_ = nullptr;
  MlaShape shape_{};
  float* rope_frequencies_ = nullptr;
  static constexpr int kGraphMaxTokens = kGemvMaxRows;  // decode steps of up to 32 sequences
  std::unique_ptr<Fp8Gemm> fp8_gemm_;
  std::unique_ptr<Bf16Gemm> bf16_gemm_;
  DeviceBuffer quantized_, quantized_scales_buffer_, padded_offsets_, rounded_;
  uint8_t* quantized_x_ = nullptr;
  float* quantized_scales_ = nullptr;
  std::vector<int> expert_offsets_host_;
  int n_ = 0, max_len_ = 0;  // tokens of the batch in progress, its longest context
  int attention_splits_ = 1;
  std::unique_ptr<StepGraphs> graphs_;
  int multiprocessors_ = 1;
  int *tokens_ = nullptr, *positions_ = nullptr, *sequences_ = nullptr;
  DeviceBuffer batch_ints_, routing_ints_, cache_buffer_, page_table_, argmax_ids_;
  std::vector<DeviceBuffer> activations_, scratch_, owned_;
  void* cache_ = nullptr;  // [layers][num_pages_][page_size_][kv_cache_dim] of float, or bf16 (bf16_cache_)
  int num_pages_ = 0, page_size_ = 0, max_pages_ = 1;
  std::vector<std::vector<int>> sequence_pages_;
  std::vector<int> page_table_host_;
  bool page_table_dirty_ = true;
};

void CudaBackend::attention(int layer, Activation x, Activation out) {
  if (graphs_->replaying()) return;
  const DeviceLayer& l = w_.layers[layer];
  const int n = x.tokens, heads = cfg_.num_attention_heads, qk_dim = cfg_.qk_head_dim();
  const int latent = cfg_.kv_lora_rank, rope_dim = cfg_.qk_rope_head_dim;
  float* q = scratch(3, size_t(n) * heads * qk_dim);
  if (cfg_.q_lora_rank > 0) {
    float* q_low = scratch(4, size_t(n) * cfg_.q_lora_rank);
    linear(l.q_a, x.data, n, q_low);
    cuda::rmsnorm(q_low, cfg_.q_lora_rank, l.q_a_norm, n, cfg_.q_lora_rank, cfg_.rms_norm_eps, q_low,
                  cfg_.q_lora_rank, stream_);
    linear(l.q_b, q_low, n, q);
  } else {
    linear(l.q_proj, x.data, n, q);
  }
  float* kv = scratch(5, size_t(n) * cfg_.kv_cache_dim());
  linear(l.kv_a, x.data, n, kv);
  const float magnitude = rope_magnitude(cfg_.rope);
  rope_inplace(q, n, heads, heads * qk_dim, qk_dim, cfg_.qk_nope_head_dim, positions_, rope_frequencies_, rope_dim,
               magnitude, stream_);
  float* q_latent = scratch(6, size_t(n) * heads * latent);
  float* o_latent = scratch(7, size_t(n) * heads * latent);
  float* attn = scratch(8, size_t(n) * heads * cfg_.v_head_dim);
  mla_absorb_q(l.kv_b.view, shape_, q, n, q_latent, stream_);
  const int splits = attention_splits_;
  float* workspace = scratch(15, std::max<size_t>(1, mla_attention_workspace(shape_, n, splits)));
  if (bf16_cache_) {
    const PagedCacheBf16 cache = layer_cache<__nv_bfloat16>(layer);
    mla_cache_append(kv, n, latent, rope_dim, l.kv_a_norm, cfg_.rms_norm_eps, rope_frequencies_, magnitude,
                     positions_, sequences_, cache, stream_);
    mla_attention_bf16(shape_, q_latent, q, positions_, sequences_, cache, cfg_.softmax_scale(), n, splits,
                       workspace, o_latent, stream_);
  } else {
    const PagedCache cache = layer_cache<float>(layer);
    mla_cache_append(kv, n, latent, rope_dim, l.kv_a_norm, cfg_.rms_norm_eps, rope_frequencies_, magnitude,
                     positions_, sequences_, cache, stream_);
    mla_attention(shape_, q_latent, q, positions_, sequences_, cache, cfg_.softmax_scale(), n, splits, workspace,
                  o_latent, stream_);
  }
  mla_v_out(l.kv_b.view, shape_, o_latent, n, attn, stream_);
  linear(l.o_proj, attn, n, out.data);
}

void CudaBackend::moe(int layer, Activation x, Activation out) {
  if (graphs_->replaying()) return;
  const DeviceLayer& l = w_.layers[layer];
  const RoutingParams& rp = cfg_.routing;
  const int n = x.tokens, hidden = x.dim, experts = rp.n_routed_experts, top_k = rp.num_experts_per_tok;
  const int width = cfg_.moe_intermediate_size, copies = n * top_k;

  float* logits = scratch(9, size_t(n) * experts);
  linear(l.router, x.data, n, logits);
  MoeRouting r;
  r.expert_ids = routing_ints_.reserve_as<int>(size_t(copies) * 2 + 2 * experts + 1, "routing");
  r.copy_rows = r.expert_ids + copies;
  r.expert_offsets = r.copy_rows + copies;
  r.expert_counts = r.expert_offsets + experts + 1;
  r.expert_weights = scratch(10, copies);
  moe_route(rp, logits, l.router_bias, n, r, stream_);

  float* permuted = scratch(12, size_t(copies) * hidden);
  float* gate = scratch(1, size_t(copies) * width);
  float* up = scratch(2, size_t(copies) * width);
  float* expert_out = scratch(13, size_t(copies) * hidden);
  moe_gather(x.data, n, top_k, hidden, r, permuted, stream_);
  // Each token picks an expert at most once, so no expert has more than n rows.
  const DeviceExperts& e = l.experts;
  if (n > kGraphMaxTokens && use_fp8_gemm(e.gate.view, n) && use_fp8_gemm(e.down.view, n)) {
    expert_offsets_host_.resize(size_t(experts) + 1);
    CUDA_CHECK(cudaMemcpyAsync(expert_offsets_host_.data(), r.expert_offsets, (experts + 1) * sizeof(int),
                               cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // cuBLASLt takes each expert's row count from the host
    const int* offsets = expert_offsets_host_.data();
    quantize(permuted, copies, hidden, r.expert_offsets, experts);
    fp8_gemm().grouped(e.views[0].data(), offsets, experts, quantized_x_, quantized_scales_, gate, stream_);
    fp8_gemm().grouped(e.views[1].data(), offsets, experts, quantized_x_, quantized_scales_, up, stream_);
    silu_mul(gate, up, gate, int64_t(copies) * width, stream_);
    quantize(gate, copies, width, r.expert_offsets, experts);
    fp8_gemm().grouped(e.views[2].data(), offsets, experts, quantized_x_, quantized_scales_, expert_out, stream_);
  } else {
    grouped_linear(e.gate.device_view, e.gate.view, r.expert_offsets, experts, n, permuted, gate, stream_);
    grouped_linear(e.up.device_view, e.up.view, r.expert_offsets, experts, n, permuted, up, stream_);
    silu_mul(gate, up, gate, int64_t(copies) * width, stream_);
    grouped_linear(e.down.device_view, e.down.view, r.expert_offsets, experts, n, gate, expert_out, stream_);
  }
  moe_combine(expert_out, n, top_k, hidden, r, /*accumulate=*/false, out.data, stream_);
  if (cfg_.n_shared_experts > 0) {
    float* shared = scratch(14, size_t(n) * hidden);
    run_mlp(l.shared_experts, x.data, n, shared);
    add_inplace(out.data, shared, int64_t(n) * hidden, stream_);
  }
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const ModelConfig& config, const ModelWeights& weights, Numerics numerics) {
  std::string reason;
  if (!cuda_device_available(&reason)) fail("--device cuda: {}", reason);
  return std::make_unique<CudaBackend>(config, weights, numerics);
}

bool cuda_device_available(std::string* reason) {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    cudaGetLastError();
    if (reason) *reason = status != cudaSuccess ? fmt::format("no CUDA device ({})", cudaGetErrorString(status))
                                                 : "no CUDA device found";
    return false;
  }
  return true;
}

}  // namespace r1
