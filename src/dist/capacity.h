// What a layout needs before anything is loaded (`r1 plan`): per-GPU memory from config.json
// alone (tensor bytes from shapes and the published dtypes), whether it fits, and a roofline
// estimate of decode speed from the GPU's memory bandwidth, FLOPs and links.
#pragma once

#include <string>

#include "dist/plan.h"
#include "model/config.h"

namespace r1 {

// Per-GPU figures; the defaults are the SXM parts' data sheets (see hardware_preset).
struct Hardware {
  std::string name;
  double memory_gib = 0;   // usable memory per GPU
  double hbm_gbs = 0;      // memory bandwidth, GB/s
  double tflops = 0;       // dense FP8 tensor-core TFLOPS
  double nvlink_gbs = 0;   // NVLink bandwidth per GPU, one direction, GB/s
  double ib_gbs = 0;       // InfiniBand bandwidth per GPU, one direction, GB/s
  double latency_us = 0;   // fixed cost of one small collective
};

// "h100" or "h200"; fails naming the known ones.
Hardware hardware_preset(const std::string& name);

struct Layout {
  int gpus_per_node = 8;
  int nodes = 1;
  int context = 16384;  // positions per sequence
  int batch = 1;        // sequences decoding together
  int gpus() const { return gpus_per_node * nodes; }
};

struct StepTime {  // one decode step, seconds
  double memory = 0, compute = 0, communication = 0;
  double total() const { return (memory > compute ? memory : compute) + communication; }
};

struct Capacity {
  ShardPlan plan;
  double checkpoint_bytes = 0;  // the weights the engine loads (MTP layers excluded), all GPUs
  double replicated_bytes = 0;  // per GPU: tensors every rank holds whole
  double weight_bytes = 0;      // per GPU, the largest rank: replicated + its shards
  double kv_bytes = 0;          // per GPU: latent cache for context × batch (replicated over TP ranks)
  double workspace_bytes = 0;   // per GPU: runtime and activations, an estimate
  double total_bytes() const { return weight_bytes + kv_bytes + workspace_bytes; }
  bool fits = false;
  StepTime step_batch1;         // at batch 1 and the requested context
  double decode_tok_s_batch1 = 0;
  int compute_bound_batch = 0;          // first batch where FLOPs outlast memory reads; 0: none up to kMaxBatch
  int weights_compute_bound_batch = 0;  // the same counting weights only (KV reads left out)
};

constexpr int kMaxBatch = 65536;
constexpr int kKvCacheBytesPerValue = 2;  // BF16 latent cache on GPUs

Capacity estimate_capacity(const ModelConfig& config, const Layout& layout, const Hardware& hw);

}  // namespace r1
