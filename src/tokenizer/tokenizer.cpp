#include "tokenizer/tokenizer.h"

#include <filesystem>

#include "common/error.h"
#include "tokenizer/tokenizer_json.h"

namespace r1 {

namespace {

using json = nlohmann::json;

bool is_empty_normalizer(const json& n) {
  return n.is_null() || (n.is_object() && n.value("type", "") == "Sequence" &&
                         n.value("normalizers", json::array()).empty());
}

bool is_byte_level_decoder(const json& d) {
  if (!d.is_object()) return false;
  if (d.value("type", "") == "ByteLevel") return true;
  if (d.value("type", "") != "Sequence") return false;
  const json& steps = d.value("decoders", json::array());
  return steps.size() == 1 && is_byte_level_decoder(steps[0]);
}

void check_supported(const json& doc) {
  if (!is_empty_normalizer(doc.value("normalizer", json())))
    fail("normalizer {} is not supported", doc["normalizer"].dump());
  const json& model = doc.at("model");
  if (model.value("type", "BPE") != "BPE") fail("model type '{}' is not supported (BPE only)", model["type"].dump());
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(affix) && !model[affix].is_null() && model[affix] != "")
      fail("model.{} is not supported", affix);
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"] != 0)
    fail("model.dropout is not supported");
  if (!is_byte_level_decoder(doc.value("decoder", json())))
    fail("decoder {} is not supported (ByteLevel only)", doc.value("decoder", json()).dump());
}

std::vector<AddedToken> parse_added_tokens(const json& list) {
  std::vector<AddedToken> tokens;
  for (const json& t : list) {
    for (const char* flag : {"lstrip", "rstrip", "single_word"})
      if (t.value(flag, false)) fail("added token {}: {}=true is not supported", t.value("content", ""), flag);
    tokens.push_back({t.at("id").get<int>(), t.at("content").get<std::string>(), t.value("special", false)});
    if (tokens.back().id < 0) fail("added token {}: negative id", tokens.back().content);
  }
  return tokens;
}

}  // namespace

Tokenizer::Tokenizer(const std::string& dir) : path_((std::filesystem::path(dir) / "tokenizer.json").string()) {
  try {
    load(path_);
  } catch (const json::exception& e) {
    fail("{}: {}", path_, e.what());
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.starts_with(path_)) throw;
    fail("{}: {}", path_, message);
  }
}

void Tokenizer::load(const std::string& path) {
  TokenizerJson file = read_tokenizer_json(path);
  const json& doc = file.document;
  check_supported(doc);
  pre_tokenizer_ = std::make_unique<PreTokenizer>(doc.value("pre_tokenizer", json()));

  bpe_ = std::make_unique<Bpe>(std::move(file.vocab), file.merges, doc["model"].value("ignore_merges", false));

  added_tokens_ = parse_added_tokens(doc.value("added_tokens", json::array()));
  const std::vector<std::string>& bpe_bytes = bpe_->token_bytes();
  bytes_of_id_.assign(bpe_bytes.size(), nullptr);
  for (size_t id = 0; id < bpe_bytes.size(); ++id)
    if (!bpe_bytes[id].empty()) bytes_of_id_[id] = &bpe_bytes[id];
  for (const AddedToken& t : added_tokens_) {
    if (size_t(t.id) >= bytes_of_id_.size()) bytes_of_id_.resize(size_t(t.id) + 1, nullptr);
    bytes_of_id_[size_t(t.id)] = &t.content;
  }
  special_.assign(bytes_of_id_.size(), false);
  for (const AddedToken& t : added_tokens_) special_[size_t(t.id)] = t.special;
  added_matcher_ = std::make_unique<AddedTokenMatcher>(added_tokens_);
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
  std::lock_guard lock(mutex_);
  std::vector<int> ids;
  ids.reserve(text.size() / 3);
  added_matcher_->split(text, segments_);
  for (const TextPiece& segment : segments_) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    pre_tokenizer_->split(segment.text, [&](std::string_view piece) { bpe_->encode_word(piece, ids); });
  }
  return ids;
}

const std::string& Tokenizer::token_bytes(int id) const {
  if (!contains(id)) fail("token id {} is not in the vocabulary of {} (ids 0..{})", id, path_, vocab_size() - 1);
  return *bytes_of_id_[size_t(id)];
}

std::string Tokenizer::decode(std::span<const int> ids) const {
  std::string text;
  for (int id : ids) text += token_bytes(id);
  return text;
}

std::optional<int> Tokenizer::added_token_id(std::string_view content) const {
  for (const AddedToken& t : added_tokens_)
    if (t.content == content) return t.id;
  return std::nullopt;
}

}  // namespace r1
