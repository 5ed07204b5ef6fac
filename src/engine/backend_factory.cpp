#include "engine/backend_factory.h"

#include "common/error.h"
#include "cpu/cpu_backend.h"
#ifdef R1_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace r1 {

std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model, int threads) {
  if (device == "cpu") return std::make_unique<CpuBackend>(model.config, model.weights, threads);
  if (device == "cuda") {
#ifdef R1_HAVE_CUDA
    return make_cuda_backend(model.config, model.weights);
#else
    fail("--device cuda: this r1 was built without CUDA (nvcc was not found when it was configured)");
#endif
  }
  fail("--device: unknown device '{}' (cpu, cuda)", device);
}

}  // namespace r1
