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

Bpe::Bpe(std::vector<std::pair<std::string, int>> vocab,
         const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges)
    : ignore_merges_(ignore_merges) {
  id_of_bytes_.reserve(vocab.size());
  for (auto& [bytes, id] : vocab) {
    if (size_t(id) >= bytes_of_id_.size()) bytes_of_id_.resize(size_t(id) + 1);
    bytes_of_id_[size_t(id)] = bytes;
    id_of_bytes_.emplace(std::move(bytes), id);
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = id_of_bytes_.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
    if (it == id_of_bytes_.end()) fail("model.vocab: no token for byte 0x{:02X}", b);
    byte_token_[size_t(b)] = it->second;
  }
  merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    joined.assign(left).append(right);
    const auto l = id_of_bytes_.find(left), r = id_of_bytes_.find(right), j = id_of_bytes_.find(joined);
    if (l == id_of_bytes_.end() || r == id_of_bytes_.end() || j == id_of_bytes_.end())
      fail("model.merges[{}]: '{} {}' names a token missing from model.vocab", rank, bytes_to_byte_level(left),
           bytes_to_byte_level(right));
    merges_.try_emplace(pair_key(l->second, r->second), Merge{int(rank), j->second});  // first listing wins
  }
}

int Bpe::rank_of(int left, int right) const {
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? INT_MAX : it->second.rank;
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
    symbols[best] = merges_.at(pair_key(symbols[best], symbols[best + 1])).result;
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
    const auto whole = id_of_bytes_.find(word);
    if (whole != id_of_bytes_.end()) {
      ids.push_back(whole->second);
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
