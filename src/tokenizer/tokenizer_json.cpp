#include "tokenizer/tokenizer_json.h"

#include <string_view>

#include "common/error.h"
#include "io/mapped_file.h"
#include "tokenizer/byte_level.h"

namespace r1 {

namespace {

using json = nlohmann::json;

// Room reserved for model.vocab and model.merges up front (DeepSeek: 128000 and 127741), so
// the vectors do not move their strings while growing.
constexpr size_t kExpectedEntries = size_t(1) << 17;

// SAX handler: builds the document like nlohmann's own DOM parser, except inside
// model.vocab and model.merges, whose entries go to the flat vectors.
class Reader : public nlohmann::json_sax<json> {
 public:
  explicit Reader(TokenizerJson& out) : out_(out) {}
  std::string error;

  bool null() override { return add(nullptr); }
  bool boolean(bool v) override { return add(v); }
  bool number_integer(number_integer_t v) override { return in_vocab_ ? add_vocab(v) : add(v); }
  bool number_unsigned(number_unsigned_t v) override { return in_vocab_ ? add_vocab(int64_t(v)) : add(v); }
  bool number_float(number_float_t v, const string_t&) override { return add(v); }
  bool binary(binary_t&) override { return fail_with("unexpected binary value"); }

  bool string(string_t& s) override {
    if (merge_depth_ == 1) return add_merge_string(s);
    if (merge_depth_ == 2) {
      pair_.push_back(std::move(s));
      return true;
    }
    return add(std::move(s));
  }

  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }

  bool start_object(std::size_t) override {
    if (in_vocab_ || merge_depth_) return fail_with("unexpected object in model.vocab or model.merges");
    if (at_model_child("vocab")) {
      in_vocab_ = true;
      out_.vocab.reserve(kExpectedEntries);
      return true;
    }
    return open(json::object());
  }

  bool end_object() override {
    if (in_vocab_) {
      in_vocab_ = false;
      return true;
    }
    open_.pop_back();
    return true;
  }

  bool start_array(std::size_t) override {
    if (in_vocab_ || merge_depth_ == 2) return fail_with("unexpected array in model.vocab or model.merges");
    if (merge_depth_ == 1) {
      merge_depth_ = 2;
      pair_.clear();
      return true;
    }
    if (at_model_child("merges")) {
      merge_depth_ = 1;
      out_.merges.reserve(kExpectedEntries);
      return true;
    }
    return open(json::array());
  }

  bool end_array() override {
    if (merge_depth_ == 2) {
      merge_depth_ = 1;
      if (pair_.size() != 2) return fail_with("a merge pair must hold exactly two strings");
      add_merge(pair_[0], pair_[1]);
      return true;
    }
    if (merge_depth_ == 1) {
      merge_depth_ = 0;
      return true;
    }
    open_.pop_back();
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return fail_with(e.what());
  }

 private:
  TokenizerJson& out_;
  std::vector<json*> open_;  // containers being filled, innermost last
  std::string key_;          // the last key read in the innermost object
  json* model_ = nullptr;    // the top-level "model" object, once opened
  bool in_vocab_ = false;
  int merge_depth_ = 0;  // 1 inside model.merges, 2 inside one ["a", "b"] pair
  std::vector<std::string> pair_;

  bool fail_with(std::string message) {
    error = std::move(message);
    return false;
  }

  bool at_model_child(std::string_view name) const {
    return model_ && !open_.empty() && open_.back() == model_ && key_ == name;
  }

  json* place(json&& v) {
    if (open_.empty()) {
      out_.document = std::move(v);
      return &out_.document;
    }
    json& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }

  bool add(json&& v) {
    if (in_vocab_) return fail_with("model.vocab values must be integer ids");
    if (merge_depth_) return fail_with("model.merges entries must be strings or pairs of strings");
    place(std::move(v));
    return true;
  }

  bool open(json&& container) {
    const bool is_model = open_.size() == 1 && key_ == "model" && container.is_object();
    open_.push_back(place(std::move(container)));
    if (is_model) model_ = open_.back();
    return true;
  }

  bool add_vocab(int64_t id) {
    if (id < 0 || id > INT32_MAX) return fail_with(fmt::format("model.vocab: id {} of '{}' out of range", id, key_));
    if (size_t(id) >= out_.vocab.size()) out_.vocab.resize(size_t(id) + 1);
    if (!out_.vocab[size_t(id)].empty()) return fail_with(fmt::format("model.vocab: id {} given twice", id));
    out_.vocab[size_t(id)] = byte_level_to_bytes(key_);
    return true;
  }

  void add_merge(std::string_view left, std::string_view right) {
    std::string left_bytes = byte_level_to_bytes(left);
    const size_t left_size = left_bytes.size();
    out_.merges.push_back({std::move(left_bytes.append(byte_level_to_bytes(right))), left_size});
  }

  bool add_merge_string(std::string_view s) {
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
      return fail_with(fmt::format("model.merges: '{}' is not two tokens separated by one space", s));
    add_merge(s.substr(0, space), s.substr(space + 1));
    return true;
  }
};

}  // namespace

TokenizerJson read_tokenizer_json(const std::string& path) {
  MappedFile file(path);
  TokenizerJson out;
  Reader reader(out);
  const auto* begin = reinterpret_cast<const char*>(file.data());
  if (!json::sax_parse(begin, begin + file.size(), &reader))
    fail("{}: {}", path, reader.error.empty() ? "invalid JSON" : reader.error);
  if (!out.document.is_object()) fail("{}: not a JSON object", path);
  return out;
}

}  // namespace r1
