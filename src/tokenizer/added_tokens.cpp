#include "tokenizer/added_tokens.h"

#include <algorithm>

namespace r1 {

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) {
  for (const AddedToken& t : tokens) {
    if (t.content.empty()) continue;
    id_of_content_.emplace(t.content, t.id);
    can_start_[static_cast<unsigned char>(t.content[0])] = true;
    if (std::find(lengths_.begin(), lengths_.end(), t.content.size()) == lengths_.end())
      lengths_.push_back(t.content.size());
  }
  std::sort(lengths_.rbegin(), lengths_.rend());
}

void AddedTokenMatcher::split(std::string_view text, std::vector<TextPiece>& segments) const {
  segments.clear();
  size_t plain_begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!can_start_[static_cast<unsigned char>(text[i])]) continue;
    for (size_t length : lengths_) {
      if (length > text.size() - i) continue;
      const auto it = id_of_content_.find(text.substr(i, length));
      if (it == id_of_content_.end()) continue;
      if (i > plain_begin) segments.push_back({text.substr(plain_begin, i - plain_begin), -1});
      segments.push_back({text.substr(i, length), it->second});
      plain_begin = i + length;
      i = plain_begin - 1;
      break;
    }
  }
  if (plain_begin < text.size()) segments.push_back({text.substr(plain_begin), -1});
}

}  // namespace r1
