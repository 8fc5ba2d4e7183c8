// Topic and pattern parsing and matching: the input is "pattern NUL topic".
// Checks invariants, not just absence of crashes: the trie and the reference
// matcher agree, and a pattern covers itself and intersects what it matches.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <daemoneye/eventbus/topic.hpp>

#include "pattern_set.hpp"
#include "topic_trie.hpp"

namespace eb = daemoneye::eventbus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view pattern = input.substr(0, nul);
  const std::string_view topic = nul == std::string_view::npos ? std::string_view{} : input.substr(nul + 1);
  const bool pattern_ok = !eb::validate_pattern(pattern);
  const bool topic_ok = !eb::validate_topic(topic);
  (void)eb::is_reserved_topic(pattern);
  if (topic_ok && !pattern_ok && !eb::validate_pattern(topic)) {
    // every valid topic is a valid pattern
  } else if (topic_ok && eb::validate_pattern(topic)) {
    std::abort();
  }
  if (!pattern_ok || !topic_ok) return 0;
  const bool matches = eb::topic_matches(pattern, topic);
  eb::detail::TopicTrie<int> trie;
  trie.insert(pattern, 1);
  int hits = 0;
  trie.match(topic, [&](int) { ++hits; });
  if ((hits == 1) != matches) std::abort();
  if (!eb::detail::pattern_covers(pattern, pattern)) std::abort();
  if (matches && !eb::detail::patterns_intersect(pattern, topic)) std::abort();
  if (matches && !eb::detail::pattern_covers(pattern, topic)) std::abort();
  if (!trie.erase(pattern, 1) || !trie.empty()) std::abort();
  return 0;
}
