// A Hugging Face byte-level BPE tokenizer loaded from a model directory's tokenizer.json:
// added tokens matched literally, then the pre-tokenizer's regex splits, then BPE by merge
// rank. Decoding concatenates each token's raw bytes.
//
// Input text is taken as bytes. Ill-formed UTF-8 is not an error: no regex matches an
// ill-formed byte, so each run of such bytes becomes its own piece and is encoded as its
// byte-level tokens; decode() gives the very same bytes back (lossless round trip).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pre_tokenizer.h"

namespace r1 {

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json. Fails (r1::Error naming the file) when it is missing, malformed
  // or uses something r1 does not implement.
  explicit Tokenizer(const std::string& dir);

  // Ids of `text`, no BOS/EOS added. Thread-safe (calls are serialized).
  std::vector<int> encode(std::string_view text) const;

  // The bytes the ids spell (added tokens as their text). Fails on an id not in the vocabulary.
  std::string decode(std::span<const int> ids) const;

  bool contains(int id) const { return id >= 0 && size_t(id) < bytes_of_id_.size() && bytes_of_id_[size_t(id)]; }
  // The raw bytes of one token. Fails on an id not in the vocabulary.
  const std::string& token_bytes(int id) const;
  bool is_special(int id) const { return contains(id) && special_[size_t(id)]; }
  std::optional<int> added_token_id(std::string_view content) const;
  // One past the largest id.
  int vocab_size() const { return int(bytes_of_id_.size()); }

 private:
  std::string path_;
  std::unique_ptr<Bpe> bpe_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<AddedTokenMatcher> added_matcher_;
  std::vector<AddedToken> added_tokens_;
  std::vector<const std::string*> bytes_of_id_;  // into bpe_ or added_tokens_, both fixed once loaded
  std::vector<bool> special_;

  // encode() state: the BPE word cache, the regexes' match data, reused buffers.
  mutable std::mutex mutex_;
  mutable std::vector<TextPiece> segments_;

  void load(const std::string& path);
};

}  // namespace r1
