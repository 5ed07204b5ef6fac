#include "engine/backend_factory.h"

#include <cstdlib>

#include "common/error.h"
#include "cpu/cpu_backend.h"
#include "dist/distributed_backend.h"
#include "dist/plan.h"
#ifdef R1_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace r1 {

Residency residency_for(const std::string& device) {
  const char* env = std::getenv("R1_LARGE_PAGES");
  const bool large_pages = device == "cpu" && !(env && std::string(env) == "0");
  return large_pages ? Residency::large_pages : Residency::mapped;
}

Numerics parse_numerics(const std::string& name, const std::string& device) {
  if (name == "auto") return device == "cpu" && fast_numerics_available() ? Numerics::fast : Numerics::exact;
  if (name == "exact") return Numerics::exact;
  if (name == "fast") return Numerics::fast;
  fail("--numerics: unknown mode '{}' (exact, fast, auto)", name);
}

void check_layout(const std::string& model_dir, const std::string& device, int ranks) {
  if (ranks < 1) fail("--ranks {}: need at least 1", ranks);
  if (ranks == 1) return;
  if (device != "cpu")
    fail("--ranks {}: in-process ranks shard the CPU engine only (--device cpu); sharding over GPUs is not built yet",
         ranks);
  try {
    make_plan(load_config(model_dir), ranks);
  } catch (const Error& e) {
    fail("--ranks {}: {}", ranks, e.what());
  }
}

std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model, int threads, Numerics numerics,
                                      int ranks) {
  if (ranks > 1) {
    if (device != "cpu") fail("--ranks {}: in-process ranks shard the CPU engine only (--device cpu)", ranks);
    DistributedOptions options;
    options.ranks = ranks;
    options.threads = threads;
    options.numerics = numerics;
    return std::make_unique<DistributedBackend>(model.config, model.weights, options);
  }
  if (device == "cpu") return std::make_unique<CpuBackend>(model.config, model.weights, threads, numerics);
  if (device == "cuda") {
#ifdef R1_HAVE_CUDA
    return make_cuda_backend(model.config, model.weights, numerics);
#else
    fail("--device cuda: this r1 was built without CUDA (nvcc was not found when it was configured)");
#endif
  }
  fail("--device: unknown device '{}' (cpu, cuda)", device);
}

}  // namespace r1
