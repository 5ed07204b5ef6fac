// A loaded checkpoint: config, mapped tensors, and the per-layer weight views into them.
#pragma once

#include <memory>
#include <string>

#include "io/safetensors.h"
#include "model/config.h"
#include "model/weights.h"

namespace r1 {

struct Model {
  ModelConfig config;
  std::unique_ptr<Checkpoint> checkpoint;
  ModelWeights weights;  // views into *checkpoint

  // residency: see io/mapped_file.h (large pages for the CPU backend, the mapping for a GPU's upload).
  static std::unique_ptr<Model> load(const std::string& dir, Residency residency = Residency::mapped);
};

}  // namespace r1
