// The loader on good and deliberately broken checkpoints. Broken ones are checked through the
// CLI: one error line naming the culprit, a non-zero exit, well under a second.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "run_command.h"
#include "temp_files.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
const std::string kFp8 = std::string(R1_TEST_DATA) + "/golden/tiny-v3-fp8";

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}

// A safetensors file from a header text and a data section, byte for byte.
void write_raw(const fs::path& p, const std::string& header, size_t data_bytes) {
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  write_file(p, bytes + header + std::string(data_bytes, '\x01'));
}

CommandResult score(const fs::path& model) {
  return run_command(fmt::format("{} score --model '{}' --tokens 0,1,2", R1_BINARY, model.string()));
}

// Copies the FP8 fixture, lets `corrupt` break it, runs r1 score on it.
void expect_clean_failure(const std::function<void(const fs::path&)>& corrupt,
                          const std::vector<std::string>& must_name) {
  TempDir tmp;
  const fs::path model = tmp.path / "model";
  fs::copy(kFp8, model, fs::copy_options::recursive);
  corrupt(model);
  CommandResult r = score(model);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_EQ(r.output.rfind("r1: error: ", 0), 0u) << r.output;
  for (const auto& name : must_name) EXPECT_NE(r.output.find(name), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 1.0);
}

const char* kShard1 = "model-00001-of-00002.safetensors";

TEST(Safetensors, ReadsShardedFixtureZeroCopy) {
  Checkpoint ckpt(kFp8);
  const TensorView& w = ckpt.get("model.layers.1.mlp.experts.3.up_proj.weight");
  EXPECT_EQ(w.dtype, DType::F8_E4M3);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{128, 256}));
  const TensorView& s = ckpt.get("model.layers.1.mlp.experts.3.up_proj.weight_scale_inv");
  EXPECT_EQ(s.dtype, DType::F32);
  EXPECT_EQ(s.shape, (std::vector<int64_t>{1, 2}));
  EXPECT_THROW(ckpt.get("no.such.tensor"), Error);
}

// Read into large pages (the CPU backend's residency): the same bytes as the mapping, starting
// on a 2 MiB boundary.
TEST(Safetensors, LargePagesHoldTheFilesBytes) {
  const std::string path = std::string(kFp8) + "/" + kShard1;
  MappedFile mapped(path), copied(path, Residency::large_pages);
  ASSERT_EQ(copied.size(), mapped.size());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(copied.data()) % (size_t(2) << 20), 0u);
  EXPECT_EQ(std::memcmp(copied.data(), mapped.data(), mapped.size()), 0);
  Checkpoint ckpt(kFp8, Residency::large_pages);
  EXPECT_EQ(ckpt.get("model.layers.1.mlp.experts.3.up_proj.weight").shape, (std::vector<int64_t>{128, 256}));
}

TEST(Safetensors, WriteThenReadRoundTrip) {
  TempDir tmp;
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  const std::vector<int64_t> ids = {5, -1};
  write_safetensors((tmp.path / "a.safetensors").string(),
                    {{"x", DType::F32, {2, 3}, values.data()}, {"ids", DType::I64, {2}, ids.data()}});
  EXPECT_FALSE(fs::exists(tmp.path / "a.safetensors.tmp"));
  SafetensorsFile f((tmp.path / "a.safetensors").string());
  const TensorView& x = f.tensors().at("x");
  EXPECT_EQ(x.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(x.data, values.data(), 24), 0);
  EXPECT_EQ(reinterpret_cast<const int64_t*>(f.tensors().at("ids").data)[0], 5);
}

TEST(Safetensors, HeaderValidation) {
  TempDir tmp;
  const fs::path p = tmp.path / "t.safetensors";
  auto error_of = [&](const std::string& header, size_t data) -> std::string {
    write_raw(p, header, data);
    try {
      SafetensorsFile f(p.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8), "");
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8).find("outside the data section"), std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 16).find("expected 12"), std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8).find("unknown dtype 'Q4'"), std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 16).find("overlaps"), std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8).find("'a'"), std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8).find("'a'"), std::string::npos);
  EXPECT_NE(error_of(R"({"a":)", 8).find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"([1,2])", 8).find("not a JSON object"), std::string::npos);
  for (const char* dtype : {"F16", "BF16", "F8_E4M3", "I32", "I64"})
    EXPECT_EQ(error_of(fmt::format(R"({{"a":{{"dtype":"{}","shape":[2,2],"data_offsets":[0,{}]}}}})", dtype,
                                   4 * dtype_size(dtype == std::string("F8_E4M3") ? DType::F8_E4M3 :
                                                  dtype == std::string("I32") ? DType::I32 :
                                                  dtype == std::string("I64") ? DType::I64 : DType::F16)), 64), "")
        << dtype;
}

TEST(BrokenCheckpoint, TruncatedShard) {
  expect_clean_failure([](const fs::path& m) { fs::resize_file(m / kShard1, fs::file_size(m / kShard1) / 2); },
                       {kShard1, "truncated"});
}

TEST(BrokenCheckpoint, HeaderLengthPastEndOfFile) {
  expect_clean_failure([](const fs::path& m) {
    std::string bytes = read_file(m / kShard1);
    uint64_t huge = uint64_t(1) << 40;
    std::memcpy(bytes.data(), &huge, 8);
    write_file(m / kShard1, bytes);
  }, {kShard1, "header length"});
}

TEST(BrokenCheckpoint, InvalidJsonHeader) {
  expect_clean_failure([](const fs::path& m) {
    std::string bytes = read_file(m / kShard1);
    bytes[8] = '#';
    write_file(m / kShard1, bytes);
  }, {kShard1, "invalid JSON"});
}

// Rewrites a shard's header through `edit`, keeping its data section as it is.
void edit_header(const fs::path& shard, const std::function<void(nlohmann::json&)>& edit) {
  std::string bytes = read_file(shard);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  edit(header);
  std::string text = header.dump();
  std::string out(8, '\0');
  uint64_t new_n = text.size();
  std::memcpy(out.data(), &new_n, 8);
  write_file(shard, out + text + bytes.substr(8 + n));
}

TEST(BrokenCheckpoint, OffsetsOutOfRange) {
  expect_clean_failure([](const fs::path& m) {
    edit_header(m / kShard1, [](nlohmann::json& h) {
      h.at("model.layers.0.input_layernorm.weight")["data_offsets"] = {uint64_t(1) << 40, (uint64_t(1) << 40) + 512};
    });
  }, {kShard1, "model.layers.0.input_layernorm.weight", "outside the data section"});
}

TEST(BrokenCheckpoint, OverlappingTensors) {
  expect_clean_failure([](const fs::path& m) {
    edit_header(m / kShard1, [](nlohmann::json& h) {
      h.at("model.layers.0.input_layernorm.weight")["data_offsets"] = h.at("model.embed_tokens.weight")["data_offsets"];
      h.at("model.layers.0.input_layernorm.weight")["shape"] = h.at("model.embed_tokens.weight")["shape"];
    });
  }, {kShard1, "overlaps"});
}

TEST(BrokenCheckpoint, UnknownDtype) {
  expect_clean_failure([](const fs::path& m) {
    edit_header(m / kShard1, [](nlohmann::json& h) { h.at("model.layers.0.input_layernorm.weight")["dtype"] = "Q4_K"; });
  }, {kShard1, "model.layers.0.input_layernorm.weight", "unknown dtype 'Q4_K'"});
}

void edit_index(const fs::path& m, const std::function<void(nlohmann::json&)>& edit) {
  const fs::path p = m / "model.safetensors.index.json";
  nlohmann::json index = nlohmann::json::parse(read_file(p));
  edit(index);
  write_file(p, index.dump(2));
}

TEST(BrokenCheckpoint, IndexNamesMissingFile) {
  expect_clean_failure([](const fs::path& m) {
    edit_index(m, [](nlohmann::json& i) { i["weight_map"]["model.norm.weight"] = "model-00009-of-00009.safetensors"; });
  }, {"model-00009-of-00009.safetensors", "model.norm.weight", "does not exist"});
}

TEST(BrokenCheckpoint, IndexNamesMissingTensor) {
  expect_clean_failure([](const fs::path& m) {
    edit_index(m, [](nlohmann::json& i) { i["weight_map"]["model.layers.0.extra.weight"] = kShard1; });
  }, {"model.layers.0.extra.weight", "missing from this shard"});
}

TEST(BrokenCheckpoint, ConfigShapeMismatch) {
  expect_clean_failure([](const fs::path& m) {
    nlohmann::json config = nlohmann::json::parse(read_file(m / "config.json"));
    config["kv_lora_rank"] = 48;
    write_file(m / "config.json", config.dump(2));
  }, {"kv_a_proj_with_mqa", "config.json"});
}

TEST(BrokenCheckpoint, UnknownRoutingMethod) {
  expect_clean_failure([](const fs::path& m) {
    nlohmann::json config = nlohmann::json::parse(read_file(m / "config.json"));
    config["topk_method"] = "random";
    write_file(m / "config.json", config.dump(2));
  }, {"config.json", "topk_method 'random'"});
}

TEST(BrokenCheckpoint, MissingConfig) {
  expect_clean_failure([](const fs::path& m) { fs::remove(m / "config.json"); }, {"config.json"});
}

TEST(BrokenCheckpoint, MissingModelDirectory) {
  CommandResult r = score("/nonexistent/model");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("/nonexistent/model"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace r1
