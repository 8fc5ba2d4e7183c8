#include <daemoneye/eventbus/error.hpp>
#include <daemoneye/eventbus/topic.hpp>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "topic_trie.hpp"

namespace daemoneye::eventbus {
namespace {

TEST(TopicValidation, AcceptsWellFormedTopics) {
  for (const char* t : {"events", "events.process.spawned", "a.b.c", "A-Z_0-9.x", "control.health.heartbeat.procmond-1"}) {
    EXPECT_FALSE(validate_topic(t)) << t;
  }
  std::string max_levels = "a";
  for (int i = 1; i < 16; ++i) max_levels += ".a";
  EXPECT_FALSE(validate_topic(max_levels));
  EXPECT_FALSE(validate_topic(std::string(64, 'x')));
}

TEST(TopicValidation, RejectsMalformedTopics) {
  std::string seventeen = "a";
  for (int i = 1; i < 17; ++i) seventeen += ".a";
  std::string too_long;
  while (too_long.size() < 256) too_long += "abcdefgh.";
  too_long.pop_back();
  const std::vector<std::string> bad{
      "", ".", "a.", ".a", "a..b", "a b", "a/b", "ev+", "a.+", "a.#", "#", "+", std::string("a\0b", 3),
      "caf\xc3\xa9", std::string(65, 'x'), seventeen, too_long, "a.\xff", "tab\there"};
  for (const auto& t : bad) {
    EXPECT_EQ(validate_topic(t), errc::invalid_topic) << "'" << t << "'";
  }
}

TEST(PatternValidation, WildcardsMustFillWholeLevelsAndHashOnlyLast) {
  for (const char* p : {"#", "+", "events.#", "events.+", "+.+.+", "events.+.spawned", "+.#", "a.b.c"}) {
    EXPECT_FALSE(validate_pattern(p)) << p;
  }
  for (const char* p : {"", "ev+", "ev#", "a.#.b", "#.a", "a.b#", "+a", "a..b", "a.", "#.#", "a b"}) {
    EXPECT_EQ(validate_pattern(p), errc::invalid_pattern) << p;
  }
}

struct MatchCase {
  const char* pattern;
  const char* topic;
  bool matches;
};

TEST(TopicMatching, TableOfTrickyCases) {
  const MatchCase cases[] = {
      {"events.#", "events", true},               // # matches the parent level (zero levels)
      {"events.#", "events.process", true},
      {"events.#", "events.process.spawned", true},
      {"events.#", "eventsx", false},
      {"events.#", "other.events", false},
      {"#", "anything.at.all", true},
      {"#", "a", true},
      {"events.+", "events", false},              // + never matches zero levels
      {"events.+", "events.process", true},
      {"events.+", "events.process.spawned", false},
      {"+.process", "events.process", true},
      {"+.+", "a.b", true},
      {"+.+", "a", false},
      {"+.#", "a", true},
      {"+.#", "a.b.c", true},
      {"events.+.spawned", "events.process.spawned", true},
      {"events.+.spawned", "events.process.exited", false},
      {"a.b", "a.b", true},
      {"a.b", "a.b.c", false},
      {"a.b.c", "a.b", false},
      {"a.+.#", "a.b", true},
      {"a.+.#", "a", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(topic_matches(c.pattern, c.topic), c.matches) << c.pattern << " vs " << c.topic;
  }
}

TEST(TopicMatching, ReservedTopicsAreRecognised) {
  EXPECT_TRUE(is_reserved_topic("_inbox.4.1"));
  EXPECT_FALSE(is_reserved_topic("events._x"));
}

TEST(TopicTrie, MatchesExactlyWhatTheReferenceMatcherMatches) {
  // Random patterns and topics over a small alphabet, compared with topic_matches.
  std::mt19937 rng(12345);
  const std::vector<std::string> words{"a", "b", "c", "events", "process"};
  auto level = [&] { return words[rng() % words.size()]; };
  auto topic = [&] {
    std::string t = level();
    for (auto n = rng() % 4; n > 0; --n) t += "." + level();
    return t;
  };
  auto pattern = [&] {
    const auto n = 1 + rng() % 4;
    std::string p;
    for (unsigned i = 0; i < n; ++i) {
      if (i) p += ".";
      const auto r = rng() % 6;
      if (r == 0) {
        p += "+";
      } else if (r == 1 && i == n - 1) {
        p += "#";
      } else {
        p += level();
      }
    }
    return p;
  };
  detail::TopicTrie<int> trie;
  std::vector<std::string> patterns;
  for (int i = 0; i < 300; ++i) {
    patterns.push_back(pattern());
    ASSERT_FALSE(validate_pattern(patterns.back())) << patterns.back();
    trie.insert(patterns.back(), i);
  }
  // Remove a third, to exercise pruning.
  std::vector<bool> removed(patterns.size(), false);
  for (int i = 0; i < 300; i += 3) {
    ASSERT_TRUE(trie.erase(patterns[static_cast<std::size_t>(i)], i));
    removed[static_cast<std::size_t>(i)] = true;
  }
  EXPECT_EQ(trie.size(), 200u);
  for (int n = 0; n < 2000; ++n) {
    const std::string t = topic();
    std::multiset<int> expected;
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      if (!removed[i] && topic_matches(patterns[i], t)) expected.insert(static_cast<int>(i));
    }
    std::multiset<int> got;
    trie.match(t, [&](int v) { got.insert(v); });
    ASSERT_EQ(got, expected) << "topic " << t;
  }
}

TEST(TopicTrie, EraseOfAbsentEntryReportsFalseAndLeavesOthers) {
  detail::TopicTrie<int> trie;
  trie.insert("a.+", 1);
  trie.insert("a.#", 2);
  EXPECT_FALSE(trie.erase("a.+", 2));
  EXPECT_FALSE(trie.erase("a.b", 1));
  EXPECT_TRUE(trie.erase("a.+", 1));
  std::vector<int> got;
  trie.match("a.x", [&](int v) { got.push_back(v); });
  EXPECT_EQ(got, std::vector<int>{2});
  EXPECT_TRUE(trie.erase("a.#", 2));
  EXPECT_TRUE(trie.empty());
}

}  // namespace
}  // namespace daemoneye::eventbus
