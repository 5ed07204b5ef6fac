// Safetensors checkpoints: strict, zero-copy reading (single file or sharded through
// model.safetensors.index.json) and atomic writing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"

namespace r1 {

enum class DType { F32, F16, BF16, F8_E4M3, I32, I64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

// A tensor inside a mapped file: shape, dtype and a pointer into the mapping, nothing copied.
struct TensorView {
  std::string name;
  std::string file;  // the file it lives in, for error messages
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  // The bytes are this process's copy (not the page cache's), which a backend may rearrange.
  bool private_copy = false;
  // Rearranged by the CPU backend into panels for its fast kernels (simd::pack_panels): only
  // those kernels may read the bytes now. State of the bytes, so it follows them (mutable).
  mutable bool panels = false;

  int64_t numel() const;
  std::string shape_string() const;
};

// One .safetensors file, its header validated in full before any tensor is handed out.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path, Residency residency = Residency::mapped);
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::map<std::string, TensorView> tensors_;
};

// All tensors of a model directory: `model.safetensors.index.json` and its shards, or a
// single `model.safetensors`.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir, Residency residency = Residency::mapped);
  const TensorView* find(const std::string& name) const;
  const TensorView& get(const std::string& name) const;  // fails naming the tensor if absent
  const std::string& dir() const { return dir_; }
  size_t total_bytes() const;  // sum of the shard file sizes

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> by_name_;
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // may be null when a fill function provides the bytes
  size_t bytes() const;
};

// Writes to `path.tmp` then renames, so a failure never leaves a half-written `path`.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors);
// The same, with tensor i's bytes produced by fill(i, buffer) just before it is written, so that
// files larger than memory can be written.
using TensorFill = std::function<void(size_t index, std::vector<uint8_t>& bytes)>;
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors, const TensorFill& fill);

}  // namespace r1
