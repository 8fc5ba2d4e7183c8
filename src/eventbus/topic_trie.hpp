#pragma once
// A trie of subscription patterns keyed by topic level, so that matching a
// topic costs O(levels × wildcard branches) instead of a scan of every
// subscription. Values are small handles (pointers) compared with ==.
//
// Not thread-safe: the broker owns one per routing thread.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "topic_levels.hpp"

namespace daemoneye::eventbus::detail {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class V>
class TopicTrie {
 public:
  // Adds `value` under the valid `pattern`. The same value may be added under
  // several patterns, and twice under one (it then matches twice).
  void insert(std::string_view pattern, V value) {
    TopicLevels lv(pattern);
    Node* n = &root_;
    for (std::size_t i = 0; i < lv.size(); ++i) {
      if (lv[i] == "#") {
        n->hash_values.push_back(value);
        ++size_;
        return;
      }
      if (lv[i] == "+") {
        if (!n->plus) n->plus = std::make_unique<Node>();
        n = n->plus.get();
        continue;
      }
      auto it = n->children.find(lv[i]);
      if (it == n->children.end()) it = n->children.emplace(std::string(lv[i]), std::make_unique<Node>()).first;
      n = it->second.get();
    }
    n->values.push_back(value);
    ++size_;
  }

  // Removes one occurrence of `value` under `pattern`; false if absent.
  bool erase(std::string_view pattern, const V& value) {
    TopicLevels lv(pattern);
    const bool removed = erase_at(root_, lv, 0, value);
    if (removed) --size_;
    return removed;
  }

  // Calls f(const V&) once for every (pattern, value) entry matching `topic`.
  template <class F>
  void match(std::string_view topic, F&& f) const {
    TopicLevels lv(topic);
    match_at(root_, lv, 0, f);
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

 private:
  struct Node {
    std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> children;
    std::unique_ptr<Node> plus;
    std::vector<V> values;       // patterns ending here
    std::vector<V> hash_values;  // patterns ending here with ".#"
    bool empty() const noexcept { return children.empty() && !plus && values.empty() && hash_values.empty(); }
  };

  template <class F>
  static void match_at(const Node& n, const TopicLevels& lv, std::size_t i, F& f) {
    for (const V& v : n.hash_values) f(v);
    if (i == lv.size()) {
      for (const V& v : n.values) f(v);
      return;
    }
    if (auto it = n.children.find(lv[i]); it != n.children.end()) match_at(*it->second, lv, i + 1, f);
    if (n.plus) match_at(*n.plus, lv, i + 1, f);
  }

  static bool remove_one(std::vector<V>& vec, const V& value) {
    auto it = std::find(vec.begin(), vec.end(), value);
    if (it == vec.end()) return false;
    vec.erase(it);
    return true;
  }

  // Removes and prunes empty nodes on the way back up.
  static bool erase_at(Node& n, const TopicLevels& lv, std::size_t i, const V& value) {
    if (i == lv.size()) return remove_one(n.values, value);
    if (lv[i] == "#") return remove_one(n.hash_values, value);
    if (lv[i] == "+") {
      if (!n.plus || !erase_at(*n.plus, lv, i + 1, value)) return false;
      if (n.plus->empty()) n.plus.reset();
      return true;
    }
    auto it = n.children.find(lv[i]);
    if (it == n.children.end() || !erase_at(*it->second, lv, i + 1, value)) return false;
    if (it->second->empty()) n.children.erase(it);
    return true;
  }

  Node root_;
  std::size_t size_ = 0;
};

}  // namespace daemoneye::eventbus::detail
