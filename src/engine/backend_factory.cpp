#include "engine/backend_factory.h"

#include "common/error.h"
#include "cpu/cpu_backend.h"
#ifdef R1_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace r1 {

Numerics parse_numerics(const std::string& name) {
  if (name == "exact") return Numerics::exact;
  if (name == "fast") return Numerics::fast;
  fail("--numerics: unknown mode '{}' (exact, fast)", name);
}

std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model, int threads, Numerics numerics) {
  if (device == "cpu") {
    if (numerics == Numerics::fast)
      fail("--numerics fast: the CPU backend computes in exact numerics only so far; use --device cuda or --numerics exact");
    return std::make_unique<CpuBackend>(model.config, model.weights, threads);
  }
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
