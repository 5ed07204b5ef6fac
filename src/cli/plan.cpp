// r1 plan: whether a model fits a GPU layout and how fast it can decode, from config.json alone
// (nothing else is read), before anything is loaded.
#include <fmt/format.h>

#include <memory>
#include <optional>

#include "cli/commands.h"
#include "dist/capacity.h"
#include "model/config.h"

namespace r1 {

namespace {

struct PlanOptions {
  std::string model = default_model_dir();
  Layout layout;
  std::string gpu = "h100";
  std::optional<double> gpu_mem, hbm_gbs, tflops, nvlink_gbs, ib_gbs, latency_us;
};

constexpr double kGiB = 1 << 30;

int run_plan(const PlanOptions& o) {
  const ModelConfig c = load_config(o.model);
  Hardware hw = hardware_preset(o.gpu);
  if (o.gpu_mem) hw.memory_gib = *o.gpu_mem;
  if (o.hbm_gbs) hw.hbm_gbs = *o.hbm_gbs;
  if (o.tflops) hw.tflops = *o.tflops;
  if (o.nvlink_gbs) hw.nvlink_gbs = *o.nvlink_gbs;
  if (o.ib_gbs) hw.ib_gbs = *o.ib_gbs;
  if (o.latency_us) hw.latency_us = *o.latency_us;
  const Layout& l = o.layout;
  const Capacity cap = estimate_capacity(c, l, hw);
  const RankPlan& r0 = cap.plan.ranks[0];

  fmt::print("model: {} ({}), {} layers, {} heads, {} routed experts ({} per token), {}\n", o.model, c.model_type,
             c.num_hidden_layers, c.num_attention_heads, c.routing.n_routed_experts, c.routing.num_experts_per_tok,
             c.fp8_block_size > 0 ? fmt::format("FP8 weights with {0}x{0} F32 block scales", c.fp8_block_size)
                                  : std::string("BF16 weights"));
  fmt::print("layout: {} GPUs ({} node{} x {} {}): {} heads, {}{} routed experts and 1/{} of the vocabulary per GPU\n",
             l.gpus(), l.nodes, l.nodes > 1 ? "s" : "", l.gpus_per_node, hw.name, r0.heads.size(),
             r0.experts.size(), cap.plan.ranks.back().experts.size() != r0.experts.size()
                                    ? fmt::format(" (or {})", cap.plan.ranks.back().experts.size()) : "",
             l.gpus());
  fmt::print("checkpoint: {:.2f} GiB of weights (MTP layers excluded)\n", cap.checkpoint_bytes / kGiB);
  fmt::print("per GPU (GiB):\n");
  fmt::print("  weights    {:8.2f}  (replicated {:.2f} + this GPU's shards)\n", cap.weight_bytes / kGiB,
             cap.replicated_bytes / kGiB);
  fmt::print("  KV cache   {:8.2f}  ({} positions x batch {}, {} values x {} layers, BF16)\n", cap.kv_bytes / kGiB,
             l.context, l.batch, c.kv_cache_dim(), c.num_hidden_layers);
  fmt::print("  workspace  {:8.2f}  (estimate: runtime 1.5 + activations)\n", cap.workspace_bytes / kGiB);
  fmt::print("  total      {:8.2f}  of {:.2f}: {}\n", cap.total_bytes() / kGiB, hw.memory_gib,
             cap.fits ? "fits" : "DOES NOT FIT");
  const StepTime& t = cap.step_batch1;
  fmt::print("decode at batch 1: {:.1f} tokens/s (step {:.2f} ms: memory {:.2f} ms at {:.0f} GB/s, compute {:.3f} ms at "
             "{:.0f} TFLOPS, collectives {:.2f} ms over {} at {:.0f} GB/s)\n",
             cap.decode_tok_s_batch1, t.total() * 1e3, t.memory * 1e3, hw.hbm_gbs, t.compute * 1e3, hw.tflops,
             t.communication * 1e3, l.nodes > 1 ? "InfiniBand" : "NVLink", l.nodes > 1 ? hw.ib_gbs : hw.nvlink_gbs);
  const std::string never = fmt::format("not below batch {}", kMaxBatch);
  fmt::print("compute-bound from batch: {} (weights alone: {}; the latent cache is read once per sequence, so "
             "attention stays memory-bound with few heads per GPU)\n",
             cap.compute_bound_batch ? std::to_string(cap.compute_bound_batch) : never,
             cap.weights_compute_bound_batch ? std::to_string(cap.weights_compute_bound_batch) : never);
  fmt::print("collectives:");
  for (const CommPoint& p : cap.plan.comms)
    fmt::print(" {} after {} ({});", p.op == Collective::all_reduce_sum ? "all-reduce" : "all-gather", p.after, p.when);
  fmt::print("\n");
  return cap.fits ? 0 : 1;
}

}  // namespace

Command add_plan_command(CLI::App& app) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "per-GPU memory, whether it fits, and roofline decode speed of a GPU layout, from config.json alone "
      "(exit 1 when it does not fit)");
  cmd->footer(
      "GPU defaults (--gpu), from NVIDIA's SXM data sheets: h100: 79.6 GiB (81559 MiB as nvidia-smi reports), "
      "3350 GB/s HBM3, 1979 dense FP8 TFLOPS; h200: 140.4 GiB (143771 MiB), 4800 GB/s HBM3e, 1979 TFLOPS. Both: "
      "NVLink 4 450 GB/s per direction (900 GB/s total), one 400 Gb/s NDR InfiniBand adapter per GPU (50 GB/s), "
      "20 us per collective (an assumption). Weights: FP8 linears with F32 128x128 scales, BF16 norms, router, "
      "embedding and lm_head, as DeepSeek publishes them; KV cache BF16.");
  cmd->add_option("--model", o->model, "model directory (only config.json is read)")->capture_default_str();
  cmd->add_option("--gpus", o->layout.gpus_per_node, "GPUs per node")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--nodes", o->layout.nodes, "nodes (machines)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--gpu", o->gpu, "GPU kind setting the defaults below: h100 or h200")->capture_default_str();
  cmd->add_option("--gpu-mem", o->gpu_mem, "memory per GPU, GiB")->check(CLI::PositiveNumber);
  cmd->add_option("--context", o->layout.context, "positions per sequence")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch", o->layout.batch, "sequences decoding together")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--hbm-gbs", o->hbm_gbs, "memory bandwidth per GPU, GB/s")->check(CLI::PositiveNumber);
  cmd->add_option("--tflops", o->tflops, "dense FP8 TFLOPS per GPU")->check(CLI::PositiveNumber);
  cmd->add_option("--nvlink-gbs", o->nvlink_gbs, "NVLink bandwidth per GPU and direction, GB/s")->check(CLI::PositiveNumber);
  cmd->add_option("--ib-gbs", o->ib_gbs, "InfiniBand bandwidth per GPU and direction, GB/s")->check(CLI::PositiveNumber);
  cmd->add_option("--latency-us", o->latency_us, "fixed cost of one collective, microseconds")->check(CLI::NonNegativeNumber);
  return [o] { return run_plan(*o); };
}

}  // namespace r1
