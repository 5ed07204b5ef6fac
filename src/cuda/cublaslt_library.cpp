#include "cuda/cublaslt_library.h"

#include <dlfcn.h>
#include <fmt/format.h>


#include "common/error.h"

namespace r1::cuda {

namespace {

struct Loaded {
  CublasLtLibrary library;
  bool ok = false;
  std::string why;
};

// By soname first (the loader's search path, then this binary's run path), then the toolkit's
// directory this r1 was built against.
Loaded load() {
  Loaded l;
  const std::string soname = fmt::format("libcublasLt.so.{}", CUBLAS_VER_MAJOR);
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
#ifdef R1_CUDA_LIBRARY_DIR
  if (!handle) handle = dlopen((std::string(R1_CUDA_LIBRARY_DIR) + "/" + soname).c_str(), RTLD_NOW | RTLD_LOCAL);
#endif
  if (!handle) {
    l.why = fmt::format("cannot open {}: {}", soname, dlerror());
    return l;
  }
#define R1_CUBLASLT_LOAD(name)                                                          \
  l.library.name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name));         \
  if (!l.library.name) {                                                                \
    l.why = fmt::format("{} has no {}", soname, #name);                                 \
    return l;                                                                           \
  }
  R1_CUBLASLT_FUNCTIONS(R1_CUBLASLT_LOAD)
#undef R1_CUBLASLT_LOAD
  l.ok = true;
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();  // thread-safe initialization; the handle stays open
  return l;
}

}  // namespace

const CublasLtLibrary* cublaslt_library(std::string* why) {
  const Loaded& l = loaded();
  if (!l.ok && why) *why = l.why;
  return l.ok ? &l.library : nullptr;
}

const CublasLtLibrary& cublaslt() {
  const Loaded& l = loaded();
  if (!l.ok) fail("the fast numerics' FP8 GEMM needs cuBLASLt: {}", l.why);
  return l.library;
}

}  // namespace r1::cuda
