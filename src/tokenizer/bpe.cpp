#include "tokenizer/bpe.h"

#include <climits>

#include "common/error.h"
#include "tokenizer/byte_level.h"

namespace r1 {

namespace {

// Words longer than this are not cached (long runs are rare and would bloat the cache), and
// the cache is emptied once it holds this many ids.
constexpr size_t kMaxCachedWord = 64;
constexpr size_t kMaxCachedIds = size_t(1) << 22;

}  // namespace

Bpe::Bpe(std::vector<std::string> bytes_of_id, const std::vector<MergeRule>& merges, bool ignore_merges)
    : bytes_of_id_(std::move(bytes_of_id)),
      id_of_bytes_(bytes_of_id_),
      merges_(merges.size()),
      ignore_merges_(ignore_merges) {
  for (int b = 0; b < 256; ++b) {
    byte_token_[size_t(b)] = id_of_bytes_.find(std::string(1, char(b)));
    if (byte_token_[size_t(b)] < 0) fail("model.vocab: no token for byte 0x{:02X}", b);
  }
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const MergeRule& m = merges[rank];
    const int l = id_of_bytes_.find(m.left()), r = id_of_bytes_.find(m.right()), j = id_of_bytes_.find(m.joined);
    if (l < 0 || r < 0 || j < 0)
      fail("model.merges[{}]: '{} {}' names a token missing from model.vocab", rank, bytes_to_byte_level(m.left()),
           bytes_to_byte_level(m.right()));
    merges_.insert(pair_key(l, r), Merge{int(rank), j});  // a repeated merge keeps its first rank
  }
}

int Bpe::rank_of(int left, int right) const {
  const Merge* merge = merges_.find(pair_key(left, right));
  return merge ? merge->rank : INT_MAX;
}

void Bpe::merge_word(std::string_view word, std::vector<int>& ids) const {
  // symbols[i] and rank[i] = rank of merging symbols[i] with symbols[i + 1]. Each step merges
  // the lowest rank, leftmost on ties, and only the two neighbouring ranks change.
  std::vector<int> symbols(word.size()), rank(word.size(), INT_MAX);
  for (size_t i = 0; i < word.size(); ++i) symbols[i] = byte_token_[static_cast<unsigned char>(word[i])];
  for (size_t i = 0; i + 1 < symbols.size(); ++i) rank[i] = rank_of(symbols[i], symbols[i + 1]);
  while (symbols.size() > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < symbols.size(); ++i)
      if (rank[i] < rank[best]) best = i;
    if (rank[best] == INT_MAX) break;
    symbols[best] = merges_.find(pair_key(symbols[best], symbols[best + 1]))->result;
    symbols.erase(symbols.begin() + long(best) + 1);
    rank.erase(rank.begin() + long(best) + 1);
    rank[best] = best + 1 < symbols.size() ? rank_of(symbols[best], symbols[best + 1]) : INT_MAX;
    if (best > 0) rank[best - 1] = rank_of(symbols[best - 1], symbols[best]);
  }
  ids.insert(ids.end(), symbols.begin(), symbols.end());
}

void Bpe::encode_word(std::string_view word, std::vector<int>& ids) {
  if (word.empty()) return;
  if (word.size() == 1) {
    ids.push_back(byte_token_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (ignore_merges_) {
    const int whole = id_of_bytes_.find(word);
    if (whole >= 0) {
      ids.push_back(whole);
      return;
    }
  }
  if (word.size() > kMaxCachedWord) return merge_word(word, ids);
  const auto hit = cache_.find(word);
  if (hit != cache_.end()) {
    const auto [offset, count] = hit->second;
    ids.insert(ids.end(), cache_ids_.begin() + offset, cache_ids_.begin() + offset + count);
    return;
  }
  const size_t first = ids.size();
  merge_word(word, ids);
  if (cache_ids_.size() > kMaxCachedIds) cache_.clear(), cache_ids_.clear();
  cache_.emplace(std::string(word), std::pair{uint32_t(cache_ids_.size()), uint32_t(ids.size() - first)});
  cache_ids_.insert(cache_ids_.end(), ids.begin() + long(first), ids.end());
}

}  // namespace r1
