#include "io/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "io/json_file.h"

namespace r1 {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4},    {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::I32, "I32", 4}, {DType::I64, "I64", 8},
};

const DTypeInfo& info(DType dtype) {
  for (const auto& i : kDTypes)
    if (i.dtype == dtype) return i;
  fail("internal: unknown dtype {}", int(dtype));
}

TensorView parse_entry(const std::string& path, const std::string& name, const json& entry,
                       const uint8_t* data_section, uint64_t data_size) {
  auto bad = [&](const std::string& what) -> Error {
    return Error(fmt::format("{}: tensor '{}': {}", path, name, what));
  };
  if (!entry.is_object()) throw bad("header entry is not an object");
  if (!entry.contains("dtype") || !entry["dtype"].is_string()) throw bad("missing dtype");
  std::string dtype_str = entry["dtype"];
  const DTypeInfo* dtype = nullptr;
  for (const auto& i : kDTypes)
    if (dtype_str == i.name) dtype = &i;
  if (!dtype) throw bad(fmt::format("unknown dtype '{}'", dtype_str));

  TensorView t;
  t.name = name;
  t.file = path;
  t.dtype = dtype->dtype;
  const json& shape = entry.value("shape", json());
  if (!shape.is_array()) throw bad("missing shape");
  unsigned __int128 numel = 1;
  for (const auto& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) throw bad("shape is not a list of sizes");
    t.shape.push_back(d.get<int64_t>());
    numel *= uint64_t(t.shape.back());
    if (numel > data_size) numel = uint64_t(data_size) + 1;  // saturate: mismatch reported below
  }
  const json& offsets = entry.value("data_offsets", json());
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    throw bad("data_offsets is not [begin, end]");
  uint64_t begin = offsets[0], end = offsets[1];
  if (begin > end || end > data_size)
    throw bad(fmt::format("data_offsets [{}, {}] outside the data section of {} bytes (truncated file?)",
                          begin, end, data_size));
  if (numel * dtype->size != end - begin)
    throw bad(fmt::format("{} bytes for shape {} of {} (expected {})", end - begin,
                          t.shape_string(), dtype->name, uint64_t(numel * dtype->size)));
  t.data = data_section + begin;
  t.bytes = end - begin;
  return t;
}

}  // namespace

size_t dtype_size(DType dtype) { return info(dtype).size; }
const char* dtype_name(DType dtype) { return info(dtype).name; }

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::shape_string() const { return fmt::format("[{}]", fmt::join(shape, ", ")); }

SafetensorsFile::SafetensorsFile(const std::string& path, Residency residency) : file_(path, residency) {
  const size_t size = file_.size();
  if (size < 8) fail("{}: too short for a safetensors file ({} bytes)", path, size);
  uint64_t header_len;
  std::memcpy(&header_len, file_.data(), 8);
  if (header_len > size - 8)
    fail("{}: header length {} runs past the end of the file ({} bytes)", path, header_len, size);
  json header;
  try {
    header = json::parse(file_.data() + 8, file_.data() + 8 + header_len);
  } catch (const json::exception& e) {
    fail("{}: invalid JSON header: {}", path, e.what());
  }
  if (!header.is_object()) fail("{}: header is not a JSON object", path);

  const uint8_t* data_section = file_.data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    tensors_.emplace(name, parse_entry(path, name, entry, data_section, data_size)).first->second.private_copy =
        file_.private_copy();
  }

  std::vector<const TensorView*> by_offset;
  for (const auto& [name, t] : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](auto* a, auto* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorView* prev = by_offset[i - 1];
    if (prev->data + prev->bytes > by_offset[i]->data)
      fail("{}: tensor '{}' overlaps tensor '{}'", path, by_offset[i]->name, prev->name);
  }
}

Checkpoint::Checkpoint(const std::string& dir, Residency residency) : dir_(dir) {
  if (!fs::is_directory(dir)) fail("{}: model directory not found", dir);
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single_path = fs::path(dir) / "model.safetensors";

  json weight_map = json::object();
  if (fs::exists(index_path)) {
    const json index = read_json_object(index_path.string());
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      fail("{}: no weight_map object", index_path.string());
    weight_map = index["weight_map"];
  } else if (!fs::exists(single_path)) {
    fail("{}: neither model.safetensors.index.json nor model.safetensors found", dir);
  }

  std::map<std::string, const SafetensorsFile*> shards;
  auto open_shard = [&](const std::string& file_name) -> const SafetensorsFile& {
    auto it = shards.find(file_name);
    if (it != shards.end()) return *it->second;
    files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / file_name).string(), residency));
    return *shards.emplace(file_name, files_.back().get()).first->second;
  };

  if (weight_map.empty()) {
    for (const auto& [name, t] : open_shard("model.safetensors").tensors()) by_name_[name] = &t;
    return;
  }
  for (const auto& [name, file] : weight_map.items()) {
    if (!file.is_string()) fail("{}: weight_map entry '{}' is not a file name", index_path.string(), name);
    const std::string file_name = file;
    if (file_name.find('/') != std::string::npos || !fs::exists(fs::path(dir) / file_name))
      fail("{}: tensor '{}' is in '{}', which does not exist", index_path.string(), name, file_name);
    const SafetensorsFile& shard = open_shard(file_name);
    auto it = shard.tensors().find(name);
    if (it == shard.tensors().end())
      fail("{}: tensor '{}' is named in the index but missing from this shard", shard.path(), name);
    by_name_[name] = &it->second;
  }
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::get(const std::string& name) const {
  const TensorView* t = find(name);
  if (!t) fail("{}: tensor '{}' not found in the checkpoint", dir_, name);
  return *t;
}

size_t Checkpoint::total_bytes() const {
  size_t total = 0;
  for (const auto& f : files_) total += fs::file_size(f->path());
  return total;
}

size_t TensorToWrite::bytes() const {
  size_t n = dtype_size(dtype);
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  write_safetensors(path, tensors, [&](size_t i, std::vector<uint8_t>& bytes) {
    const uint8_t* data = static_cast<const uint8_t*>(tensors[i].data);
    bytes.assign(data, data + tensors[i].bytes());
  });
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors, const TensorFill& fill) {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned

  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) fail("{}: cannot create", tmp);
  auto give_up = [&](const std::string& why) {
    out.close();
    std::remove(tmp.c_str());
    fail("{}: {}", tmp, why);
  };
  uint64_t header_len = header_text.size();
  out.write(reinterpret_cast<const char*>(&header_len), 8);
  out.write(header_text.data(), std::streamsize(header_text.size()));
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    try {
      fill(i, bytes);
    } catch (const Error& e) {
      give_up(e.what());
    }
    if (bytes.size() != tensors[i].bytes()) give_up(fmt::format("internal: wrong byte count for '{}'", tensors[i].name));
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!out) give_up("write failed (disk full?)");
  }
  out.close();
  if (!out) give_up("write failed (disk full?)");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("{}: cannot rename from {}", path, tmp);
  }
}

}  // namespace r1
