// Open-addressing hash tables for the tokenizer's two big maps (128k entries each): one flat
// array with linear probing instead of a heap node per entry, so tokenizer.json loads fast
// and lookups touch one cache line.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace r1 {

inline size_t table_capacity(size_t entries) {
  size_t capacity = 16;
  while (capacity < 2 * entries) capacity *= 2;  // at most half full
  return capacity;
}

// uint64 key -> Value. The key ~0 is reserved (marks empty slots).
template <typename Value>
class FlatU64Map {
 public:
  explicit FlatU64Map(size_t entries = 0) : slots_(table_capacity(entries)), mask_(slots_.size() - 1) {}

  // Inserts unless the key is present; returns whether it inserted.
  bool insert(uint64_t key, const Value& value) {
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return false;
      if (slots_[i].key == kEmpty) {
        slots_[i] = {key, value};
        return true;
      }
    }
  }

  const Value* find(uint64_t key) const {
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  struct Slot {
    uint64_t key = kEmpty;
    Value value{};
  };
  static size_t hash(uint64_t key) { return size_t((key * 0x9E3779B97F4A7C15ull) >> 17); }
  std::vector<Slot> slots_;
  size_t mask_;
};

// Index of a list of distinct strings: string -> its position in the list. Holds only the
// positions; the strings stay in the caller's list, which must outlive the index unchanged.
class FlatStringIndex {
 public:
  explicit FlatStringIndex(const std::vector<std::string>& strings)
      : strings_(strings), slots_(table_capacity(strings.size()), -1), mask_(slots_.size() - 1) {
    for (size_t id = 0; id < strings.size(); ++id)
      if (!strings[id].empty()) insert(int(id));
  }

  // Position of `s` in the list, or -1.
  int find(std::string_view s) const {
    for (size_t i = hash(s) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i] < 0) return -1;
      if (strings_[size_t(slots_[i])] == s) return slots_[i];
    }
  }

 private:
  static size_t hash(std::string_view s) { return std::hash<std::string_view>{}(s); }
  void insert(int id) {
    size_t i = hash(strings_[size_t(id)]) & mask_;
    while (slots_[i] >= 0 && strings_[size_t(slots_[i])] != strings_[size_t(id)]) i = (i + 1) & mask_;
    if (slots_[i] < 0) slots_[i] = id;  // a duplicate keeps its first id
  }
  const std::vector<std::string>& strings_;
  std::vector<int> slots_;
  size_t mask_;
};

}  // namespace r1
