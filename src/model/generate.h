// Random checkpoints in the exact Hugging Face layout of the DeepSeek family (config.json,
// sharded FP8 safetensors with 128×128 weight_scale_inv, index, generation_config.json), for
// hardware tests and benchmarks at real shapes.
#pragma once

#include <cstdint>
#include <string>

namespace r1 {

class ThreadPool;

struct GenerateOptions {
  std::string preset;   // r1 | v2-lite | tiny
  std::string out_dir;
  int layers = 0;       // 0: the preset's num_hidden_layers
  int vocab = 0;        // 0: the preset's vocab_size (e.g. 129280 pairs `tiny` with R1's tokenizer)
  int experts = 0;      // 0: the preset's n_routed_experts
  uint64_t seed = 1;
};

// Writes the checkpoint; out_dir must not exist yet or be empty.
void generate_model(const GenerateOptions& options, ThreadPool& pool);

}  // namespace r1
