// The CPU backend: float32 activations, weights read in place from the checkpoint mapping
// (FP8 and BF16 decoded row by row inside the products), and a latent KV cache per sequence.
// Sharded, it is one rank of a group: it holds its RankPlan's slices of the weights and
// combines partial results through the communicator inside the ops (src/dist/plan.h).
#pragma once

#include <span>
#include <vector>

#include "cpu/linear.h"
#include "cpu/simd/bf16_kernels.h"
#include "cpu/thread_pool.h"
#include "io/large_pages.h"
#include "dist/communicator.h"
#include "dist/plan.h"
#include "model/backend.h"
#include "model/config.h"
#include "model/weights.h"

namespace r1 {

class CpuBackend final : public Backend {
 public:
  // numerics fast: the projections in BF16 (src/cpu/simd/bf16_kernels.h), which needs
  // AVX512-BF16 (fast_numerics_available()); kv_a and W_UV take their activations as two BF16
  // values (~16 bits: split_rows), the router stays float32.
  CpuBackend(const ModelConfig& config, const ModelWeights& weights, int threads, Numerics numerics = Numerics::exact);
  // Rank comm.rank() of a model sharded by `plan`; `comm` connects it to the other ranks.
  CpuBackend(const ModelConfig& config, const ModelWeights& weights, int threads, const ShardPlan& plan,
             Communicator& comm, Numerics numerics = Numerics::exact);

  Activation activation(int slot, int tokens, int dim) override;
  void configure_kv_cache(int num_pages, int page_size) override;
  void set_sequence_pages(int slot, std::span<const int> pages) override;

  void prepare(const Batch& batch) override { batch_ = &batch; }
  void embed(Activation h) override;
  void rmsnorm(int layer, Norm which, Activation h, Activation delta, Activation out) override;
  void final_norm(Activation h, Activation out) override;
  void add(Activation h, Activation delta) override;
  void select_rows(Activation h, std::span<const int> rows, Activation out) override;
  void attention(int layer, Activation x, Activation out) override;
  void mlp(int layer, Activation x, Activation out) override;
  void moe(int layer, Activation x, Activation out) override;
  void lm_head(Activation x, float* host_logits) override;
  bool expands_prompt_chunks() const override { return attention_form_ != AttentionForm::absorbed; }

  // Test hook: while set, each MoE layer appends the experts every token chose (sorted), so
  // that tests can tell a change of numerics from a routing decision that flipped at a near-tie.
  struct Route {
    int layer, sequence, position;
    std::vector<int> experts;
  };
  void record_routes(std::vector<Route>* out) { routes_ = out; }
  // Test hook: while set, each MoE layer gives a token the experts recorded for it (same layer,
  // sequence and position) instead of its own choice, weighted by its own router: numerics
  // compared at a position where a near-tie flipped, with that discrete decision held fixed.
  void force_routes(const std::vector<Route>* routes) { forced_routes_ = routes; }
  // Test hook: every run of a sequence's tokens attends in this form (automatic: the cheaper,
  // expanded_form_pays), so that tests compare the two.
  enum class AttentionForm { automatic, absorbed, expanded };
  void force_attention_form(AttentionForm form) { attention_form_ = form; }

 private:
  void pack_weights_for_fast_kernels();
  void copy_heads_for_fast_kernels();
  struct LayerNorms {  // norm weights decoded to float32 once (a few KB per layer)
    std::vector<float> input, post_attention, q_a, kv_a, router_bias;
  };

  CpuBackend(const ModelConfig& config, ModelWeights shard, int threads, ShardPlan plan, Communicator* comm,
             Numerics numerics);
  // y = x · Wᵀ in this backend's numerics.
  void project(const Linear& w, const float* x, int tokens, float* y);
  const RankPlan& rank() const { return plan_.ranks[comm_ ? comm_->rank() : 0]; }
  void all_reduce(Activation a);  // sum of the ranks' partial results (nothing unsharded)
  // Where the cached row [kv_lora_rank + qk_rope] (normed latent c, roped k_pe) of a position
  // starts in cache_ (exact numerics: float32) or cache_bf16_ (fast: BF16).
  int64_t cache_offset(int layer, int sequence, int position) const;
  void run_mlp(const MlpWeights& w, const float* x, int tokens, float* out);
  void silu_mul_all(float* gate, const float* up, size_t n);  // silu_mul on all threads
  // out = rmsnorm(h += delta) (delta may be null) for `tokens` rows of `dim`, on all threads.
  void rmsnorm_rows(float* h, const float* delta, const float* weight, int tokens, int dim, float* out);
  void attend(int layer, const Batch& batch, int heads);
  void attend_absorbed(int layer, const Batch& batch, std::span<const int> tokens, int heads);  // cpu_attention.cpp
  void attend_expanded(int layer, const Batch& batch, int begin, int end, int heads);          // cpu_attention_expanded.cpp
  void map_up(int layer, int head, int rows, float* key_nope, float* values);

  const ModelConfig& cfg_;
  const ModelWeights w_;  // views: the whole model, or this rank's slices
  const ShardPlan plan_;  // a plan of one rank when unsharded
  Communicator* comm_ = nullptr;
  ThreadPool pool_;
  const simd::Bf16Kernels* fast_ = nullptr;  // numerics fast: the BF16 kernels
  // Fast numerics: each head's W_UK transposed and as it is, and its W_UV, packed in panels, a
  // layer's heads in one buffer (rows without data where the fast kernels cannot take them: the
  // exact ones run).
  struct HeadPanels {
    LargeVector<uint8_t> bytes;
    std::vector<float> scales;
    std::vector<simd::Rows> w_uk, w_uk_rows, w_uv;
  };
  std::vector<HeadPanels> head_panels_;
  const Batch* batch_ = nullptr;  // the batch of the forward call in progress
  std::vector<Route>* routes_ = nullptr;
  const std::vector<Route>* forced_routes_ = nullptr;
  AttentionForm attention_form_ = AttentionForm::automatic;
  std::vector<LayerNorms> norms_;
  std::vector<float> final_norm_;
  std::vector<float> rope_frequencies_;  // [qk_rope_head_dim / 2]
  // [layers][pages][page_size][kv_cache_dim], and each sequence's page list. Fast numerics keep
  // the latent cache in BF16 (half the memory; what its attention core reads), as DeepSeek's
  // reference does.
  LargeVector<float> cache_;
  LargeVector<uint16_t> cache_bf16_;
  int num_pages_ = 0, page_size_ = 0;
  std::vector<std::vector<int>> sequence_pages_;
  std::vector<LargeVector<float>> activations_;
  // Scratch reused across calls so the decode loop does not allocate once warmed up; in large
  // pages, as a long prompt's make them hundreds of MB (io/large_pages.h).
  LargeVector<float> q_latent_, q_, kv_, q_absorbed_, o_latent_, attn_out_, gate_, up_, gathered_, expert_out_,
      rank_logits_, padded_logits_, gathered_logits_;
  std::vector<float> router_logits_, route_weights_, route_scratch_;
  std::vector<int> chosen_, copy_row_, absorbed_tokens_;
  LargeVector<float> latents_, key_rope_;  // the expanded form's cached rows as float32
  // One expert's share of a MoE layer (cpu_moe.cpp): its weights, its input rows, and where its
  // rows sit in gathered_/expert_out_ (hidden_at) and gate_/up_ (width_at).
  struct ExpertRun {
    const MlpWeights* w;
    const float* x;
    int tokens;
    size_t hidden_at, width_at;
  };
  std::vector<ExpertRun> expert_runs_;
  std::vector<LinearJob> expert_jobs_;
  std::vector<std::vector<int>> copies_;
};

// Whether --numerics fast runs on this CPU (it needs AVX512-BF16 and VBMI).
bool fast_numerics_available();

// out = x · rsqrt(mean(x²) + eps) · weight, for one row of n values.
void rmsnorm_row(const float* x, const float* weight, int n, float eps, float* out);

// gate[i] = silu(gate[i]) · up[i]: the MLPs' activation.
void silu_mul(float* gate, const float* up, size_t n);

}  // namespace r1
