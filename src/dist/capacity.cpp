#include "dist/capacity.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace r1 {

Hardware hardware_preset(const std::string& name) {
  // NVIDIA's SXM data sheets: HBM bandwidth, dense FP8 tensor FLOPS (without sparsity), NVLink 4
  // at 900 GB/s both directions together; memory as nvidia-smi reports it (81559 / 143771 MiB);
  // one 400 Gb/s NDR InfiniBand adapter per GPU (DGX/HGX H100 and H200). The collective
  // latency is a typical small-message NCCL all-reduce, an assumption.
  if (name == "h100") return {"H100 SXM 80GB", 81559.0 / 1024, 3350, 1979, 450, 50, 20};
  if (name == "h200") return {"H200 SXM 141GB", 143771.0 / 1024, 4800, 1979, 450, 50, 20};
  fail("--gpu: unknown GPU '{}' (h100, h200; or give --gpu-mem, --hbm-gbs, --tflops, ...)", name);
}

namespace {

// The bytes and multiply-adds of one rank's weights, in the parts a decode step reads differently.
struct RankWeights {
  double replicated = 0;      // whole on every rank
  double always = 0;          // read by every decode step: everything but routed experts and the embedding
  double always_params = 0;   // weights multiplied by each token among those
  double expert = 0, expert_params = 0;  // one routed expert
  double resident = 0;        // all of the rank's weights in memory
};

class Sizer {
 public:
  explicit Sizer(const ModelConfig& c) : c_(c), block_(c.fp8_block_size) {}

  // Rows r × columns k of a stored [.., ..] linear weight: FP8 with F32 block scales covering
  // the slice (a slice starting mid-block still needs that block's scale), else BF16.
  double linear(Range r, Range k) const {
    const double values = double(r.size()) * k.size();
    if (block_ <= 0) return 2 * values;
    return values + 4.0 * blocks(r) * blocks(k);
  }
  static double bf16(double values) { return 2 * values; }

  RankWeights rank(const RankPlan& p) const {
    const int hidden = c_.hidden_size, qk = c_.qk_head_dim(), kv_rows = c_.qk_nope_head_dim + c_.v_head_dim;
    const Range all_hidden{0, hidden};
    RankWeights w;
    auto replicated = [&](double bytes, double params) {
      w.replicated += bytes, w.always += bytes, w.always_params += params;
    };
    auto sharded = [&](double bytes, double params) { w.always += bytes, w.always_params += params; };
    auto mlp = [&](Range width) {  // gate, up: rows; down: columns
      sharded(2 * linear(width, all_hidden) + linear(all_hidden, width), 3.0 * width.size() * hidden);
    };
    for (int layer = 0; layer < c_.num_hidden_layers; ++layer) {
      replicated(bf16(2.0 * hidden), 0);  // input and post-attention norms
      if (c_.q_lora_rank > 0) {
        replicated(linear({0, c_.q_lora_rank}, all_hidden) + bf16(c_.q_lora_rank), double(c_.q_lora_rank) * hidden);
        sharded(linear({p.heads.begin * qk, p.heads.end * qk}, {0, c_.q_lora_rank}),
                double(p.heads.size()) * qk * c_.q_lora_rank);
      } else {
        sharded(linear({p.heads.begin * qk, p.heads.end * qk}, all_hidden), double(p.heads.size()) * qk * hidden);
      }
      replicated(linear({0, c_.kv_cache_dim()}, all_hidden) + bf16(c_.kv_lora_rank), double(c_.kv_cache_dim()) * hidden);
      sharded(linear({p.heads.begin * kv_rows, p.heads.end * kv_rows}, {0, c_.kv_lora_rank}),
              double(p.heads.size()) * kv_rows * c_.kv_lora_rank);
      sharded(linear(all_hidden, {p.heads.begin * c_.v_head_dim, p.heads.end * c_.v_head_dim}),
              double(hidden) * p.heads.size() * c_.v_head_dim);
      if (!c_.is_moe_layer(layer)) {
        mlp(p.mlp);
        continue;
      }
      const int experts = c_.routing.n_routed_experts;
      const bool bias = c_.routing.topk_method == TopkMethod::noaux_tc;
      replicated(bf16(double(experts) * hidden) + (bias ? 4.0 * experts : 0), double(experts) * hidden);  // router
      if (c_.n_shared_experts > 0) mlp(p.shared);
      const Range width{0, c_.moe_intermediate_size};
      w.expert = 2 * linear(width, all_hidden) + linear(all_hidden, width);
      w.expert_params = 3.0 * c_.moe_intermediate_size * hidden;
      w.resident += p.experts.size() * w.expert;
    }
    replicated(bf16(hidden), 0);                                                  // final norm
    sharded(bf16(double(p.vocab.size()) * hidden), double(p.vocab.size()) * hidden);  // lm_head (BF16)
    w.resident += w.always + bf16(double(p.vocab.size()) * hidden);                // + embedding rows
    return w;
  }

 private:
  double blocks(Range r) const { return r.size() > 0 ? (r.end - 1) / block_ - r.begin / block_ + 1 : 0; }

  const ModelConfig& c_;
  const int block_;
};

int moe_layers(const ModelConfig& c) {
  int n = 0;
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) n += c.is_moe_layer(layer);
  return n;
}

// One decode step of `batch` sequences at `context` positions on the rank `p` owning `w`.
StepTime decode_step(const ModelConfig& c, const Layout& layout, const Hardware& hw, const RankPlan& p,
                     const RankWeights& w, int batch, bool with_kv) {
  const double b = batch, experts = c.routing.n_routed_experts, k = c.routing.num_experts_per_tok;
  const double layers = c.num_hidden_layers, ctx = layout.context;
  double bytes = w.always, flops = 2 * b * w.always_params;
  if (experts > 0) {
    // Distinct experts of this rank hit by the batch (uniform routing), and tokens × experts.
    bytes += moe_layers(c) * p.experts.size() * (1 - std::pow(1 - k / experts, b)) * w.expert;
    flops += 2 * b * moe_layers(c) * k * (p.experts.size() / experts) * w.expert_params;
  }
  if (with_kv) {
    // Every rank reads the whole latent cache (replicated) for its heads: scores over
    // [c | k_pe] and the weighted sum of c, per head and position.
    bytes += b * layers * ctx * c.kv_cache_dim() * kKvCacheBytesPerValue;
    flops += b * layers * p.heads.size() * ctx * 2.0 * (c.kv_cache_dim() + c.kv_lora_rank);
  }
  StepTime t;
  t.memory = bytes / (hw.hbm_gbs * 1e9);
  t.compute = flops / (hw.tflops * 1e12);
  const int n = layout.gpus();
  if (n > 1) {
    // Ring collectives over the slowest link: an all-reduce of the hidden state (BF16) after the
    // embedding and after attention and the feed-forward of each layer; the lm_head all-gather.
    const double link = (layout.nodes > 1 ? hw.ib_gbs : hw.nvlink_gbs) * 1e9, latency = hw.latency_us * 1e-6;
    const double reduces = 1 + 2 * layers;
    t.communication = reduces * (latency + 2.0 * (n - 1) / n * b * c.hidden_size * 2 / link) +
                      latency + double(n - 1) / n * b * c.vocab_size * 4 / link;
  }
  return t;
}

int first_compute_bound(const ModelConfig& c, const Layout& layout, const Hardware& hw, const RankPlan& p,
                        const RankWeights& w, bool with_kv) {
  for (int b = 1; b <= kMaxBatch; b = b < 64 ? b + 1 : b + b / 16) {
    const StepTime t = decode_step(c, layout, hw, p, w, b, with_kv);
    if (t.compute >= t.memory) return b;
  }
  return 0;
}

}  // namespace

Capacity estimate_capacity(const ModelConfig& c, const Layout& layout, const Hardware& hw) {
  if (layout.gpus_per_node < 1 || layout.nodes < 1) fail("--gpus and --nodes must be at least 1");
  if (layout.context < 1 || layout.batch < 1) fail("--context and --batch must be at least 1");
  Capacity cap;
  cap.plan = make_plan(c, layout.gpus());
  const Sizer sizer(c);
  cap.checkpoint_bytes = sizer.rank(make_plan(c, 1).ranks[0]).resident;

  // The rank with the most bytes sets the need (with uneven splits, the first ranks).
  int largest = 0;
  std::vector<RankWeights> ranks;
  for (const RankPlan& p : cap.plan.ranks) {
    ranks.push_back(sizer.rank(p));
    if (ranks.back().resident > ranks[largest].resident) largest = int(ranks.size()) - 1;
  }
  const RankPlan& p = cap.plan.ranks[largest];
  const RankWeights& w = ranks[largest];
  cap.replicated_bytes = w.replicated;
  cap.weight_bytes = w.resident;
  cap.kv_bytes = double(layout.batch) * layout.context * c.num_hidden_layers * c.kv_cache_dim() * kKvCacheBytesPerValue;

  // Workspace: CUDA context, cuBLAS and NCCL buffers (~1.5 GiB, an estimate), and float32
  // activations for a prefill chunk (the model's default) or the batch: the residual and block
  // buffers, this rank's queries and head outputs, MLP intermediates, and full-vocabulary logits.
  const double tokens = std::max(layout.batch, c.default_prefill_chunk());
  const double widest = std::max({p.mlp.size(), p.shared.size(), c.moe_intermediate_size});
  const double per_token = 4.0 * c.hidden_size + p.heads.size() * (c.qk_head_dim() + c.v_head_dim + c.kv_lora_rank) +
                           c.kv_cache_dim() + 3 * widest + c.vocab_size;
  cap.workspace_bytes = 1.5 * (1 << 30) + tokens * per_token * 4;
  cap.fits = cap.total_bytes() <= hw.memory_gib * (1 << 30);

  cap.step_batch1 = decode_step(c, layout, hw, p, w, 1, true);
  cap.decode_tok_s_batch1 = 1 / cap.step_batch1.total();
  cap.compute_bound_batch = first_compute_bound(c, layout, hw, p, w, true);
  cap.weights_compute_bound_batch = first_compute_bound(c, layout, hw, p, w, false);
  return cap;
}

}  // namespace r1
