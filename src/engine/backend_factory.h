// Chooses the backend named by --device.
#pragma once

#include <memory>
#include <string>

#include "model/backend.h"
#include "model/model.h"

namespace r1 {

// device: "cpu" or "cuda". threads: CPU threads (0 = one per core).
std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model, int threads,
                                      Numerics numerics = Numerics::exact);

// "exact" or "fast" (the --numerics flag).
Numerics parse_numerics(const std::string& name);

}  // namespace r1
