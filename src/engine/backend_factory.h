// Chooses the backend named by --device (and --ranks).
#pragma once

#include <memory>
#include <string>

#include "model/backend.h"
#include "model/model.h"

namespace r1 {

// Refuses, before anything is loaded, a layout that cannot run: --ranks with a device other
// than the CPU, or a rank count that does not divide the model's attention heads.
void check_layout(const std::string& model_dir, const std::string& device, int ranks);

// device: "cpu" or "cuda". threads: CPU threads (0 = one per core), shared by all ranks.
// ranks > 1: the CPU engine sharded over that many in-process ranks.
std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model, int threads,
                                      Numerics numerics = Numerics::exact, int ranks = 1);

// How the weights should sit in memory for `device`: the CPU streams them from large pages; a
// GPU uploads from the file mapping. R1_LARGE_PAGES=0 keeps the mapping on the CPU too.
Residency residency_for(const std::string& device);

// The --numerics flag: "exact", "fast", or "auto": fast where it is built, available and meets
// issue 10's fidelity bar (the CPU with AVX512-BF16 and VBMI: tests/test_cpu_fast.cpp), else exact. The
// CUDA fast numerics stay opt-in: their prefill logits drift further (docs/PERFORMANCE.md).
Numerics parse_numerics(const std::string& name, const std::string& device);

}  // namespace r1
