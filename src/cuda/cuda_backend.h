// The CUDA backend on one GPU: weights uploaded as stored (FP8/BF16, no dequantized copies),
// float32 activations in exact numerics; in fast numerics FP8 tensor-core products for batches
// and a BF16 latent cache with tensor-core attention (where the shapes allow); the latent KV
// cache on the device.
#pragma once

#include <memory>
#include <vector>

#include "model/backend.h"
#include "model/config.h"
#include "model/weights.h"

namespace r1 {

std::unique_ptr<Backend> make_cuda_backend(const ModelConfig& config, const ModelWeights& weights,
                                           Numerics numerics = Numerics::exact);

// Whether a usable CUDA device is present (false with a reason when not).
bool cuda_device_available(std::string* reason);

}  // namespace r1
