// Byte-pair encoding by merge rank over raw bytes: a word starts as one token per byte and
// the adjacent pair whose merge comes first in tokenizer.json's merge list is merged until
// no listed merge applies. Results are cached per word, since prose repeats its words.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/flat_hash.h"
#include "tokenizer/tokenizer_json.h"

namespace r1 {

// Hash for string-keyed maps that can be searched with a string_view (no temporary string).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

class Bpe {
 public:
  // `bytes_of_id`: raw bytes of each token by id; `merges`: in rank order.
  // `ignore_merges`: a word that is itself a token is taken whole (tokenizer.json's flag).
  // Fails (r1::Error) when a byte has no token or a merge names an unknown token.
  Bpe(std::vector<std::string> bytes_of_id, const std::vector<MergeRule>& merges, bool ignore_merges);
  Bpe(const Bpe&) = delete;  // the index refers to bytes_of_id_
  Bpe& operator=(const Bpe&) = delete;

  // Appends the ids of one pre-tokenized piece. Not thread-safe (the cache).
  void encode_word(std::string_view word, std::vector<int>& ids);

  // Raw bytes of each id (empty where the vocabulary has no such id).
  const std::vector<std::string>& token_bytes() const { return bytes_of_id_; }

 private:
  struct Merge {
    int rank;
    int result;
  };
  static uint64_t pair_key(int left, int right) { return uint64_t(uint32_t(left)) << 32 | uint32_t(right); }
  int rank_of(int left, int right) const;
  void merge_word(std::string_view word, std::vector<int>& ids) const;

  std::vector<std::string> bytes_of_id_;
  FlatStringIndex id_of_bytes_;
  std::array<int, 256> byte_token_{};
  FlatU64Map<Merge> merges_;
  bool ignore_merges_ = false;

  // Word cache: the ids of each word are a slice of cache_ids_.
  StringMap<std::pair<uint32_t, uint32_t>> cache_;
  std::vector<int> cache_ids_;
};

}  // namespace r1
